// The write-fault run sizer (pure logic): runs double while faults come in order and
// halve at a fault elsewhere, aligned to their size, inside the trapped range.
import { MAX_RUN_PAGES, WriteRunSizer } from '../../src/engine-thread/write-runs.js';
import { PAGE } from '../../src/engine-thread/page-table.js';
import { prng, testSeed } from '../helpers/random.js';

const LO = 0x7f0000000000;
const HI = LO + 64 * 1024 * PAGE;
const pages = ([s, e]: [number, number]): [number, number] => [(s - LO) / PAGE, (e - LO) / PAGE];

test('ascending faults at each run\'s end double the run up to 2 MiB, aligned to its size', () => {
  const w = new WriteRunSizer();
  const seen: Array<[number, number]> = [];
  let addr = LO;
  for (let i = 0; i < 12; i++) {
    const run = w.runAt(addr, LO, HI);
    seen.push(pages(run));
    addr = run[1];
  }
  expect(seen.slice(0, 5)).toEqual([[0, 1], [0, 2], [0, 4], [0, 8], [0, 16]]);
  const last = seen[seen.length - 1];
  expect(last[1] - last[0]).toBe(MAX_RUN_PAGES);
  expect(last[0] % MAX_RUN_PAGES).toBe(0);
});

test('descending faults grow the run too', () => {
  const w = new WriteRunSizer();
  let addr = LO + 4096 * PAGE;
  const sizes: number[] = [];
  for (let i = 0; i < 6; i++) {
    const [s, e] = w.runAt(addr, LO, HI);
    sizes.push((e - s) / PAGE);
    addr = s - PAGE;
  }
  expect(sizes).toEqual([1, 2, 4, 8, 16, 32]);
});

test('random faults keep the run at one page; the run never leaves the range', () => {
  const rng = prng(testSeed('write-runs random faults'));
  const w = new WriteRunSizer();
  // Grow it first, then scatter: it falls back to single pages.
  let addr = LO;
  for (let i = 0; i < 10; i++) addr = w.runAt(addr, LO, HI)[1];
  let big = 0;
  for (let i = 0; i < 1000; i++) {
    const at = LO + rng.below(64 * 1024) * PAGE;
    const [s, e] = w.runAt(at, LO, HI);
    expect(s).toBeLessThanOrEqual(at);
    expect(e).toBeGreaterThan(at);
    expect(s).toBeGreaterThanOrEqual(LO);
    expect(e).toBeLessThanOrEqual(HI);
    if (i >= 10 && e - s > PAGE) big++;
  }
  expect(big).toBeLessThan(20); // an in-order neighbour by chance doubles it once
});

test('a range smaller than the run clips it', () => {
  const w = new WriteRunSizer();
  let addr = LO;
  const hi = LO + 5 * PAGE;
  for (let i = 0; i < 4; i++) addr = Math.min(w.runAt(addr, LO, hi)[1], hi - PAGE);
  const [s, e] = w.runAt(LO + 4 * PAGE, LO + 2 * PAGE, hi);
  expect(s).toBeGreaterThanOrEqual(LO + 2 * PAGE);
  expect(e).toBeLessThanOrEqual(hi);
});
