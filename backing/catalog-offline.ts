// `numactlx rm` and `numactlx repair` on a backing no session holds: each opens the store
// (taking its lock: BackingError 'in-use' while a session holds it), loads and edits the
// catalog through catalog-commit.ts, and closes the store whatever happens.
import { BackingStore } from './store.js';
import { openBackingTarget } from './catalog-source.js';
import { loadCatalog } from './catalog.js';
import { deleteSnapshots, dropDamaged, republish } from './catalog-commit.js';
import type { SnapshotRecord } from './record-types.js';

/**
 * `numactlx repair PATH` (no session may hold it): drops the damaged records and, when a
 * superblock copy was damaged, commits the catalog again so that the damaged slot is
 * rewritten (the next generation goes to the slot not in use). Returns what it did.
 */
export function repairBacking(path: string): { dropped: Array<{ id: number; reason: string }>; kept: number[]; superblock?: string } {
  const store = BackingStore.open(openBackingTarget(path));
  try {
    const loaded = loadCatalog(store);
    const superblock = store.superblockDamage;
    const dropped = dropDamaged(store, loaded).map((d) => ({ id: d.entry.id, reason: d.reason }));
    // Nothing dropped but a damaged copy: the same catalog committed once more (twice
    // when the copy in use was itself the recovered one) rewrites both slots.
    if (superblock && dropped.length === 0) {
      republish(store, loaded);
      republish(store, loaded);
    }
    return { dropped, kept: loaded.catalog.records.map((e) => e.id), superblock };
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
