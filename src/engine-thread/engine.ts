// The engine: the single owner of every userfaultfd, every page table and the virtual
// nodes' frame stores. It runs in its own worker thread (engine-worker.ts) and is
// driven by two things only: messages read from the uffds, and commands from the
// tracer (register a range before a thread resumes, fork/exec/exit bookkeeping).
//
// This module holds the engine's state and the mm registry (which process is on which
// mm, and what a fork or an exit does to it). Serving faults is in fault-service.ts,
// reading a uffd's messages and handling its events in uffd-events.ts; both take the
// engine as an EngineCore (engine-core.ts).
import os from 'node:os';
import { bufferAddress } from '../sys/mman.js';
import { closeFd } from '../sys/eventfd.js';
import { keepPresentPages } from './fork-pages.js';
import { UFFD_MSG_SIZE } from '../sys/userfaultfd-uapi.js';
import { EVICTED, PAGE, PAGES_PER_CHUNK, PLACED_REAL } from './page-table.js';
import { Mm, type VirtualNodeRuntime } from './mm.js';
import type { EngineCore, EvictionHooks, RetryFault, SnapshotHooks } from './engine-core.js';
import * as faults from './fault-service.js';
import { forksInBatch, MSGS_PER_READ, service as readMessages } from './uffd-events.js';
import { forkWithoutEvent } from './fork-child.js';
import { registerRange } from './register-range.js';
import { type PagePolicy } from './ranges.js';
export { Mm, type FrameStore, type NodeCatalog, type VirtualNodeRuntime } from './mm.js';
import type { EventStats, NodeStats, ProcessStats, SessionStats } from '../channels/session-stats.js';
import { newNodeStats, sessionStats } from './engine-stats.js';
import type { DirtyTracking } from '../kerndat/features.js';

const { ENOENT, ESRCH } = os.constants.errno;

export class Engine implements EngineCore {
  readonly mms = new Map<number, Mm>(); // by uffd
  private readonly byPid = new Map<number, Mm>();
  readonly slots: VirtualNodeRuntime[];
  private readonly slotById = new Map<number, number>();
  readonly nodeStats: NodeStats[];
  readonly events: EventStats = { fork: 0, remap: 0, unmap: 0, remove: 0, stale: 0, growth: 0, retried: 0, outside_vma: 0 };
  readonly msgBuf = new Uint8Array(UFFD_MSG_SIZE * MSGS_PER_READ);
  readonly msgView = new DataView(this.msgBuf.buffer);
  /** The zero page run every fault is served from; never written. */
  private readonly zeros: Buffer;
  readonly zerosAddr: number;
  retries: RetryFault[] = [];
  /** Processes whose mm is gone (exec or exit), for the statistics. */
  private readonly ended: ProcessStats[] = [];
  /** Set when the set of uffds changed, so the poll list is rebuilt. */
  private pollListStale = true;
  /** Without a snapshot engine (never in a session): a write fault only unprotects. */
  private snapshotHooks: SnapshotHooks = {
    copying: undefined, onWriteFault: (mm, addr) => this.unprotect(mm, addr, PAGE), dropped: () => undefined, leaving: () => undefined,
  };
  /** --max-resident: eviction (eviction.ts), attached once when a node has a resident limit. */
  eviction: EvictionHooks | undefined;

  constructor(nodes: VirtualNodeRuntime[], readonly faultAheadPages: number, readonly poison = true,
    readonly dirtyTracking: DirtyTracking = 'sync') {
    this.slots = nodes;
    nodes.forEach((n, i) => this.slotById.set(n.node, i));
    this.nodeStats = nodes.map(newNodeStats);
    this.zeros = Buffer.alloc(Math.max(1, faultAheadPages) * PAGE);
    this.zerosAddr = Number(bufferAddress(this.zeros));
  }

  /** The snapshot engine, once: from then on write faults and uffd events consult it. */
  attachSnapshots(hooks: SnapshotHooks): void {
    this.snapshotHooks = hooks;
  }

  /** Eviction (--max-resident), once: from then on faults and drops consult it. */
  attachEviction(hooks: EvictionHooks): void {
    this.eviction = hooks;
  }

  get snapshot(): SnapshotHooks {
    return this.snapshotHooks;
  }

  pollListChanged(): void {
    this.pollListStale = true;
  }

  /** Whether the poll list must be rebuilt; clears the flag. */
  takePollListChanged(): boolean {
    const stale = this.pollListStale;
    this.pollListStale = false;
    return stale;
  }

  // ---- NodeRoom ------------------------------------------------------------------------
  slotOf(id: number): number {
    return this.slotById.get(id) ?? -1;
  }

  hasRoom(slot: number): boolean {
    const s = this.slots[slot].store;
    return s.framesInUse < s.frameCount;
  }

  // ---- commands from the tracer -----------------------------------------------------------
  addMm(pid: number, uffd: number, exe: string, command: string[] = []): Mm {
    this.leaveMm(pid);
    const mm = new Mm(uffd, exe);
    mm.command = command;
    mm.ownerPid = pid;
    mm.pids.add(pid);
    this.mms.set(uffd, mm);
    this.byPid.set(pid, mm);
    this.pollListStale = true;
    return mm;
  }

  mmOf(pid: number): Mm | undefined {
    return this.byPid.get(pid);
  }

  /** Registers [start, start+len) of pid's mm for missing faults with `policy` (register-range.ts). */
  register(pid: number, start: number, len: number, policy: PagePolicy): number {
    const mm = this.byPid.get(pid);
    return mm ? registerRange(this, mm, start, len, policy) : -ESRCH;
  }

  /** Takes the tracer's notes (engine-worker.ts sets it: note-reader.ts drain). */
  readNotes: () => void = () => undefined;

  setRangePolicy(pid: number, start: number, len: number, policy: PagePolicy): number {
    const mm = this.byPid.get(pid);
    if (!mm) return -ESRCH;
    const pieces = mm.ranges.slice(start, start + len);
    if (pieces.length === 0) return this.register(pid, start, len, policy);
    for (const p of pieces) mm.ranges.add(p.start, p.end, policy);
    return 0;
  }

  /** The policy of the range holding addr and the node its page is on (-1: ordinary memory). */
  queryAddress(pid: number, addr: number): { policy: PagePolicy; node: number } | undefined {
    const mm = this.byPid.get(pid);
    const page = addr - (addr % PAGE);
    const range = mm?.ranges.find(page);
    if (!mm || !range) return undefined;
    const entry = mm.table.get(page);
    let node: number;
    if (entry > 0) node = this.slots[mm.table.nodeOf(page)].node;
    else if (entry === PLACED_REAL) node = -1;
    else node = range.policy.nodes.find((n) => this.slotOf(n) >= 0) ?? -1;
    return { policy: range.policy, node };
  }

  setProcessPolicy(pid: number, policy: PagePolicy): void {
    const mm = this.byPid.get(pid);
    if (mm) mm.policy = policy;
  }

  /**
   * The tracer saw pid fork child: the oldest unclaimed FORK uffd of pid's mm is the
   * child's. A noted fork (tracer-notes.ts) read before its FORK is handled waits for it
   * (onFork); a fork with no FORK read (nothing of the parent registered) names nothing.
   */
  forked(parentPid: number, childPid: number): number {
    const parent = this.byPid.get(parentPid);
    if (!parent) return -ENOENT;
    const child = parent.unclaimedForks.shift();
    if (child) this.claimFork(child, childPid);
    else if (forksInBatch(this, parent) > parent.namedForks.length) parent.namedForks.push(childPid);
    else return -ENOENT;
    return 0;
  }

  /** childPid is on the forked mm `child` from now on; child's pages are checked against its pagemap. */
  claimFork(child: Mm, childPid: number): void {
    this.leaveMm(childPid);
    child.ownerPid = childPid;
    child.pids.add(childPid);
    this.byPid.set(childPid, child);
    keepPresentPages(this, child, childPid);
  }

  /** A fork the kernel did not report: the tracer made the child `uffd` (fork-child.ts forkWithoutEvent). */
  forkedWithUffd(parentPid: number, childPid: number, uffd: number): number {
    const child = forkWithoutEvent(this, this.byPid.get(parentPid), uffd);
    if (!child) return -ENOENT;
    this.claimFork(child, childPid);
    return 0;
  }

  /** childPid is on parentPid's mm (vfork, CLONE_VM); a stale mm of a reused pid is left first. */
  sharesMm(parentPid: number, childPid: number): void {
    const mm = this.byPid.get(parentPid);
    if (!mm) return;
    if (this.byPid.get(childPid) !== mm) this.leaveMm(childPid);
    mm.pids.add(childPid);
    this.byPid.set(childPid, mm);
  }

  /** pid left its mm (exec, exit): the last process to leave closes it. */
  leaveMm(pid: number): void {
    const mm = this.byPid.get(pid);
    if (!mm) return;
    this.byPid.delete(pid);
    mm.pids.delete(pid);
    if (mm.pids.size === 0) this.closeMm(mm);
  }

  /** The mm's uffd failed: forget it and every process on it. */
  leaveAll(mm: Mm): void {
    for (const pid of mm.pids) this.byPid.delete(pid);
    mm.pids.clear();
    this.closeMm(mm);
  }

  private closeMm(mm: Mm): void {
    if (mm.ownerPid !== 0) {
      this.ended.push({ pid: mm.ownerPid, exe: mm.exe, command: mm.command, faults: mm.faults, write_faults: mm.writeFaults,
        pages_resident: 0, ranges: 0 });
    }
    for (const { entry, node, flags } of mm.table.allChunks()) {
      for (let i = 0; i < PAGES_PER_CHUNK; i++) if (entry[i] > 0) this.release(entry[i], node[i], flags[i]);
    }
    mm.resident = 0;
    mm.eviction.evicted = 0;
    for (const child of mm.unclaimedForks) this.closeMm(child);
    this.mms.delete(mm.uffd);
    closeFd(mm.uffd);
    this.retries = this.retries.filter((r) => r.mm !== mm);
    this.pollListStale = true;
  }

  // ---- fault service and uffd events (fault-service.ts, uffd-events.ts) ---------------
  /** Reads and handles every queued message of one uffd. */
  service(mm: Mm): void {
    readMessages(this, mm);
  }

  /** Faults that got EAGAIN wait for this: the engine loop polls with a short timeout. */
  get hasRetries(): boolean { return this.retries.length > 0; }

  /** Serves the faults that got EAGAIN (fault-service.ts retryPending). */
  retryPending(): void {
    faults.retryPending(this);
  }

  /** Serves a missing fault at page `addr` by thread `tid` (0: unknown). */
  fault(mm: Mm, addr: number, isRetry: boolean, tid: number): void {
    faults.fault(this, mm, addr, isRetry, tid);
  }

  /** Answers a write fault on page `addr` (fault-service.ts unprotect). */
  unprotect(mm: Mm, addr: number, len: number): void {
    faults.unprotect(this, mm, addr, len);
  }

  /** Opens the run [start, start+len) for a write fault at addr (fault-service.ts unprotectRun). */
  unprotectRun(mm: Mm, addr: number, start: number, len: number): void {
    faults.unprotectRun(this, mm, addr, start, len);
  }

  /** Clears write protection on [addr, addr+len) now (fault-service.ts unprotectNow); 0 or -errno. */
  unprotectNow(mm: Mm, addr: number, len: number): number {
    return faults.unprotectNow(this, mm, addr, len);
  }

  /** Write-protects [addr, addr+len) (no wake: nobody waits on a writable page); 0 or -errno. */
  protect(mm: Mm, addr: number, len: number): number {
    return faults.protect(this, mm, addr, len);
  }

  /** Every virtual node's runtime (the snapshot engine walks them). */
  get nodes(): readonly VirtualNodeRuntime[] {
    return this.slots;
  }

  /** Gives back what a page held: its frame and its place on the node (or among the evicted). */
  release(entry: number, node: number, flags = 0): void {
    if (entry > 0) {
      this.unref(node, entry - 1);
      const stats = this.nodeStats[node];
      if (!(flags & EVICTED)) stats.pages_resident--;
      else if (stats.eviction) stats.eviction.pages_evicted--;
    }
  }

  /** Drops one reference to a frame; frees it at zero. */
  unref(slot: number, frame: number): void {
    const refs = this.slots[slot].refs;
    if (refs.get(frame) > 0 && refs.dec(frame) === 0) this.slots[slot].store.freeFrame(frame);
  }

  // ---- statistics ---------------------------------------------------------------------
  stats(exeOf: (pid: number) => string): SessionStats {
    return sessionStats(this, this.byPid, this.ended, exeOf);
  }
}
