// The numbers a session reports (numactlx status, --stats FILE). Owned and counted by
// the engine thread; the main thread only receives copies.

import type { TriggerTally } from '../snapshot/tally.js';

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
}

export interface SessionStats {
  nodes: NodeStats[];
  processes: ProcessStats[];
  events: EventStats;
  /** The fault-ahead window in pages. */
  fault_ahead_pages_window: number;
  /** How written pages are tracked: by write faults numactlx serves ('sync'), or by the kernel ('async', Linux 6.7). */
  dirty_tracking: 'sync' | 'async';
  /** Snapshots being taken and waiting (numactlx status; absent in --stats). */
  snapshots?: {
    running: { id: number | null; label: string | null } | null;
    waiting: Array<{ label: string | null; requests: number }>;
  };
  /** The snapshot being copied: pages frozen for it and pages still to copy (status). */
  copying?: { id: number; frozen_pages: number; pages_left: number };
  /** What each trigger came to, and the recent snapshots' phase times (status, --stats). */
  triggers?: TriggerReport;
}

export type TriggerReport = ReturnType<TriggerTally['report']>;
