// The engine: the single owner of every userfaultfd, every page table and the virtual
// nodes' frame stores. It runs in its own worker thread (engine-worker.ts) and is
// driven by two things only: messages read from the uffds, and commands from the
// tracer (register a range before a thread resumes, fork/exec/exit bookkeeping).
//
// Fault service: every queued message is read per wake-up; a missing fault is answered
// with one UFFDIO_COPY of zeros covering the run of absent pages around it, up to the
// fault-ahead window, inside the range (the copy also wakes every thread waiting in
// it). Never-written pages must read as zeros (ld.so's .bss depends on it); only pages
// that hold data in a frame would be served from the frame, and no page does before
// snapshots or eviction exist.
//
// Kernel facts the handling follows (userfaultfd(2), Documentation/admin-guide/mm/
// userfaultfd.rst, and what QEMU, CRIU and Firecracker do):
// - EEXIST from UFFDIO_COPY: a page of the run is already mapped (another thread's
//   fault in the same batch, or a fork's copy): serve what is left page by page and
//   wake the faulting page;
// - EAGAIN: the mm is changing (a REMOVE/UNMAP event is queued): the part copied is
//   done, the rest is retried after the pending events are read;
// - ENOENT / ESRCH: the range or the process is gone: drop the fault.
import fs from 'node:fs';
import os from 'node:os';
import { bufferAddress } from '../sys/mman.js';
import { closeFd, readFd } from '../sys/eventfd.js';
import { schedYield } from '../sys/sched.js';
import { openPagemap, pagemapHasPage, readPagemapRun } from '../sys/pagemap.js';
import {
  copiedFast, copyFast, poisonFast, registerFast, UFFD_EVENT, UFFD_MSG_OFFSET, UFFD_MSG_SIZE, UFFD_PAGEFAULT_FLAG,
  UFFDIO_REGISTER_MODE, wakeFast, writeprotectFast,
} from '../sys/userfaultfd.js';
import { ABSENT, DIRTY, PAGE, PENDING, PLACED_REAL } from './page-table.js';
import type { SnapshotRun } from './snapshot.js';
import { Mm, type VirtualNodeRuntime } from './mm.js';
import { getU64 } from './u64.js';
import { vmaAround } from './vma.js';

export { Mm } from './mm.js';
export type { FrameStore, NodeCatalog, VirtualNodeRuntime } from './mm.js';
import { placePage, TO_FALLBACK, TO_REAL, TO_SIGBUS, type NodeRoom } from './placement.js';
import { type PagePolicy, type Range } from './ranges.js';
import type { EventStats, NodeStats, ProcessStats, SessionStats } from './stats.js';

const { EEXIST, EAGAIN, ENOENT, ESRCH } = os.constants.errno;
/** Every range is registered for MISSING (placement) and WP (snapshots; free until a page is protected). */
const REGISTER_MODE = Number(UFFDIO_REGISTER_MODE.MISSING | UFFDIO_REGISTER_MODE.WP);
const MSGS_PER_READ = 64;
/** Pagemap entries read per pread when a fork's pages are checked (4 KiB). */
const PAGEMAP_RUN = 512;
/** Reads of pending events before unprotectNow gives up on EAGAIN. */
const UNPROTECT_NOW_TRIES = 1000;
/** NUMACTLX_DEBUG=1: the engine reports failed kernel calls on stderr. */
const DEBUG = process.env.NUMACTLX_DEBUG === '1';

/**
 * A fault whose answer got EAGAIN (an UNMAP/REMOVE/REMAP/FORK event of its uffd unread,
 * or its thread not run since): handled again after the next poll. `write`: a
 * write-protect fault (its unprotect failed), else a missing fault (COPY or POISON
 * failed). Until then the faulting thread sleeps in the kernel: dropping one of these
 * hangs it, and the next freeze with it.
 */
interface RetryFault { mm: Mm; addr: number; write: boolean }

export class Engine implements NodeRoom {
  readonly mms = new Map<number, Mm>(); // by uffd
  private readonly byPid = new Map<number, Mm>();
  private readonly slots: VirtualNodeRuntime[];
  private readonly slotById = new Map<number, number>();
  private readonly nodeStats: NodeStats[];
  private readonly events: EventStats = { fork: 0, remap: 0, unmap: 0, remove: 0 };
  private readonly msgBuf = new Uint8Array(UFFD_MSG_SIZE * MSGS_PER_READ);
  private readonly msgView = new DataView(this.msgBuf.buffer);
  /** The zero page run every fault is served from; never written. */
  private readonly zeros: Buffer;
  private readonly zerosAddr: number;
  private retries: RetryFault[] = [];
  private readonly pagemapBuf = Buffer.alloc(PAGEMAP_RUN * 8);
  /** Processes whose mm is gone (exec or exit), for the statistics. */
  private readonly ended: ProcessStats[] = [];
  /** Set when the set of uffds changed, so the poll list is rebuilt. */
  pollListChanged = true;
  /** The snapshot being copied, if any (snapshot-engine.ts drives it). */
  run: SnapshotRun | undefined;
  /** Called on a write to a write-protected page (set by the snapshot engine). */
  writeFault: (mm: Mm, addr: number) => void = (mm, addr) => this.unprotect(mm, addr, PAGE);

  constructor(nodes: VirtualNodeRuntime[], readonly faultAheadPages: number) {
    this.slots = nodes;
    nodes.forEach((n, i) => this.slotById.set(n.node, i));
    this.nodeStats = nodes.map((n) => ({
      node: n.node, backing: n.backing, kind: n.kind, size_bytes: n.store.frameCount * PAGE,
      pages_placed: 0, pages_resident: 0, faults: 0, fault_ahead_pages: 0, pages_fallback: 0,
      sigbus: 0, frames_in_use: 0,
    }));
    this.zeros = Buffer.alloc(Math.max(1, faultAheadPages) * PAGE);
    this.zerosAddr = Number(bufferAddress(this.zeros));
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
  addMm(pid: number, uffd: number, exe: string, command: string[] = []): void {
    this.leaveMm(pid);
    const mm = new Mm(uffd, exe);
    mm.command = command;
    mm.ownerPid = pid;
    mm.pids.add(pid);
    this.mms.set(uffd, mm);
    this.byPid.set(pid, mm);
    this.pollListChanged = true;
  }

  mmOf(pid: number): Mm | undefined {
    return this.byPid.get(pid);
  }

  /** Registers [start, start+len) of pid's mm for missing faults with `policy`. */
  register(pid: number, start: number, len: number, policy: PagePolicy): number {
    const mm = this.byPid.get(pid);
    if (!mm) return -ESRCH;
    const r = registerFast(mm.uffd, start, len, REGISTER_MODE);
    if (r < 0) return r;
    mm.ranges.add(start, start + len, policy);
    return 0;
  }

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

  /** The tracer saw pid fork child: the oldest unclaimed FORK uffd of pid's mm is the child's. */
  forked(parentPid: number, childPid: number): number {
    const parent = this.byPid.get(parentPid);
    const child = parent?.unclaimedForks.shift();
    if (!parent || !child) return -ENOENT;
    this.leaveMm(childPid);
    child.ownerPid = childPid;
    child.pids.add(childPid);
    this.byPid.set(childPid, child);
    this.keepPresentPages(child, childPid);
    return 0;
  }

  /**
   * The child's table was copied from the parent's when its FORK event was read, but a
   * read(2) of a uffd returns pending faults before pending events: pages the parent
   * faulted in after dup_mmap were served (and entered in the parent's table) before the
   * engine learnt of the fork, and the child does not have them. An entry for a page
   * the child lacks would break the copier's rule (remote-copy.ts: a page it reads must
   * be present, or this thread faults on a userfaultfd only it serves — a deadlock), so
   * the child's entries are checked against its /proc/PID/pagemap now. The child has not
   * run yet: the tracer holds it at its first stop until this returns.
   */
  private keepPresentPages(child: Mm, childPid: number): void {
    const pages: number[] = [];
    child.table.forEach((addr) => { pages.push(addr); });
    if (pages.length === 0) return;
    pages.sort((a, b) => a - b);
    let fd: number;
    try {
      fd = openPagemap(childPid);
    } catch {
      return; // the child is gone already: its mm is closed when it is reaped
    }
    try {
      const buf = this.pagemapBuf;
      for (let i = 0; i < pages.length;) {
        let j = i + 1;
        while (j < pages.length && j - i < PAGEMAP_RUN && pages[j] === pages[j - 1] + PAGE) j++;
        const read = readPagemapRun(fd, pages[i], j - i, buf);
        for (let k = 0; k < j - i; k++) {
          if (k < read && pagemapHasPage(buf, k)) continue;
          const addr = pages[i + k];
          child.table.takeRange(addr, addr + PAGE, (_a, entry, node) => {
            if (entry > 0) child.resident--;
            this.release(entry, node);
          });
        }
        i = j;
      }
    } finally {
      closeFd(fd);
    }
  }

  sharesMm(parentPid: number, childPid: number): void {
    const mm = this.byPid.get(parentPid);
    if (!mm) return;
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
      this.ended.push({ pid: mm.ownerPid, exe: mm.exe, command: mm.command, faults: mm.faults, pages_resident: 0, ranges: 0 });
    }
    mm.table.forEach((addr, entry, node) => this.release(entry, node));
    mm.resident = 0;
    for (const child of mm.unclaimedForks) this.closeMm(child);
    this.mms.delete(mm.uffd);
    closeFd(mm.uffd);
    this.retries = this.retries.filter((r) => r.mm !== mm);
    this.pollListChanged = true;
  }

  // ---- messages -----------------------------------------------------------------------
  /** Reads and handles every queued message of one uffd. */
  service(mm: Mm): void {
    for (;;) {
      const n = readFd(mm.uffd, this.msgBuf, this.msgBuf.byteLength);
      if (n <= 0) {
        if (n === -EAGAIN || n === 0) break;
        // The mm is gone or the fd is broken: nothing more will come from it.
        this.leaveAll(mm);
        return;
      }
      const count = n / UFFD_MSG_SIZE;
      for (let i = 0; i < count; i++) this.handleMsg(mm, i * UFFD_MSG_SIZE);
      if (count < MSGS_PER_READ) break;
    }
  }

  /** Faults that got EAGAIN wait for this: the engine loop polls with a short timeout. */
  get hasRetries(): boolean {
    return this.retries.length > 0;
  }

  /**
   * Serves the faults that got EAGAIN. The kernel lowers mmap_changing only when the
   * thread whose REMOVE/UNMAP event we read has run again, so a retry in the same
   * breath can fail again: the loop calls this after its next poll (≤ 1 ms later).
   */
  retryPending(): void {
    const retries = this.retries;
    this.retries = [];
    for (const r of retries) {
      if (!this.mms.has(r.mm.uffd)) continue;
      // A write fault goes through the whole write-fault path again, not a bare
      // unprotect: a freeze may have made the page PENDING meanwhile (a thread waiting
      // in a fault still enters a ptrace stop), and then it must be copied first.
      if (r.write) this.writeFault(r.mm, r.addr);
      else this.fault(r.mm, r.addr, true);
    }
  }

  private handleMsg(mm: Mm, off: number): void {
    const v = this.msgView;
    const O = UFFD_MSG_OFFSET;
    switch (v.getUint8(off + O.event)) {
      case UFFD_EVENT.PAGEFAULT: {
        const addr = getU64(v, off + O.pagefaultAddress);
        const page = addr - (addr % PAGE);
        if (v.getUint32(off + O.pagefaultFlags, true) & UFFD_PAGEFAULT_FLAG.WP) {
          this.writeFault(mm, page);
          break;
        }
        mm.faults++;
        this.fault(mm, page, false);
        break;
      }
      case UFFD_EVENT.FORK:
        this.onFork(mm, v.getUint32(off + O.forkUfd, true));
        break;
      case UFFD_EVENT.REMAP:
        this.onRemap(mm, getU64(v, off + O.remapFrom), getU64(v, off + O.remapTo), getU64(v, off + O.remapLen));
        break;
      case UFFD_EVENT.REMOVE:
        this.events.remove++;
        this.drop(mm, getU64(v, off + O.removeStart), getU64(v, off + O.removeEnd));
        break;
      case UFFD_EVENT.UNMAP: {
        this.events.unmap++;
        const start = getU64(v, off + O.removeStart);
        const end = getU64(v, off + O.removeEnd);
        this.drop(mm, start, end);
        mm.ranges.remove(start, end);
        break;
      }
      default:
        break;
    }
  }

  /** Serves a missing fault at page `addr`. */
  private fault(mm: Mm, addr: number, isRetry: boolean): void {
    if (DEBUG) fs.writeSync(2, `numactlx-engine: fault 0x${addr.toString(16)} mm ${mm.uffd}${isRetry ? ' (retry)' : ''}\n`);
    if (mm.table.get(addr) !== ABSENT) {
      // Served already as part of a run (a duplicate message): make sure it is awake.
      this.wake(mm, addr, PAGE);
      return;
    }
    let range = mm.ranges.find(addr);
    if (!range) {
      range = this.adoptGrowth(mm, addr);
      if (!range) { this.serveZero(mm, addr, [TO_REAL], [-1]); return; }
    }
    const window = this.faultAheadPages * PAGE;
    const winStart = Math.max(range.start, addr - (addr % window));
    const winEnd = Math.min(range.end, winStart + window);
    let lo = addr;
    while (lo - PAGE >= winStart && mm.table.get(lo - PAGE) === ABSENT) lo -= PAGE;
    let hi = addr + PAGE;
    while (hi < winEnd && mm.table.get(hi) === ABSENT) hi += PAGE;

    // The faulting page first (it must not lose a frame to fault-ahead), then the run
    // grows forward and backward while pages can be placed.
    const policy = range.policy;
    const indexOf = (a: number): number => (a - range!.start) / PAGE;
    let faultTarget = placePage(policy, indexOf(addr), this);
    if (faultTarget === TO_SIGBUS) { this.sigbus(mm, addr); return; }
    let faultFrame = this.reserve(faultTarget);
    if (faultTarget >= 0 && faultFrame < 0) {
      // The store had no frame after all (its filesystem is full: ENOSPC).
      if (placePage(policy, indexOf(addr), { slotOf: (id) => this.slotOf(id), hasRoom: () => false }) === TO_SIGBUS) {
        this.sigbus(mm, addr);
        return;
      }
      this.fallbackStat(mm, addr);
      faultTarget = TO_REAL;
      faultFrame = -1;
    }
    const targets = [faultTarget];
    const frames = [faultFrame];
    let end = addr + PAGE;
    for (; end < hi; end += PAGE) {
      const t = placePage(policy, indexOf(end), this);
      const f = this.reserve(t);
      if (t === TO_SIGBUS || (t >= 0 && f < 0)) break;
      targets.push(t);
      frames.push(f);
    }
    let start = addr;
    for (; start > lo; start -= PAGE) {
      const t = placePage(policy, indexOf(start - PAGE), this);
      const f = this.reserve(t);
      if (t === TO_SIGBUS || (t >= 0 && f < 0)) break;
      targets.unshift(t);
      frames.unshift(f);
    }
    if (!isRetry && faultTarget >= 0) this.nodeStats[faultTarget].faults++;
    this.serveZero(mm, start, targets, frames, addr);
  }

  /**
   * A fault outside every known range: a registered VMA grew in place (mremap without
   * a move, which sends no event). The part of its VMA that no range covers joins with
   * the policy of the range it extends (or the process's), so fault-ahead works there.
   */
  private adoptGrowth(mm: Mm, addr: number): Range | undefined {
    const pid = mm.pids.values().next().value;
    const vma = pid === undefined ? undefined : vmaAround(pid, addr);
    let [lo, hi] = vma ?? [addr, addr + PAGE];
    for (const r of mm.ranges.slice(lo, hi)) {
      if (r.end <= addr) lo = Math.max(lo, r.end);
      else if (r.start > addr) hi = Math.min(hi, r.start);
    }
    const policy = mm.ranges.find(lo - PAGE)?.policy ?? mm.ranges.find(hi)?.policy ?? mm.policy;
    if (!policy) return undefined;
    mm.ranges.add(lo, hi, policy);
    return mm.ranges.find(addr);
  }

  /** A frame for a page going to slot `target`, or -1 for ordinary memory. */
  private reserve(target: number): number {
    return target >= 0 ? this.slots[target].store.allocFrame() : -1; // TO_* targets: no frame
  }

  /** UFFDIO_COPY of zeros over the run at `start`, then records what was placed. */
  private serveZero(mm: Mm, start: number, targets: number[], frames: number[], faultAddr = start): void {
    const count = targets.length;
    let done = 0;
    while (done < count) {
      const dst = start + done * PAGE;
      const len = (count - done) * PAGE;
      const errno = -copyFast(mm.uffd, dst, this.zerosAddr, len, 0);
      const copied = errno !== 0 ? copiedFast() : len;
      const pages = copied / PAGE;
      for (let i = done; i < done + pages; i++) this.placed(mm, start + i * PAGE, targets[i], frames[i], faultAddr);
      done += pages;
      if (errno === 0) continue;
      if (errno === EEXIST) {
        // The page at dst+copied is mapped already (a fork's copy, a racing fault):
        // count it present, give its frame back, go on after it.
        const at = start + done * PAGE;
        this.unreserve(targets, frames, done, done + 1);
        if (mm.table.get(at) === ABSENT) mm.table.set(at, PLACED_REAL);
        done++;
        this.wake(mm, at, PAGE);
        continue;
      }
      this.unreserve(targets, frames, done, count);
      if (errno === ENOENT && count - done > 1 && this.learnVmaBounds(mm, faultAddr)) {
        // The run crossed a VMA boundary (mprotect splits registered VMAs, and one
        // UFFDIO_COPY must stay inside one VMA): the ranges now know the boundary.
        this.fault(mm, faultAddr, true);
        return;
      }
      if (DEBUG) fs.writeSync(2, `numactlx-engine: UFFDIO_COPY 0x${dst.toString(16)}+${len} failed: errno ${errno}\n`);
      // EAGAIN: a REMOVE/UNMAP is queued; retry after reading it. ENOENT/ESRCH: the
      // mapping or the process is gone. Anything else: the thread faults again.
      if (errno === EAGAIN) this.retries.push({ mm, addr: faultAddr, write: false });
      break;
    }
  }

  /**
   * Splits mm's ranges at the bounds of the VMA holding `addr`, read from
   * /proc/PID/maps. Returns false when nothing new was learned (then the fault is
   * served alone).
   */
  private learnVmaBounds(mm: Mm, addr: number): boolean {
    const pid = mm.pids.values().next().value;
    let bounds: [number, number] | undefined;
    if (pid !== undefined) bounds = vmaAround(pid, addr);
    if (!bounds) bounds = [addr, addr + PAGE]; // unknown pid: serve the page alone
    const before = mm.ranges.size;
    mm.ranges.splitAt(bounds[0]);
    mm.ranges.splitAt(bounds[1]);
    return mm.ranges.size !== before;
  }

  private unreserve(targets: number[], frames: number[], from: number, to: number): void {
    for (let i = from; i < to; i++) if (targets[i] >= 0 && frames[i] >= 0) this.slots[targets[i]].store.freeFrame(frames[i]);
  }

  private placed(mm: Mm, addr: number, target: number, frame: number, faultAddr: number): void {
    if (target >= 0) {
      // A new page is DIRTY: its content (zeros, then whatever is written) is in no frame.
      mm.table.set(addr, frame + 1, target, DIRTY);
      this.slots[target].refs[frame] = 1;
      mm.resident++;
      const s = this.nodeStats[target];
      if (mm.everPlaced.add(addr)) s.pages_placed++;
      s.pages_resident++;
      if (addr !== faultAddr) s.fault_ahead_pages++;
    } else {
      mm.table.set(addr, PLACED_REAL);
      if (target === TO_FALLBACK) this.fallbackStat(mm, addr);
    }
  }

  private fallbackStat(mm: Mm, addr: number): void {
    const range = mm.ranges.find(addr);
    const id = range?.policy.nodes.find((n) => this.slotOf(n) >= 0);
    if (id !== undefined) this.nodeStats[this.slotOf(id)].pages_fallback++;
  }

  /** A full --membind node: the faulting thread gets SIGBUS (UFFDIO_POISON, Linux 6.6). */
  private sigbus(mm: Mm, addr: number): void {
    const r = poisonFast(mm.uffd, addr, PAGE);
    if (r === -EAGAIN) {
      this.retries.push({ mm, addr, write: false });
      return;
    }
    if (r < 0) {
      if (DEBUG) fs.writeSync(2, `numactlx-engine: UFFDIO_POISON 0x${addr.toString(16)} failed: errno ${-r}\n`);
      // The thread must not sleep in its fault forever: wake it (it faults again, or
      // its mapping is gone).
      this.wake(mm, addr, PAGE);
    }
    const range = mm.ranges.find(addr);
    const id = range?.policy.nodes.find((n) => this.slotOf(n) >= 0);
    if (id !== undefined) this.nodeStats[this.slotOf(id)].sigbus++;
  }

  /**
   * Answers a write fault on page `addr`: clears its write protection, which wakes the
   * threads waiting there. EAGAIN (an event of this uffd pending): the kernel did
   * nothing and woke no one, so the fault is handled again after the next poll. Any
   * other failure (the mapping is gone): the waiters are woken to fault again.
   */
  unprotect(mm: Mm, addr: number, len: number): void {
    const r = writeprotectFast(mm.uffd, addr, len, false);
    if (r === -EAGAIN) this.retries.push({ mm, addr, write: true });
    else if (r < 0) this.wake(mm, addr, len);
  }

  /**
   * Clears write protection on [addr, addr+len) now, for a caller that cannot wait for
   * a retry (the tracer holds a thread stopped until this returns): on EAGAIN the
   * pending events are read and the call made again. 0 or -errno.
   */
  unprotectNow(mm: Mm, addr: number, len: number): number {
    let r = writeprotectFast(mm.uffd, addr, len, false);
    for (let tries = 0; r === -EAGAIN && tries < UNPROTECT_NOW_TRIES; tries++) {
      this.service(mm);
      if (!this.mms.has(mm.uffd)) return 0;
      if (tries > 0) schedYield();
      r = writeprotectFast(mm.uffd, addr, len, false);
    }
    return r === -ENOENT ? 0 : r;
  }

  /** Write-protects [addr, addr+len) (no wake: nobody waits on a writable page); 0 or -errno. */
  protect(mm: Mm, addr: number, len: number): number {
    return writeprotectFast(mm.uffd, addr, len, true);
  }

  /** Every virtual node's runtime (the snapshot engine walks them). */
  get nodes(): readonly VirtualNodeRuntime[] {
    return this.slots;
  }

  private wake(mm: Mm, addr: number, len: number): void {
    wakeFast(mm.uffd, addr, len);
  }

  /** Gives back what a page held: its frame and its place on the node. */
  private release(entry: number, node: number): void {
    if (entry > 0) {
      this.unref(node, entry - 1);
      this.nodeStats[node].pages_resident--;
    }
  }

  /** Drops one reference to a frame; frees it at zero. */
  unref(slot: number, frame: number): void {
    const refs = this.slots[slot].refs;
    if (refs[frame] > 0 && --refs[frame] === 0) this.slots[slot].store.freeFrame(frame);
  }

  /** munmap / DONTNEED: the pages are gone from the program. */
  private drop(mm: Mm, start: number, end: number): void {
    const part = this.run?.parts.get(mm);
    mm.table.takeRange(start, end, (addr, entry, node, flags) => {
      if (entry > 0) mm.resident--;
      // A page frozen but not copied yet is lost to the snapshot being taken: its
      // content is gone before it could be read (README, "Known limits").
      if (flags & PENDING && part) part.lost.add(addr);
      this.release(entry, node);
    });
    mm.drops.push([start, end]);
  }

  private onFork(parent: Mm, ufd: number): void {
    this.events.fork++;
    const child = new Mm(ufd, parent.exe);
    child.command = parent.command;
    for (const r of parent.ranges.all()) child.ranges.add(r.start, r.end, r.policy);
    child.policy = parent.policy;
    // The child has a copy of every present page: virtual pages get frames of their own.
    parent.table.forEach((addr, entry, node) => {
      if (entry > 0) {
        const f = this.slots[node].store.allocFrame();
        if (f >= 0) {
          child.table.set(addr, f + 1, node, DIRTY);
          this.slots[node].refs[f] = 1;
          child.resident++;
          if (child.everPlaced.add(addr)) this.nodeStats[node].pages_placed++;
          this.nodeStats[node].pages_resident++;
          return;
        }
        this.nodeStats[node].pages_fallback++;
      }
      child.table.set(addr, PLACED_REAL);
    });
    parent.unclaimedForks.push(child);
    this.mms.set(ufd, child);
    this.pollListChanged = true;
  }

  private onRemap(mm: Mm, from: number, to: number, len: number): void {
    this.events.remap++;
    const part = this.run?.parts.get(mm);
    const moved: Array<[number, number, number]> = [];
    mm.table.takeRange(from, from + len, (addr, entry, node, flags) => {
      if (flags & PENDING && part) part.lost.add(addr);
      moved.push([addr - from + to, entry, node]);
    });
    // Moved pages keep their frame but count as new at their new address (DIRTY): the
    // next snapshot copies them there, and their old addresses leave it.
    for (const [addr, entry, node] of moved) {
      mm.table.set(addr, entry, node, entry > 0 ? DIRTY : 0);
    }
    mm.drops.push([from, from + len]);
    const pieces = mm.ranges.slice(from, from + len);
    mm.ranges.remove(from, from + len);
    for (const p of pieces) mm.ranges.add(p.start - from + to, p.end - from + to, p.policy);
  }

  // ---- statistics ---------------------------------------------------------------------
  stats(exeOf: (pid: number) => string): SessionStats {
    const live = [...this.byPid.entries()].map(([pid, mm]) => ({
      pid, exe: exeOf(pid) || mm.exe, command: mm.command, faults: mm.faults, pages_resident: mm.resident, ranges: mm.ranges.size,
    }));
    const processes = [...live, ...this.ended.map((p) => ({ ...p, exited: true }))];
    return {
      nodes: this.nodeStats.map((s, i) => ({ ...s, frames_in_use: this.slots[i].store.framesInUse })),
      processes,
      events: { ...this.events },
      fault_ahead_pages_window: this.faultAheadPages,
    };
  }
}
