// verify over a fake source: clean, a flipped byte, and each structural check.
import { formatVerify, verifySource } from '../../../launcher/verbs/verify.js';
import { createProgress } from '../../../src/snapshot/progress.js';
import { FakeSource } from '../../helpers/fake-source.js';

/** Two snapshots of pid 50; the second shares pages 0x1000 and 0x2000 with the first. */
function backing(): FakeSource {
  const s = new FakeSource('/var/lib/node3.img');
  const a = s.addSnapshot({ processes: [{ pid: 50, pages: [[0x1000, 1], [0x2000, 2], [0x3000, 3]] }] });
  const shared = (i: number): { frame: number } => ({ frame: a.processes[0].pages[i].frame });
  s.addSnapshot({ processes: [{ pid: 50, pages: [[0x1000, shared(0)], [0x2000, shared(1)], [0x3000, 33]] }] });
  return s;
}

test('clean: every frame read once, exit status clean', () => {
  const s = backing();
  const report = verifySource(s);
  expect(report).toEqual({ snapshots: 2, pages: 6, frames: 4, problems: [] });
  expect(s.reads).toBe(4);
  expect(formatVerify(s.path, report)).toBe('/var/lib/node3.img: 2 snapshots, 6 pages, 4 frames: clean\n');
});

test('a flipped byte: one line per page that references the frame, then the summary', () => {
  const s = backing();
  const frame = s.snapshots()[0].processes[0].pages[1].frame; // 0x2000, in both snapshots
  s.frames[frame][4095] ^= 0x01;
  const report = verifySource(s);
  expect(report.problems.map((p) => p.kind)).toEqual(['checksum', 'checksum']);
  expect(formatVerify(s.path, report)).toBe([
    `snapshot 1: page 0x2000 (pid 50): frame ${frame} checksum mismatch`,
    `snapshot 2: page 0x2000 (pid 50): frame ${frame} checksum mismatch`,
    '/var/lib/node3.img: 2 snapshots, 6 pages, 4 frames: 2 problems (2 checksum mismatches, 0 other) in 2 snapshots',
    '',
  ].join('\n'));
});

test('structure: order, alignment, VMAs, frames outside the backing, registers, ids', () => {
  const s = backing();
  const [a, b] = s.snapshots();
  const pages = a.processes[0].pages;
  [pages[1], pages[2]] = [pages[2], pages[1]]; // 0x3000 before 0x2000
  b.processes[0].pages[2] = { ...b.processes[0].pages[2], addr: 0x9000 }; // outside the VMA 0x1000-0x4000
  b.processes[0].pages.push({ addr: 0xa001, frame: 999, crc: 0 });
  b.processes[0].threads[0].regs = Buffer.alloc(100);
  s.records.push({ ...b });
  const report = verifySource(s);
  expect(report.problems.map((p) => p.message)).toEqual([
    'snapshot 1: page 0x2000 (pid 50): out of order (after 0x3000)',
    'snapshot 2: thread 50 (pid 50): registers are 100 bytes, not 216',
    'snapshot 2: page 0x9000 (pid 50): not inside any VMA',
    'snapshot 2: page 0xa001 (pid 50): not page aligned',
    'snapshot 2: page 0xa001 (pid 50): not inside any VMA',
    `snapshot 2: page 0xa001 (pid 50): frame 999 outside the backing (${s.frames.length} frames)`,
    'snapshot 2: id listed more than once',
    'snapshot 2: thread 50 (pid 50): registers are 100 bytes, not 216',
    'snapshot 2: page 0x9000 (pid 50): not inside any VMA',
    'snapshot 2: page 0xa001 (pid 50): not page aligned',
    'snapshot 2: page 0xa001 (pid 50): not inside any VMA',
    `snapshot 2: page 0xa001 (pid 50): frame 999 outside the backing (${s.frames.length} frames)`,
  ]);
  expect(formatVerify(s.path, report).split('\n').at(-2)).toBe(
    '/var/lib/node3.img: 3 snapshots, 11 pages, 4 frames: 12 problems (0 checksum mismatches, 12 other) in 2 snapshots');
});

test('without a frame count, a frame the source cannot read is reported as unreadable', () => {
  const s = backing();
  s.snapshots()[1].processes[0].pages[2].frame = 77;
  const report = verifySource(s, { frameCount: undefined });
  expect(report.problems.map((p) => p.message)).toEqual([`snapshot 2: page 0x3000 (pid 50): frame 77 outside the backing (${s.frames.length} frames)`]);
  const noCount = Object.assign(Object.create(s) as FakeSource, {});
  Object.defineProperty(noCount, 'frameCount', { value: undefined });
  expect(verifySource(noCount).problems.map((p) => p.message)).toEqual([
    `snapshot 2: page 0x3000 (pid 50): frame 77 unreadable: frame 77 is outside the backing (${s.frames.length} frames)`,
  ]);
});

test('progress: drawn on a TTY as pages are checked, erased at the end; nothing otherwise', () => {
  const written: string[] = [];
  const tty = { isTTY: true, columns: 80, write: (t: string) => written.push(t) };
  verifySource(backing(), { progress: createProgress('verify', 6, { stream: tty, intervalMs: 0 }) });
  expect(written.length).toBeGreaterThan(2);
  expect(written.at(-2)).toMatch(/^\rverify \[#+\] 100% 24\.0K\/24\.0K\x1b\[K$/);
  expect(written.at(-1)).toBe('\r\x1b[K');
  const quiet: string[] = [];
  verifySource(backing(), { progress: createProgress('verify', 6, { stream: { isTTY: false, write: (t: string) => quiet.push(t) } }) });
  expect(quiet).toEqual([]);
});
