// A fork of a parent whose pages are evicted (--max-resident): the child shares their
// frames, and from then on each of the two writes the pages it shared and reads its own
// data back — however often the pages go to the backing and come back meanwhile. A frame
// two processes hold is never written in place (eviction's write-back and the snapshot
// copier give the writer a new one), so a wrong frame shows as the other process's
// generation, in the program (evict_pattern checks every page) and in a snapshot taken
// of both (checked process by process against its own generation table). A
// MADV_WIPEONFORK mapping whose pages were evicted reads as zeros in the child.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { compileFixture } from '../helpers/fixtures.js';
import { NUMACTLX, numactlx } from '../helpers/numactlx.js';
import { waitFor } from '../helpers/proc.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';
import { checkSnapshot } from '../helpers/evict-pattern.js';
import type { SessionStats } from '../../src/channels/session-stats.js';

afterAll(removeTmpDirs);

const PAGE = 4096;
const PAGES = 4096; // 16 MiB: four times the limit
const SEED = 7n;

/** How many of the pages [addr, addr + count pages) pid does not have (pagemap: neither present nor swapped). */
function absentPages(pid: number, addr: number, count: number): number {
  const fd = fs.openSync(`/proc/${pid}/pagemap`, 'r');
  try {
    const buf = Buffer.alloc(count * 8);
    fs.readSync(fd, buf, 0, buf.length, (addr / PAGE) * 8);
    let absent = 0;
    for (let i = 0; i < count; i++) if ((buf.readBigUInt64LE(i * 8) >> 62n) === 0n) absent++;
    return absent;
  } finally {
    fs.closeSync(fd);
  }
}

test('a parent with evicted pages forks: parent and child write and read them, each sees its own data, in the program and in a snapshot of both; verify clean', async () => {
  const bin = await compileFixture('evict_pattern');
  const dir = tmpDir();
  const backing = path.join(dir, 'n3.img');
  const env = { NUMACTLX_RUNTIME_DIR: tmpDir() };
  const session = execa(NUMACTLX, [`--remap=3,${backing},size=256m,resident=4m`, '--membind=3', '--', bin, 'fork', '16m', String(SEED), '2'],
    { env, reject: false, buffer: false, stdin: 'pipe' });
  let out = '';
  let err = '';
  session.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  session.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const step = (what: string, line: string): Promise<boolean> => waitFor(what, () => {
    if (session.exitCode !== null || err.includes('FAIL')) throw new Error(`the session ended or a check failed: ${out} ${err}`);
    return out.includes(`${line}\n`);
  }, 120000);
  const status = async (): Promise<{ stats: SessionStats; program_pid: number }> => {
    const r = await numactlx(['status', '--json', String(session.pid)], { env });
    expect(r.exitCode).toBe(0);
    return JSON.parse(String(r.stdout));
  };
  const snapshot = async (): Promise<number> => {
    const r = await numactlx(['snapshot', '--wait', '--json', String(session.pid)], { env });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    return JSON.parse(String(r.stdout)).id as number;
  };
  try {
    await step('the program to fill 16 MiB', 'filled');
    const [, regionHex, genHex, wipedHex] = /ready (0x[0-9a-f]+) (0x[0-9a-f]+) (0x[0-9a-f]+)/.exec(out)!;
    const region = Number(BigInt(regionHex));
    // The second half's frames are now the snapshot's (evicted or copied by it): at the
    // fork they are clean in both. The first half is written again after it: evicted
    // since into frames written after the snapshot (FRESH).
    const first = await snapshot();
    session.stdin!.write('rewrite\n');
    await step('the program to write the first half again', 'rewritten');
    const before = await status();
    const program = before.program_pid;
    const evicted = before.stats.nodes[0].eviction!.pages_evicted;
    // The limit is a quarter of the pages: at the fork the second half is in its frames,
    // and the first half but what was written last (up to the limit, more when a slow
    // tracer lets the node go over it for a moment).
    expect(evicted).toBeGreaterThan(PAGES / 2);
    expect(absentPages(program, region, PAGES / 2)).toBeGreaterThan(PAGES / 8);
    expect(absentPages(program, region + (PAGES / 2) * PAGE, PAGES / 2)).toBeGreaterThan(PAGES / 4);
    // The MADV_WIPEONFORK pages were filled first: the first the CLOCK hand took.
    const wipedAbsent = absentPages(program, Number(BigInt(wipedHex)), 64);
    session.stdin!.write('fork\n');
    await step('the child to write the even pages twice and check all its pages', 'child checked');
    await step('the parent to write the odd pages twice and check all its pages', 'parent checked');
    const after = (await status()).stats.nodes[0].eviction!;
    expect(after.refaults).toBeGreaterThan(PAGES);
    // Both processes wait now: a snapshot of both, each page at its own process's generation.
    const both = await snapshot();
    session.stdin!.write('end\n');
    session.stdin!.end();
    const r = await session;
    expect(err).toBe('');
    expect(r.exitCode).toBe(0);
    expect(out).toMatch(/evict_pattern ok pages=4096 visits=0 hwm_kb=\d+\n$/);
    const verify = await numactlx(['verify', backing]);
    expect(verify.stdout).toMatch(/clean$/m);
    expect(verify.exitCode).toBe(0);
    const one = await checkSnapshot(backing, first, dir, SEED, PAGES, Number(BigInt(genHex)));
    expect(one).toEqual({ processes: 1, pages: PAGES });
    const two = await checkSnapshot(backing, both, dir, SEED, PAGES, Number(BigInt(genHex)));
    expect(two).toEqual({ processes: 2, pages: 2 * PAGES });
    // Said so that a run where the hand took none of them is seen to test less.
    console.log(`MADV_WIPEONFORK pages evicted at the fork: ${wipedAbsent} of 64; pages evicted: ${evicted}`);
  } finally {
    if (session.exitCode === null) session.kill('SIGKILL');
  }
}, 300000);
