// NUMACTLX_SNAPSHOT_NICE (src/snapshot/background-nice.ts): with asynchronous dirty
// tracking, the engine thread takes a snapshot's background steps below numactlx's
// priority for the snapshot's first 2 s, and serves faults at numactlx's own
// (src/engine-thread/background-priority.ts). Seen from outside, in /proc/PID/task/*/stat,
// and on the test's own thread for the grace.
import fs from 'node:fs';
import path from 'node:path';
import { compileFixture } from '../helpers/fixtures.js';
import { numactlx } from '../helpers/numactlx.js';
import { killSessions, startSession } from '../helpers/live-session.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';
import { DEFAULT_SNAPSHOT_NICE, snapshotNice } from '../../src/snapshot/background-nice.js';
import { BackgroundPriority } from '../../src/engine-thread/background-priority.js';
import { setThreadNice, threadNice } from '../../src/sys/sched.js';
import { readProcStat } from '../../src/sys/procfs.js';
import type { SessionStats } from '../../src/channels/session-stats.js';

afterEach(killSessions);

// The checksum worker reads a file backing's frames at nice 19 when it has nothing else to do
// (src/checksum-thread/idle-warming.ts): not a snapshot step, and when it runs depends on the
// timing. Off here, so that what is sampled is the engine's and fault service's priorities.
const NO_WARMING = { NUMACTLX_WARM_FRAMES: '0' };
afterAll(removeTmpDirs);

/** The nice value of each thread of `pid` (field 19 of /proc/PID/task/TID/stat). */
function threadNices(pid: number): number[] {
  const out: number[] = [];
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      out.push(Number(readProcStat(`${pid}/task/${tid}`).field(19)));
    } catch {
      // a thread that ended meanwhile
    }
  }
  return out;
}

test('NUMACTLX_SNAPSHOT_NICE: unset or empty is the default, 0 to 19 are taken, anything else is one line', () => {
  expect(snapshotNice(undefined)).toBe(DEFAULT_SNAPSHOT_NICE);
  expect(snapshotNice('')).toBe(DEFAULT_SNAPSHOT_NICE);
  expect(snapshotNice('0')).toBe(0);
  expect(snapshotNice('19')).toBe(19);
  for (const bad of ['20', '-1', '5x', ' 5', '1e1']) {
    expect(() => snapshotNice(bad)).toThrow(`NUMACTLX_SNAPSHOT_NICE: '${bad}' is not a number of nice steps from 0 to 19 (default 0: as numactlx)`);
  }
});

test('a bad NUMACTLX_SNAPSHOT_NICE is one line before the program starts, and nothing is made', async () => {
  const dir = tmpDir();
  const marker = path.join(dir, 'ran');
  const backing = path.join(dir, 'n3.img');
  const r = await numactlx([`--remap=3,${backing},size=16m`, '--membind=3', '--', 'touch', marker], { env: { NUMACTLX_SNAPSHOT_NICE: 'low' } });
  expect({ exit: r.exitCode, err: r.stderr }).toEqual({
    exit: 1, err: "numactlx: NUMACTLX_SNAPSHOT_NICE: 'low' is not a number of nice steps from 0 to 19 (default 0: as numactlx)",
  });
  expect(fs.existsSync(marker)).toBe(false);
  expect(fs.existsSync(backing)).toBe(false);
});

test('during a snapshot the engine thread takes its steps at the lower priority and is back at numactlx\'s after it', async () => {
  const bin = await compileFixture('pattern');
  const s = startSession([bin, 'hold', '512m', '11'], { size: '1g', env: { ...NO_WARMING, NUMACTLX_SNAPSHOT_NICE: '7', NUMACTLX_DEBUG: '1' } });
  await s.waitOut(/^ready 0x/m);
  expect(s.err()).toContain('numactlx-engine: snapshot steps at nice 7, fault service at -20\n');
  // No snapshot yet: fault service (the tracer, the engine) at -20 (root: src/sys/thread-priority.ts), the rest at 0.
  expect(threadNices(s.pid).filter((n) => n !== 0)).toEqual([-20, -20]);
  let done = false;
  const snap = numactlx(['snapshot', String(s.pid), '--wait'], { env: s.env }).finally(() => { done = true; });
  // While it runs: at some sample, one thread low (the engine in a step), never another nice.
  const seen = new Set<number>();
  let mostLow = 0;
  while (!done) {
    const nices = threadNices(s.pid);
    nices.forEach((n) => seen.add(n));
    mostLow = Math.max(mostLow, nices.filter((n) => n === 7).length);
    await new Promise((resolve) => setTimeout(resolve, 2)); // a sampling interval, not a wait for an event
  }
  const r = await snap;
  expect({ exit: r.exitCode, err: r.stderr }).toEqual({ exit: 0, err: '' });
  expect(mostLow).toBe(1);
  expect([...seen].sort((a, b) => a - b)).toEqual([-20, 0, 7]);
  expect(threadNices(s.pid).filter((n) => n !== 0)).toEqual([-20, -20]); // fault service back above the program
  s.closeInput();
  const end = await s.done;
  expect(end.exitCode).toBe(0);
  expect(s.out()).toMatch(/^pattern ok 536870912 /m);
}, 120000);

test('the lower priority lasts the first 2 s of a stretch of snapshot work: a busy program cannot starve a snapshot for good', () => {
  const own = threadNice();
  let clock = 0;
  const bp = new BackgroundPriority('async', 3, () => clock);
  try {
    bp.lowerFor(true);
    expect(threadNice()).toBe(own + 3);
    bp.restore();
    expect(threadNice()).toBe(own);
    clock = 1999;
    bp.lowerFor(true); // still the same stretch, within the grace
    expect(threadNice()).toBe(own + 3);
    bp.restore();
    clock = 2001;
    bp.lowerFor(true); // past it: at numactlx's priority until the work ends
    expect(threadNice()).toBe(own);
    bp.restore();
    bp.lowerFor(false); // the stretch ends; the next one has its grace again
    clock = 5000;
    bp.lowerFor(true);
    expect(threadNice()).toBe(own + 3);
    bp.restore();
    expect(threadNice()).toBe(own);
  } finally {
    setThreadNice(own);
  }
});

test('with fault service above numactlx\'s priority (root), the steps run below it in their grace and at numactlx\'s after, never above', () => {
  const own = threadNice();
  let clock = 0;
  expect(setThreadNice(own - 5)).toBe(0); // fault service, as the engine raises itself (root)
  const bp = new BackgroundPriority('async', 3, () => clock, own);
  try {
    bp.lowerFor(true);
    expect(threadNice()).toBe(own + 3);
    bp.restore();
    expect(threadNice()).toBe(own - 5);
    clock = 2001;
    bp.lowerFor(true);
    expect(threadNice()).toBe(own);
    bp.restore();
    expect(threadNice()).toBe(own - 5);
  } finally {
    setThreadNice(own);
  }
});

test.each([
  ['NUMACTLX_SNAPSHOT_NICE unset', {}, ''],
  ['NUMACTLX_SNAPSHOT_NICE=0', { NUMACTLX_SNAPSHOT_NICE: '0' }, ''],
  // A writer waits on a synchronous copy: slowing it down would slow the writer.
  ['synchronous dirty tracking', { NUMACTLX_DIRTY_TRACKING: 'sync', NUMACTLX_SNAPSHOT_NICE: '10' }, ' (NUMACTLX_SNAPSHOT_NICE not used: synchronous dirty tracking, writes wait on the copy)'],
])('%s: the snapshot steps at numactlx\'s priority, never below it, fault service above it', async (_what, env, why) => {
  const bin = await compileFixture('pattern');
  const s = startSession([bin, 'hold', '128m', '12'], { size: '256m', env: { ...NO_WARMING, ...env, NUMACTLX_DEBUG: '1' } });
  await s.waitOut(/^ready 0x/m);
  expect(s.err()).toContain(`numactlx-engine: snapshot steps at nice 0${why}, fault service at -20\n`);
  let done = false;
  const snap = numactlx(['snapshot', String(s.pid), '--wait'], { env: s.env }).finally(() => { done = true; });
  const seen = new Set<number>();
  while (!done) {
    threadNices(s.pid).forEach((n) => seen.add(n));
    await new Promise((resolve) => setTimeout(resolve, 2)); // a sampling interval, not a wait for an event
  }
  expect((await snap).exitCode).toBe(0);
  expect([...seen].sort((a, b) => a - b)).toEqual([-20, 0]);
  s.closeInput();
  expect((await s.done).exitCode).toBe(0);
}, 120000);

// The engine comes back to fault service's priority for faults, commands and a poll that may
// block, not at every turn's end: changed twice a turn, the nice let it keep a CPU from a
// writer pinned with it for 0.3–1.9 s (BENCHMARKS §5p). Two snapshots of a program that
// writes nothing, their copies held by a fork (the copy in many small steps): ≈ 20 changes
// in all; at every turn's end it was 19,806.
test('the engine changes its nice a few times a snapshot, not at every step of its copy', async () => {
  const bin = await compileFixture('pattern');
  const s = startSession([bin, 'hold', '512m', '13'], { size: '1g', env: { ...NO_WARMING, NUMACTLX_SNAPSHOT_CAPTURE: 'fork' } });
  await s.waitOut(/^ready 0x/m);
  for (let i = 0; i < 2; i++) {
    const r = await numactlx(['snapshot', String(s.pid), '--wait'], { env: s.env });
    expect({ exit: r.exitCode, err: r.stderr }).toEqual({ exit: 0, err: '' });
  }
  const st = await numactlx(['status', String(s.pid), '--json'], { env: s.env });
  expect(st.exitCode).toBe(0);
  const changes = (JSON.parse(String(st.stdout)) as { stats: SessionStats }).stats.engine_nice_changes;
  expect(changes).toBeGreaterThanOrEqual(4); // lowered for each copy and back: the priority is in use
  expect(changes).toBeLessThanOrEqual(60);
  s.closeInput();
  expect((await s.done).exitCode).toBe(0);
  expect(s.out()).toMatch(/^pattern ok 536870912 /m);
}, 120000);
