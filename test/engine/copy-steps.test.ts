// How big a step of the pre-copy is (src/engine-thread/precopy-copy.ts CopyStepSizer), and
// what a step left undone when the copy is closed: pure logic. A step should last about 2 ms whatever a page costs, so that a fault waits
// at most that long for the copy.
import { CopyStepSizer, copyDirty } from '../../src/engine-thread/precopy-copy.js';
import { DIRTY, PAGE, PageTable } from '../../src/engine-thread/page-table.js';
import type { Mm } from '../../src/engine-thread/engine.js';
import type { CopyTarget, MmPart } from '../../src/engine-thread/snapshot.js';
import type { FrozenPageCopier } from '../../src/engine-thread/snapshot-copy.js';

test('the first step is small; then steps are sized to ≈ 2 ms from the pages\' measured cost, within 16…256', () => {
  const s = new CopyStepSizer();
  expect(s.pages).toBe(16); // nothing measured yet
  s.measured(16, 0.016); // 1 µs a page: mapped frames
  expect(s.pages).toBe(256); // 2000 pages would be 2 ms, capped
  s.measured(256, 256 * 0.04); // 40 µs a page: fresh frames on a file
  expect(s.pages).toBe(Math.floor(2 / (0.5 * 0.001 + 0.5 * 0.04))); // 97: weighted to the latest
  for (let i = 0; i < 20; i++) s.measured(100, 100 * 0.5); // 0.5 ms a page: a journal stall
  expect(s.pages).toBe(16); // never below the floor
  s.measured(0, 5); // nothing copied (every page was gone): no sample
  expect(s.pages).toBe(16);
});

// copyDirty with yields, against a real PageTable and a copier that only records (pure
// logic: no program). A pre-copy step may stop inside a chunk; closed there (the freeze
// ends the prepare, a slice's deadline ends its copy), the pages not copied must stay
// DIRTY and listed, or no later walk would find them — the snapshot would hold their
// stale pre-copy (consistency.test.ts found exactly that).
describe('copyDirty stopped inside a chunk', () => {
  const BASE = 0x7f0000000000;
  function setup(): { mm: Mm; copied: number[]; copier: FrozenPageCopier } {
    const table = new PageTable();
    for (let i = 0; i < 100; i++) table.set(BASE + i * PAGE, i + 1, 0, DIRTY);
    const copied: number[] = [];
    const copier = {
      copyPresent: (m: Mm, _t: CopyTarget, _p: MmPart, addrs: number[]) => {
        for (const a of addrs) {
          copied.push(a);
          m.table.setFlags(a, 0); // copied: clean
        }
      },
    } as unknown as FrozenPageCopier;
    return { mm: { table } as unknown as Mm, copied, copier };
  }
  const dirtyListed = (mm: Mm): number[] => {
    const out: number[] = [];
    for (const key of mm.table.dirtyChunks()) mm.table.dirtyPages(key, out);
    return out;
  };

  test('closed after one step: the rest of the chunk is listed again, and a later walk copies it all', () => {
    const { mm, copied, copier } = setup();
    const steps = copyDirty(copier, {} as CopyTarget, mm, {} as MmPart, true, () => true, new CopyStepSizer());
    expect(steps.next().done).toBe(false); // one step copied, then it yields
    const first = copied.length;
    expect(first).toBeGreaterThanOrEqual(16);
    expect(first).toBeLessThan(100);
    steps.return(0);
    const left = dirtyListed(mm);
    expect(left).toHaveLength(100 - first);
    expect(new Set([...copied, ...left]).size).toBe(100);
  });

  test('a page discarded during a yield is not copied after it', () => {
    const { mm, copied, copier } = setup();
    const steps = copyDirty(copier, {} as CopyTarget, mm, {} as MmPart, true, () => true, new CopyStepSizer());
    steps.next();
    const gone = BASE + 99 * PAGE;
    mm.table.takeRange(gone, gone + PAGE, () => undefined);
    while (!steps.next().done) { /* the rest */ }
    expect(copied).not.toContain(gone);
    expect(copied).toHaveLength(99);
  });
});
