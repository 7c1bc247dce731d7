// The hang stress test (reliability issue, item 1): a program that keeps userfaultfd
// events coming — munmap, madvise(DONTNEED), threads that exit, forks — while one thread
// rewrites 64 MiB, under snapshot after snapshot. Every snapshot must be answered, the
// program must finish with its own checks passing, and the backing must verify clean.
//
// What it caught: UFFDIO_WRITEPROTECT answering EAGAIN (an event pending) left the
// writer asleep in its fault; an exiting thread's clear_child_tid on a write-protected
// page was skipped by the kernel (pthread_join forever); a forked child's page table
// naming pages the child never had made the copier fault on a userfaultfd only it
// serves. Each hung the session.
//
// NUMACTLX_CHURN_RUNS sets the number of sessions (default 6); the seed of each is
// printed, and NUMACTLX_TEST_SEED replays one (../helpers/random.ts).
import fs from 'node:fs';
import path from 'node:path';
import { execa, type Result } from 'execa';
import { NUMACTLX, numactlx } from '../helpers/numactlx.js';
import { compileFixture } from '../helpers/fixtures.js';
import { describeTree, waitFor } from '../helpers/proc.js';
import { testSeed } from '../helpers/random.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

const RUNS = Number(process.env.NUMACTLX_CHURN_RUNS ?? 6);
const SNAPSHOTS = 8;
/** How long one snapshot may take before the session counts as hung (it takes < 2 s). */
const HUNG_MS = 60_000;

afterAll(() => removeTmpDirs());

/** Rejects with `what` if `p` has not settled within `ms`: a hang fails the test instead of the suite's timeout. */
async function within<T>(what: string, ms: number, p: Promise<T>, pid?: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hung: ${what} (no answer in ${ms} ms)${pid ? `; where each thread is:\n${describeTree(pid)}` : ''}`)), ms);
  });
  try {
    return await Promise.race([p, hung]);
  } finally {
    clearTimeout(timer);
  }
}

async function churnSession(churn: string, seed: number): Promise<void> {
  const dir = tmpDir();
  const env = { NUMACTLX_RUNTIME_DIR: tmpDir() };
  const backing = path.join(dir, 'n3.img');
  const statsFile = path.join(dir, 'stats.json');
  const proc = execa(NUMACTLX, [`--remap=3,${backing},size=1g`, '--membind=3', '--stats', statsFile, '--', churn, '64m', String(seed)],
    { env, reject: false, buffer: false, stdin: 'pipe' });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  proc.stdin!.on('error', () => undefined);
  try {
    await waitFor('churn ready', () => out.includes('ready\n'), 30_000);
    for (let i = 1; i <= SNAPSHOTS; i++) {
      const snap = await within(`snapshot ${i} of seed ${seed}`, HUNG_MS,
        numactlx(['snapshot', '--wait', String(proc.pid)], { env }), proc.pid);
      expect({ i, exit: snap.exitCode, stderr: snap.stderr }).toEqual({ i, exit: 0, stderr: '' });
    }
    proc.stdin!.end('stop\n');
    const end = await within(`the program's exit after ${SNAPSHOTS} snapshots (seed ${seed})`, HUNG_MS, proc as Promise<Result>, proc.pid);
    // Pages thread B unmaps between a freeze and their copy are not in that snapshot, and
    // numactlx says so (once per session): the only line allowed.
    const lines = err.split('\n').filter(Boolean);
    expect(lines.filter((l) => !/^numactlx: snapshot \d+: \d+ pages? frozen in it were unmapped or discarded by the program before they could be copied/.test(l))).toEqual([]);
    expect(lines.length).toBeLessThanOrEqual(1);
    expect(end.exitCode).toBe(0);
    expect(out).toMatch(/^ok \d+ \d+ \d+$/m);
    // Pages the snapshots left out because no VMA covered them at the freeze (a slip of
    // the engine's bookkeeping the commit makes harmless, snapshot-commit.ts): said, so
    // that the next occurrence is seen (about one session in a hundred; cause not found).
    const events = (JSON.parse(fs.readFileSync(statsFile, 'utf8')) as { events: { outside_vma: number } }).events;
    // eslint-disable-next-line no-console
    if (events.outside_vma > 0) console.log(`churn seed ${seed}: ${events.outside_vma} page(s) outside every VMA left out of snapshots`);
    const verify = await numactlx(['verify', backing]);
    // Verify's findings are on its stdout: shown when it fails (seen once in 75 sessions of the sys11 merge).
    expect({ exit: verify.exitCode, stderr: verify.stderr, out: verify.exitCode === 0 ? '' : String(verify.stdout).slice(0, 1500) }).toEqual({ exit: 0, stderr: '', out: '' });
    const list = await numactlx(['snapshots', backing, '--json']);
    // (seen once in 80 sessions: an empty stdout here, reason unknown: the status and stderr say it next time)
    expect({ exit: list.exitCode, stderr: list.stderr, empty: list.stdout === '' }).toEqual({ exit: 0, stderr: '', empty: false });
    expect((JSON.parse(String(list.stdout)) as unknown[]).length).toBe(SNAPSHOTS);
  } finally {
    proc.kill('SIGKILL');
    await proc;
  }
}

test(`${RUNS} sessions of writes, munmap/DONTNEED, exiting threads and forks under ${SNAPSHOTS} snapshots each: no hang`, async () => {
  const churn = await compileFixture('churn');
  const first = testSeed('churn');
  for (let run = 0; run < RUNS; run++) {
    const seed = (first + run) >>> 0;
    // eslint-disable-next-line no-console
    console.log(`churn run ${run + 1}/${RUNS}: seed ${seed} (NUMACTLX_TEST_SEED=${seed} NUMACTLX_CHURN_RUNS=1 replays it)`);
    await churnSession(churn, seed);
  }
}, RUNS * 4 * HUNG_MS);
