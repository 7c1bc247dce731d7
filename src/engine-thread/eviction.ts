// Eviction to the backing (--max-resident): past a node's resident limit, pages go back
// to their frames and leave the program's memory; a later fault brings them back from
// there (refault.ts). The engine's side; the page states are in evicted-pages.ts.
//
// One round at a time, over one address space, in four steps:
// 1. choose (the engine, program running): the CLOCK hand (resident-set.ts) picks up to a
//    batch of victims, marked VICTIM;
// 2. write back (the engine, program running, WRITE_STEP pages between fault service):
//    a victim DIRTY since its frame was written is write-protected, then copied into its
//    frame (process_vm_readv; a new frame when a snapshot holds the old one) and becomes
//    clean and FRESH; a clean victim has its content in its frame already and is not
//    written. A write to a victim from here on is a write-protect fault, which takes it
//    out of the round (REF: it is in use);
// 3. stop (the tracer, src/tracer-thread/evict-stop.ts, asked through
//    src/channels/evict-request.ts): every thread of the mm stops; the engine reads what
//    is queued on the uffd, keeps the victims still clean, marks them EVICTED and hands the
//    tracer their ranges (EvictRanges) — nothing of the program runs from here until the
//    drop is done, so no page can change or move between that choice and the drop;
// 4. drop (the tracer injects process_madvise(MADV_DONTNEED) into a stopped thread): the
//    REMOVE events it raises are the engine's own (isOwnDrop); EvictDone: whatever the drop
//    left mapped (mlock'd ranges refuse MADV_DONTNEED) is counted resident again (pagemap).
// A fault that would take a node past its limit waits (mustWait: a first touch may place
// a whole fault-ahead window, a refault's read-ahead is cut to the room left) until a
// round has made room — except faults of numactlx's own threads (the tracer's accesses to
// the program's memory: waiting for them would wait for the tracer itself), faults in the
// mm being dropped that are not retries (only the thread the tracer injects into runs
// then, and the tracer waits for it), and, while no victim can be found, all of them (a
// node of pinned or frozen pages must not hang). So the node's pages in the program stay
// within the limit, plus what a drop's injected thread needs (its rseq area).
import fs from 'node:fs';
import os from 'node:os';
import { closeFd } from '../sys/eventfd.js';
import { openPagemap, pagemapHasPage, readPagemapRun } from '../sys/pagemap.js';
import { schedYield } from '../sys/sched.js';
import { wakeFast } from '../sys/userfaultfd.js';
import { COPYING, DIRTY, EVICTED, FRESH, PAGE, PENDING, REF, VICTIM } from './page-table.js';
import { ResidentSet } from './resident-set.js';
import { Refaulter } from './refault.js';
import { MAX_IOV, RemoteCopier } from './remote-copy.js';
import { noteFresh, recordFresh } from './evicted-pages.js';
import type { EvictChannel } from '../channels/evict-request.js';
import type { Engine, Mm } from './engine.js';
import type { EvictionHooks } from './engine-core.js';
import type { MmPart } from './snapshot.js';
import type { ChecksumQueue } from '../channels/checksum-ring.js';
import type { EvictionStats } from '../channels/session-stats.js';

const { ESRCH } = os.constants.errno;
/** Victims written back per step between fault service (~50–100 µs of process_vm_readv). */
const WRITE_STEP = 64;
/** A round's victims: an eighth of the limit, within these bounds (pages). */
const MIN_BATCH = 64;
const MAX_BATCH = 8192;
/** The tracer did not take a request this long after the ring: ring again (a SIGURG coalesced). */
const RERING_MS = 50;
/** A sweep that found no victim: the node is let over its limit this long before the next try. */
const STUCK_MS = 10;
const PAGEMAP_RUN = 512;
const DEBUG = process.env.NUMACTLX_DEBUG === '1';

interface Round {
  slot: number;
  mm: Mm;
  victims: number[];
  /** Victims written back so far. */
  next: number;
  phase: 'writing' | 'requested' | 'dropping';
  startedAt: number;
  rungAt: number;
  /** [start, end) runs being dropped, ascending. */
  runs: number[];
}

export class Evictor implements EvictionHooks {
  private readonly sets: Array<ResidentSet | undefined>;
  private readonly stuckUntil: number[];
  private readonly refaulter: Refaulter;
  private readonly remote = new RemoteCopier();
  private round: Round | undefined;
  private readonly pagemapBuf = Buffer.alloc(PAGEMAP_RUN * 8);
  /** Thread ids known to be numactlx's own (true) or not (false). */
  private readonly ownTids = new Map<number, boolean>();
  private readonly scratchFrames = new Int32Array(MAX_IOV);
  private readonly scratchOld = new Int32Array(MAX_IOV);
  private readonly scratchAddr: number[] = [];

  /** `limits`: per node (slot) the most pages it may keep in the program's memory, 0 for none. */
  constructor(private readonly engine: Engine, limits: number[], private readonly channel: EvictChannel,
    private readonly checksums: ChecksumQueue) {
    this.sets = limits.map((limit, slot) => (limit > 0 ? new ResidentSet(slot, limit) : undefined));
    this.stuckUntil = limits.map(() => 0);
    limits.forEach((limit, slot) => {
      if (limit > 0) {
        engine.nodeStats[slot].eviction = {
          max_resident_bytes: limit * PAGE, pages_evicted: 0, evictions: 0, refaults: 0, refault_faults: 0,
          bytes_read: 0, bytes_written: 0, rounds: 0, evict_ms: 0, pause_ms: 0, fault_waits: 0, peak_resident_pages: 0,
        };
      }
    });
    this.refaulter = new Refaulter(engine, Math.max(1, engine.faultAheadPages));
    // After the snapshot engine's: a write is first a sign of use, then whatever it was.
    const inner = engine.writeFault;
    engine.writeFault = (mm, addr) => this.onWriteFault(mm, addr, inner);
    engine.eviction = this;
  }

  private stats(slot: number): EvictionStats {
    return this.engine.nodeStats[slot].eviction!;
  }

  /** A round's victims: an eighth of the limit, at least two fault-ahead windows, at most half the limit. */
  private batch(set: ResidentSet): number {
    const want = Math.max(MIN_BATCH, 2 * this.engine.faultAheadPages, Math.min(MAX_BATCH, set.limit >> 3));
    return Math.max(1, Math.min(want, set.limit >> 1));
  }

  /** Where a round starts: far enough below the limit that a first touch rarely waits. */
  private mark(set: ResidentSet): number {
    return set.limit - (this.batch(set) >> 1) - this.engine.faultAheadPages;
  }

  // ---- the engine loop --------------------------------------------------------------------
  /** How long the engine loop may block in poll for eviction's sake (ms; -1: no limit). */
  get pollTimeout(): number {
    const r = this.round;
    if (r?.phase === 'writing') return 0;
    if (r?.phase === 'requested') return RERING_MS;
    if (!r && this.wanted() >= 0) return 0;
    return -1;
  }

  /** One step of the round in progress, or the start of one when a node is over its mark. */
  step(): void {
    const r = this.round;
    if (!r) {
      this.start();
      return;
    }
    if (r.phase !== 'dropping' && !this.engine.mms.has(r.mm.uffd)) {
      if (r.phase === 'writing' || this.channel.cancel()) this.round = undefined;
      return; // else taken: EvictDone ends it
    }
    if (r.phase === 'writing') {
      this.writeStep(r);
    } else if (r.phase === 'requested' && performance.now() - r.rungAt > RERING_MS && !this.channel.taken) {
      r.rungAt = performance.now();
      if (this.channel.ring() === -ESRCH && this.channel.cancel()) this.abandon(r);
    }
  }

  /** The slot of a node past the mark where a round starts, or -1. */
  private wanted(): number {
    const now = performance.now();
    for (let slot = 0; slot < this.sets.length; slot++) {
      const set = this.sets[slot];
      if (!set || now < this.stuckUntil[slot]) continue;
      const resident = this.engine.nodeStats[slot].pages_resident;
      const stats = this.stats(slot);
      if (resident > stats.peak_resident_pages) stats.peak_resident_pages = resident;
      if (resident > this.mark(set)) return slot;
    }
    return -1;
  }

  private start(): void {
    const slot = this.wanted();
    if (slot < 0) return;
    const set = this.sets[slot]!;
    const victims: number[] = [];
    // Two turns of the hand at most: the first may only clear REF bits.
    const budget = 2 * this.engine.nodeStats[slot].pages_resident + 1024;
    const mm = set.sweep(this.engine.mms.values(), this.batch(set), budget, victims);
    if (!mm || victims.length === 0) {
      this.stuckUntil[slot] = performance.now() + STUCK_MS;
      return;
    }
    for (const addr of victims) mm.table.setFlags(addr, mm.table.flagsOf(addr) | VICTIM);
    this.round = { slot, mm, victims, next: 0, phase: 'writing', startedAt: performance.now(), rungAt: 0, runs: [] };
  }

  /** Writes back the next WRITE_STEP victims; when all are, asks the tracer for the stop. */
  private writeStep(r: Round): void {
    const { mm } = r;
    const dirty = this.scratchAddr;
    dirty.length = 0;
    const end = Math.min(r.victims.length, r.next + WRITE_STEP);
    for (; r.next < end; r.next++) {
      const addr = r.victims[r.next];
      const flags = mm.table.flagsOf(addr);
      if (mm.table.get(addr) <= 0 || !(flags & VICTIM) || flags & (EVICTED | PENDING | COPYING)) continue;
      if (flags & DIRTY) dirty.push(addr);
    }
    if (dirty.length > 0) this.writeBack(r, dirty);
    if (r.next < r.victims.length) return;
    this.channel.post([...mm.pids]);
    r.phase = 'requested';
    r.rungAt = performance.now();
    if (this.channel.ring() === -ESRCH && this.channel.cancel()) this.abandon(r);
  }

  /**
   * Write-protects the dirty victims `addrs` (ascending), then copies them into their
   * frames: in place when nothing else holds the frame, else into a new one. A victim
   * that cannot be protected or copied leaves the round (still DIRTY).
   */
  private writeBack(r: Round, addrs: number[]): void {
    const { mm, slot } = r;
    const engine = this.engine;
    const node = engine.slots[slot];
    const leave = (addr: number): void => mm.table.setFlags(addr, mm.table.flagsOf(addr) & ~VICTIM);
    const kept: number[] = [];
    for (let i = 0; i < addrs.length;) {
      let j = i + 1;
      while (j < addrs.length && addrs[j] === addrs[j - 1] + PAGE) j++;
      // EAGAIN: an event is unread (the kernel did nothing): these pages wait for a later round.
      if (engine.protect(mm, addrs[i], (j - i) * PAGE) === 0) kept.push(...addrs.slice(i, j));
      else for (let k = i; k < j; k++) leave(addrs[k]);
      i = j;
    }
    const frames = this.scratchFrames;
    const olds = this.scratchOld;
    const dest: number[] = [];
    this.remote.reset();
    for (const addr of kept) {
      const old = mm.table.get(addr) - 1;
      let frame = old;
      if (node.refs.get(old) > 1) {
        frame = node.store.allocFrame();
        if (frame < 0) { leave(addr); continue; } // the node is full: it stays
        node.refs.set(frame, 1);
      }
      frames[dest.length] = frame;
      olds[dest.length] = old;
      dest.push(addr);
      this.remote.add(node.store.frameAddr(frame), addr, PAGE);
    }
    let n = -ESRCH;
    for (const pid of mm.pids) {
      n = this.remote.run(pid);
      if (n !== -ESRCH) break;
    }
    const copied = n < 0 ? 0 : Math.floor(n / PAGE);
    const stats = this.stats(slot);
    for (let i = 0; i < dest.length; i++) {
      const addr = dest[i];
      if (i >= copied) {
        if (frames[i] !== olds[i]) engine.unref(slot, frames[i]);
        leave(addr);
        continue;
      }
      const flags = (mm.table.flagsOf(addr) & ~DIRTY) | FRESH | VICTIM;
      if (frames[i] !== olds[i]) {
        mm.table.set(addr, frames[i] + 1, slot, flags);
        engine.unref(slot, olds[i]);
      } else {
        mm.table.setFlags(addr, flags);
      }
      noteFresh(mm, addr);
      stats.bytes_written += PAGE;
    }
  }

  /** Ends a round that will not drop anything: its victims are ordinary pages again. */
  private abandon(r: Round): void {
    for (const addr of r.victims) {
      const flags = r.mm.table.flagsOf(addr);
      if (flags & VICTIM) r.mm.table.setFlags(addr, flags & ~VICTIM);
    }
    if (this.round === r) this.round = undefined;
  }

  // ---- the stop (synchronous calls from the tracer) ----------------------------------------
  /**
   * Every thread of pid's mm is stopped: the victims still clean become EVICTED and their
   * ranges go to the eviction channel; nothing in `keep` ([start, end) pairs: what the
   * kernel or the tracer touches before the threads resume). Returns how many ranges (0:
   * nothing to drop).
   */
  ranges(pid: number, keep: number[]): number {
    const r = this.round;
    if (!r || r.phase !== 'requested' || this.engine.mmOf(pid) !== r.mm) return 0;
    const { mm, slot } = r;
    // What was queued before the threads stopped (a write fault on a victim, a drop by the
    // program, a fork) is handled first: then nothing changes until the drop is done.
    this.engine.service(mm);
    if (!this.engine.mms.has(mm.uffd)) return 0;
    const kept = (addr: number): boolean => {
      for (let i = 0; i < keep.length; i += 2) if (addr >= keep[i] && addr < keep[i + 1]) return true;
      return false;
    };
    const node = this.engine.nodeStats[slot];
    const stats = this.stats(slot);
    const runs: number[] = [];
    r.victims.sort((a, b) => a - b);
    for (const addr of r.victims) {
      const flags = mm.table.flagsOf(addr);
      if (!(flags & VICTIM)) continue;
      const keep = mm.table.get(addr) <= 0 || flags & (DIRTY | EVICTED | PENDING | COPYING)
        || kept(addr) || mm.pins.has(addr);
      if (keep) { mm.table.setFlags(addr, flags & ~VICTIM); continue; }
      mm.table.setFlags(addr, (flags & ~(VICTIM | REF)) | EVICTED);
      mm.resident--;
      mm.eviction.evicted++;
      node.pages_resident--;
      stats.pages_evicted++;
      stats.evictions++;
      if (runs.length > 0 && runs[runs.length - 1] === addr) runs[runs.length - 1] = addr + PAGE;
      else runs.push(addr, addr + PAGE);
    }
    r.runs = runs;
    r.phase = 'dropping';
    return this.channel.setRanges(runs);
  }

  /** The drop is done (the threads are still stopped): what it left mapped is resident again. */
  done(pid: number, bytes: number, pauseMs: number): void {
    this.channel.finish();
    const r = this.round;
    if (!r) return;
    this.round = undefined;
    if (r.phase !== 'dropping') {
      this.abandon(r);
      return;
    }
    const left = this.engine.mms.has(r.mm.uffd) ? this.reconcile(r, pid) : 0;
    const stats = this.stats(r.slot);
    stats.rounds++;
    stats.evict_ms += performance.now() - r.startedAt;
    stats.pause_ms += pauseMs;
    if (DEBUG) {
      fs.writeSync(2, `numactlx-engine: eviction round: ${r.runs.length / 2} ranges [${r.runs.slice(0, 8).map((x) => x.toString(16)).join(' ')}], ${bytes} bytes dropped, ${left} pages left ` +
        `mapped, ${(performance.now() - r.startedAt).toFixed(2)} ms, pause ${pauseMs.toFixed(2)} ms\n`);
    }
  }

  /**
   * The round's pages as /proc/PID/pagemap has them after the drop: one it left mapped
   * (mlock'd ranges refuse MADV_DONTNEED) is resident again; one made resident during the
   * drop window (a write-protect fault served, onWriteFault) and then dropped is evicted
   * again — its frame has its content as written back. Returns the pages left mapped.
   */
  private reconcile(r: Round, pid: number): number {
    let fd: number;
    try {
      fd = openPagemap(pid);
    } catch {
      return 0;
    }
    const { mm } = r;
    const node = this.engine.nodeStats[r.slot];
    const stats = this.stats(r.slot);
    let left = 0;
    try {
      for (let i = 0; i < r.runs.length; i += 2) {
        for (let a = r.runs[i]; a < r.runs[i + 1]; a += PAGEMAP_RUN * PAGE) {
          const count = Math.min(PAGEMAP_RUN, (r.runs[i + 1] - a) / PAGE);
          const read = readPagemapRun(fd, a, count, this.pagemapBuf);
          for (let k = 0; k < read; k++) {
            const addr = a + k * PAGE;
            const flags = mm.table.flagsOf(addr);
            if (mm.table.get(addr) <= 0) continue;
            if (!pagemapHasPage(this.pagemapBuf, k)) {
              if (!(flags & EVICTED)) this.reEvict(mm, addr, r.slot);
              continue;
            }
            if (!(flags & EVICTED)) continue;
            mm.table.setFlags(addr, flags & ~EVICTED);
            mm.resident++;
            mm.eviction.evicted--;
            node.pages_resident++;
            stats.pages_evicted--;
            stats.evictions--;
            left++;
          }
        }
      }
    } finally {
      closeFd(fd);
    }
    return left;
  }

  /** A page found dropped though its entry says resident (see reconcile): evicted again. */
  private reEvict(mm: Mm, addr: number, slot: number): void {
    if (DEBUG) fs.writeSync(2, `numactlx-engine: eviction: 0x${addr.toString(16)} was written during the drop; its frame holds it as written back\n`);
    mm.table.setFlags(addr, (mm.table.flagsOf(addr) & ~(DIRTY | VICTIM | REF)) | EVICTED | FRESH);
    noteFresh(mm, addr);
    mm.resident--;
    mm.eviction.evicted++;
    this.engine.nodeStats[slot].pages_resident--;
    this.stats(slot).pages_evicted++;
  }

  // ---- hooks (engine-core.ts EvictionHooks) ------------------------------------------------
  isOwnDrop(mm: Mm, start: number, end: number): boolean {
    const r = this.round;
    if (!r || r.phase !== 'dropping' || r.mm !== mm) return false;
    // The runs are ascending: find the last that starts at or before `start`.
    const runs = r.runs;
    let lo = 0;
    let hi = runs.length / 2 - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (runs[2 * mid] <= start) lo = mid;
      else hi = mid - 1;
    }
    return runs.length > 0 && runs[2 * lo] <= start && end <= runs[2 * lo + 1];
  }

  mustWait(slot: number, mm: Mm, addr: number, isRetry: boolean, pages = this.engine.faultAheadPages): boolean {
    const set = this.sets[slot];
    if (!set || this.engine.nodeStats[slot].pages_resident + pages <= set.limit) return false;
    if (performance.now() < this.stuckUntil[slot]) return false;
    // During a drop only the thread the tracer injects into runs: it must never wait. A
    // retry is another thread's fault from before the stop: it waits for the round's end.
    const r = this.round;
    if (r && r.phase === 'dropping' && r.mm === mm) return isRetry;
    if (this.isOwnThread(this.engine.faultTid)) return false;
    if (!isRetry) this.stats(slot).fault_waits++;
    return true;
  }

  refault(mm: Mm, addr: number, isRetry: boolean): void {
    const slot = mm.table.nodeOf(addr);
    if (this.mustWait(slot, mm, addr, isRetry, 1)) {
      this.engine.retries.push({ mm, addr, write: false });
      return;
    }
    // Read-ahead no further than the room left under the limit (one page at least).
    const set = this.sets[slot];
    const room = set ? Math.max(1, set.limit - this.engine.nodeStats[slot].pages_resident) : Infinity;
    this.refaulter.serve(mm, addr, isRetry, room);
  }

  recordFresh(mm: Mm, part: MmPart): void {
    recordFresh(this.engine, mm, part, this.checksums);
  }

  /**
   * A thread is exiting and the kernel will write its clear_child_tid word at addr, which
   * no userfaultfd serves for an exiting task: an evicted page there comes back now.
   */
  bringBack(pid: number, addr: number): void {
    const mm = this.engine.mmOf(pid);
    if (!mm) return;
    const page = addr - (addr % PAGE);
    for (let tries = 0; tries < 1000 && mm.table.flagsOf(page) & EVICTED && this.engine.mms.has(mm.uffd); tries++) {
      if (tries > 0) {
        this.engine.service(mm);
        schedYield();
      }
      this.refaulter.serve(mm, page, true);
    }
    this.engine.retries = this.engine.retries.filter((x) => x.mm !== mm || x.addr !== page);
  }

  /**
   * A write to a write-protected page: it is in use (REF) and no victim any more. On an
   * evicted page it can only be a fault from before the drop: the thread faults again,
   * missing, and the page comes back from its frame — unless it is mapped after all
   * (pagemap), then it is resident again first.
   */
  private onWriteFault(mm: Mm, addr: number, inner: (mm: Mm, addr: number) => void): void {
    const flags = mm.table.flagsOf(addr);
    if (mm.table.get(addr) > 0) {
      if (flags & EVICTED) {
        if (!this.mappedAfterAll(mm, addr)) {
          wakeFast(mm.uffd, addr, PAGE);
          return;
        }
      } else if ((flags & (REF | VICTIM)) !== REF) {
        mm.table.setFlags(addr, (flags & ~VICTIM) | REF);
      }
    }
    inner(mm, addr);
  }

  /** An evicted page found mapped (pagemap): resident again. */
  private mappedAfterAll(mm: Mm, addr: number): boolean {
    const pid = mm.pids.values().next().value;
    if (pid === undefined) return false;
    let fd: number;
    try {
      fd = openPagemap(pid);
    } catch {
      return false;
    }
    try {
      if (readPagemapRun(fd, addr, 1, this.pagemapBuf) !== 1 || !pagemapHasPage(this.pagemapBuf, 0)) return false;
    } finally {
      closeFd(fd);
    }
    const slot = mm.table.nodeOf(addr);
    mm.table.setFlags(addr, mm.table.flagsOf(addr) & ~EVICTED);
    mm.resident++;
    mm.eviction.evicted--;
    this.engine.nodeStats[slot].pages_resident++;
    this.stats(slot).pages_evicted--;
    return true;
  }

  /** Whether `tid` is a thread of numactlx (the tracer reading or writing the program's memory). */
  private isOwnThread(tid: number): boolean {
    if (tid === 0) return false;
    let own = this.ownTids.get(tid);
    if (own === undefined) {
      if (this.ownTids.size > 4096) this.ownTids.clear();
      own = fs.existsSync(`/proc/self/task/${tid}`);
      this.ownTids.set(tid, own);
    }
    return own;
  }
}
