// `numactlx rm` and `numactlx repair` on a backing no session holds: each opens the store
// (taking its lock: BackingError 'in-use' while a session holds it), loads and edits the
// catalog through catalog-commit.ts, and closes the store whatever happens.
import { BackingError, BackingStore } from './store.js';
import { openBackingTarget } from './catalog-source.js';
import { loadCatalog, loadImage, storeReader, type LoadedCatalog } from './catalog.js';
import { CatalogCorruption } from './catalog-image.js';
import { rebuildImage } from './catalog-rebuild.js';
import { deleteSnapshots, dropDamaged, republish } from './catalog-commit.js';
import type { SnapshotRecord } from './record-types.js';

/**
 * `numactlx repair PATH` (no session may hold it): drops the damaged records and, when a
 * superblock copy was damaged, commits the catalog again so that the damaged slot is
 * rewritten (the next generation goes to the slot not in use). A damaged root is rebuilt
 * from the records that still read (catalog-rebuild.ts) and committed to both slots.
 * Returns what it did.
 */
export function repairBacking(path: string): {
  dropped: Array<{ id: number; reason: string }>; kept: number[]; superblock?: string;
  root?: { damage: string; fromPrevious: number[] };
} {
  const store = BackingStore.open(openBackingTarget(path));
  try {
    let loaded: LoadedCatalog;
    let root: { damage: string; fromPrevious: number[] } | undefined;
    let lost: Array<{ id: number; reason: string }> = [];
    try {
      loaded = loadCatalog(store);
    } catch (err) {
      const cause = err instanceof BackingError && err.cause instanceof CatalogCorruption ? err.cause : undefined;
      if (!cause || !(cause.where.startsWith('root') || cause.where === 'catalog field')) throw err;
      const rebuilt = rebuildImage(storeReader(store), store.superblock.catalog, store.otherSuperblock()?.catalog);
      loaded = loadImage(store, rebuilt.image);
      root = { damage: cause.message, fromPrevious: rebuilt.kept.filter((k) => k.from === 'previous root').map((k) => k.id) };
      lost = rebuilt.lost;
    }
    const superblock = store.superblockDamage;
    const dropped = [...lost, ...dropDamaged(store, loaded).map((d) => ({ id: d.entry.id, reason: d.reason }))].sort((a, b) => a.id - b.id);
    // A damaged copy, or a rebuilt root: the catalog committed once more (twice: when the
    // copy in use was itself the recovered one, or so that neither slot names the
    // damaged root) rewrites both slots.
    if (root || (superblock && dropped.length === 0)) {
      republish(store, loaded);
      republish(store, loaded);
    }
    return { dropped, kept: loaded.catalog.records.map((e) => e.id), superblock, root };
  } finally {
    store.close();
  }
}

/**
 * `numactlx rm PATH ID` when no session owns the backing: takes its lock (BackingError
 * 'in-use' when a session holds it), deletes the snapshot, frees its frames, closes.
 * Returns the deleted record.
 */
export function removeSnapshot(path: string, id: number): SnapshotRecord {
  const store = BackingStore.open(openBackingTarget(path));
  try {
    const loaded = loadCatalog(store);
    const [removed] = deleteSnapshots(store, loaded, [id]);
    for (const p of removed.processes) {
      for (const page of p.pages) if (loaded.refs.get(page.frame) > 0 && loaded.refs.dec(page.frame) === 0) store.freeFrame(page.frame);
    }
    return removed;
  } finally {
    store.close();
  }
}
