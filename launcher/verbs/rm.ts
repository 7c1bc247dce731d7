// `numactlx rm PATH SNAP`: removes one committed snapshot (an id, or a label one snapshot
// carries) from a backing. The catalog does the removal (backing/catalog-offline.ts:
// removeSnapshot — an atomic commit; frames no other snapshot references become free);
// this verb checks that the snapshot exists, closes its own view of the backing first (the
// catalog takes the backing's lock to write) and reports.
import { catalogError, findSnapshot, withSource } from './snapshots.js';
import { positionals, type Verb, type VerbArgs } from './parse.js';
import { removeSnapshot } from '../../backing/catalog-offline.js';
import type { SnapshotSource } from '../../src/snapshot/source.js';
import type { SnapshotRecord } from '../../src/snapshot/types.js';
import { printOut } from '../output.js';

export const rmCommand: Verb = {
  spec: { name: 'rm', usage: 'usage: numactlx rm PATH SNAP\n', options: [] },
  run: runRm,
};

export interface RemoveDeps {
  /** Runs `work` over the backing's snapshots and closes them. */
  open(work: (source: SnapshotSource) => number): Promise<number>;
  /** The catalog's removeSnapshot: the removed record. */
  remove(path: string, id: number): SnapshotRecord | Promise<SnapshotRecord>;
}

/** What `numactlx rm` prints. */
export function formatRemoved(path: string, removed: SnapshotRecord): string {
  const pages = removed.processes.reduce((n, p) => n + p.pages.length, 0);
  return `removed snapshot ${removed.id}${removed.label ? ` (${removed.label})` : ''} from ${path}: ${pages} page${pages === 1 ? '' : 's'}\n`;
}

/** Removes snapshot `ref` of `path`; resolves to the output. */
export async function removeVerb(path: string, ref: string, deps: RemoveDeps): Promise<string> {
  const id = await deps.open((source) => findSnapshot('rm', source, ref).id);
  let removed: SnapshotRecord;
  try {
    removed = await deps.remove(path, id);
  } catch (err) {
    throw catalogError('rm', path, err);
  }
  return formatRemoved(path, removed);
}

async function runRm(args: VerbArgs): Promise<number> {
  const [path, ref] = positionals('rm', args, ['PATH', 'SNAP']);
  const text = await removeVerb(path, ref, {
    open: (work) => withSource('rm', path, work),
    remove: removeSnapshot,
  });
  printOut(text);
  return 0;
}
