// Serving a missing fault on an evicted page (--max-resident): UFFDIO_COPY from its frame
// in the backing (mapped in numactlx), write-protected (MODE_WP: the page comes back
// clean, and its first write says it is used: REF, DIRTY), with the evicted pages around
// it read ahead in the same copy. The window adapts as the kernel's swap read-ahead does:
// a refault next to the last one doubles it (up to the fault-ahead window), any other
// starts again at one page, so that random access reads no more than it uses.
//
// One UFFDIO_COPY needs one contiguous source: frames in a row (the usual case: frames
// are handed out in the order pages are first touched) are copied straight from the
// mapping; scattered ones are gathered into a staging buffer first (memcpy, ~12 GB/s).
// A frame not in the page cache is read from the medium by that copy (a page fault of
// the engine thread on its own mapping).
//
// Kernel answers (fault-service.ts has the same): EEXIST — that page is mapped after all
// (a drop of it not read yet): leave it evicted, wake its waiters, go on; EAGAIN — an
// event is unread: retry after the next poll; ENOENT — the run crossed a VMA boundary
// (the faulting page alone is tried again) or the range is gone.
import fs from 'node:fs';
import os from 'node:os';
import { bufferAddress } from '../sys/mman.js';
import { schedYield } from '../sys/sched.js';
import { copiedFast, copyFast, copyStoppedShort, wakeFast } from '../sys/userfaultfd-fast.js';
import { UFFDIO_COPY_MODE } from '../sys/userfaultfd-uapi.js';
import { BACK, EVICTED, PAGE, REF } from './page-table.js';
import type { Mm } from './mm.js';
import type { EngineCore } from './engine-core.js';
import { FrameViews } from '../../backing/frame-views.js';

const { EAGAIN, EEXIST, ENOENT } = os.constants.errno;
const MODE_WP = Number(UFFDIO_COPY_MODE.WP);
const DEBUG = process.env.NUMACTLX_DEBUG === '1';

export class Refaulter {
  private readonly staging: Buffer;
  private readonly stagingAddr: number;
  private readonly frames: number[] = [];
  /** Per node: its frames as Buffers (for gathering scattered ones). */
  private readonly views: FrameViews[];

  constructor(private readonly e: EngineCore, private readonly maxPages: number) {
    this.staging = Buffer.alloc(maxPages * PAGE);
    this.stagingAddr = Number(bufferAddress(this.staging));
    this.views = e.slots.map((s) => new FrameViews(s.store.frameAddr(0), s.store.frameCount));
  }

  /** Serves the missing fault at page `addr`, whose entry is EVICTED; `room`: pages it may bring in at most. */
  serve(mm: Mm, addr: number, isRetry: boolean, room = Infinity): void {
    const { table } = mm;
    const slot = table.nodeOf(addr);
    const ev = mm.eviction;
    // Sequential: this fault continues the last run (or falls within a window of it).
    const sequential = ev.lastEnd >= 0 && addr >= ev.lastEnd - ev.window * PAGE && addr <= ev.lastEnd + ev.window * PAGE;
    ev.window = sequential ? Math.min(this.maxPages, ev.window * 2) : 1;
    const range = mm.ranges.find(addr);
    const span = Math.min(ev.window, room) * PAGE;
    const winStart = Math.max(range?.start ?? addr, addr - (addr % span));
    const winEnd = Math.min(range?.end ?? addr + PAGE, winStart + span);
    const evictedOnSlot = (a: number): boolean => table.get(a) > 0 && (table.flagsOf(a) & EVICTED) !== 0 && table.nodeOf(a) === slot;
    let lo = addr;
    while (lo - PAGE >= winStart && evictedOnSlot(lo - PAGE)) lo -= PAGE;
    let hi = addr + PAGE;
    while (hi < winEnd && evictedOnSlot(hi)) hi += PAGE;
    this.copyRun(mm, lo, hi, addr, slot, isRetry);
  }

  private copyRun(mm: Mm, lo: number, hi: number, faultAddr: number, slot: number, isRetry: boolean): void {
    const e = this.e;
    const store = e.slots[slot].store;
    const frames = this.frames;
    frames.length = 0;
    let inRow = true;
    for (let a = lo; a < hi; a += PAGE) {
      const f = mm.table.get(a) - 1;
      if (frames.length > 0 && f !== frames[frames.length - 1] + 1) inRow = false;
      frames.push(f);
    }
    let src = store.frameAddr(frames[0]);
    if (!inRow) {
      const views = this.views[slot];
      for (let i = 0; i < frames.length; i++) views.view(frames[i]).copy(this.staging, i * PAGE);
      src = this.stagingAddr;
    }
    const count = frames.length;
    let done = 0;
    while (done < count) {
      const len = (count - done) * PAGE;
      const errno = -copyFast(mm.uffd, lo + done * PAGE, src + done * PAGE, len, MODE_WP);
      const copied = errno !== 0 ? copiedFast() / PAGE : count - done;
      for (let i = done; i < done + copied; i++) this.back(mm, lo + i * PAGE, lo + i * PAGE === faultAddr, slot);
      done += copied;
      if (errno === 0) break;
      if (copyStoppedShort(errno)) continue;
      if (errno === EEXIST) {
        // Mapped after all (a drop of it not read yet): it stays evicted; its waiters fault again.
        wakeFast(mm.uffd, lo + done * PAGE, PAGE);
        done++;
        continue;
      }
      if (DEBUG) fs.writeSync(2, `numactlx-engine: refault UFFDIO_COPY 0x${(lo + done * PAGE).toString(16)}+${len} failed: errno ${errno}\n`);
      if (errno === EAGAIN) {
        e.events.retried++;
        e.retries.push({ mm, addr: faultAddr, write: false, tid: 0 });
      } else if (errno === ENOENT && count > 1 && mm.table.flagsOf(faultAddr) & EVICTED) {
        // A VMA boundary inside the run (mprotect split the range): the faulting page alone.
        const f = mm.table.get(faultAddr) - 1;
        if (copyFast(mm.uffd, faultAddr, store.frameAddr(f), PAGE, MODE_WP) === 0) this.back(mm, faultAddr, true, slot);
        else wakeFast(mm.uffd, faultAddr, PAGE);
      }
      break;
    }
    mm.eviction.lastEnd = hi;
    const stats = e.nodeStats[slot].eviction;
    if (stats && !isRetry) stats.refault_faults++;
  }

  /** The page at addr is in the program again, clean and write-protected; its frame holds it (BACK). */
  private back(mm: Mm, addr: number, faulted: boolean, slot: number): void {
    const flags = (mm.table.flagsOf(addr) & ~EVICTED) | BACK;
    mm.table.setFlags(addr, faulted ? flags | REF : flags);
    mm.resident++;
    mm.eviction.evicted--;
    const node = this.e.nodeStats[slot];
    node.pages_resident++;
    const stats = node.eviction;
    if (stats) {
      stats.pages_evicted--;
      stats.refaults++;
      stats.bytes_read += PAGE;
      if (node.pages_resident > stats.peak_resident_pages) stats.peak_resident_pages = node.pages_resident;
    }
  }

  /** Brings the evicted page at `page` back now, retrying while the kernel says EAGAIN (an event unread). */
  bringBack(mm: Mm, page: number): void {
    const e = this.e;
    for (let tries = 0; tries < 1000 && mm.table.flagsOf(page) & EVICTED && e.mms.has(mm.uffd); tries++) {
      if (tries > 0) {
        e.service(mm);
        schedYield();
      }
      this.serve(mm, page, true);
    }
    e.retries = e.retries.filter((x) => x.mm !== mm || x.addr !== page);
  }
}
