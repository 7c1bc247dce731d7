// diff over a fake source: shared frames are unchanged without a read, different frames
// are compared byte for byte, ranges merge, pages and processes only in one snapshot.
import { diffSnapshots, pagesToCompare } from '../../../src/snapshot/diff.js';
import { diffJson, diffVerb, formatDiff } from '../../../launcher/verbs/diff.js';
import { FakeSource } from '../../helpers/fake-source.js';
import { patternPage } from '../../helpers/pattern.js';

const P = 0x7f0000000000;
const at = (i: number): number => P + i * 4096;

/**
 * Snapshot 1: pages 0–5 of pid 10, pages 0–1 of pid 20. Snapshot 2: pages 0, 1 share
 * snapshot 1's frames; 2 and 3 are rewritten (3 with the same bytes: a new frame, not a
 * change); 4 is gone; 5 changed; 6, 7 are new; pid 20 is gone, pid 30 is new.
 */
function twoSnapshots(): FakeSource {
  const s = new FakeSource();
  const a = s.addSnapshot({
    label: 'before',
    processes: [
      { pid: 10, pages: [0, 1, 2, 3, 4, 5].map((i) => [at(i), i]) },
      { pid: 20, pages: [[0x1000, 20], [0x2000, 21]] },
    ],
  });
  const frame = (i: number): { frame: number } => ({ frame: a.processes[0].pages[i].frame });
  s.addSnapshot({
    label: 'after',
    processes: [
      { pid: 10, pages: [[at(0), frame(0)], [at(1), frame(1)], [at(2), 102], [at(3), patternPage(3)], [at(5), 105], [at(6), 6], [at(7), 7]] },
      { pid: 30, pages: [[0x1000, 30]] },
    ],
  });
  return s;
}

test('counts, ranges, and reads only the frames that differ', () => {
  const s = twoSnapshots();
  const [a, b] = s.snapshots();
  expect(pagesToCompare(a, b)).toBe(3);
  s.reads = 0;
  const d = diffSnapshots(s, a, b);
  expect(s.reads).toBe(6); // pages 2, 3, 5: two frames each; pages 0 and 1 share theirs
  expect(d).toMatchObject({ a: 1, b: 2, changed: 2, onlyInA: 3, onlyInB: 3, unchanged: 3, compared: 3 });
  expect(d.ranges).toEqual([
    { pid: 10, start: at(2), end: at(3), pages: 1, kind: 'changed' },
    { pid: 10, start: at(4), end: at(5), pages: 1, kind: 'only_in_a' },
    { pid: 10, start: at(5), end: at(6), pages: 1, kind: 'changed' },
    { pid: 10, start: at(6), end: at(8), pages: 2, kind: 'only_in_b' },
    { pid: 20, start: 0x1000, end: 0x3000, pages: 2, kind: 'only_in_a' },
    { pid: 30, start: 0x1000, end: 0x2000, pages: 1, kind: 'only_in_b' },
  ]);
});

test('the report: ranges (with pids when there are several), then the summary', () => {
  const s = twoSnapshots();
  expect(diffVerb(s, 'before', '2')).toBe([
    'pid 10: 0x7f0000002000-0x7f0000003000 changed (1 page)',
    'pid 10: 0x7f0000004000-0x7f0000005000 only in 1 (1 page)',
    'pid 10: 0x7f0000005000-0x7f0000006000 changed (1 page)',
    'pid 10: 0x7f0000006000-0x7f0000008000 only in 2 (2 pages)',
    'pid 20: 0x1000-0x3000 only in 1 (2 pages)',
    'pid 30: 0x1000-0x2000 only in 2 (1 page)',
    'snapshot 1 → 2: 2 pages changed, 3 only in 1, 3 only in 2, 3 unchanged (3 compared)',
    '',
  ].join('\n'));
});

test('one process: no pid prefix; the same snapshot twice: no difference, nothing read', () => {
  const s = new FakeSource();
  const a = s.addSnapshot({ processes: [{ pid: 1, pages: [[0x1000, 1], [0x2000, 2], [0x3000, 3]] }] });
  const b = s.addSnapshot({ processes: [{ pid: 1, pages: [[0x1000, { frame: a.processes[0].pages[0].frame }], [0x2000, 9], [0x3000, 8]] }] });
  expect(formatDiff(diffSnapshots(s, a, b))).toBe('0x2000-0x4000 changed (2 pages)\n'
    + 'snapshot 1 → 2: 2 pages changed, 0 only in 1, 0 only in 2, 1 unchanged (2 compared)\n');
  s.reads = 0;
  expect(diffSnapshots(s, b, b)).toMatchObject({ changed: 0, onlyInA: 0, onlyInB: 0, unchanged: 3, compared: 0, ranges: [] });
  expect(s.reads).toBe(0);
});

test('--json: addresses as hex strings, kinds, and the summary', () => {
  const s = twoSnapshots();
  const json = JSON.parse(diffVerb(s, '1', '2', { json: true }));
  expect(json.a).toBe(1);
  expect(json.ranges[0]).toEqual({ pid: 10, start: '0x7f0000002000', end: '0x7f0000003000', pages: 1, kind: 'changed' });
  expect(json.summary).toEqual({ changed_pages: 2, only_in_a_pages: 3, only_in_b_pages: 3, unchanged_pages: 3, compared_pages: 3 });
  const [a, b] = s.snapshots();
  expect(json).toEqual(diffJson(diffSnapshots(s, a, b)));
});

test('an unknown snapshot is the verb\'s error, listing the ones there are', () => {
  expect(() => diffVerb(twoSnapshots(), '1', '9')).toThrow('diff: no snapshot 9 in /fake/node3.img (its snapshots: 1-2)');
});
