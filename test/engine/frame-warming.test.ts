// Frame warming (backing/frame-warmer.ts, src/engine-thread/frame-warming.ts,
// src/checksum-thread/idle-warming.ts): in idle time the checksum worker reads a file
// backing's frames into the page cache before a snapshot's copy writes them — the
// program's pages' own frames, and after a snapshot as many more as it took. Seen from
// outside: `numactlx status`'s frames_warmed and the backing's pages in the page cache
// (fincore, util-linux); the priority on the test's own thread.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { numactlx } from '../helpers/numactlx.js';
import { killSessions, startSession, type LiveSession } from '../helpers/live-session.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';
import { FrameWarming, type WarmableStore } from '../../src/engine-thread/frame-warming.js';
import { WarmGoals, WarmWork, warmGoalsBuffer } from '../../src/channels/warm-goals.js';
import { IdleWarming } from '../../src/checksum-thread/idle-warming.js';
import { warmFrames } from '../../src/snapshot/warm-frames.js';
import { checksumShared } from '../../src/channels/checksum-ring.js';
import { threadNice } from '../../src/sys/sched.js';
import type { NodeStats } from '../../src/channels/session-stats.js';

afterEach(killSessions);
afterAll(removeTmpDirs);

const PAGES = 8192; // the program's 32 MiB

/** python3 holding 32 MiB of private memory; each stdin line `rewrite` writes every page again. */
const HOLDER = [
  'python3', '-c',
  `import sys
buf = bytearray(${PAGES} * 4096)
def touch(v):
    for i in range(0, len(buf), 4096): buf[i] = v
touch(1)
print('ready', flush=True)
for n, line in enumerate(sys.stdin):
    touch(2 + n % 200)
    print('rewritten', flush=True)
`,
];

/** Pages of `file` in the page cache (fincore). */
async function cachedPages(file: string): Promise<number> {
  const r = await execa('fincore', ['--noheadings', '--raw', '--output', 'PAGES', file]);
  return Number(String(r.stdout).trim());
}

/** The VmFlags of `pid`'s mapping of `file` (/proc/PID/smaps). */
function vmFlags(pid: number, file: string): string[] {
  const lines = fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n');
  const at = lines.findIndex((l) => /^[0-9a-f]+-[0-9a-f]+ /.test(l) && l.endsWith(` ${file}`));
  if (at < 0) throw new Error(`numactlx ${pid} has no mapping of ${file}`);
  const flags = lines.slice(at + 1).find((l) => l.startsWith('VmFlags:'));
  return flags ? flags.slice('VmFlags:'.length).trim().split(/\s+/) : [];
}

function node3(s: LiveSession): Promise<NodeStats> {
  return s.status().then((r) => r.stats.nodes[0]);
}

async function snapshot(s: LiveSession): Promise<void> {
  const r = await numactlx(['snapshot', '--wait', String(s.pid)], { env: s.env });
  expect({ exit: r.exitCode, err: r.stderr }).toEqual({ exit: 0, err: '' });
}

test('the program\'s frames are read into the page cache in idle time, then as many more as the last snapshot took', async () => {
  const s = startSession(HOLDER, { size: '256m' });
  await s.waitLine('ready');
  // Every frame handed out (the program's pages' own) is read once; the count is frames from frame 0.
  const first = await s.waitStatus('the program\'s frames warmed', (r) => {
    const n = r.stats.nodes[0];
    return n.frames_in_use >= PAGES && (n.frames_warmed ?? -1) >= n.frames_in_use ? n : undefined;
  });
  expect(first.frames_warmed).toBeLessThan(first.frames_in_use + 1024);
  expect(await cachedPages(s.backing)).toBeGreaterThanOrEqual(first.frames_warmed!);
  // The engine's mapping of the frames faults one page at a time (MADV_RANDOM: smaps' `rr`).
  expect(vmFlags(s.pid, s.backing)).toContain('rr');
  const human = await numactlx(['status', String(s.pid)], { env: s.env });
  expect(human.stdout).toMatch(/^node 3: [\d.]+M of frames read ahead of snapshots \([\d.]+M in use\)$/m);

  // Snapshot 1 copies into those frames; the rewrite then makes snapshot 2 take a new frame
  // for each page. Afterwards as many frames as that, past the ones handed out, are warmed.
  await snapshot(s);
  s.send('rewrite');
  await s.waitLine('rewritten');
  await snapshot(s);
  const after = await node3(s);
  expect(after.frames_in_use).toBeGreaterThanOrEqual(2 * PAGES);
  const ahead = await s.waitStatus('frames warmed ahead of those in use', (r) => {
    const n = r.stats.nodes[0];
    return (n.frames_warmed ?? 0) >= n.frames_in_use + 0.9 * PAGES ? n : undefined;
  });
  expect(await cachedPages(s.backing)).toBeGreaterThanOrEqual(ahead.frames_warmed!);
  s.closeInput();
  const end = await s.done;
  expect({ exit: end.exitCode, err: s.err() }).toEqual({ exit: 0, err: '' });
}, 120_000);

// One page per fault (MADV_RANDOM, smaps' `rr`) goes with a file backing, warmed or not, but
// not with a resident limit: eviction's refaults read frames back and keep readahead.
test.each([
  ['NUMACTLX_WARM_FRAMES=0', { env: { NUMACTLX_WARM_FRAMES: '0' }, rr: true }],
  ['a tmpfs backing', { backing: 'shm', rr: false }],
  ['--max-resident', { extra: ['--max-resident=64m'], rr: false }],
] as const)('no warming with %s: status has no frames_warmed', async (_what, opts) => {
  const backing = 'backing' in opts ? path.join(fs.mkdtempSync('/dev/shm/numactlx-test-'), 'n3.img') : undefined;
  try {
    const s = startSession(HOLDER, { size: '256m', backing, env: 'env' in opts ? opts.env : undefined, extra: 'extra' in opts ? [...opts.extra] : undefined });
    await s.waitLine('ready');
    const n = await s.waitStatus('the program\'s pages on the node', (r) => r.stats.nodes[0].pages_resident >= PAGES / 2 && r.stats.nodes[0]);
    expect(n).not.toHaveProperty('frames_warmed');
    expect(vmFlags(s.pid, s.backing).includes('rr')).toBe(opts.rr);
    s.closeInput();
    expect((await s.done).exitCode).toBe(0);
  } finally {
    if (backing) fs.rmSync(path.dirname(backing), { recursive: true, force: true });
  }
}, 60_000);

test('NUMACTLX_WARM_FRAMES: unset, empty and 1 are on, 0 is off, anything else is one line before the program starts', async () => {
  expect([undefined, '', '1', '0'].map(warmFrames)).toEqual([true, true, true, false]);
  for (const bad of ['yes', '2', ' 1']) expect(() => warmFrames(bad)).toThrow(`NUMACTLX_WARM_FRAMES: '${bad}' is neither 0 (off) nor 1 (on, the default)`);
  const dir = tmpDir();
  const marker = path.join(dir, 'ran');
  const backing = path.join(dir, 'n3.img');
  const r = await numactlx([`--remap=3,${backing},size=16m`, '--membind=3', '--', 'touch', marker], { env: { NUMACTLX_WARM_FRAMES: 'on' } });
  expect({ exit: r.exitCode, err: r.stderr }).toEqual({ exit: 1, err: "numactlx: NUMACTLX_WARM_FRAMES: 'on' is neither 0 (off) nor 1 (on, the default)" });
  expect(fs.existsSync(marker)).toBe(false);
  expect(fs.existsSync(backing)).toBe(false);
});

/** A store for the engine's part: frames handed out as the test says, space reserved up to `room`. */
function fakeStore(kind: string, room = Infinity): WarmableStore & { handed: number; asked: number[] } {
  return {
    kind, handed: 0, asked: [],
    get framesHandedOut() { return this.handed; },
    reserveFramesAhead(count: number) { this.asked.push(count); return Math.min(count + 100, room); },
  };
}

test('the engine\'s goals: the frames handed out, the last snapshot\'s copy or growth ahead, held during a snapshot, regular files only', () => {
  const buffer = warmGoalsBuffer(3);
  const file = fakeStore('file');
  const full = fakeStore('file', 700);
  const dax = fakeStore('dax');
  const warming = new FrameWarming([file, full, dax], buffer, true);
  const work = new WarmWork(buffer);
  const all = [true, true, true];

  file.handed = 1000;
  full.handed = 600;
  dax.handed = 5000;
  warming.turn(false);
  expect(work.next(all)).toEqual([0, 0, 1000]);
  expect(work.next([false, true, true])).toEqual([1, 0, 600]);
  expect(work.next([false, false, true])).toBeUndefined(); // a device is never warmed

  // A snapshot: held while it runs; the frames it took (1000 → 3000) are then asked for ahead.
  warming.turn(true);
  expect(work.next(all)).toBeUndefined();
  file.handed = 3000;
  full.handed = 650;
  warming.turn(true);
  expect(work.next(all)).toBeUndefined();
  warming.turn(false);
  expect(work.next(all)).toEqual([0, 0, 5000]);
  expect(file.asked.at(-1)).toBe(5000);
  expect(work.next([false, true, true])).toEqual([1, 0, 700]); // what the medium had room for
  work.advance(0, 32);
  expect(work.next(all)).toEqual([0, 32, 4968]);
  expect(warming.report([{ frames_in_use: 1 }, { frames_in_use: 2 }, { frames_in_use: 3 }] as NodeStats[]).map((n) => n.frames_warmed))
    .toEqual([32, 0, undefined]);

  // A snapshot that copied more pages than it took frames (in place): those are asked for ahead.
  warming.turn(true);
  warming.took([9000, 0, 0]);
  warming.turn(false);
  expect(file.asked.at(-1)).toBe(3000 + 9000);
  expect(work.next(all)).toEqual([0, 32, 12000 - 32]);

  // Nothing new: no new reservation asked; off: no goal and no field.
  const before = file.asked.length;
  warming.turn(false);
  expect(file.asked.length).toBe(before);
  const off = new FrameWarming([fakeStore('file')], warmGoalsBuffer(1), false);
  off.turn(false);
  expect(off.report([{ frames_in_use: 1 } as NodeStats])[0]).not.toHaveProperty('frames_warmed');
});

test('the worker reads the frames asked for at nice 19 and is back at its own priority after; a file that ends stops it', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'frames');
  fs.writeFileSync(file, Buffer.alloc(100 * 4096, 7));
  const fd = fs.openSync(file, 'r');
  try {
    const shared = checksumShared([{ frameBase: 0, frameCount: 200, sync: { path: file, kind: 'file', frameBase: 0, mapLength: 0, fd }, warm: { dataOffset: 4096 } }]);
    const goals = new WarmGoals(shared.warm);
    const own = threadNice();
    const idle = new IdleWarming(shared);
    expect(idle.step()).toBe(false); // no goal yet
    goals.setGoal(0, 150);
    expect(idle.step()).toBe(true);
    expect(threadNice()).toBe(19);
    expect(goals.warmed(0)).toBe(32);
    while (idle.step());
    idle.rest();
    expect(threadNice()).toBe(own);
    // Frames 0–98 exist (the file's 100 pages from byte 4096); frame 99 on is past its end.
    expect(goals.warmed(0)).toBe(99);
    goals.setGoal(0, 199);
    expect(idle.step()).toBe(false);
    goals.hold(true);
    expect(idle.step()).toBe(false);
  } finally {
    fs.closeSync(fd);
  }
});
