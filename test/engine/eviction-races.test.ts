// --max-resident racing everything else: a program churning through a working set four
// times its limit — forks, munmap, mremap and MADV_DONTNEED of pages that are evicted or
// being evicted — while snapshots are taken; every snapshot must be one instant of the
// program (evicted pages referenced from their frames, none stale, none missing), and a
// kill -9 in the middle of it all leaves the backing verified clean.
import fs from 'node:fs';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { compileFixture } from '../helpers/fixtures.js';
import { NUMACTLX, numactlx } from '../helpers/numactlx.js';
import { procState, waitFor } from '../helpers/proc.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

afterAll(removeTmpDirs);

const PAGE = 4096;
const M64 = (1n << 64n) - 1n;
const MAGIC = 0x50414745n; // "PAGE", the high half of a page's first word (evict_pattern.c)

// evict_pattern.c's generator (fixture.h page_state + xorshift).
function pageState(seed: bigint, page: bigint): bigint {
  let x = (seed * 0x9e3779b97f4a7c15n + (page + 1n) * 0xbf58476d1ce4e5b9n) & M64;
  x ^= x >> 30n;
  x = (x * 0xbf58476d1ce4e5b9n) & M64;
  x ^= x >> 27n;
  x = (x * 0x94d049bb133111ebn) & M64;
  x ^= x >> 31n;
  return x === 0n ? 1n : x;
}

/** Whether words 2… of `page` are the stream of (seed, generation, index). */
function streamOk(page: Buffer, seed: bigint, gen: bigint, index: bigint): boolean {
  let s = pageState(seed ^ (gen << 32n), index);
  for (let i = 2; i < PAGE / 8; i++) {
    s ^= (s << 13n) & M64;
    s ^= s >> 7n;
    s ^= (s << 17n) & M64;
    if (page.readBigUInt64LE(i * 8) !== s) return false;
  }
  return true;
}

interface Checked { processes: number; pages: number }

/**
 * Exports snapshot `id` (raw) and checks every process in it against its own generation
 * table (a uint16_t per page at `genAddr`): each page the table names is there, whole, at
 * that generation — but at most one per process, the one being written at the freeze.
 */
async function checkSnapshot(backing: string, id: number, dir: string, seed: bigint, pages: number, genAddr: number): Promise<Checked> {
  const out = path.join(dir, `snap-${id}`);
  const r = await numactlx(['export', backing, String(id), '--format', 'raw', '-o', out]);
  if (r.exitCode !== 0) throw new Error(`export of snapshot ${id}: ${r.stderr}`);
  const index = JSON.parse(fs.readFileSync(path.join(out, 'index.json'), 'utf8'));
  const bin = fs.readFileSync(path.join(out, 'pages.bin'));
  let total = 0;
  for (const proc of index.processes as Array<{ pid: number; runs: Array<{ addr: string; pages: number; offset: number }> }>) {
    const runs = proc.runs.map((x) => ({ addr: Number(BigInt(x.addr)), pages: x.pages, offset: x.offset }));
    const at = (addr: number): number | undefined => {
      const run = runs.find((x) => addr >= x.addr && addr < x.addr + x.pages * PAGE);
      return run && run.offset + (addr - run.addr);
    };
    const gens = new Uint16Array(pages);
    for (let p = 0; p < pages; p += 2) {
      const off = at(genAddr + p * 2);
      if (off === undefined) throw new Error(`snapshot ${id} pid ${proc.pid}: the generation table at 0x${(genAddr + p * 2).toString(16)} is missing`);
      gens[p] = bin.readUInt16LE(off);
      if (p + 1 < pages) gens[p + 1] = bin.readUInt16LE(off + 2);
    }
    const seen = new Map<number, number>(); // index → generation of the whole page found
    let odd = 0;
    const problems: string[] = [];
    for (const run of runs) {
      for (let i = 0; i < run.pages; i++) {
        const page = bin.subarray(run.offset + i * PAGE, run.offset + (i + 1) * PAGE);
        const w0 = page.readBigUInt64LE(0);
        if (w0 >> 32n !== MAGIC) continue;
        const gen = w0 & 0xffffn;
        const p = Number(page.readBigUInt64LE(8));
        const whole = p < pages && streamOk(page, seed, gen, BigInt(p));
        if (!whole || gens[p] !== Number(gen)) {
          odd++;
          problems.push(`0x${(run.addr + i * PAGE).toString(16)}: index ${p} generation ${gen}${whole ? '' : ' (torn)'}, the table says ${gens[p]}`);
          continue;
        }
        seen.set(p, Number(gen));
      }
    }
    for (let p = 0; p < pages; p++) {
      if (gens[p] !== 0 && !seen.has(p)) { odd++; problems.push(`index ${p} (generation ${gens[p]}) is missing`); }
    }
    // The page being written at the freeze shows twice at most (as odd, and as missing).
    if (odd > 2) throw new Error(`snapshot ${id} pid ${proc.pid}: ${odd} pages out of line:\n${problems.slice(0, 10).join('\n')}`);
    total += seen.size;
  }
  fs.rmSync(out, { recursive: true, force: true });
  return { processes: index.processes.length, pages: total };
}

function churn(bin: string, backing: string, env: Record<string, string>, ops: number): ResultPromise {
  return execa(NUMACTLX, [`--remap=3,${backing},size=256m,resident=4m`, '--membind=3', '--', bin, 'churn', '16m', '9', String(ops)],
    { env, reject: false, buffer: false, stdin: 'ignore' });
}

test('snapshots while a program churns through 4x its limit (fork, munmap, mremap, MADV_DONTNEED of evicted pages): each is one instant, verify clean', async () => {
  const bin = await compileFixture('evict_pattern');
  const dir = tmpDir();
  const backing = path.join(dir, 'n3.img');
  const env = { NUMACTLX_RUNTIME_DIR: tmpDir() };
  const session = churn(bin, backing, env, 1500);
  const killer = setTimeout(() => session.kill('SIGKILL'), 240000);
  let out = '';
  let err = '';
  session.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  session.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  await waitFor('the program to start', () => out.includes('ready'), 30000);
  const [, , genHex] = /ready (0x[0-9a-f]+) (0x[0-9a-f]+)/.exec(out)!;
  const ids: number[] = [];
  while (!out.includes('evict_pattern ok') && ids.length < 8) {
    const snap = await numactlx(['snapshot', '--wait', '--json', String(session.pid)], { env });
    if (snap.exitCode !== 0) break; // the program ended meanwhile
    ids.push(JSON.parse(String(snap.stdout)).id);
  }
  const r = await session;
  clearTimeout(killer);
  expect(err).toBe('');
  expect(r.exitCode).toBe(0);
  expect(out).toMatch(/evict_pattern ok pages=4096/);
  expect(ids.length).toBeGreaterThanOrEqual(2);
  const verify = await numactlx(['verify', backing]);
  expect(verify.stdout).toMatch(/clean$/m);
  expect(verify.exitCode).toBe(0);
  for (const id of ids) {
    const checked = await checkSnapshot(backing, id, dir, 9n, 4096, Number(BigInt(genHex)));
    // Every page its table names was there (checkSnapshot); dropped chunks not written
    // again since are not, so some 4096 pages less.
    expect(checked.pages).toBeGreaterThan(2048);
  }
}, 300000);

test('kill -9 of numactlx while it evicts: the program goes with it, the backing verifies clean', async () => {
  const bin = await compileFixture('evict_pattern');
  const dir = tmpDir();
  const backing = path.join(dir, 'n3.img');
  const env = { NUMACTLX_RUNTIME_DIR: tmpDir() };
  const session = churn(bin, backing, env, 100000);
  let out = '';
  session.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  await waitFor('the program to start', () => out.includes('ready'), 30000);
  // A snapshot first (committed state to keep), then wait for eviction rounds to be under way.
  const snap = await numactlx(['snapshot', '--wait', '--json', String(session.pid)], { env });
  expect(snap.exitCode).toBe(0);
  const rounds = async (): Promise<number> => {
    const s = await numactlx(['status', '--json', String(session.pid)], { env });
    return s.exitCode === 0 ? JSON.parse(String(s.stdout)).stats.nodes[0].eviction.rounds as number : 0;
  };
  const first = await rounds();
  for (let i = 0; i < 200 && (await rounds()) < first + 3; i++) { /* eviction goes on */ }
  const program = Number(/"program_pid": (\d+)/.exec(String((await numactlx(['status', '--json', String(session.pid)], { env })).stdout))?.[1]);
  session.kill('SIGKILL');
  await session;
  // PTRACE_O_EXITKILL: the program must not run on without its memory's server.
  await waitFor('the program to be killed', () => procState(program) === undefined || procState(program) === 'Z', 10000);
  const verify = await numactlx(['verify', backing]);
  expect(verify.stdout).toMatch(/clean$/m);
  expect(verify.exitCode).toBe(0);
  const list = await numactlx(['snapshots', backing, '--json']);
  expect(JSON.parse(String(list.stdout)).map((s: { id: number }) => s.id)).toContain(JSON.parse(String(snap.stdout)).id);
}, 300000);
