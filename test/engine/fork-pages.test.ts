// A forked child's table checked against what the kernel gave it (fork-pages.ts), with
// eviction's states: the "child" is this test process, whose pagemap and smaps are real —
// pages written are present, pages of a fresh mapping not, a MADV_WIPEONFORK mapping and
// an address unmapped are what a child gets empty or not at all. The race it covers (a
// page evicted when the kernel copied the parent, back in the parent's table when the
// FORK is read: BACK) cannot be timed from a program; here each state is set directly.
import { Mm } from '../../src/engine-thread/mm.js';
import { keepPresentPages } from '../../src/engine-thread/fork-pages.js';
import { ABSENT, BACK, DIRTY, EVICTED, FRESH, PAGE } from '../../src/engine-thread/page-table.js';
import { copyToAddress, madvise, mmap, munmap, MADV_WIPEONFORK, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/sys/mman.js';
import type { EngineCore } from '../../src/engine-thread/engine-core.js';

const map = (pages: number): number => Number(mmap(0n, BigInt(pages * PAGE), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0n));

test('a child\'s entries after the check: present pages resident, evicted ones and BACK ones it lacks evicted, the rest dropped', () => {
  const a = map(8);
  const wiped = map(2);
  madvise(BigInt(wiped), BigInt(2 * PAGE), MADV_WIPEONFORK);
  const gone = map(1);
  munmap(BigInt(gone), BigInt(PAGE));
  copyToAddress(BigInt(a), Buffer.alloc(2 * PAGE, 1)); // pages 0 and 1 present, 2… not
  const stats = { pages_resident: 0, eviction: { pages_evicted: 0 } };
  const released: Array<[number, number]> = [];
  const e = { nodeStats: [stats], release: (entry: number, _node: number, flags = 0) => { released.push([entry, flags]); } } as unknown as EngineCore;
  const child = new Mm(-1, 'test');
  const entries: Array<[number, number]> = [
    [a, BACK], // present, clean, came back: resident, DIRTY (not write-protected here)
    [a + PAGE, EVICTED], // the child has it after all: its own, DIRTY
    [a + 2 * PAGE, BACK], // absent, frame unchanged since it came back: evicted, FRESH
    [a + 3 * PAGE, BACK | DIRTY], // written since it came back, its frame still not: evicted
    [a + 4 * PAGE, DIRTY], // absent, first touched after the copy: not the child's
    [a + 5 * PAGE, EVICTED], // evicted in both
    [a + 6 * PAGE, BACK], // its frame the snapshot map's: evicted, not FRESH
    [wiped, EVICTED], // MADV_WIPEONFORK: zeros in the child
    [wiped + PAGE, BACK],
    [gone, EVICTED], // in no VMA of the child
  ];
  entries.forEach(([addr, flags], i) => {
    child.table.set(addr, 100 + i + 1, 0, flags);
    if (flags & EVICTED) { child.eviction.evicted++; stats.eviction.pages_evicted++; } else { child.resident++; stats.pages_resident++; }
  });
  child.snap.set(a + 6 * PAGE, 106, 0, 0);
  try {
    keepPresentPages(e, child, process.pid);
    const flags = (addr: number): number => child.table.flagsOf(addr);
    expect(flags(a)).toBe(DIRTY);
    expect(flags(a + PAGE)).toBe(DIRTY);
    expect(flags(a + 2 * PAGE)).toBe(EVICTED | FRESH);
    expect(flags(a + 3 * PAGE)).toBe(EVICTED | FRESH);
    expect(child.table.get(a + 4 * PAGE)).toBe(ABSENT);
    expect(flags(a + 5 * PAGE)).toBe(EVICTED);
    expect(flags(a + 6 * PAGE)).toBe(EVICTED);
    for (const addr of [wiped, wiped + PAGE, gone]) expect(child.table.get(addr)).toBe(ABSENT);
    // The frames stay where they are; only the dropped entries let theirs go.
    expect(child.table.get(a + 2 * PAGE)).toBe(103);
    expect(released.sort((x, y) => x[0] - y[0])).toEqual([[105, DIRTY], [108, EVICTED], [109, BACK], [110, EVICTED]]);
    // Resident: a, a+1; evicted: a+2, a+3, a+5, a+6.
    expect([child.resident, child.eviction.evicted]).toEqual([2, 4]);
    // The node's counts moved with them (a dropped entry's are the release's: a stub here):
    // 6 resident, + a+1, - a+2, a+3, a+6; 4 evicted, - a+1, + a+2, a+3, a+6.
    expect([stats.pages_resident, stats.eviction.pages_evicted]).toEqual([4, 6]);
    expect(child.eviction.freshChunks.has(Math.floor((a + 2 * PAGE) / (512 * PAGE)))).toBe(true);
    expect(child.drops.length).toBe(4);
  } finally {
    munmap(BigInt(a), BigInt(8 * PAGE));
    munmap(BigInt(wiped), BigInt(2 * PAGE));
  }
});
