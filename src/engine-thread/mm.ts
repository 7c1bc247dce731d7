// One program address space as the engine sees it (Mm), and what the engine needs of
// each virtual node: its frame store, its snapshot catalog and the frames' reference
// counts. Owned by the engine thread.
import { PageTable } from './page-table.js';
import { PageSet } from './page-set.js';
import { RangeSet, type PagePolicy } from './ranges.js';
import { PageMap } from './page-map.js';
import { WriteRunSizer } from './write-runs.js';
import type { SnapshotRecord } from '../snapshot/types.js';
import type { FrameCounts } from '../../backing/frame-counts.js';
import type { MakeDurable } from '../../backing/durability.js';
import { MmEviction } from './mm-eviction.js';
import { threadEnded } from '../sys/procfs.js';

/** What the engine needs of a virtual node's backing: frames to place pages in. */
export interface FrameStore {
  readonly frameCount: number;
  readonly framesInUse: number;
  allocFrame(): number;
  freeFrame(frame: number): void;
  frameAddr(frame: number): number;
  sync(): void;
  /** The backing deleted or truncated under the session, as one sentence (BackingStore). */
  mediumProblem(): string | undefined;
}

/** A node's snapshot catalog (backing/catalog.ts): commits and deletes records. */
export interface NodeCatalog {
  /** Commits a record in steps (yields between them: the engine serves faults there); `durable` syncs. */
  commitSteps(record: SnapshotRecord, durable: MakeDurable): Generator<void, void>;
  /** Deletes records in steps, as commitSteps; returns them. */
  removeSteps(ids: number[], durable: MakeDurable): Generator<void, SnapshotRecord[]>;
}

export interface VirtualNodeRuntime {
  node: number;
  backing: string;
  kind: string;
  store: FrameStore;
  catalog?: NodeCatalog;
  /**
   * References per frame: 1 for the live page it belongs to, +1 per committed snapshot
   * that holds it (derived from the catalog at open). A frame is freed at 0.
   */
  refs: FrameCounts;
}

/** Ranges remembered for the next prepare's look at untracked pages (Mm.untracked). */
const UNTRACKED_MAX = 1024;

/** One program address space: its uffd, its trapped ranges and its page table. */
export class Mm {
  readonly ranges = new RangeSet();
  readonly table = new PageTable();
  /** Pages ever placed on a virtual node in this mm (distinct, for pages_placed). */
  readonly everPlaced = new PageSet();
  readonly pids = new Set<number>();
  /** The process the mm was created for (stats name the mm after it). */
  ownerPid = 0;
  faults = 0;
  /** Write-protect faults served (synchronous dirty tracking; none arrive with WP_ASYNC). */
  writeFaults = 0;
  resident = 0;
  /** uffds of forked children whose pid the tracer has not named yet (FIFO). */
  readonly unclaimedForks: Mm[] = [];
  /** Messages of this uffd in the engine's buffer, read and not handled yet (uffd-events.ts service). */
  batchUnhandled = 0;
  /** Children's pids the tracer named before their FORK message was handled (FIFO; engine.ts forked). */
  readonly namedForks: number[] = [];
  /**
   * A snapshot's capture fork (snapshot-capture.ts): -1 none expected; 0 expected (the
   * next UFFD_EVENT_FORK of this mm is the capture's); > 0 the capture child's uffd.
   */
  captureFork = -1;
  /** Why this mm's snapshots cannot be held by a fork (they are pre-copied), once found. */
  noCapture: string | undefined;
  /** NUMACTLX_SNAPSHOT_CAPTURE=auto: the next freeze holds this mm by a fork (snapshot-capture.ts holdUnconverged). */
  holdByFork = false;
  /** Prepares left that hold this mm by a fork without passes (snapshot-capture.ts holdAhead). */
  holdAhead = 0;
  /** Pages written after a held snapshot's freeze, found by its reset: DIRTY at the next prepare or freeze (held-staging.ts). */
  carryDirty: number[] = [];
  /** Policy of implicit growth (mremap in place) when no neighbour range says. */
  policy: PagePolicy | undefined;
  /**
   * Runs write-protected by a snapshot's prepare and not frozen yet ([start, end),
   * flattened; snapshot.ts): the next freeze takes them. Kept here, not in the prepare,
   * so that a prepare whose freeze never came is not lost: the next one adds to them.
   */
  staged: number[] = [];
  /**
   * Pages the kernel is about to write for an exiting thread (its clear_child_tid),
   * made writable at its exit stop (page → the thread's tid): a prepare running meanwhile
   * must not protect them again, nor eviction drop them. A freeze does not wait for an
   * exiting thread (stop-threads.ts), so a pin stays until its thread is past its exit
   * (dropEndedPins, at each freeze).
   */
  readonly pins = new Map<number, number>();
  /** How many pages the next write fault opens (write-runs.ts). */
  readonly writeRuns = new WriteRunSizer();
  /**
   * Processes of this mm past their last thread's exit stop (their frozen pages were
   * copied there): their memory goes at any moment, so a later freeze leaves the mm out
   * once all its processes are here — else its pages would be frozen and then lost.
   */
  readonly exited = new Set<number>();
  /**
   * Ranges registered since the last prepare ([start, end)) whose pages may be present
   * without the engine having placed them: a range is registered after the kernel made
   * it (exec's stack, an mmap with MAP_POPULATE, memory mbind moved onto a virtual
   * node). The next prepare adopts such pages (present-pages.ts).
   */
  untracked: Array<[number, number]> = [];

  /** [start, end) is registered with `policy`: a range of this mm from now on, which may hold pages the engine did not place. */
  track(start: number, end: number, policy: PagePolicy): void {
    this.ranges.add(start, end, policy);
    this.mayHoldUntracked(start, end);
  }

  /** Drops the pins of threads past their exit, whose write is done (at each freeze). */
  dropEndedPins(): void {
    for (const [page, tid] of this.pins) if (threadEnded(tid)) this.pins.delete(page);
  }

  /**
   * [start, end) may hold pages the engine did not place: it was just registered, or an
   * adoption closed early did not reach it (present-pages.ts gives it back).
   */
  mayHoldUntracked(start: number, end: number): void {
    // A program that maps often between snapshots: past a bound, the next prepare looks
    // at every range (only VMAs holding memory are read: present-pages.ts).
    if (this.untracked.length < UNTRACKED_MAX) this.untracked.push([start, end]);
    else this.untracked = [[0, Number.MAX_SAFE_INTEGER]];
  }
  /** Ranges dropped before their UNMAP/REMAP was read: the event leaves them alone (reused-addresses.ts). */
  predropped: Array<{ start: number; end: number; at: number }> = [];
  /** Ranges the tracer registered and noted, applied after this mm's uffd is next read (register-range.ts). */
  noted: Array<{ start: number; end: number; policy: PagePolicy }> = [];
  /** Ranges discarded lately, kept out of fault-ahead until the kernel has zapped them (recently-removed.ts). */
  removed: Array<{ start: number; end: number; at: number }> = [];
  /** Ranges dropped since the last freeze (their pages leave the next snapshot). */
  drops: Array<[number, number]> = [];
  /** The pages of this mm in the last committed snapshot. */
  snap = new PageMap();

  command: string[] = [];
  /** --max-resident: evicted pages, FRESH chunks, refault read-ahead (eviction.ts). */
  readonly eviction = new MmEviction();

  constructor(readonly uffd: number, public exe: string) {}
}
