// One round of eviction (--max-resident; the steps are drawn in eviction.ts): the victims
// of one address space, written back, marked EVICTED at the stop, reconciled with what
// the drop really did. The page states are in evicted-pages.ts. Owned by the engine thread.
import fs from 'node:fs';
import os from 'node:os';
import { closeFd } from '../sys/eventfd.js';
import { openPagemap, pagemapHasPage, readPagemapRun } from '../sys/pagemap.js';
import { BACK, COPYING, DIRTY, EVICTED, FRESH, PAGE, PENDING, REF, VICTIM } from './page-table.js';
import { MAX_IOV, type RemoteCopier } from './remote-copy.js';
import { noteFresh } from './evicted-pages.js';
import type { Engine, Mm } from './engine.js';
import type { EvictionStats } from '../channels/session-stats.js';

const { EACCES, EPERM, ESRCH } = os.constants.errno;
/** Victims written back per step between fault service (~50–100 µs of process_vm_readv). */
const WRITE_STEP = 64;
const PAGEMAP_RUN = 512;
/** Absent pages a run to drop may span between two victims (one page-table chunk). */
const MAX_GAP = 512;
const DEBUG = process.env.NUMACTLX_DEBUG === '1';

export type RoundPhase = 'writing' | 'requested' | 'dropping';

export class EvictionRound {
  phase: RoundPhase = 'writing';
  readonly startedAt = performance.now();
  rungAt = 0;
  /** When the tracer was asked for the stop. */
  requestedAt = 0;
  /** [start, end) runs being dropped, ascending (from markEvicted on). */
  runs: number[] = [];
  /** A write-back refused (EPERM, EACCES: the process made itself non-dumpable): its pid and errno. */
  unreadable: { pid: number; errno: number } | undefined;
  /** Pages marked EVICTED at the stop (markEvicted), until done() reconciles the drop. */
  droppingPages = 0;
  /** Victims written back so far. */
  private next = 0;
  private readonly frames = new Int32Array(MAX_IOV);
  private readonly olds = new Int32Array(MAX_IOV);

  /** `victims`: pages of mm on node `slot` the CLOCK hand chose, ascending; marked VICTIM here. */
  constructor(private readonly engine: Engine, readonly slot: number, readonly mm: Mm, private readonly victims: number[]) {
    victims.sort((a, b) => a - b);
    for (const addr of victims) mm.table.setFlags(addr, mm.table.flagsOf(addr) | VICTIM);
  }

  private get stats(): EvictionStats {
    return this.engine.nodeStats[this.slot].eviction!;
  }

  /** Writes back the next WRITE_STEP victims; true once every victim has been. */
  writeStep(remote: RemoteCopier): boolean {
    const { mm } = this;
    const dirty: number[] = [];
    const end = Math.min(this.victims.length, this.next + WRITE_STEP);
    for (; this.next < end; this.next++) {
      const addr = this.victims[this.next];
      const flags = mm.table.flagsOf(addr);
      if (mm.table.get(addr) <= 0 || !(flags & VICTIM) || flags & (EVICTED | PENDING | COPYING)) continue;
      if (flags & DIRTY) dirty.push(addr);
    }
    if (dirty.length > 0) this.writeBack(dirty, remote);
    return this.next >= this.victims.length;
  }

  private leave(addr: number): void {
    this.mm.table.setFlags(addr, this.mm.table.flagsOf(addr) & ~VICTIM);
  }

  /**
   * Write-protects the dirty victims `addrs` (ascending), then copies them into their
   * frames: in place when nothing else holds the frame, else into a new one (a snapshot
   * keeps the old). A victim that cannot be protected or copied leaves the round (DIRTY).
   */
  private writeBack(addrs: number[], remote: RemoteCopier): void {
    const { mm, slot, engine } = this;
    const node = engine.slots[slot];
    const kept: number[] = [];
    for (let i = 0; i < addrs.length;) {
      let j = i + 1;
      while (j < addrs.length && addrs[j] === addrs[j - 1] + PAGE) j++;
      // EAGAIN: an event is unread (the kernel did nothing): these pages wait for a later round.
      if (engine.protect(mm, addrs[i], (j - i) * PAGE) === 0) kept.push(...addrs.slice(i, j));
      else for (let k = i; k < j; k++) this.leave(addrs[k]);
      i = j;
    }
    const { frames, olds } = this;
    const dest: number[] = [];
    remote.reset();
    for (const addr of kept) {
      const old = mm.table.get(addr) - 1;
      let frame = old;
      if (node.refs.get(old) > 1) {
        frame = node.store.allocFrame();
        if (frame < 0) { this.leave(addr); continue; } // the node is full: it stays
        node.refs.set(frame, 1);
      }
      frames[dest.length] = frame;
      olds[dest.length] = old;
      dest.push(addr);
      remote.add(node.store.frameAddr(frame), addr, PAGE);
    }
    let n = -ESRCH;
    for (const pid of mm.pids) {
      n = remote.run(pid);
      if (n === -EPERM || n === -EACCES) this.unreadable = { pid, errno: -n };
      if (n !== -ESRCH) break;
    }
    const copied = n < 0 ? 0 : Math.floor(n / PAGE);
    for (let i = 0; i < dest.length; i++) {
      const addr = dest[i];
      if (i >= copied) {
        if (frames[i] !== olds[i]) engine.unref(slot, frames[i]);
        this.leave(addr);
        continue;
      }
      const flags = (mm.table.flagsOf(addr) & ~(DIRTY | BACK)) | FRESH | VICTIM;
      if (frames[i] !== olds[i]) {
        mm.table.set(addr, frames[i] + 1, slot, flags);
        engine.unref(slot, olds[i]);
      } else {
        mm.table.setFlags(addr, flags);
      }
      noteFresh(mm, addr);
      this.stats.bytes_written += PAGE;
    }
  }

  /** Whether a victim is still one (not written to, not refused by the write-back). */
  hasVictims(): boolean {
    return this.victims.some((addr) => (this.mm.table.flagsOf(addr) & VICTIM) !== 0);
  }

  /** The round ends without a drop: its victims are ordinary pages again. */
  abandon(): void {
    for (const addr of this.victims) {
      const flags = this.mm.table.flagsOf(addr);
      if (flags & VICTIM) this.mm.table.setFlags(addr, flags & ~VICTIM);
    }
  }

  /**
   * The stop (every thread of the mm stopped, what was queued read): the victims still
   * clean and not in `keep` become EVICTED; returns their [start, end) runs, ascending.
   */
  markEvicted(keep: number[]): number[] {
    const { mm } = this;
    const kept = (addr: number): boolean => {
      for (let i = 0; i < keep.length; i += 2) if (addr >= keep[i] && addr < keep[i + 1]) return true;
      return false;
    };
    const node = this.engine.nodeStats[this.slot];
    const stats = this.stats;
    const runs: number[] = [];
    for (const addr of this.victims) {
      const flags = mm.table.flagsOf(addr);
      if (!(flags & VICTIM)) continue;
      if (mm.table.get(addr) <= 0 || flags & (DIRTY | EVICTED | PENDING | COPYING) || kept(addr) || mm.pins.has(addr)) {
        mm.table.setFlags(addr, flags & ~VICTIM);
        continue;
      }
      mm.table.setFlags(addr, (flags & ~(VICTIM | REF | BACK)) | EVICTED);
      this.droppingPages++;
      mm.resident--;
      mm.eviction.evicted++;
      node.pages_resident--;
      stats.pages_evicted++;
      stats.evictions++;
      if (runs.length > 0 && this.joins(runs[runs.length - 1], addr)) runs[runs.length - 1] = addr + PAGE;
      else runs.push(addr, addr + PAGE);
    }
    this.runs = runs;
    this.phase = 'dropping';
    return runs;
  }

  /**
   * Whether a run ending at `end` may be extended to the victim at `addr`: every page
   * between is absent already (never placed, or evicted), within one trapped range, and
   * at most MAX_GAP pages — dropping those changes nothing, and each range a drop takes
   * costs a REMOVE event's round trip through this thread.
   */
  private joins(end: number, addr: number): boolean {
    if (addr === end) return true;
    if (addr - end > MAX_GAP * PAGE || this.mm.ranges.find(end) !== this.mm.ranges.find(addr)) return false;
    for (let a = end; a < addr; a += PAGE) {
      const entry = this.mm.table.get(a);
      if (entry !== 0 && !(entry > 0 && this.mm.table.flagsOf(a) & EVICTED)) return false;
    }
    return true;
  }

  /** Whether [start, end) lies within one of the runs being dropped. */
  dropping(start: number, end: number): boolean {
    const runs = this.runs;
    if (this.phase !== 'dropping' || runs.length === 0) return false;
    let lo = 0;
    let hi = runs.length / 2 - 1;
    while (lo < hi) { // the last run starting at or before `start`
      const mid = (lo + hi + 1) >> 1;
      if (runs[2 * mid] <= start) lo = mid;
      else hi = mid - 1;
    }
    return runs[2 * lo] <= start && end <= runs[2 * lo + 1];
  }

  /**
   * The runs as /proc/PID/pagemap has them after the drop: a page it left mapped (mlock'd
   * ranges refuse MADV_DONTNEED) is resident again; one made resident during the drop
   * window (a write-protect fault, Evictor.onWriteFault) and then dropped is evicted
   * again — its frame holds it as written back. Returns the pages left mapped.
   */
  reconcile(pid: number): number {
    let fd: number;
    try {
      fd = openPagemap(pid);
    } catch {
      return 0;
    }
    const { mm } = this;
    const buf = Buffer.alloc(PAGEMAP_RUN * 8);
    let left = 0;
    try {
      for (let i = 0; i < this.runs.length; i += 2) {
        for (let a = this.runs[i]; a < this.runs[i + 1]; a += PAGEMAP_RUN * PAGE) {
          const read = readPagemapRun(fd, a, Math.min(PAGEMAP_RUN, (this.runs[i + 1] - a) / PAGE), buf);
          for (let k = 0; k < read; k++) {
            const addr = a + k * PAGE;
            if (mm.table.get(addr) <= 0) continue;
            const evicted = (mm.table.flagsOf(addr) & EVICTED) !== 0;
            if (pagemapHasPage(buf, k) === evicted) {
              this.flip(addr, !evicted);
              if (evicted) left++;
            }
          }
        }
      }
    } finally {
      closeFd(fd);
    }
    return left;
  }

  /** Evicted again (`evict`), or resident again after all. */
  private flip(addr: number, evict: boolean): void {
    const { mm } = this;
    const node = this.engine.nodeStats[this.slot];
    const stats = this.stats;
    const flags = mm.table.flagsOf(addr);
    const d = evict ? 1 : -1;
    if (evict) {
      if (DEBUG) fs.writeSync(2, `numactlx-engine: eviction: 0x${addr.toString(16)} was written during its drop; its frame holds it as written back\n`);
      // Never PENDING as well: a prepare may have staged it since it came back, and the
      // copier must not read it (it is gone); the freeze records its frame instead.
      mm.table.setFlags(addr, (flags & ~(DIRTY | PENDING | VICTIM | REF | BACK)) | EVICTED | FRESH);
      noteFresh(mm, addr);
    } else {
      mm.table.setFlags(addr, flags & ~EVICTED);
      stats.evictions--;
    }
    mm.resident -= d;
    mm.eviction.evicted += d;
    node.pages_resident -= d;
    stats.pages_evicted += d;
  }
}
