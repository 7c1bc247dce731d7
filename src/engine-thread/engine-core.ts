// What the engine's parts share: the state of one Engine (engine.ts) as the fault
// service (fault-service.ts) and the uffd event handling (uffd-events.ts) see it. Types
// only, so that those modules take the engine as a parameter without importing it (the
// engine imports them). Owned and written by the engine thread only.
import type { MmPart, SnapshotRun } from './snapshot.js';
import type { Mm, VirtualNodeRuntime } from './mm.js';
import type { NodeRoom } from './placement.js';
import type { EventStats, NodeStats } from '../channels/session-stats.js';
import type { DirtyTracking } from '../kerndat/features.js';

/**
 * A fault whose answer got EAGAIN (an UNMAP/REMOVE/REMAP/FORK event of its uffd unread,
 * or its thread not run since): handled again after the next poll. `write`: a
 * write-protect fault (its unprotect failed), else a missing fault (COPY or POISON
 * failed). Until then the faulting thread sleeps in the kernel: dropping one of these
 * hangs it, and the next freeze with it.
 */
export interface RetryFault { mm: Mm; addr: number; write: boolean; /** The faulting thread (0: unknown). */ tid: number }

/**
 * What the fault service and the uffd events need of the snapshot in progress. The
 * SnapshotEngine implements it and owns every field behind it; the Engine holds it
 * read-only (Engine.attachSnapshots), so no class writes another's state.
 */
export interface SnapshotHooks {
  /** The snapshot whose frozen pages are being copied (from the freeze to its commit), if any. */
  readonly copying: SnapshotRun | undefined;
  /** A write to a write-protected page: copy it first if frozen, then make it writable. */
  onWriteFault(mm: Mm, addr: number): void;
  /** A placed page left the program (munmap, DONTNEED, mremap's source): a pre-copy lets its copy go (precopy.ts). */
  dropped(mm: Mm, addr: number): void;
  /** [start, end) of mm is about to leave the program: a capture fork's pages there are copied first (snapshot-capture.ts). */
  leaving(mm: Mm, start: number, end: number): void;
}

/**
 * What the fault service and the uffd events ask of eviction (--max-resident,
 * eviction.ts): the Evictor implements it, attached when a node has a resident limit
 * (Engine.attachEviction).
 */
export interface EvictionHooks {
  /** Serves a missing fault on an evicted page from its frame (refault.ts): true (handled). */
  refault(mm: Mm, addr: number, isRetry: boolean): boolean;
  /** A fault placing a page on node `slot` must wait: the node is at its limit (it then places no more than room()). */
  mustWait(slot: number, mm: Mm, addr: number, isRetry: boolean): boolean;
  /** The pages node `slot` may still take under its limit: 1 at least (the faulting page), Infinity without a limit. */
  room(slot: number): number;
  /** A REMOVE event of the engine's own drop (its pages are evicted, not discarded). */
  isOwnDrop(mm: Mm, start: number, end: number): boolean;
  /** The freeze: mm's pages whose frames eviction wrote since the last snapshot join it as they are. */
  recordFresh(mm: Mm, part: MmPart): void;
}

export interface EngineCore extends NodeRoom {
  /** Every mm, by uffd. */
  readonly mms: Map<number, Mm>;
  readonly slots: readonly VirtualNodeRuntime[];
  readonly nodeStats: NodeStats[];
  readonly events: EventStats;
  readonly faultAheadPages: number;
  /** UFFDIO_POISON is there (Linux 6.6): a full --membind node poisons the page (sigbus.ts). */
  readonly poison: boolean;
  /** How written pages are tracked (src/kerndat/features.ts): 'async', no write faults arrive. */
  readonly dirtyTracking: DirtyTracking;
  /** The zero page run every fault is served from (a Buffer the engine keeps alive); never written. */
  readonly zerosAddr: number;
  /** Scratch for the messages read from a uffd (uffd-events.ts). */
  readonly msgBuf: Uint8Array;
  readonly msgView: DataView;
  retries: RetryFault[];
  /** The set of uffds changed: the engine loop rebuilds its poll list. */
  pollListChanged(): void;
  /** The snapshot side (snapshot-engine.ts owns it; the engine only reads it). */
  readonly snapshot: SnapshotHooks;
  /** --max-resident: eviction's hooks, when a node has a resident limit. */
  readonly eviction: EvictionHooks | undefined;
  /** Reads and handles every queued message of one uffd (uffd-events.ts). */
  service(mm: Mm): void;
  /** Applies the ranges the tracer registered itself and noted (tracer-notes.ts). */
  readNotes(): void;
  /** Serves a missing fault at page `addr` by thread `tid` (fault-service.ts). */
  fault(mm: Mm, addr: number, isRetry: boolean, tid: number): void;
  /** The mm's uffd failed: forget it and every process on it. */
  leaveAll(mm: Mm): void;
  /** childPid is on the forked mm `child` from now on (engine.ts). */
  claimFork(child: Mm, childPid: number): void;
  /** Gives back what a page held: its frame and its place on the node (`flags`: EVICTED counts). */
  release(entry: number, node: number, flags?: number): void;
}
