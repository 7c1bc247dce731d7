// Messages between the main thread and the engine worker.
import type { BackingTarget } from '../../backing/inspect.js';
import type { SessionStats } from './stats.js';
import type { ChecksumShared } from './checksums.js';
import type { SnapshotStats } from '../snapshot/types.js';

export interface EngineStart {
  nodes: Array<{ node: number; target: BackingTarget }>;
  faultAheadPages: number;
  channel: SharedArrayBuffer;
  mailbox: SharedArrayBuffer;
  /** The doorbell (src/snapshot/doorbell.ts): labels and thread registers of snapshots. */
  doorbell: SharedArrayBuffer;
  /** The session's program, recorded in every snapshot. */
  program: string[];
  eventFd: number;
}

export interface SnapshotSummary {
  id: number;
  label: string | null;
  time: string;
  stats: SnapshotStats;
  /** Frozen pages the program discarded before they were copied (SnapshotResult.lostPages). */
  lost_pages?: number;
}

export type EngineEvent =
  | { type: 'ready'; nextId: number; checksums: ChecksumShared }
  | { type: 'snapshot-done'; snapshot: SnapshotSummary }
  | { type: 'snapshot-failed'; id: number; message: string }
  | { type: 'pruned'; ids: number[]; error?: string }
  | { type: 'prepared' }
  | { type: 'init-failed'; message: string }
  | { type: 'stats'; stats: SessionStats }
  | { type: 'closed' }
  | { type: 'failed'; message: string };
