// The adoption of pages present before their range was registered (present-pages.ts),
// closed early by a freeze: the ranges it did not reach go back to Mm.untracked within
// the same bound a registration keeps (past it, the next prepare looks at everything),
// so a program that maps thousands of ranges between two snapshots cannot grow the list
// without end. Runs over this test process's own memory (/proc/self): no engine.
import { adoptPresentSteps } from '../../src/engine-thread/present-pages.js';
import { Mm } from '../../src/engine-thread/mm.js';
import { PAGE } from '../../src/engine-thread/page-table.js';
import { copyToAddress, mmap, munmap, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/sys/mman.js';
import type { EngineCore } from '../../src/engine-thread/engine-core.js';

const PAGES = 4096; // 16 MiB, every page resident: one VMA holding memory
const BOUND = 1024; // mm.ts UNTRACKED_MAX

let base = 0;
beforeAll(() => {
  base = Number(mmap(0n, BigInt(PAGES * PAGE), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0n));
  const one = Buffer.alloc(1, 1);
  for (let i = 0; i < PAGES; i++) copyToAddress(BigInt(base + i * PAGE), one);
});
afterAll(() => munmap(BigInt(base), BigInt(PAGES * PAGE)));

/** An mm of this process whose untracked list names `pieces` separate pages of the mapping. */
function mmWithPieces(pieces: number): { mm: Mm; core: EngineCore } {
  const mm = new Mm(-7, '/proc/self/exe');
  mm.pids.add(process.pid);
  for (let i = 0; i < pieces; i++) mm.untracked.push([base + 2 * i * PAGE, base + (2 * i + 1) * PAGE]);
  // No registered range: the adoption reads the pagemap and places nothing.
  const core = { mms: new Map([[mm.uffd, mm]]) } as unknown as EngineCore;
  return { mm, core };
}

test('an adoption closed after its first step gives back what it did not reach, at most the bound', () => {
  const { mm, core } = mmWithPieces(PAGES / 2); // 2,048 pieces: more than the bound
  const steps = adoptPresentSteps(core, mm);
  expect(steps.next().done).toBe(false); // smaps read, first run looked at, then it yields
  steps.return(0); // the freeze closes the prepare
  expect(mm.untracked.length).toBeLessThanOrEqual(BOUND);
  // Nothing is forgotten: past the bound the list says "everything".
  expect(mm.untracked).toContainEqual([0, Number.MAX_SAFE_INTEGER]);
});

test('under the bound, the pieces not reached come back as they were', () => {
  const { mm, core } = mmWithPieces(100);
  const steps = adoptPresentSteps(core, mm);
  expect(steps.next().done).toBe(false);
  steps.return(0);
  // The first step took the first piece (one page, under a pagemap run); the other 99 are back.
  expect(mm.untracked).toHaveLength(99);
  expect(mm.untracked[0]).toEqual([base + 2 * PAGE, base + 3 * PAGE]);
  expect(mm.untracked.at(-1)).toEqual([base + 198 * PAGE, base + 199 * PAGE]);
});
