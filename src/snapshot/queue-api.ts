// What the snapshot queue (queue.ts) and its callers exchange: who asks (SnapshotSource),
// the request and its answer, what the engine's take() resolves to, the events the queue
// reports, its state for `numactlx status`, and SnapshotError, the one error a request
// is rejected with (a failed snapshot, or a refused request).
import type { SnapshotStats } from './types.js';

/**
 * Why a snapshot fails when no process of the program is left to freeze: the tracer's,
 * the engine's and the session's word. The failure carries it as a flag too
 * (SnapshotError.noProcess, `noProcess` on the threads' messages), which the session
 * reads: a tick as the program ends is not a failure (launcher/session.ts).
 */
export const NO_PROCESS = 'no process of the session is running';

/** Who asked: the snapshot signal, the control socket, a cron schedule, the program's end. */
export type SnapshotSource = 'signal' | 'socket' | 'cron' | 'exit';

/** A committed snapshot. */
export interface SnapshotDone {
  id: number;
  label: string | null;
  /** ISO 8601, the freeze. */
  time: string;
  stats: SnapshotStats;
  /** Frozen pages the program discarded before they were copied (not in the snapshot). */
  lost_pages?: number;
}

/**
 * What the engine's take() resolves to once the program has been frozen and resumed: the
 * snapshot's id, and `durable`, which resolves when the snapshot is committed or rejects
 * with the reason it was not (`backing /x: ENOSPC: no frame for the snapshot`).
 */
export interface SnapshotOutcome {
  id: number;
  durable: Promise<SnapshotDone>;
}

export type TakeSnapshot = (label: string | null) => Promise<SnapshotOutcome>;

/** Retention: delete the oldest unlabelled snapshots beyond `keep`; resolves to the ids deleted. */
export type PruneSnapshots = (keep: number) => Promise<number[]>;

export interface SnapshotRequest {
  label?: string | null;
  /** Answer when the snapshot is durable (with the SnapshotDone) instead of when its id is known. */
  wait?: boolean;
  source: SnapshotSource;
}

/** The answer to a request: the id and label, and when it waited, time and stats too. */
export type SnapshotAnswer = { id: number; label: string | null } | SnapshotDone;

/** What the queue reports as it goes (for the session's log and progress). */
export type SnapshotEvent =
  | { type: 'taken'; id: number; label: string | null; sources: SnapshotSource[] }
  | { type: 'durable'; done: SnapshotDone; sources: SnapshotSource[] }
  | { type: 'failed'; id: number | null; label: string | null; sources: SnapshotSource[]; error: SnapshotError }
  | { type: 'pruned'; ids: number[] }
  | { type: 'prune-failed'; error: Error };

export interface SnapshotQueueOptions {
  /** --keep N: after each durable snapshot, prune(keep) is called. Needs `prune`. */
  keep?: number;
  prune?: PruneSnapshots;
  /** Must not throw (a throw is re-raised outside the queue, which carries on). */
  onEvent?: (event: SnapshotEvent) => void;
}

/** What is in progress, for `numactlx status`. */
export interface SnapshotQueueState {
  /** The snapshot being taken or copied; id is null until the freeze is over. */
  running: { id: number | null; label: string | null } | null;
  waiting: { label: string | null; requests: number }[];
  closed: boolean;
}

/** A request the queue could not satisfy: the snapshot failed, or the request was refused. */
export class SnapshotError extends Error {
  /** The snapshot's id when it was known (the freeze succeeded, the commit did not). */
  readonly id: number | null;
  readonly label: string | null;
  /** No process of the program was left to freeze (NO_PROCESS), here or in the error it wraps. */
  readonly noProcess: boolean;

  constructor(message: string, options: { id?: number | null; label?: string | null; cause?: unknown; noProcess?: boolean } = {}) {
    super(message, { cause: options.cause });
    this.name = 'SnapshotError';
    this.id = options.id ?? null;
    this.label = options.label ?? null;
    this.noProcess = options.noProcess ?? (options.cause instanceof SnapshotError && options.cause.noProcess);
  }
}

export const SESSION_ENDING = 'the session is ending';
