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
//    out of the round (REF: it is in use). A process that refuses the read (non-dumpable)
//    is passed by from then on (unreadable), as one whose drop the tracer refuses (a sandbox);
// 3. stop (the tracer, src/tracer-thread/evict-stop.ts, asked through
//    src/channels/evict-request.ts): every thread of the mm stops; the engine reads what
//    is queued on the uffd, keeps the victims still clean, marks them EVICTED and hands the
//    tracer their ranges (EvictRanges) — nothing of the program runs from here until the
//    drop is done, so no page can change or move between that choice and the drop;
// 4. drop (the tracer injects process_madvise(MADV_DONTNEED) into a stopped thread): the
//    REMOVE events it raises are the engine's own (isOwnDrop); EvictDone: whatever the drop
//    left mapped (mlock'd ranges refuse MADV_DONTNEED) is counted resident again (pagemap).
// A fault on a node at its limit waits until a round has made room, and places at most the
// room left (eviction-waits.ts has those rules, and their exceptions).
import fs from 'node:fs';
import os from 'node:os';
import { notReadableMessage } from '../sys/procfs.js';
import { wakeFast } from '../sys/userfaultfd-fast.js';
import { EVICTED, PAGE, REF, VICTIM } from './page-table.js';
import { ResidentSet } from './resident-set.js';
import { Refaulter } from './refault.js';
import { RemoteCopier } from './remote-copy.js';
import { newEvictionStats, recordFresh, residentIfMapped } from './evicted-pages.js';
import { EvictionRound } from './eviction-round.js';
import { FaultWaits } from './eviction-waits.js';
import { RERING_MS, type EvictChannel } from '../channels/evict-request.js';
import type { Engine, Mm } from './engine.js';
import type { EvictionHooks } from './engine-core.js';
import type { MmPart } from './snapshot.js';
import type { ChecksumQueue } from '../channels/checksum-ring.js';
import type { EvictionStats } from '../channels/session-stats.js';

/** A round's victims: an eighth of the limit, within these bounds (pages). */
const MIN_BATCH = 64;
const MAX_BATCH = 8192;
/** A sweep that found no victim: the node is let over its limit this long before the next try (at most MAX_STUCK_MS). */
const STUCK_MS = 10;
const MAX_STUCK_MS = 1000;
/** A request the tracer has not taken this long: faults stop waiting for it (the node goes over its limit). */
const STALL_MS = 500;
const DEBUG = process.env.NUMACTLX_DEBUG === '1';
const { EACCES, EPERM } = os.constants.errno;

export class Evictor implements EvictionHooks {
  private readonly sets: Array<ResidentSet | undefined>;
  private readonly waits: FaultWaits;
  private saidUnreadable = false;
  private readonly emptyRounds: number[] = []; // per slot: the rounds in a row whose stop dropped nothing
  private readonly refaulter: Refaulter;
  private readonly remote = new RemoteCopier();
  private round: EvictionRound | undefined;

  /** `limits`: per node (slot) the most pages it may keep in the program's memory, 0 for none. */
  constructor(private readonly engine: Engine, limits: number[], private readonly channel: EvictChannel,
    private readonly checksums: ChecksumQueue) {
    this.sets = limits.map((limit, slot) => (limit > 0 ? new ResidentSet(slot, limit) : undefined));
    // A drop's victims count as resident until it is reconciled (a page it could not drop,
    // mlock'd, is resident again then): a fault served meanwhile places no window past the limit.
    this.waits = new FaultWaits(limits, (slot) => engine.nodeStats[slot].pages_resident
      + (this.round?.slot === slot && this.round.phase === 'dropping' ? this.round.droppingPages : 0), channel, this.stats);
    limits.forEach((limit, slot) => { if (limit > 0) engine.nodeStats[slot].eviction = newEvictionStats(limit); });
    this.refaulter = new Refaulter(engine, Math.max(1, engine.faultAheadPages));
    // Attached after the snapshot engine, around its write-fault handler: a write is first
    // a sign of use (REF), then whatever the snapshot makes of it.
    const inner = engine.snapshot;
    engine.attachSnapshots({
      get copying() { return inner.copying; },
      onWriteFault: (mm, addr) => this.onWriteFault(mm, addr, (m, a) => inner.onWriteFault(m, a)), dropped: (mm, addr) => inner.dropped(mm, addr),
      leaving: (mm, start, end) => inner.leaving(mm, start, end),
    });
    engine.attachEviction(this);
  }

  private stats = (slot: number): EvictionStats => this.engine.nodeStats[slot].eviction!;

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
    if (!r) return this.start();
    if (r.phase !== 'dropping' && !this.engine.mms.has(r.mm.uffd)) {
      if (r.phase === 'writing' || this.channel.cancel()) this.round = undefined;
      return; // else taken: EvictDone ends it
    }
    if (r.phase === 'writing') {
      const done = r.writeStep(this.remote);
      if (r.unreadable) { // nothing of it can be written back: its rounds pass it by
        r.abandon();
        this.round = undefined;
        return this.unreadable(r.mm, r.unreadable.pid, r.unreadable.errno);
      }
      if (!done) return;
      if (!r.hasVictims()) {
        // None left to drop (written to since, or no free frame to write one back to).
        this.round = undefined;
        this.waits.letOver(r.slot, STUCK_MS);
        return;
      }
      // Every victim written back: the tracer stops the mm for the drop.
      this.channel.post([...r.mm.pids], true);
      r.phase = 'requested';
      r.requestedAt = performance.now();
      this.ring(r);
    } else if (r.phase === 'requested' && performance.now() - r.rungAt > RERING_MS && !this.channel.taken) {
      // Not taken: the ring was lost (the waker was being started again), or the tracer is
      // busy (a long injection, a thread that cannot stop while it faults in the kernel).
      // Meanwhile faults must not wait for room that may not come: the node goes over.
      if (performance.now() - r.requestedAt > STALL_MS) this.waits.letOver(r.slot, STALL_MS);
      this.ring(r);
    }
  }

  /** pid's memory may not be read (write-back EPERM, or the tracer's drop -EACCES): mm is passed by, said once a session. */
  private unreadable(mm: Mm, pid: number, errno: number): void {
    mm.eviction.refused = true;
    if (!this.saidUnreadable) fs.writeSync(2, `numactlx: ${notReadableMessage(pid, errno)}: it keeps no --max-resident limit\n`);
    this.saidUnreadable = true;
  }

  private ring(r: EvictionRound): void {
    r.rungAt = performance.now();
    if (!this.channel.ringOrWithdraw()) {
      r.abandon();
      this.round = undefined;
    }
  }

  /** The slot of a node past the mark where a round starts, or -1. */
  private wanted(): number {
    const now = performance.now();
    for (let slot = 0; slot < this.sets.length; slot++) {
      const set = this.sets[slot];
      if (!set || this.waits.isLetOver(slot, now)) continue;
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
    // Two turns of the hand at most (the first may only clear REF bits), in chunks.
    let budget = 2;
    for (const mm of this.engine.mms.values()) budget += 2 * mm.table.chunkCount;
    const mm = set.sweep(this.engine.mms.values(), this.batch(set), budget, victims);
    if (!mm || victims.length === 0) {
      this.waits.letOver(slot, STUCK_MS);
      if (DEBUG) fs.writeSync(2, `numactlx-engine: eviction: no victim found (resident ${this.engine.nodeStats[slot].pages_resident})\n`);
      return;
    }
    this.round = new EvictionRound(this.engine, slot, mm, victims);
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
    // What was queued before the threads stopped (a write fault on a victim, a drop by the
    // program, a fork) is handled first: then nothing changes until the drop is done.
    this.engine.service(r.mm);
    if (!this.engine.mms.has(r.mm.uffd)) return 0;
    // A process that joined the mm after the request (a vfork or CLONE_VM child the tracer
    // learnt of meanwhile) was not stopped: nothing is dropped this time.
    const stopped = this.channel.pids();
    if ([...r.mm.pids].some((p) => !stopped.includes(p))) return 0;
    return this.channel.setRanges(r.markEvicted(keep));
  }

  /** The drop is done (the threads are still stopped): the table is made to match it. */
  done(pid: number, bytes: number, pauseMs: number): void {
    this.channel.finish();
    // Room was made: every fault still waiting starts its wait anew. Not after a drop that
    // freed nothing (mlock'd pages: MADV_DONTNEED refuses them): a fault the stop cut short
    // would otherwise never reach its longest wait, round after round, and its thread spin.
    if (bytes > 0) this.waits.roundEnded();
    const r = this.round;
    if (!r) return;
    this.round = undefined;
    if (bytes === -EPERM) r.mm.eviction.refused = true; // a sandbox: the tracer does not drop from it (evict-stop.ts)
    if (bytes === -EACCES) this.unreadable(r.mm, pid, EPERM); // non-dumpable: nothing can be injected (evict-stop.ts)
    if (r.phase !== 'dropping') {
      r.abandon();
      return;
    }
    const left = this.engine.mms.has(r.mm.uffd) ? r.reconcile(pid) : 0;
    // Nothing could go (no range, or none the kernel would drop: mlock'd). Once: maybe only what
    // the stop keeps (stack tops, rseq area): the next round takes others. Twice in a row: the
    // node stays over its limit rather than hold faults for ever, longer each time (a round stops the program).
    const emptyRounds = this.emptyRounds[r.slot] = bytes <= 0 ? (this.emptyRounds[r.slot] ?? 0) + 1 : 0;
    if (emptyRounds > 1) this.waits.letOver(r.slot, Math.min(MAX_STUCK_MS, STUCK_MS * 2 ** Math.min(emptyRounds - 2, 10)));
    const stats = this.stats(r.slot);
    stats.rounds++;
    stats.evict_ms += performance.now() - r.startedAt;
    stats.pause_ms += pauseMs;
    if (DEBUG) {
      fs.writeSync(2, `numactlx-engine: eviction round: ${r.runs.length / 2} ranges, ${bytes} bytes dropped, ${left} pages left ` +
        `mapped, ${(performance.now() - r.startedAt).toFixed(2)} ms, pause ${pauseMs.toFixed(2)} ms\n`);
    }
  }

  // ---- hooks (engine-core.ts EvictionHooks) ------------------------------------------------
  isOwnDrop(mm: Mm, start: number, end: number): boolean {
    const r = this.round;
    return r !== undefined && r.mm === mm && r.dropping(start, end);
  }

  mustWait(slot: number, mm: Mm, addr: number, isRetry: boolean): boolean {
    return this.waits.mustWait(slot, mm, addr, isRetry, this.round);
  }

  refault(mm: Mm, addr: number, isRetry: boolean): boolean {
    const slot = mm.table.nodeOf(addr);
    if (this.mustWait(slot, mm, addr, isRetry)) {
      this.engine.retries.push({ mm, addr, write: false, tid: 0 });
      return true;
    }
    this.refaulter.serve(mm, addr, isRetry, this.room(slot)); // read-ahead no further than the room
    return true;
  }

  room(slot: number): number {
    return this.waits.room(slot);
  }

  recordFresh(mm: Mm, part: MmPart): void {
    recordFresh(this.engine, mm, part, this.checksums);
  }

  /** A thread of pid exits, and the kernel will write its clear_child_tid word at addr, which no
   * userfaultfd serves for an exiting task: an evicted page there comes back now. (The pin that
   * keeps it from the next rounds is releaseForKernelWrite's: eviction forces sync tracking.) */
  bringBack(pid: number, addr: number): void {
    const mm = this.engine.mmOf(pid);
    if (!mm) return;
    const page = addr - (addr % PAGE);
    this.refaulter.bringBack(mm, page);
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
        if (!residentIfMapped(this.engine, mm, addr)) {
          wakeFast(mm.uffd, addr, PAGE);
          return;
        }
      } else if ((flags & (REF | VICTIM)) !== REF) {
        mm.table.setFlags(addr, (flags & ~VICTIM) | REF);
      }
    }
    inner(mm, addr);
  }
}
