// The CLOCK hand of --max-resident (pure logic over page tables): second chance for a
// referenced page, never a page that is frozen, being copied, evicted, chosen or pinned,
// victims of one mm per sweep in address order, the hand resuming where it stopped.
import { COPYING, DIRTY, EVICTED, PAGE, PAGES_PER_CHUNK, PENDING, REF, VICTIM } from '../../src/engine-thread/page-table.js';
import { Mm } from '../../src/engine-thread/mm.js';
import { ResidentSet } from '../../src/engine-thread/resident-set.js';

const BASE = 0x7f0000000000;
const at = (i: number): number => BASE + i * PAGE;

/** An mm with pages 0 … n-1 placed on slot 0 (frame i), flags as given. */
function mmWith(n: number, flags: (i: number) => number = () => 0, uffd = 100): Mm {
  const mm = new Mm(uffd, '/bin/x');
  mm.pids.add(uffd);
  for (let i = 0; i < n; i++) mm.table.set(at(i), i + 1, 0, flags(i));
  return mm;
}

const sweep = (set: ResidentSet, mms: Mm[], max: number, budget = 100): { mm: Mm | undefined; out: number[] } => {
  const out: number[] = [];
  const mm = set.sweep(mms, max, budget, out);
  return { mm, out: out.map((a) => (a - BASE) / PAGE) };
};

test('unreferenced pages are taken in address order; a referenced one loses REF and is passed over once', () => {
  const mm = mmWith(8, (i) => (i % 2 === 0 ? REF : DIRTY));
  const set = new ResidentSet(0, 4);
  const first = sweep(set, [mm], 8);
  expect(first.mm).toBe(mm);
  expect(first.out).toEqual([1, 3, 5, 7]);
  for (let i = 0; i < 8; i += 2) expect(mm.table.flagsOf(at(i)) & REF).toBe(0);
  for (const i of first.out) mm.table.setFlags(at(i), VICTIM); // as a round marks them
  const second = sweep(set, [mm], 8);
  expect(second.out).toEqual([0, 2, 4, 6]);
});

test('frozen, copying, evicted, already chosen and pinned pages, and other nodes\' pages, are never taken', () => {
  const skip = [PENDING, PENDING | DIRTY, COPYING | PENDING, EVICTED, VICTIM];
  const mm = mmWith(8, (i) => skip[i] ?? 0);
  mm.table.set(at(8), 9, 1, 0); // slot 1
  mm.pins.set(at(6), 1); // page → the exiting thread's tid
  const { out } = sweep(new ResidentSet(0, 4), [mm], 16);
  expect(out).toEqual([5, 7]);
});

test('victims come from one mm per sweep; the hand goes on to the next mm after', () => {
  const a = mmWith(3, () => 0, 100);
  const b = mmWith(3, () => 0, 101);
  const set = new ResidentSet(0, 4);
  const first = sweep(set, [a, b], 10);
  const second = sweep(set, [a, b], 10);
  expect(first.out).toEqual([0, 1, 2]);
  expect(second.out).toEqual([0, 1, 2]);
  expect(new Set([first.mm, second.mm])).toEqual(new Set([a, b]));
});

test('a sweep stopped at `max` resumes where it stopped, within the chunk', () => {
  const mm = mmWith(PAGES_PER_CHUNK + 4);
  const set = new ResidentSet(0, 4);
  expect(sweep(set, [mm], 3).out).toEqual([0, 1, 2]);
  expect(sweep(set, [mm], 3).out).toEqual([3, 4, 5]);
});

test('nothing to take: undefined within the budget (in chunks), and an empty engine is no hang', () => {
  const mm = mmWith(4, () => EVICTED);
  expect(sweep(new ResidentSet(0, 4), [mm], 4).mm).toBeUndefined();
  expect(sweep(new ResidentSet(0, 4), [], 4).mm).toBeUndefined();
});
