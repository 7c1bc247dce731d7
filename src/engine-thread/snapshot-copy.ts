// Copy, the third phase of a snapshot: the program runs again, and the frozen pages are
// copied into frames with process_vm_readv (remote-copy.ts) in small batches between fault service
// (COPY_BATCH_PAGES), a write to a frozen page copying it first. Page states, invariants: snapshot.ts.
import fs from 'node:fs';
import os from 'node:os';
import { COPYING, DIRTY, EVICTED, PAGE, PENDING } from './page-table.js';
import { RemoteCopier, MAX_IOV } from './remote-copy.js';
import { CopyGuard } from './copy-guard.js';
import { countOut } from './evicted-pages.js';
import { takePending, type CopyTarget, type MmPart } from './snapshot.js';
import { notInFork } from './snapshot-capture.js'; // a capture fork lacking a page (MADV_WIPEONFORK)
import type { Engine, Mm } from './engine.js';
import type { ChecksumQueue } from '../channels/checksum-ring.js';
import { notReadableMessage } from '../sys/procfs.js';

/** Pages per copy step between looks at the uffds: 64 KiB, ≈ 30 µs of process_vm_readv here (a frozen write's longest wait). */
const COPY_BATCH_PAGES = 16;
const { ESRCH } = os.constants.errno;
const DEBUG = process.env.NUMACTLX_DEBUG === '1';

/** Copies the frozen pages of the snapshot being taken (engine.snapshot.copying) into frames. */
export class FrozenPageCopier {
  private readonly batch: number[] = [];
  private readonly guard = new CopyGuard(); // checks each batch against the program's pagemap before it is read
  private readonly batchSlot = new Int32Array(MAX_IOV);
  private readonly batchFrame = new Int32Array(MAX_IOV);
  private readonly batchOld = new Int32Array(MAX_IOV);
  private readonly batchAddr = new Float64Array(MAX_IOV);
  /** Per batch page: 0 first copy by this snapshot, 1 copied before (new frame now), 2 copied before (same frame). */
  private readonly again = new Uint8Array(MAX_IOV);
  private woken = false; // a write waited for a copy and was let go since the last takeWoken()

  /**
   * `noteMedium`: after a short copy, whether a backing was lost (deleted or truncated:
   * its frames past the end cannot be written — the kernel's copy stops there with
   * EFAULT where a CPU store would be a SIGBUS), as one sentence.
   */
  constructor(private readonly engine: Engine, private readonly checksums: ChecksumQueue,
    readonly remote: RemoteCopier, private readonly noteMedium: () => string | undefined) {}

  /**
   * Whether a thread waiting on a copy-before-write was woken since the last call: the
   * engine then yields its CPU, so that the writer runs now, not after the copier's slice.
   */
  takeWoken(): boolean {
    const w = this.woken;
    this.woken = false;
    return w;
  }

  /**
   * A write to a write-protected page: opens a run around it (write-runs.ts) — its frozen
   * pages copied first, in one batch, every placed page marked DIRTY — then lets the
   * write go. Before the freeze a staged page is not copied: it becomes DIRTY|PENDING.
   */
  onWriteFault(mm: Mm, addr: number): void {
    const range = mm.table.get(addr) > 0 ? mm.ranges.find(addr) : undefined;
    if (!range) {
      this.engine.unprotect(mm, addr, PAGE);
      return;
    }
    const [start, end] = mm.writeRuns.runAt(addr, range.start, range.end);
    if (this.copyRunFirst(mm, start, end)) this.woken = true;
    this.engine.unprotectRun(mm, addr, start, end - start);
  }

  /**
   * copyFirst for every placed page of [start, end): the frozen ones not copied yet are
   * copied in one batch (true then), and all are marked DIRTY.
   */
  private copyRunFirst(mm: Mm, start: number, end: number): boolean {
    const run = this.engine.snapshot.copying;
    const part = run?.parts.get(mm);
    const batch = this.batch;
    batch.length = 0;
    for (let page = start; page < end; page += PAGE) {
      if (mm.table.get(page) <= 0) continue;
      const flags = mm.table.flagsOf(page);
      if (part && (flags & PENDING)) batch.push(page);
    }
    if (batch.length > 0) this.copyPages(mm, run!, part!, batch);
    for (let page = start; page < end; page += PAGE) {
      if (mm.table.get(page) <= 0) continue;
      const flags = mm.table.flagsOf(page);
      // [eviction] An evicted page is not in the program: never DIRTY (the copier would read it).
      if (!(flags & (DIRTY | EVICTED))) mm.table.setFlags(page, flags | DIRTY);
    }
    return batch.length > 0;
  }

  /**
   * Before a placed page may be written: copied first when frozen and not copied yet
   * (true then), and marked DIRTY. The caller then lets the write go.
   */
  private copyFirst(mm: Mm, page: number): boolean {
    let copied = false;
    if (mm.table.flagsOf(page) & PENDING) {
      const run = this.engine.snapshot.copying;
      const part = run?.parts.get(mm);
      if (part) {
        this.batch.length = 0;
        this.batch.push(page);
        this.copyPages(mm, run!, part, this.batch);
        copied = true;
      }
    }
    const flags = mm.table.flagsOf(page);
    if (!(flags & DIRTY)) mm.table.setFlags(page, flags | DIRTY);
    return copied;
  }

  /**
   * Makes the page holding addr writable now, for a write the kernel does on the
   * program's behalf where a userfaultfd cannot trap it: an exiting thread's
   * clear_child_tid (handle_userfault gives up on PF_EXITING tasks, so a write-protected
   * page makes the kernel skip the write — and pthread_join waits forever). Copied first
   * when frozen and not copied yet, as a write fault would. 0 or -errno.
   */
  releaseForKernelWrite(pid: number, addr: number, tid: number): number {
    const mm = this.engine.mmOf(pid);
    if (!mm) return 0;
    const page = addr - (addr % PAGE);
    const entry = mm.table.get(page);
    if (entry <= 0) return 0; // never placed, or ordinary memory: never protected
    // Pinned even when writable now: a prepare step may run before the kernel's write.
    mm.pins.set(page, tid);
    const flags = mm.table.flagsOf(page);
    if ((flags & (DIRTY | PENDING)) === DIRTY) return 0; // written since the last snapshot: writable
    this.copyFirst(mm, page);
    return this.engine.unprotectNow(mm, page, PAGE);
  }

  /**
   * Copies up to `pages` pending pages (a batch; fewer when the program is faulting
   * without pause and waits behind this step); true while pages remain.
   */
  step(pages = COPY_BATCH_PAGES): boolean {
    const run = this.engine.snapshot.copying;
    if (!run || !run.pauseKnown) return false;
    let budget = pages;
    const batch = this.batch;
    for (const [mm, part] of run.parts) {
      while (budget > 0 && part.left > 0) {
        const taken = takePending(part, budget, batch);
        const kept = this.keepPending(mm, batch, taken);
        if (kept > 0) this.copyPages(mm, run, part, batch);
        budget -= taken;
      }
      if (budget <= 0) return true;
    }
    return run.remaining > 0;
  }

  /**
   * Keeps the pages of batch[0, taken) still present and PENDING, each once (marked
   * COPYING until copyPages sets its flags); returns how many.
   */
  private keepPending(mm: Mm, batch: number[], taken: number): number {
    let kept = 0;
    if (mm.pids.size === 0) {
      // The mm was closed (its last process exec'd or ended without an exit stop): its
      // frames are released and its pid may now name another image. Never read it.
      const part = this.engine.snapshot.copying?.parts.get(mm);
      for (let i = 0; i < taken; i++) part?.lost.add(batch[i]);
      batch.length = 0;
      return 0;
    }
    for (let i = 0; i < taken; i++) {
      const addr = batch[i];
      const flags = mm.table.flagsOf(addr);
      if (mm.table.get(addr) > 0 && (flags & (PENDING | COPYING)) === PENDING) {
        mm.table.setFlags(addr, flags | COPYING);
        batch[kept++] = addr;
      }
    }
    batch.length = kept;
    const part = this.engine.snapshot.copying?.parts.get(mm);
    if (part) this.keepPresent(mm, part, batch);
    return batch.length;
  }

  /** Keeps in `batch` the pages present in the program (copy-guard.ts); the others leave the table, lost. */
  private keepPresent(mm: Mm, part: MmPart, batch: number[]): void {
    this.guard.keepPresent(part.reader, batch, (addr) => {
      if (part.forked) return notInFork(this.engine.snapshot.copying, mm, part, addr);
      part.lost.add(addr);
      mm.table.takeRange(addr, addr + PAGE, (_a, entry, node, flags) => {
        countOut(mm, entry, flags);
        this.engine.release(entry, node, flags);
      });
    });
  }

  /**
   * The pre-copy's copy (precopy.ts): pages of `addrs` (present in the table, ascending
   * within runs) that the program has are copied into `part`'s frames now; no flag but
   * DIRTY is involved (asynchronous dirty tracking has no PENDING pages).
   */
  copyPresent(mm: Mm, target: CopyTarget, part: MmPart, addrs: number[]): void {
    this.keepPresent(mm, part, addrs);
    if (addrs.length > 0) this.copyPages(mm, target, part, addrs);
  }

  /**
   * Copies pending pages of one mm into frames: in place when no committed snapshot
   * holds the page's frame, else into a new one. After this the pages are clean and
   * still write-protected. Typed scratch arrays: this runs once per 16 pages.
   *
   * A page this snapshot copied already (a pre-copy pass before its freeze: precopy.ts)
   * is copied again into the same new frame when nothing else holds it (its page and
   * this snapshot's hold: 2 references), so that no snapshot takes two frames for a page.
   */
  copyPages(mm: Mm, run: CopyTarget, part: MmPart, addrs: number[]): void {
    const engine = this.engine;
    const { batchSlot: slots, batchFrame: frames, batchOld: olds, batchAddr: dest, again } = this;
    let m = 0;
    this.remote.reset();
    for (const addr of addrs) {
      const slot = mm.table.nodeOf(addr);
      const old = mm.table.get(addr) - 1;
      const node = engine.nodes[slot];
      let frame = old;
      const before = part.copied.frameOf(addr);
      again[m] = before >= 0 ? 1 : 0;
      if (before === old && node.refs.get(old) === 2) {
        again[m] = 2; // its own frame again: no new reference
      } else if (node.refs.get(old) > 1) {
        frame = node.store.allocFrame();
        if (frame < 0) {
          run.failed ??= `backing ${node.backing}: no free frame for ${run.name} (the node is full)`;
          part.lost.add(addr);
          mm.table.setFlags(addr, DIRTY); // copied by a later snapshot
          continue;
        }
        node.refs.set(frame, 1);
      }
      slots[m] = slot; frames[m] = frame; olds[m] = old; dest[m] = addr;
      m++;
      this.remote.add(node.store.frameAddr(frame), addr, PAGE);
    }
    let n = this.remote.run(part.reader);
    if (n === -ESRCH && !part.forked) {
      // The reader thread has exited since the freeze: any live process of the mm will do
      // (never for a capture fork: the program's memory is not the freeze's any more).
      const pid = mm.pids.values().next().value;
      if (pid !== undefined && pid !== part.reader) n = this.remote.run(pid);
    }
    const copied = n < 0 ? 0 : Math.floor(n / PAGE);
    if (DEBUG && copied < m) fs.writeSync(2, `numactlx-engine: copier: process_vm_readv of pid ${part.reader}: ${n} (${m} pages)\n`);
    // Short: a page the program let go of (lost to this snapshot), a frame past the end of
    // a truncated backing (the snapshot fails, and the session ends), or a process made
    // non-dumpable since the freeze (EPERM: the snapshot fails, saying so).
    if (copied < m) run.failed ??= this.noteMedium() ?? notReadableMessage(part.reader, -n);
    for (let i = 0; i < m; i++) {
      const addr = dest[i];
      const slot = slots[i];
      const frame = frames[i];
      if (i >= copied) {
        // The process is gone or the page was unmapped under us: lost to this snapshot.
        part.lost.add(addr);
        if (frame !== olds[i]) engine.unref(slot, frame);
        if (mm.table.get(addr) > 0) mm.table.setFlags(addr, DIRTY);
        continue;
      }
      if (frame !== olds[i]) {
        mm.table.set(addr, frame + 1, slot, 0);
        engine.unref(slot, olds[i]);
      } else {
        mm.table.setFlags(addr, 0);
      }
      this.checksums.written(slot, frame);
      if (again[i] === 2) continue;
      // The snapshot's hold on the frame starts now, not at the commit: a page munmapped
      // after its copy must not free the frame the record will name (finishSteps lets
      // this reference go once the record holds its own, or the snapshot failed).
      // A page copied before by this snapshot: its hold moves to the new frame.
      if (again[i] === 1) engine.unref(part.copied.slotOf(addr), part.copied.frameOf(addr));
      else part.newPages[slot]++;
      engine.nodes[slot].refs.inc(frame);
      part.copied.set(addr, frame, 0, slot); // the CRC: from the checksum worker, at the commit
    }
    this.checksums.kick();
  }

  /** Copies every frozen page of pid's mm now (the process is about to lose its memory). */
  flushProcess(pid: number, exiting: boolean): void {
    const mm = this.engine.mmOf(pid);
    if (mm && exiting) mm.exited.add(pid);
    const part = mm && this.engine.snapshot.copying?.parts.get(mm);
    if (!mm || !part) return;
    const batch = this.batch;
    while (part.left > 0) {
      const taken = takePending(part, MAX_IOV, batch);
      const kept = this.keepPending(mm, batch, taken);
      if (kept) this.copyPages(mm, this.engine.snapshot.copying!, part, batch);
    }
  }
}
