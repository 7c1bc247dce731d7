// The fault service: answers missing faults and write faults on one uffd's pages. Free
// functions over the engine's state (engine-core.ts); the engine (engine.ts) calls them.
//
// Fault service: every queued message is read per wake-up; a missing fault is answered
// with one UFFDIO_COPY of zeros covering the run of absent pages around it, in a window
// that grows with what is placed next to it up to --fault-ahead (fault-ahead.ts), inside
// the range (the copy also wakes every thread waiting in it). Never-written pages must
// read as zeros (ld.so's .bss depends on it); only pages that hold data in a frame would
// be served from the frame, and no page does before snapshots or eviction exist.
//
// Kernel facts the handling follows (userfaultfd(2), Documentation/admin-guide/mm/
// userfaultfd.rst, and what QEMU, CRIU and Firecracker do):
// - EEXIST from UFFDIO_COPY: a page of the run is mapped already (another thread's fault
//   in the same batch, a fork's copy): it is skipped, the rest served, the fault woken;
// - EAGAIN: the mm is changing (a REMOVE/UNMAP event is queued): the part copied is
//   done, the rest is retried after the pending events are read — unless the copy only
//   stopped short (copyStoppedShort: any short copy says EAGAIN), which goes on;
// - ENOENT / ESRCH: the range or the process is gone: drop the fault.
import fs from 'node:fs';
import os from 'node:os';
import { schedYield } from '../sys/sched.js';
import { copiedFast, copyFast, copyStoppedShort, wakeFast, writeprotectFast } from '../sys/userfaultfd-fast.js';
import { ABSENT, DIRTY, EVICTED, PAGE, PLACED_REAL } from './page-table.js';
import type { Mm } from './mm.js';
import { placePage, TO_FALLBACK, TO_REAL, TO_SIGBUS } from './placement.js';
import type { Range } from './ranges.js';
import { vmaAround } from './vma.js';
import type { EngineCore } from './engine-core.js';
import { sigbus, type SigbusOutcome } from './sigbus.js';
import { clipRun } from './recently-removed.js';
import { aheadWindow } from './fault-ahead.js';
import { zappedUnseen } from './page-presence.js';

const { EEXIST, EAGAIN, ENOENT } = os.constants.errno;
/** Reads of pending events before unprotectNow gives up on EAGAIN. */
const UNPROTECT_NOW_TRIES = 1000;
const DEBUG = process.env.NUMACTLX_DEBUG === '1'; // failed kernel calls are reported on stderr

/**
 * Serves the faults that got EAGAIN. The kernel lowers mmap_changing only when the
 * thread whose REMOVE/UNMAP event we read has run again, so a retry in the same
 * breath can fail again: the loop calls this after its next poll (≤ 1 ms later).
 */
export function retryPending(e: EngineCore): void {
  const retries = e.retries;
  e.retries = [];
  for (const r of retries) {
    if (!e.mms.has(r.mm.uffd)) continue;
    // A write fault goes through the whole write-fault path again, not a bare
    // unprotect: a freeze may have made the page PENDING meanwhile (a thread waiting
    // in a fault still enters a ptrace stop), and then it must be copied first.
    if (r.write) e.snapshot.onWriteFault(r.mm, r.addr);
    else fault(e, r.mm, r.addr, true, r.tid);
  }
}

/** Serves a missing fault at page `addr` by thread `tid` (0: unknown). */
export function fault(e: EngineCore, mm: Mm, addr: number, isRetry: boolean, tid = 0): void {
  if (DEBUG) fs.writeSync(2, `numactlx-engine: fault 0x${addr.toString(16)} mm ${mm.uffd}${isRetry ? ' (retry)' : ''}\n`);
  // [eviction] An evicted page comes back from its frame (refault.ts).
  if (mm.table.flagsOf(addr) & EVICTED && e.eviction?.refault(mm, addr, isRetry)) return;
  // Served already as part of a run (a duplicate message): make sure it is awake —
  // unless the kernel zapped it since (page-presence.ts): then it is served again.
  if (mm.table.get(addr) !== ABSENT && !zappedUnseen(e, mm, addr)) return void wake(e, mm, addr, PAGE);
  let range = mm.ranges.find(addr);
  if (!range) {
    if (!isRetry) e.events.growth++; range = adoptGrowth(e, mm, addr); // a retry's range may be unmapped since
    if (!range) { serveZero(e, mm, addr, [TO_REAL], [-1]); return; }
  }
  const [winStart, winEnd] = aheadWindow(addr, range.start, range.end, e.faultAheadPages, (a) => mm.table.get(a) !== ABSENT);
  let lo = addr;
  while (lo - PAGE >= winStart && mm.table.get(lo - PAGE) === ABSENT) lo -= PAGE;
  let hi = addr + PAGE;
  while (hi < winEnd && mm.table.get(hi) === ABSENT) hi += PAGE;
  if (mm.removed.length > 0) [lo, hi] = clipRun(mm, addr, lo, hi);

  // The faulting page first (it must not lose a frame to fault-ahead), then the run
  // grows forward and backward while pages can be placed.
  const policy = range.policy;
  const indexOf = (a: number): number => (a - range!.start) / PAGE;
  let faultTarget = placePage(policy, indexOf(addr), e);
  // [eviction] The node is at its --max-resident limit: the fault waits for a round to make room.
  if (faultTarget >= 0 && e.eviction?.mustWait(faultTarget, mm, addr, isRetry)) return void e.retries.push({ mm, addr, write: false, tid });
  let faultFrame = faultTarget === TO_SIGBUS ? -1 : reserve(e, faultTarget);
  // The store had no frame after all (its filesystem is full: ENOSPC).
  if (faultTarget >= 0 && faultFrame < 0
    && placePage(policy, indexOf(addr), { slotOf: (id) => e.slotOf(id), hasRoom: () => false }) === TO_SIGBUS) {
    faultTarget = TO_SIGBUS;
  }
  if (faultTarget === TO_SIGBUS && fullNode(e, mm, addr, tid) !== 'fallback') return;
  if (faultTarget === TO_SIGBUS || (faultTarget >= 0 && faultFrame < 0)) {
    fallbackStat(e, mm, addr);
    faultTarget = TO_REAL;
    faultFrame = -1;
  }
  const targets = [faultTarget];
  const frames = [faultFrame];
  // [eviction] No further than the room left under the limit, also while the node is let over it.
  const room = faultTarget >= 0 && e.eviction ? e.eviction.room(faultTarget) : Infinity;
  let end = addr + PAGE;
  for (; end < hi && targets.length < room; end += PAGE) {
    const t = placePage(policy, indexOf(end), e);
    const f = reserve(e, t);
    if (t === TO_SIGBUS || (t >= 0 && f < 0)) break;
    targets.push(t);
    frames.push(f);
  }
  let start = addr;
  for (; start > lo && targets.length < room; start -= PAGE) {
    const t = placePage(policy, indexOf(start - PAGE), e);
    const f = reserve(e, t);
    if (t === TO_SIGBUS || (t >= 0 && f < 0)) break;
    targets.unshift(t);
    frames.unshift(f);
  }
  if (!isRetry && faultTarget >= 0) e.nodeStats[faultTarget].faults++;
  serveZero(e, mm, start, targets, frames, addr, tid);
}

/**
 * A fault outside every known range: a registered VMA grew in place (mremap without
 * a move, which sends no event). The part of its VMA that no range covers joins with
 * the policy of the range it extends (or the process's), so fault-ahead works there.
 */
function adoptGrowth(e: EngineCore, mm: Mm, addr: number): Range | undefined {
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
function reserve(e: EngineCore, target: number): number {
  return target >= 0 ? e.slots[target].store.allocFrame() : -1; // TO_* targets: no frame
}

/** UFFDIO_COPY of zeros over the run at `start`, then records what was placed. */
function serveZero(e: EngineCore, mm: Mm, start: number, targets: number[], frames: number[], faultAddr = start, tid = 0): void {
  const count = targets.length;
  let done = 0;
  while (done < count) {
    const dst = start + done * PAGE;
    const len = (count - done) * PAGE;
    const errno = -copyFast(mm.uffd, dst, e.zerosAddr, len, 0);
    const copied = errno !== 0 ? copiedFast() : len;
    const pages = copied / PAGE;
    for (let i = done; i < done + pages; i++) placed(e, mm, start + i * PAGE, targets[i], frames[i], faultAddr);
    done += pages;
    if (errno === 0 || copyStoppedShort(errno)) continue;
    if (errno === EEXIST) {
      // The page at dst+copied is mapped already (a fork's copy, a racing fault):
      // count it present, give its frame back, go on after it.
      const at = start + done * PAGE;
      unreserve(e, targets, frames, done, done + 1);
      if (mm.table.get(at) === ABSENT) mm.table.set(at, PLACED_REAL);
      done++;
      wake(e, mm, at, PAGE);
      continue;
    }
    unreserve(e, targets, frames, done, count);
    if (errno === ENOENT && count - done > 1 && learnVmaBounds(e, mm, faultAddr)) {
      // The run crossed a VMA boundary (mprotect splits registered VMAs, and one
      // UFFDIO_COPY must stay inside one VMA): the ranges now know the boundary.
      fault(e, mm, faultAddr, true, tid);
      return;
    }
    if (DEBUG) fs.writeSync(2, `numactlx-engine: UFFDIO_COPY 0x${dst.toString(16)}+${len} failed: errno ${errno}\n`);
    // EAGAIN: a REMOVE/UNMAP is queued; retry after reading it. ENOENT/ESRCH: the
    // mapping or the process is gone. Anything else: the thread faults again.
    if (errno === EAGAIN) { e.events.retried++; e.retries.push({ mm, addr: faultAddr, write: false, tid }); }
    break;
  }
}

/**
 * Splits mm's ranges at the bounds of the VMA holding `addr`, read from
 * /proc/PID/maps. Returns false when nothing new was learned (then the fault is
 * served alone).
 */
function learnVmaBounds(e: EngineCore, mm: Mm, addr: number): boolean {
  const pid = mm.pids.values().next().value;
  let bounds: [number, number] | undefined;
  if (pid !== undefined) bounds = vmaAround(pid, addr);
  if (!bounds) bounds = [addr, addr + PAGE]; // unknown pid: serve the page alone
  const before = mm.ranges.size;
  mm.ranges.splitAt(bounds[0]);
  mm.ranges.splitAt(bounds[1]);
  return mm.ranges.size !== before;
}

function unreserve(e: EngineCore, targets: number[], frames: number[], from: number, to: number): void {
  for (let i = from; i < to; i++) if (targets[i] >= 0 && frames[i] >= 0) e.slots[targets[i]].store.freeFrame(frames[i]);
}

/** Records page `addr` as placed on `target` (a slot, with its frame) or in ordinary memory; counts it. */
export function placed(e: EngineCore, mm: Mm, addr: number, target: number, frame: number, faultAddr: number): void {
  if (target >= 0) {
    // A new page is DIRTY: its content (zeros, then whatever is written) is in no frame.
    mm.table.set(addr, frame + 1, target, DIRTY);
    e.slots[target].refs.set(frame, 1);
    mm.resident++;
    const s = e.nodeStats[target];
    if (mm.everPlaced.add(addr)) s.pages_placed++;
    s.pages_resident++;
    if (addr !== faultAddr) s.fault_ahead_pages++;
  } else {
    mm.table.set(addr, PLACED_REAL);
    if (target === TO_FALLBACK) fallbackStat(e, mm, addr);
  }
}

function fallbackStat(e: EngineCore, mm: Mm, addr: number): void {
  const range = mm.ranges.find(addr);
  const id = range?.policy.nodes.find((n) => e.slotOf(n) >= 0);
  if (id !== undefined) e.nodeStats[e.slotOf(id)].pages_fallback++;
}

/** A full --membind node: the faulting thread gets SIGBUS (sigbus.ts), said once per node. */
function fullNode(e: EngineCore, mm: Mm, addr: number, tid: number): SigbusOutcome {
  const outcome = sigbus(e, mm, addr, tid);
  if (outcome === 'retry') e.retries.push({ mm, addr, write: false, tid });
  const range = mm.ranges.find(addr);
  const id = range?.policy.nodes.find((n) => e.slotOf(n) >= 0);
  if (outcome === 'retry' || id === undefined) return outcome;
  const slot = e.slotOf(id);
  const stats = e.nodeStats[slot];
  const where = `node ${id} is full (backing ${e.slots[slot].backing}): a page the program touched there ` +
    `(pid ${mm.ownerPid}, 0x${addr.toString(16)})`;
  // Once per node and session: the program may well die of it, and the shell's bare
  // "Bus error" would not say why.
  if (outcome === 'sent' && stats.sigbus++ === 0) {
    fs.writeSync(2, `numactlx: ${where} gets SIGBUS under --membind; a larger backing ` +
      '(--remap=…,size=) or --preferred (falls back to ordinary memory) avoids it\n');
  }
  if (outcome === 'fallback' && stats.pages_fallback === 0) {
    fs.writeSync(2, `numactlx: ${where} goes to ordinary memory: its thread blocks or ignores SIGBUS, or is not ` +
      "the program's, and without UFFDIO_POISON (Linux 6.6) numactlx cannot force the signal on it\n");
  }
  return outcome;
}

/**
 * Answers a write fault on page `addr`: clears its write protection, which wakes the
 * threads waiting there. EAGAIN (an event of this uffd pending): the kernel did
 * nothing and woke no one, so the fault is handled again after the next poll. Any
 * other failure (the mapping is gone): the waiters are woken to fault again.
 */
export function unprotect(e: EngineCore, mm: Mm, addr: number, len: number): void {
  const r = writeprotectFast(mm.uffd, addr, len, false);
  if (r === -EAGAIN) e.retries.push({ mm, addr, write: true, tid: 0 });
  else if (r < 0) wake(e, mm, addr, len);
}

/**
 * Clears write protection on the run [start, start+len) opened by a write fault at addr,
 * waking the writer. EAGAIN: retried through the write-fault path (retryPending). Any
 * other failure (a run the kernel will not take whole, e.g. across a VMA that is not
 * registered) falls back to the faulting page alone, so the writer is never left to
 * fault on the same page for ever.
 */
export function unprotectRun(e: EngineCore, mm: Mm, addr: number, start: number, len: number): void {
  if (len === PAGE) { unprotect(e, mm, addr, PAGE); return; }
  const r = writeprotectFast(mm.uffd, start, len, false);
  if (r === -EAGAIN) e.retries.push({ mm, addr, write: true, tid: 0 });
  else if (r < 0) unprotect(e, mm, addr, PAGE);
}

/**
 * Clears write protection on [addr, addr+len) now, for a caller that cannot wait for
 * a retry (the tracer holds a thread stopped until this returns): on EAGAIN the
 * pending events are read and the call made again. 0 or -errno.
 */
export function unprotectNow(e: EngineCore, mm: Mm, addr: number, len: number): number {
  let r = writeprotectFast(mm.uffd, addr, len, false);
  for (let tries = 0; r === -EAGAIN && tries < UNPROTECT_NOW_TRIES; tries++) {
    e.service(mm);
    if (!e.mms.has(mm.uffd)) return 0;
    if (tries > 0) schedYield();
    r = writeprotectFast(mm.uffd, addr, len, false);
  }
  return r === -ENOENT ? 0 : r;
}

/** Write-protects [addr, addr+len) (no wake: nobody waits on a writable page); 0 or -errno. */
export function protect(e: EngineCore, mm: Mm, addr: number, len: number): number {
  return writeprotectFast(mm.uffd, addr, len, true);
}

export function wake(e: EngineCore, mm: Mm, addr: number, len: number): void {
  wakeFast(mm.uffd, addr, len);
}
