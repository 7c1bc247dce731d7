// Reading committed snapshots out of a backing, for the offline verbs (snapshots,
// verify, export, diff). Implemented over the on-media catalog (backing/catalog.ts);
// the verbs only see this interface, so they can be tested over an in-memory source.
import type { SnapshotRecord } from './types.js';

export interface SnapshotSource {
  /** The backing's path. */
  readonly path: string;
  /** Committed snapshots, ascending id. A consistent view: taken once at open. */
  snapshots(): SnapshotRecord[];
  /** The 4096 bytes of a frame (into `out` when given). */
  readFrame(frame: number, out?: Buffer): Buffer;
  close(): void;
}
