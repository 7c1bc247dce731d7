// Main thread ↔ engine worker messages, both ends: what the main thread starts the engine
// with (EngineStart, as workerData), and the events the engine posts back (postToMain on
// the engine's side, onEngineEvent on the main thread's). Requests from the main thread
// go through the MainMailbox (engine-mailbox.ts): the engine does not read messages.
import { parentPort, type Worker } from 'node:worker_threads';
import type { BackingTarget } from '../../backing/inspect.js';
import type { SessionStats } from './session-stats.js';
import type { ChecksumShared } from './checksum-ring.js';
import type { SnapshotStats } from '../snapshot/types.js';
import type { DirtyTracking, KernelFeatures, SnapshotCapture } from '../kerndat/features.js';

export interface EngineStart {
  /** `maxResidentPages`: --max-resident, the most of the node's pages in the program's memory. */
  nodes: Array<{ node: number; target: BackingTarget; maxResidentPages?: number }>;
  faultAheadPages: number;
  /** The kernel features the session has (src/kerndat/, probed once by the main thread). */
  features: KernelFeatures;
  /** How the engine tracks written pages (src/kerndat/features.ts chooseDirtyTracking). */
  dirtyTracking: DirtyTracking;
  /** How an asynchronously tracked snapshot holds its image (chooseCapture). */
  capture: SnapshotCapture;
  /** NUMACTLX_PAUSE_PAGES (src/snapshot/pause-limit.ts), read once by the main thread. */
  pausePages: number;
  channel: SharedArrayBuffer;
  mailbox: SharedArrayBuffer;
  /** The doorbell (src/channels/doorbell.ts): labels and thread registers of snapshots. */
  doorbell: SharedArrayBuffer;
  /** The session's program, recorded in every snapshot. */
  program: string[];
  eventFd: number;
  /** The eviction channel (evict-request.ts), when a node has a resident limit. */
  evict?: SharedArrayBuffer;
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
  /** `noProcess`: every process had ended by the freeze (NO_PROCESS). */
  | { type: 'snapshot-failed'; id: number; message: string; noProcess?: boolean }
  | { type: 'pruned'; ids: number[]; error?: string }
  | { type: 'prepared' }
  /**
   * A backing deleted or truncated under the session (BackingStore.mediumProblem), and
   * where it was found ("while snapshot 3 was being copied"): the session must end.
   * Posted once, before the failure of the snapshot it cost.
   */
  | { type: 'backing-lost'; message: string; found: string }
  | { type: 'init-failed'; message: string }
  | { type: 'stats'; stats: SessionStats }
  | { type: 'closed' }
  /** The engine's loop threw: what, and where (shown with NUMACTLX_DEBUG=1). */
  | { type: 'failed'; message: string; stack?: string };

/** The engine thread's end: one event to the main thread. */
export function postToMain(ev: EngineEvent): void {
  parentPort!.postMessage(ev);
}

/** The main thread's end: every event the engine worker posts. */
export function onEngineEvent(worker: Worker, handler: (ev: EngineEvent) => void): void {
  worker.on('message', handler);
}
