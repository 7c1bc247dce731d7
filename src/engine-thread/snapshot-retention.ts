// Retention (--keep N): which committed snapshots stay on the backings. Deleting one drops
// its references on its frames; a frame no snapshot and no live page holds is freed.
import type { Engine } from './engine.js';
import type { CommittedSnapshot } from './snapshot-commit.js';

/**
 * --keep N: deletes the oldest unlabelled snapshots beyond N from every node and
 * drops their references (a frame no snapshot and no live page holds is freed).
 * `committed` (oldest first) loses them; returns their ids.
 */
export function prune(engine: Engine, committed: CommittedSnapshot[], keep: number): number[] {
  const unlabelled = committed.filter((s) => s.label === null);
  const ids = unlabelled.slice(0, Math.max(0, unlabelled.length - keep)).map((s) => s.id);
  if (ids.length === 0) return [];
  engine.nodes.forEach((node, slot) => {
    const removed = node.catalog?.remove(ids) ?? [];
    for (const r of removed) for (const p of r.processes) for (const page of p.pages) engine.unref(slot, page.frame);
  });
  const gone = new Set(ids);
  committed.splice(0, committed.length, ...committed.filter((s) => !gone.has(s.id)));
  return ids;
}
