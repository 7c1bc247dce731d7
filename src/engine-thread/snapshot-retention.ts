// Retention (--keep N): which committed snapshots stay on the backings. Deleting one drops
// its references on its frames; a frame no snapshot and no live page holds is freed.
import type { Engine } from './engine.js';
import type { CommittedSnapshot } from './snapshot-commit.js';
import type { MakeDurable } from '../../backing/durability.js';

/**
 * --keep N: deletes the oldest unlabelled snapshots beyond N from every node and
 * drops their references (a frame no snapshot and no live page holds is freed).
 * `committed` (oldest first) loses them; returns their ids. In steps: the catalogs'
 * syncs run elsewhere (`durable`, the checksum worker) while the engine serves faults.
 */
export function* pruneSteps(engine: Engine, committed: CommittedSnapshot[], keep: number,
  durable: MakeDurable): Generator<void, number[]> {
  const unlabelled = committed.filter((s) => s.label === null);
  const ids = unlabelled.slice(0, Math.max(0, unlabelled.length - keep)).map((s) => s.id);
  if (ids.length === 0) return [];
  for (let slot = 0; slot < engine.nodes.length; slot++) {
    const catalog = engine.nodes[slot].catalog;
    const removed = catalog ? yield* catalog.removeSteps(ids, durable) : [];
    for (const r of removed) for (const p of r.processes) for (const page of p.pages) engine.unref(slot, page.frame);
  }
  const gone = new Set(ids);
  committed.splice(0, committed.length, ...committed.filter((s) => !gone.has(s.id)));
  return ids;
}
