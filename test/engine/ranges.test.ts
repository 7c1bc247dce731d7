// RangeSet (src/engine-thread/ranges.ts): a seeded random sequence of adds and removes
// checked page by page against a plain array model (find, and slice over a random window); ranges stay sorted and apart, and
// each add stays a range of its own (one mapping: fault-ahead must not cross into the next).
import { RangeSet } from '../../src/engine-thread/ranges.js';
import { MPOL_BIND } from '../../src/sys/mempolicy.js';
import { prng, testSeed } from '../helpers/random.js';

const PAGE = 4096;
const BIND3 = { mode: MPOL_BIND, nodes: [3] };
const BIND4 = { mode: MPOL_BIND, nodes: [4] };

test('adds and removes agree page by page with a model; ranges stay sorted and apart', () => {
  const rng = prng(testSeed('ranges'));
  const PAGES = 96;
  const model: Array<number | undefined> = new Array(PAGES).fill(undefined);
  const set = new RangeSet();
  for (let step = 0; step < 5000; step++) {
    const a = rng.below(PAGES - 8);
    const b = a + rng.between(1, 8);
    if (rng.float() < 0.6) {
      const policy = rng.float() < 0.5 ? BIND3 : { mode: MPOL_BIND, nodes: [4] }; // equal policies need not be one object
      set.add(a * PAGE, b * PAGE, policy);
      for (let p = a; p < b; p++) model[p] = policy.nodes[0];
    } else {
      set.remove(a * PAGE, b * PAGE);
      for (let p = a; p < b; p++) model[p] = undefined;
    }
    for (let p = 0; p < PAGES; p++) expect([step, p, set.find(p * PAGE + 17)?.policy.nodes[0]]).toEqual([step, p, model[p]]);
    const all = set.all();
    for (let i = 1; i < all.length; i++) expect(all[i].start).toBeGreaterThanOrEqual(all[i - 1].end);
    // slice: the ranges inside a random window, clipped to it — the same pages as the model's.
    const lo = rng.below(PAGES - 1);
    const hi = lo + rng.between(1, PAGES - lo);
    const pieces = set.slice(lo * PAGE, hi * PAGE);
    const covered: Array<number | undefined> = new Array(PAGES).fill(undefined);
    for (const r of pieces) {
      expect(r.start).toBeGreaterThanOrEqual(lo * PAGE);
      expect(r.end).toBeLessThanOrEqual(hi * PAGE);
      for (let a = r.start; a < r.end; a += PAGE) covered[a / PAGE] = r.policy.nodes[0];
    }
    expect([step, covered.slice(lo, hi)]).toEqual([step, model.slice(lo, hi)]);
  }
});

test('a break grown a page at a time: one range a page, found by binary search; splitAt splits', () => {
  const set = new RangeSet();
  for (let i = 0; i < 1000; i++) set.add(0x10000 + i * PAGE, 0x10000 + (i + 1) * PAGE, { ...BIND3 });
  expect(set.size).toBe(1000);
  expect(set.find(0x10000 + 500 * PAGE + 5)).toMatchObject({ start: 0x10000 + 500 * PAGE, end: 0x10000 + 501 * PAGE });
  set.add(0x10000, 0x10000 + 1000 * PAGE, BIND4); // one mapping over all of them (MAP_FIXED)
  expect(set.size).toBe(1);
  set.splitAt(0x10000 + 10 * PAGE);
  expect(set.all().map((r) => [r.start, r.end])).toEqual([[0x10000, 0x10000 + 10 * PAGE], [0x10000 + 10 * PAGE, 0x10000 + 1000 * PAGE]]);
  set.remove(0x10000 + 5 * PAGE, 0x10000 + 15 * PAGE);
  expect(set.all().map((r) => [r.start, r.end])).toEqual([[0x10000, 0x10000 + 5 * PAGE], [0x10000 + 15 * PAGE, 0x10000 + 1000 * PAGE]]);
});
