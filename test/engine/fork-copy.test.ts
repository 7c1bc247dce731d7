// A fork's copy of the parent's page table (fork-pages.ts copyParentPages, done over the
// table's chunk arrays) against the rules written out a page at a time: seeded random
// parents with pages in every state — clean in the last snapshot, DIRTY, PENDING, FRESH,
// EVICTED in and out of the snapshot map, BACK, placed on a real node — over a few
// chunks, some pages in the map under another frame. Pure logic: no program, no kernel.
import { Mm } from '../../src/engine-thread/mm.js';
import { copyParentPages } from '../../src/engine-thread/fork-pages.js';
import { BACK, DIRTY, EVICTED, FRESH, PAGE, PAGES_PER_CHUNK, PENDING, PLACED_REAL } from '../../src/engine-thread/page-table.js';
import { PageMap } from '../../src/engine-thread/page-map.js';
import { FrameCounts } from '../../backing/frame-counts.js';
import { prng, testSeed, type Rng } from '../helpers/random.js';
import type { EngineCore } from '../../src/engine-thread/engine-core.js';

const CHUNK = PAGES_PER_CHUNK * PAGE;
const FLAG_CHOICES = [0, DIRTY, PENDING, DIRTY | PENDING, FRESH, BACK, DIRTY | BACK, EVICTED, EVICTED | FRESH, EVICTED | BACK];

interface Parent { mm: Mm; pages: Array<{ addr: number; entry: number; node: number; flags: number }> }

function randomParent(rng: Rng): Parent {
  const mm = new Mm(-1, 'parent');
  const pages: Parent['pages'] = [];
  const base = 0x7f00_0000_0000 + rng.below(16) * CHUNK;
  for (let c = 0; c < 4; c++) {
    const chunk = base + rng.below(64) * CHUNK;
    for (let n = rng.between(1, 300); n > 0; n--) {
      const addr = chunk + rng.below(PAGES_PER_CHUNK) * PAGE;
      if (mm.table.get(addr) !== 0) continue;
      const real = rng.below(8) === 0;
      const entry = real ? PLACED_REAL : rng.between(1, 5000);
      const node = real ? 0 : rng.below(2);
      const flags = real ? 0 : FLAG_CHOICES[rng.below(FLAG_CHOICES.length)];
      mm.table.set(addr, entry, node, flags);
      pages.push({ addr, entry, node, flags });
      // The parent's last snapshot: this page's frame, another one, or none.
      const inMap = rng.below(3);
      if (!real && inMap === 0) mm.snap.set(addr, entry - 1, 0, node);
      if (!real && inMap === 1) mm.snap.set(addr, entry + 7, 0, node);
    }
  }
  return { mm, pages };
}

function engine(): { e: EngineCore; stats: Array<{ pages_placed: number; pages_resident: number; eviction: { pages_evicted: number } }>; refs: FrameCounts[] } {
  const stats = [0, 1].map(() => ({ pages_placed: 0, pages_resident: 0, eviction: { pages_evicted: 0 } }));
  const refs = [0, 1].map(() => new FrameCounts(8192));
  const e = { nodeStats: stats, slots: refs.map((r) => ({ refs: r })) } as unknown as EngineCore;
  return { e, stats, refs };
}

test('a fork copies the parent\'s table chunk by chunk with the same entries, flags, references and counts as the rules a page at a time', () => {
  const seed = testSeed('fork-copy');
  const rng = prng(seed);
  for (let round = 0; round < 20; round++) {
    const parent = randomParent(rng);
    const child = new Mm(-1, 'child');
    child.snap = parent.mm.snap.derive([], [], new PageMap());
    const { e, stats, refs } = engine();
    copyParentPages(e, parent.mm, child);

    const want = { resident: 0, evicted: 0, placed: [0, 0], residentOf: [0, 0], evictedOf: [0, 0] };
    const wantRefs = [new Map<number, number>(), new Map<number, number>()];
    const wantDirty = new Set<number>();
    const wantFresh = new Set<number>();
    for (const p of parent.pages) {
      const at = `seed ${seed} round ${round} page ${p.addr.toString(16)} flags ${p.flags}`;
      expect([at, child.table.get(p.addr)]).toEqual([at, p.entry]);
      if (p.entry === PLACED_REAL) {
        expect([at, child.table.flagsOf(p.addr)]).toEqual([at, 0]);
        continue;
      }
      expect([at, child.table.nodeOf(p.addr)]).toEqual([at, p.node]);
      wantRefs[p.node].set(p.entry - 1, (wantRefs[p.node].get(p.entry - 1) ?? 0) + 1);
      want.placed[p.node]++;
      const inSnap = (p.flags & FRESH) === 0 && parent.mm.snap.frameOf(p.addr) === p.entry - 1;
      let flags: number;
      if (p.flags & EVICTED) {
        flags = inSnap ? EVICTED : EVICTED | FRESH;
        if (!inSnap) wantFresh.add(Math.floor(p.addr / CHUNK));
        want.evicted++;
        want.evictedOf[p.node]++;
      } else {
        const clean = (p.flags & (DIRTY | PENDING)) === 0 && inSnap;
        flags = (clean ? 0 : DIRTY) | (p.flags & BACK);
        if (!clean) wantDirty.add(p.addr);
        want.resident++;
        want.residentOf[p.node]++;
      }
      expect([at, child.table.flagsOf(p.addr)]).toEqual([at, flags]);
    }
    expect(child.resident).toBe(want.resident);
    expect(child.eviction.evicted).toBe(want.evicted);
    expect([...child.eviction.freshChunks].sort()).toEqual([...wantFresh].sort());
    expect(stats.map((s) => s.pages_placed)).toEqual(want.placed);
    expect(stats.map((s) => s.pages_resident)).toEqual(want.residentOf);
    expect(stats.map((s) => s.eviction.pages_evicted)).toEqual(want.evictedOf);
    for (const slot of [0, 1]) {
      const got = new Map([...refs[slot].nonZero()].map((f) => [f, refs[slot].get(f)]));
      expect(got).toEqual(wantRefs[slot]);
    }
    // Every DIRTY page is found by the walks of dirty chunks (the next snapshot copies it).
    const found = new Set<number>();
    for (const key of child.table.takeDirtyChunks()) {
      const out: number[] = [];
      child.table.dirtyPages(key, out);
      out.forEach((a) => found.add(a));
    }
    expect([...found].sort()).toEqual([...wantDirty].sort());
    // The parent's table is left as it was.
    for (const p of parent.pages) expect(parent.mm.table.flagsOf(p.addr)).toBe(p.flags);
  }
});
