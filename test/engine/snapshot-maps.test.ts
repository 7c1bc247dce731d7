// The snapshot engine's pure bookkeeping: which pages the prepare and the freeze find
// dirty (page-table.ts), the run lists the copier walks (snapshot.ts), and how each
// snapshot's page map is derived from the previous one (page-map.ts).
import { DIRTY, PAGE, PAGES_PER_CHUNK, PageTable, PENDING } from '../../src/engine-thread/page-table.js';
import { PageMap } from '../../src/engine-thread/page-map.js';
import { pagesInRuns, takePending, type MmPart } from '../../src/engine-thread/snapshot.js';

const CHUNK = PAGE * PAGES_PER_CHUNK;
const BASE = 0x7f00_0000_0000;

function stageAll(t: PageTable): { runs: number[]; count: number } {
  const runs: number[] = [];
  let count = 0;
  for (const key of t.takeDirtyChunks()) count += t.stageChunk(key, runs);
  return { runs, count };
}

describe('dirty chunks', () => {
  test('only pages written since the last take are staged, as ascending runs merged across chunks', () => {
    const t = new PageTable();
    for (let i = 0; i < 2 * PAGES_PER_CHUNK; i++) t.set(BASE + i * PAGE, i + 1, 0, DIRTY);
    const first = stageAll(t);
    expect(first.count).toBe(2 * PAGES_PER_CHUNK);
    expect(first.runs).toEqual([BASE, BASE + 2 * CHUNK]); // one run across the chunk boundary
    expect(t.flagsOf(BASE)).toBe(PENDING);
    // Nothing new: nothing staged.
    expect(stageAll(t)).toEqual({ runs: [], count: 0 });
    // A write to a staged page (before the freeze): DIRTY|PENDING, found again.
    t.setFlags(BASE + 5 * PAGE, DIRTY | PENDING);
    t.setFlags(BASE + CHUNK + 7 * PAGE, DIRTY);
    const second = stageAll(t);
    expect(second.count).toBe(2);
    expect(second.runs).toEqual([BASE + 5 * PAGE, BASE + 6 * PAGE, BASE + CHUNK + 7 * PAGE, BASE + CHUNK + 8 * PAGE]);
    expect(t.flagsOf(BASE + 5 * PAGE)).toBe(PENDING);
  });

  test('a chunk dropped and made again is listed once; an absent page is never staged', () => {
    const t = new PageTable();
    t.set(BASE, 1, 0, DIRTY);
    t.takeRange(BASE, BASE + CHUNK, () => undefined); // the chunk goes away (munmap)
    t.set(BASE + PAGE, 2, 0, DIRTY); // and comes back
    const { runs, count } = stageAll(t);
    expect(count).toBe(1);
    expect(runs).toEqual([BASE + PAGE, BASE + 2 * PAGE]);
  });

  test('pages placed in ordinary memory are not the snapshot\'s', () => {
    const t = new PageTable();
    t.set(BASE, -1, 0, DIRTY); // PLACED_REAL
    expect(stageAll(t).count).toBe(0);
  });
});

describe('the copier\'s runs', () => {
  test('staged runs then frozen ones, not globally ascending: every page taken once per entry', () => {
    const runs = [BASE + 10 * PAGE, BASE + 12 * PAGE, BASE, BASE + 2 * PAGE];
    const part = { runs, run: 0, next: runs[0], left: pagesInRuns(runs) } as MmPart;
    expect(part.left).toBe(4);
    const out: number[] = [];
    const got: number[] = [];
    while (takePending(part, 3, out) > 0) got.push(...out);
    expect(got).toEqual([BASE + 10 * PAGE, BASE + 11 * PAGE, BASE, BASE + PAGE]);
    expect(part.left).toBe(0);
  });
});

describe('page maps', () => {
  test('derive: previous pages less drops and lost pages, plus copies (which win); the previous map is unchanged', () => {
    const prev = new PageMap();
    for (let i = 0; i < 8; i++) prev.set(BASE + i * PAGE, 100 + i, 1000 + i, 0);
    const copied = new PageMap();
    copied.set(BASE + 2 * PAGE, 200, 2000, 0); // rewritten page: new frame
    copied.set(BASE + CHUNK, 201, 2001, 0); // a new page in another chunk
    copied.set(BASE + 6 * PAGE, 202, 2002, 0); // dropped before the freeze, then placed and copied again
    const next = prev.derive([[BASE + 5 * PAGE, BASE + 7 * PAGE]], [BASE + 3 * PAGE], copied);
    const pages: Array<[number, number, number]> = [];
    for (const key of next.keys()) next.pagesIn(key, 0, (a, f, c) => pages.push([(a - BASE) / PAGE, f, c]));
    expect(pages).toEqual([
      [0, 100, 1000], [1, 101, 1001], [2, 200, 2000], [4, 104, 1004], [6, 202, 2002], [7, 107, 1007],
      [PAGES_PER_CHUNK, 201, 2001],
    ]);
    expect(prev.size).toBe(8);
    expect(prev.frameOf(BASE + 2 * PAGE)).toBe(102);
    expect(prev.frameOf(BASE + 5 * PAGE)).toBe(105);
  });

  test('a map derived from a derived map never changes the first (shared chunks are cloned before a change)', () => {
    const a = new PageMap();
    a.set(BASE, 1, 11, 0);
    const b = a.derive([], [], new PageMap());
    const c = b.derive([[BASE, BASE + PAGE]], [], new PageMap());
    expect(a.frameOf(BASE)).toBe(1);
    expect(b.frameOf(BASE)).toBe(1);
    expect(c.frameOf(BASE)).toBe(-1);
  });

  test('pagesIn keeps to one node; fillCrcs sets every CRC', () => {
    const m = new PageMap();
    m.set(BASE, 1, 0, 0);
    m.set(BASE + PAGE, 2, 0, 1);
    m.fillCrcs((frame, slot) => frame * 10 + slot);
    const seen: number[][] = [];
    for (const key of m.keys()) m.pagesIn(key, 1, (a, f, c) => seen.push([a, f, c]));
    expect(seen).toEqual([[BASE + PAGE, 2, 21]]);
    expect(m.countBySlot(2)).toEqual([1, 1]);
  });

  test('clearRange over a huge reservation (a munmap of ~127 TiB) clears what it covers and nothing else', () => {
    const m = new PageMap();
    m.set(BASE + 3 * CHUNK, 9, 0, 0);
    m.set(0x10_0000, 10, 0, 0);
    m.clearRange(2 ** 40, 2 ** 47);
    expect(m.size).toBe(1);
    expect(m.frameOf(BASE + 3 * CHUNK)).toBe(-1);
    expect(m.frameOf(0x10_0000)).toBe(10);
  });
});
