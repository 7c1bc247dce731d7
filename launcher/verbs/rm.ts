// `numactlx rm PATH SNAP`: removes one committed snapshot (an id, or a label one snapshot
// carries) from a backing. The catalog does the removal (backing/catalog.ts:
// removeSnapshot — an atomic commit; frames no other snapshot references become free);
// this verb checks that the snapshot exists, closes its own view of the backing first (the
// catalog takes the backing's lock to write) and reports.
import { catalogError, findSnapshot, parseOfflineArgs, positionals, withSource } from './snapshots.js';
import { removeSnapshot } from '../../backing/catalog.js';
import type { SnapshotSource } from '../../src/snapshot/source.js';
import type { SnapshotRecord } from '../../src/snapshot/types.js';

export const RM_USAGE = 'usage: numactlx rm PATH SNAP\n';

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

export async function runRm(argv: string[]): Promise<number> {
  const args = parseOfflineArgs('rm', argv);
  if (args.options.help) {
    process.stdout.write(RM_USAGE);
    return 0;
  }
  const [path, ref] = positionals('rm', args, ['PATH', 'SNAP']);
  const text = await removeVerb(path, ref, {
    open: (work) => withSource('rm', path, work),
    remove: removeSnapshot,
  });
  process.stdout.write(text);
  return 0;
}
