// Snapshots of a program writing at full speed, with either dirty tracking
// (src/kerndat/features.ts chooseDirtyTracking): 'async' (the kernel tracks writes:
// UFFD_FEATURE_WP_ASYNC + PAGEMAP_SCAN, Linux 6.7; snapshots are pre-copied,
// src/engine-thread/precopy.ts) and 'sync' (write faults served by numactlx,
// copy-before-write, Linux 6.1's way). The program (test/fixtures/fast_oracle.c) writes
// seq into page (seq * A + B) mod PAGES without pause and publishes the counter: a
// snapshot whose counter says C must hold in every page the last seq <= C that lands
// there (the one write in progress, C + 1, may show). With async tracking the program
// is never stopped by a write fault: its write_faults stay 0 through the snapshots.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { compileFixture } from '../helpers/fixtures.js';
import { NUMACTLX, numactlx } from '../helpers/numactlx.js';
import { waitFor } from '../helpers/proc.js';
import { prng, testSeed } from '../helpers/random.js';
import { RawSnapshot } from '../helpers/raw-export.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';
import type { SessionStats } from '../../src/channels/session-stats.js';

afterAll(removeTmpDirs);

const PAGES_DEFAULT = 16384; // 64 MiB, a power of two
const PAGES = PAGES_DEFAULT;
const PAGE = 4096;

/** The modular inverse of odd `a` modulo `pages` (Newton's iteration; Numbers stay below 2^40). */
function inverse(a: number, pages: number): number {
  let inv = a % pages;
  for (let i = 0; i < 6; i++) inv = (inv * ((2 + pages * pages - ((a % pages) * inv) % pages) % pages)) % pages;
  return inv;
}

/** numactlx running fast_oracle with `args`, killed after `killMs`; its region and counter once it is ready. */
async function startOracle(args: string[], env: Record<string, string>, killMs: number) {
  const session = execa(NUMACTLX, args, { env, reject: false, buffer: false, stdin: 'pipe' });
  const killer = setTimeout(() => session.kill('SIGKILL'), killMs);
  let out = '';
  session.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  await waitFor('the writer to start', () => out.includes('ready'), 20000);
  const [, region, , committed] = out.split('\n')[0].split(' ');
  return { session, killer, region, committed, out: () => out };
}

/** `count` snapshots of session `pid`, one after the other, each answered; their ids. */
async function takeSnapshots(pid: number, env: Record<string, string>, count: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < count; i++) {
    const r = await numactlx(['snapshot', '--wait', '--json', String(pid)], { env });
    expect({ exit: r.exitCode, stderr: r.stderr }).toEqual({ exit: 0, stderr: '' });
    ids.push(JSON.parse(String(r.stdout)).id);
  }
  return ids;
}

/** Checks that snapshot `snap` is one cut of the writes of a region of `pages` pages; returns the cut. */
function checkCut(snap: RawSnapshot, seed: number, region: number, committed: number, pages = PAGES_DEFAULT): number {
  const cut = Number(snap.word(committed) ?? 0n);
  expect(Number.isSafeInteger(cut)).toBe(true);
  const a = (2 * seed + 1) % pages;
  const b = Math.floor(seed / 128) % pages;
  const inv = inverse(a, pages);
  expect((a * inv) % pages).toBe(1);
  const pageOf = (seq: number): number => (((seq % pages) * a) % pages + b) % pages;
  const progress = BigInt(cut + 1);
  const inProgressPage = pageOf(cut + 1);
  const wrong: string[] = [];
  for (let p = 0; p < pages; p++) {
    // The last seq <= cut with seq * a + b = p (mod pages): seq = r (mod pages).
    const r = (((p - b + pages) % pages) * inv) % pages;
    let last = cut - (((cut - r) % pages) + pages) % pages;
    if (last < 1) last = 0;
    const want = BigInt(last);
    const first = snap.word(region + p * PAGE) ?? 0n;
    const end = snap.word(region + p * PAGE + PAGE - 8) ?? 0n;
    if (first === want && end === want) continue;
    if (p === inProgressPage && (first === want || first === progress) && (end === want || end === progress)) continue;
    wrong.push(`page ${p}: holds ${first}/${end}, the cut at ${cut} says ${want}`);
  }
  expect(wrong.slice(0, 5)).toEqual([]);
  return cut;
}

async function stats(pid: number, env: Record<string, string>): Promise<SessionStats> {
  const r = await numactlx(['status', String(pid), '--json'], { env });
  expect(r.exitCode).toBe(0);
  return (JSON.parse(String(r.stdout)) as { stats: SessionStats }).stats;
}

// NUMACTLX_PAUSE_PAGES=0: every pre-copy ends in slices that stop the program
// (src/engine-thread/precopy-slices.ts), the stops made for eviction used for the copy.
// NUMACTLX_SNAPSHOT_CAPTURE=fork: each freeze's image is held by a fork of the program
// (src/engine-thread/snapshot-capture.ts) and copied out of it.
describe.each([
  ['async', '', 'pre-copy', 'precopy'],
  ['async', '0', 'pre-copy ending in slices', 'precopy'],
  ['async', '', 'held by a fork', 'fork'],
  ['sync', '', 'copy-before-write', ''],
] as const)('%s dirty tracking (NUMACTLX_PAUSE_PAGES=%s: %s)', (mode, pausePages, _what, capture) => {
  test('a program writing at full speed: every snapshot is one cut of its writes, and the program keeps writing', async () => {
    const bin = await compileFixture('fast_oracle');
    const dir = tmpDir();
    const backing = path.join(dir, 'node3.img');
    const env = { NUMACTLX_RUNTIME_DIR: tmpDir(), NUMACTLX_DIRTY_TRACKING: mode, ...(pausePages ? { NUMACTLX_PAUSE_PAGES: pausePages } : {}),
      ...(capture ? { NUMACTLX_SNAPSHOT_CAPTURE: capture } : {}) };
    const seed = testSeed(`precopy ${mode} ${pausePages} ${capture}`);
    const { session, killer, region, committed, out } = await startOracle([`--remap=3,${backing},size=512m`, '--membind=3', '--', bin, String(PAGES), String(seed)], env, 150000);

    const ids = await takeSnapshots(session.pid!, env, 3);
    const s = await stats(session.pid!, env);
    expect(s.dirty_tracking).toBe(mode);
    // The capture asked for, or the one a session gets by default: 'auto' with async tracking
    // (the kernel has UFFD_FEATURE_EVENT_FORK here), 'precopy' with sync (it does not apply).
    expect(s.snapshot_capture).toBe(capture || (mode === 'async' ? 'auto' : 'precopy'));
    const program = s.processes.find((p) => p.command.includes(String(seed)))!;
    expect(program).toBeDefined();
    // The facts that say whether a write after a snapshot waited for numactlx.
    if (mode === 'async') expect(program.write_faults).toBe(0);
    else expect(program.write_faults).toBeGreaterThan(0);
    // Slices only end a pre-copy that leaves more than the pause may copy; with 0, every one.
    if (pausePages) expect(s.precopy_slices?.slices).toBeGreaterThanOrEqual(ids.length);
    if (mode === 'sync') expect(s.precopy_slices).toBeUndefined();
    // Held by forks: one per snapshot, none copied in the pause instead.
    expect({ forks: s.events.capture_forks ?? 0, fallbacks: s.events.capture_fallbacks ?? 0 })
      .toEqual({ forks: capture === 'fork' ? ids.length : 0, fallbacks: 0 });
    session.stdin!.end();
    const r = await session;
    clearTimeout(killer);
    expect(r.exitCode).toBe(0);
    const done = Number(/fast_oracle done (\d+)/.exec(out())?.[1]);
    expect((await numactlx(['verify', backing])).exitCode).toBe(0);

    const cuts: number[] = [];
    for (const id of ids) {
      const snap = await RawSnapshot.export(backing, id, dir);
      cuts.push(checkCut(snap, seed, Number(region), Number(committed)));
    }
    // The program kept writing: through every snapshot and after the last.
    expect(cuts[0]).toBeGreaterThan(0);
    for (let i = 1; i < cuts.length; i++) expect(cuts[i]).toBeGreaterThan(cuts[i - 1]);
    expect(done).toBeGreaterThan(cuts[cuts.length - 1]);
  }, 180000);
});

// A writer rewriting 256 MiB at full speed: no pass and no slice can bring what it leaves down
// to what the pause may copy (a slice copies ≈ 6 ms of it, the program rewrites all of it between
// two). A prepare whose last pass found nearly all it copied written again takes no slice
// (precopy.ts SATURATED: `skipped`); slices taken stop once they make no progress
// (precopy-slices.ts STALL_SLICES: `stalled`) instead of going on to MAX_SLICES (400: seconds of
// stops for nothing). By default (NUMACTLX_SNAPSHOT_CAPTURE=auto) what is left is then held by a
// fork made in the freeze, with 'precopy' copied in the pause. A prepare may still converge (the
// writer short of CPU: two vCPUs; or slowed by the copy-on-write faults a fork's hold costs it):
// snapshots are taken until two did not, eight at most, the last two kept (--keep 2: eight of
// 256 MiB fill the node).
describe.each(['auto', 'precopy'] as const)('a writer faster than slices copy (NUMACTLX_SNAPSHOT_CAPTURE=%s)', (capture) => {
  test('slices stop when they make no progress; every snapshot is still one cut of its writes', async () => {
    const BIG = 65536;
    const bin = await compileFixture('fast_oracle');
    const dir = tmpDir();
    const backing = path.join(dir, 'node3.img');
    const env = { NUMACTLX_RUNTIME_DIR: tmpDir(), NUMACTLX_DIRTY_TRACKING: 'async', ...(capture === 'auto' ? {} : { NUMACTLX_SNAPSHOT_CAPTURE: capture }) };
    const seed = testSeed(`precopy stall ${capture}`);
    const { session, killer, region, committed } = await startOracle([`--remap=3,${backing},size=2g`, '--membind=3', '--keep', '2', '--', bin, String(BIG), String(seed)], env, 170000);
    // Every page of the region written once: from then on each pass finds all of it again.
    await waitFor('the writer to touch its whole region', async () => (await stats(session.pid!, env)).nodes[0].pages_placed >= BIG, 30000, 50);
    const ids: number[] = [];
    const stalls: number[] = [];
    let s = await stats(session.pid!, env);
    const unconverged = (): number => (s.precopy_slices?.stalled ?? 0) + (s.precopy_slices?.skipped ?? 0);
    while (unconverged() < 2 && ids.length < 8) {
      const r = await numactlx(['snapshot', '--wait', '--json', String(session.pid)], { env });
      expect({ exit: r.exitCode, stderr: r.stderr, stalls }).toEqual({ exit: 0, stderr: '', stalls });
      ids.push(JSON.parse(String(r.stdout)).id);
      s = await stats(session.pid!, env);
      stalls.push(unconverged());
    }
    session.stdin!.end();
    const r = await session;
    clearTimeout(killer);
    expect(r.exitCode).toBe(0);
    process.stdout.write(`writer faster than slices (${capture}): ${ids.length} snapshots, unconverged after each ${stalls.join(' ')}, ${JSON.stringify(s.precopy_slices)}\n`);
    expect(s.snapshot_capture).toBe(capture);
    // Prepares did not converge (two, unless eight snapshots came first): none took a slice, or
    // its slices stopped after a few dozen at most (400 before).
    const { stalled, skipped, slices } = s.precopy_slices!;
    expect({ unconverged: stalled + skipped >= 1, skippedSome: skipped >= 1, stalls }).toEqual({ unconverged: true, skippedSome: true, stalls });
    expect(slices).toBeLessThan(100 * ids.length);
    // auto: a first pass the writer outruns stops early (precopy-probe.ts), at least the first
    // prepare's (later ones are held without passes, then measure again); precopy: never cut.
    if (capture === 'auto') expect(s.precopy_slices!.outrun).toBeGreaterThanOrEqual(1);
    else expect(s.precopy_slices!.outrun).toBe(0);
    // auto: the one process held by a fork in each freeze of a prepare that did not converge; precopy: none.
    expect({ forks: s.events.capture_forks ?? 0, fallbacks: s.events.capture_fallbacks ?? 0 })
      .toEqual({ forks: capture === 'auto' ? stalled + skipped : 0, fallbacks: 0 });
    expect((await numactlx(['verify', backing])).exitCode).toBe(0);
    const cuts: number[] = [];
    for (const id of ids.slice(-2)) cuts.push(checkCut(await RawSnapshot.export(backing, id, dir), seed, Number(region), Number(committed), BIG));
    for (let i = 1; i < cuts.length; i++) expect(cuts[i]).toBeGreaterThan(cuts[i - 1]);
  }, 180000);
});

/**
 * fast_oracle paced at 200 µs a write (a sweep of its 16,384 pages takes 3.3 s) under `capture`
 * ('' for the default), `count` snapshots back to back: the session's stats once they are
 * taken, and each snapshot's cut, checked (the program ended cleanly first).
 */
async function pacedSnapshots(capture: string, count: number, seedLabel: string): Promise<{ s: SessionStats; cuts: number[]; backing: string }> {
  const bin = await compileFixture('fast_oracle');
  const dir = tmpDir();
  const backing = path.join(dir, 'node3.img');
  const env = { NUMACTLX_RUNTIME_DIR: tmpDir(), NUMACTLX_DIRTY_TRACKING: 'async', ...(capture ? { NUMACTLX_SNAPSHOT_CAPTURE: capture } : {}) };
  const seed = testSeed(seedLabel);
  const { session, killer, region, committed } = await startOracle([`--remap=3,${backing},size=512m`, '--membind=3', '--', bin, String(PAGES), String(seed), '200000'], env, 110000);
  const ids = await takeSnapshots(session.pid!, env, count);
  const s = await stats(session.pid!, env);
  session.stdin!.end();
  const r = await session;
  clearTimeout(killer);
  expect(r.exitCode).toBe(0);
  const cuts: number[] = [];
  for (const id of ids) cuts.push(checkCut(await RawSnapshot.export(backing, id, dir), seed, Number(region), Number(committed)));
  return { s, cuts, backing };
}

// The other side of precopy-probe.ts: a writer that rewrites a small share of its region while a
// pass copies it (paced: one page every 200 µs, 16,384 pages) must not be taken for one that
// outruns the pass: passes converge, no pass is cut short and no fork holds a snapshot.
test('NUMACTLX_SNAPSHOT_CAPTURE=auto: a paced writer\'s first pass is not cut short, and no fork holds its snapshots', async () => {
  const { s } = await pacedSnapshots('', 3, 'paced under auto');
  expect(s.snapshot_capture).toBe('auto');
  expect({ outrun: s.precopy_slices?.outrun, forks: s.events.capture_forks ?? 0 }).toEqual({ outrun: 0, forks: 0 });
}, 120000);

// A snapshot held by a fork resets the program's written pages after its pause, and a page the
// program wrote between the freeze and that reset is found by the copy-on-write the fork gave it
// (src/engine-thread/held-staging.ts): the next snapshot must hold it. A paced writer (a sweep of
// its region takes 3.3 s) writes each page once in that window and not again before the next
// snapshots; snapshots back to back, each checked against its cut.
test('NUMACTLX_SNAPSHOT_CAPTURE=fork: what the program writes right after a freeze is in the next snapshot', async () => {
  const { s, cuts, backing } = await pacedSnapshots('fork', 5, 'held then carried');
  expect(s.events.capture_forks).toBe(cuts.length);
  expect((await numactlx(['verify', backing])).exitCode).toBe(0);
  process.stdout.write(`held snapshots of a paced writer: cuts ${cuts.join(' ')}\n`);
  for (let i = 1; i < cuts.length; i++) expect(cuts[i]).toBeGreaterThan(cuts[i - 1]);
}, 120000);

test('the program killed while its snapshot is pre-copied in slices: the requester is answered, numactlx ends as the program did', async () => {
  const bin = await compileFixture('fast_oracle');
  const seed = testSeed('precopy slices kill');
  const rng = prng(seed);
  const RUNS = 8;
  const failures: string[] = [];
  for (let run = 0; run < RUNS; run++) {
    const dir = tmpDir();
    const backing = path.join(dir, 'node3.img');
    const env = { NUMACTLX_RUNTIME_DIR: tmpDir(), NUMACTLX_DIRTY_TRACKING: 'async', NUMACTLX_PAUSE_PAGES: '0' };
    const session = execa(NUMACTLX, [`--remap=3,${backing},size=512m`, '--membind=3', '--', bin, String(PAGES), String(seed + run)],
      { env, reject: false, buffer: false, stdin: 'pipe' });
    const killer = setTimeout(() => session.kill('SIGKILL'), 60000);
    let out = '';
    session.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    await waitFor('the writer to start', () => out.includes('ready'), 20000);
    const program = Number((await stats(session.pid!, env)).processes[0].pid);
    const asked = numactlx(['snapshot', '--wait', '--json', String(session.pid)], { env });
    await waitFor('the snapshot to be taken', async () => (await stats(session.pid!, env)).snapshots?.running !== null, 20000, 20);
    // The kill lands at a random point after that (not a synchronisation): in the pre-copy,
    // its slices, the freeze or the commit (a first snapshot of 64 MiB takes ≈ 0.3–1 s here).
    await new Promise((resolve) => setTimeout(resolve, rng.below(300)));
    process.kill(program, 'SIGKILL');
    const answer = await asked;
    const r = await session;
    clearTimeout(killer);
    // Committed, or failed with the reason — never a closed connection.
    if (answer.exitCode !== 0) failures.push(String(answer.stderr));
    expect({ run, exit: answer.exitCode, stderr: answer.exitCode === 0 ? '' : String(answer.stderr).split('\n').length }).toEqual({ run, exit: answer.exitCode === 0 ? 0 : 1, stderr: answer.exitCode === 0 ? '' : 1 });
    expect(String(answer.stderr)).not.toMatch(/closed the connection/);
    // numactlx ends the way the program did (launcher/ending.ts): by SIGKILL.
    expect({ run, signal: r.signal }).toEqual({ run, signal: 'SIGKILL' });
    expect((await numactlx(['verify', backing])).exitCode).toBe(0);
  }
  process.stdout.write(`snapshot answers to a killed program: ${RUNS - failures.length} committed, failed: ${JSON.stringify(failures)}\n`);
}, 300000);

test.each(['lots', '-1', '1e3', '99999999999999999999'])('NUMACTLX_PAUSE_PAGES=%s: one line, exit 1, the program not started', async (value) => {
  const dir = tmpDir();
  const marker = path.join(dir, 'ran');
  const r = await numactlx([`--remap=3,${path.join(dir, 'node3.img')},size=16m`, '--membind=3', '--', 'touch', marker],
    { env: { NUMACTLX_PAUSE_PAGES: value } });
  expect({ exit: r.exitCode, stderr: String(r.stderr), ran: fs.existsSync(marker), backing: fs.existsSync(path.join(dir, 'node3.img')) }).toEqual({
    exit: 1, ran: false, backing: false,
    stderr: `numactlx: NUMACTLX_PAUSE_PAGES: '${value}' is not a number of pages (0 or more; default 1024)`,
  });
});
