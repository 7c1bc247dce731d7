// The numbers a session reports (numactlx status, --stats FILE). Owned and counted by
// the engine thread; the main thread only receives copies.

import type { TriggerTally } from '../snapshot/tally.js';
import type { SnapshotCapture } from '../kerndat/features.js';

export interface NodeStats {
  node: number;
  backing: string;
  kind: string;
  size_bytes: number;
  /** Distinct pages (per address space) ever placed on the node. */
  pages_placed: number;
  /** Pages of the node currently mapped in a program. */
  pages_resident: number;
  /** Missing faults on the node's pages (one per fault message, not per page served). */
  faults: number;
  /** Pages served ahead of a fault, in the same UFFDIO_COPY. */
  fault_ahead_pages: number;
  /** Pages a --preferred policy placed in ordinary memory because the node was full. */
  pages_fallback: number;
  /** Faults answered with SIGBUS because a --membind node was full. */
  sigbus: number;
  frames_in_use: number;
  /** Frames read once in idle time, from frame 0, before a snapshot's copy writes them (a
   *  regular file's node, NUMACTLX_WARM_FRAMES not 0, no --max-resident: src/engine-thread/frame-warming.ts). */
  frames_warmed?: number;
  /** --max-resident: present when the node has a resident limit. */
  eviction?: EvictionStats;
}

/** What eviction to the backing did on one node (src/engine-thread/eviction.ts). */
export interface EvictionStats {
  /** The limit: the most bytes of the node's pages in the program's memory. */
  max_resident_bytes: number;
  /** Pages of the node evicted now (in their frames, not in the program). */
  pages_evicted: number;
  /** Pages dropped from the program, in total. */
  evictions: number;
  /** Evicted pages brought back by a fault (read-ahead included), and the faults that did it. */
  refaults: number;
  refault_faults: number;
  /** Bytes read from the frames by refaults, and written to them by eviction (dirty pages only). */
  bytes_read: number;
  bytes_written: number;
  /** Eviction rounds (one stop of the program each), their time from choosing the victims to
   *  the drop, and the time the program was stopped for the drops. */
  rounds: number;
  evict_ms: number;
  pause_ms: number;
  /** Faults held back while the node was at its limit (until an eviction made room). */
  fault_waits: number;
  /** The most of the node's pages seen in the program's memory at once. */
  peak_resident_pages: number;
}

export interface ProcessStats {
  pid: number;
  /** The executable (/proc/PID/exe, symlinks resolved). */
  exe: string;
  /** argv, as /proc/PID/cmdline had it when the process got its node. */
  command: string[];
  faults: number;
  /** Write-protect faults served: each first write to a page after a snapshot, with synchronous dirty tracking; 0 with asynchronous. */
  write_faults: number;
  pages_resident: number;
  /** --max-resident: the process's pages evicted now. */
  pages_evicted?: number;
  /** Registered trapped ranges. */
  ranges: number;
  /** Set once the process has left its mm (exec'd or exited): its final counts. */
  exited?: boolean;
}

export interface EventStats {
  fork: number;
  remap: number;
  unmap: number;
  remove: number;
  /** Missing faults on pages the table held and the program lacked: placed as a discarded range was about to be zapped, served again (recently-removed.ts). */
  stale: number;
  /** First missing faults outside every range the engine knew: a VMA grown in place (mremap); never a range the tracer registered (tracer-notes.ts). */
  growth: number;
  /** Missing faults answered on a later turn (UFFDIO_COPY said EAGAIN: an event of the mm was queued, not read yet); each waits for the engine's next poll. */
  retried: number;
  /**
   * Pages a snapshot's map held at addresses no VMA covered at its freeze: left out of the
   * record and the next snapshot's map (snapshot-commit.ts). A bookkeeping slip of the
   * engine made harmless; should stay 0.
   */
  outside_vma: number;
  /** Snapshots' capture forks kept (NUMACTLX_SNAPSHOT_CAPTURE=fork), and those that could not hold an image (copied in the pause). */
  capture_forks?: number;
  capture_fallbacks?: number;
}

export interface SessionStats {
  nodes: NodeStats[];
  processes: ProcessStats[];
  events: EventStats;
  /** The fault-ahead window in pages. */
  fault_ahead_pages_window: number;
  /** How written pages are tracked: by write faults numactlx serves ('sync'), or by the kernel ('async', Linux 6.7). */
  dirty_tracking: 'sync' | 'async';
  /** How an asynchronously tracked snapshot holds its image (NUMACTLX_SNAPSHOT_CAPTURE; src/kerndat/features.ts). */
  snapshot_capture?: SnapshotCapture;
  /** How many times the engine thread changed its nice: snapshot steps lowered, faults and commands raised (src/engine-thread/background-priority.ts). */
  engine_nice_changes?: number;
  /** Snapshots being taken and waiting (numactlx status; absent in --stats). */
  snapshots?: {
    running: { id: number | null; label: string | null } | null;
    waiting: Array<{ label: string | null; requests: number }>;
  };
  /**
   * Asynchronous tracking: the stops of the program that ended pre-copies which did not
   * converge (src/engine-thread/precopy-slices.ts), how many and their time in all; `stalled`:
   * the prepares whose slices stopped because they made no progress; `skipped`: the prepares
   * that took none, their last pass having found nearly all it copied written again;
   * `outrun`: the prepares whose first pass stopped early, the program having written again
   * nearly all it had copied so far (src/engine-thread/precopy-probe.ts).
   */
  precopy_slices?: { slices: number; stopped_ms: number; stalled: number; skipped: number; outrun: number };
  /** The snapshot being copied: pages frozen for it and pages still to copy (status). */
  copying?: { id: number; frozen_pages: number; pages_left: number };
  /** What each trigger came to, and the recent snapshots' phase times (status, --stats). */
  triggers?: TriggerReport;
}

export type TriggerReport = ReturnType<TriggerTally['report']>;
