// Driving a snapshot through the engine: prepare (the program runs), freeze (called while the
// tracer holds every thread stopped), copy in small batches between fault service, write faults
// on frozen pages, then sync and commit in steps. The page states and the invariants are in
// snapshot.ts. Every long phase is a generator the engine loop advances one step at a time, so
// that a faulting thread never waits behind more than one step (COPY_BATCH_PAGES, …).
// This module is the coordinator: it holds the phase a snapshot is in and moves it along; each
// phase is its own module (snapshot-prepare/-freeze/-copy/-commit.ts, held-staging.ts), --keep snapshot-retention.ts.
import { RemoteCopier } from './remote-copy.js';
import { ExtraPages } from './snapshot-extras.js';
import type { SnapshotRequest, SnapshotRun } from './snapshot.js';
import type { Mm } from './mm.js';
import type { SnapshotHooks } from './engine-core.js';
import type { Engine } from './engine.js';
import type { ChecksumQueue } from '../channels/checksum-ring.js';
import type { ThreadRegs } from '../snapshot/types.js';
import { NO_PROCESS, SnapshotError } from '../snapshot/queue-api.js';
import { prepareSteps } from './snapshot-prepare.js';
import { freeze } from './snapshot-freeze.js';
import { FrozenPageCopier } from './snapshot-copy.js';
import { finishSteps, syncOnWorker, type CommitContext, type CommittedSnapshot, type SnapshotResult } from './snapshot-commit.js';
import { pruneSteps } from './snapshot-retention.js';
import { DirtyScanner } from './dirty-scan.js';
import { freezeAsync, Precopy, precopySteps } from './precopy.js';
import type { SnapshotCapture } from '../kerndat/features.js';
import type { StopSlices } from './precopy-slices.js';
import { copyBeforeDrop, HeldForks, readable } from './snapshot-capture.js';
import { carryStep, stageFromProgram, stageHeldParts } from './held-staging.js';
export type { SnapshotResult } from './snapshot-commit.js';

/**
 * The phase of the snapshot engine: idle → preparing → copying → committing → idle.
 * The phases never overlap: a prepare starts only when no snapshot is active, and the
 * freeze ends a prepare that has not finished (--snapshot-on-exit, a lost program).
 * While copying, the fault service reads the run through SnapshotHooks.copying (a write
 * to a frozen page is copied first, an unmap of one copies it before it goes).
 */
type Phase =
  | { kind: 'idle' }
  | { kind: 'preparing'; steps: Generator<void, void> }
  | { kind: 'copying'; run: SnapshotRun } // from the freeze until every page is copied and the pause is known
  | { kind: 'committing'; id: number; steps: Generator<void, SnapshotResult> }; // `id`: the snapshot `steps` commits

const IDLE: Phase = { kind: 'idle' };

export class SnapshotEngine implements CommitContext, SnapshotHooks {
  readonly remote = new RemoteCopier();
  private readonly extras: ExtraPages; // the pages no virtual node holds, read in the freeze and stored at the commit
  private readonly copier: FrozenPageCopier;
  private phase: Phase = IDLE;
  private prepareWanted = false; // asked for while the previous snapshot is still being copied or committed
  waitingOnWorker = false; // the commit waits for the checksum worker's sync: the engine loop may sleep 1 ms in poll
  /** Asynchronous tracking: the stops a pre-copy that does not converge ends with (precopy-slices.ts). */
  slices: StopSlices | undefined;
  /**
   * Asynchronous dirty tracking: snapshots are pre-copied (precopy.ts). `precopy`: the copies
   * made for the next freeze (kept when a freeze does not come: the next prepare goes on).
   */
  private readonly async: boolean;
  private readonly scanner = new DirtyScanner();
  private precopy: Precopy | undefined;
  /** NUMACTLX_SNAPSHOT_CAPTURE=fork|auto: the forks holding the snapshot being copied (snapshot-capture.ts). */
  forks: HeldForks | undefined;

  /** Committed snapshots of the backings, oldest first (for --keep). */
  readonly committed: CommittedSnapshot[];
  /** A backing deleted or truncated, once found (and where): the session ends (engine-worker.ts); the first finding is reported. */
  lostMedium: { problem: string; found: string } | undefined;

  /**
   * `extraPages`: read the pages no virtual node holds in the freeze (snapshot-extras.ts); off only where the
   * "program" is this very process (test/engine/engine-unit.test.ts). `capture`: NUMACTLX_SNAPSHOT_CAPTURE (src/kerndat/features.ts).
   */
  constructor(readonly engine: Engine, readonly checksums: ChecksumQueue,
    existing: CommittedSnapshot[] = [], private readonly options: { extraPages: boolean; capture?: SnapshotCapture } = { extraPages: true }) {
    this.copier = new FrozenPageCopier(engine, checksums, this.remote,
      () => this.noteMedium(`while snapshot ${this.currentId} was being copied`));
    this.committed = [...existing].sort((a, b) => a.id - b.id);
    this.extras = new ExtraPages(engine, this.remote);
    this.async = engine.dirtyTracking === 'async';
    engine.attachSnapshots(this);
  }

  // ---- SnapshotHooks (read by the fault service and the uffd events) ---------------------
  get copying(): SnapshotRun | undefined {
    return this.phase.kind === 'copying' ? this.phase.run : undefined;
  }

  onWriteFault(mm: Mm, addr: number): void {
    this.copier.onWriteFault(mm, addr);
  }

  dropped(mm: Mm, addr: number): void {
    this.precopy?.uncopy(mm, addr);
  }

  leaving(mm: Mm, start: number, end: number): void {
    if (readable(this.forks)) copyBeforeDrop(this.copier, this.copying, mm, start, end);
  }

  /** --keep N: deletes the oldest unlabelled snapshots beyond N (a frame nothing holds is freed); syncs on the checksum worker. */
  pruneSteps(keep: number): Generator<void, number[]> {
    return pruneSteps(this.engine, this.committed, keep, () => syncOnWorker(this));
  }

  /** A snapshot is frozen and not committed yet. */
  get active(): boolean {
    return this.phase.kind === 'copying' || this.phase.kind === 'committing';
  }

  /** Something to do between polls: the engine loop must not block in poll. */
  get busy(): boolean {
    // Copying starts once the tracer has resumed the program (pauseKnown): until then the
    // engine blocks in poll, so that a tracer sharing its CPU gets it at once.
    return this.phase.kind === 'preparing' || this.phase.kind === 'committing' || this.prepareWanted
      || (this.phase.kind === 'copying' && this.phase.run.pauseKnown);
  }

  /** A thread waiting on a copy-before-write was woken since the last call: the engine yields its CPU to it. */
  takeWoken(): boolean {
    return this.copier.takeWoken();
  }

  /** The id of the snapshot being copied or committed (0: none): a failure in a later commit step is reported under it. */
  get currentId(): number {
    if (this.phase.kind === 'copying') return this.phase.run.req.id;
    return this.phase.kind === 'committing' ? this.phase.id : 0;
  }

  /**
   * Looks at every backing (BackingStore.mediumProblem: one fstat each) and remembers
   * the first one lost, with `found` (where it was found) — or `fallback` when a frame
   * could not be read or written although the file looks whole. Returns the problem.
   */
  noteMedium(found: string, fallback?: string): string | undefined {
    if (!this.lostMedium) {
      let problem = fallback;
      for (const slot of this.engine.slots) {
        const p = slot.store.mediumProblem();
        if (p) { problem = p; break; }
      }
      if (problem) this.lostMedium = { problem, found };
    }
    return this.lostMedium?.problem;
  }

  /** A frame the checksum worker could not read back (backing/frame-copy.ts): the backing is lost. */
  noteUnreadable(found: string): string | undefined {
    const slot = this.checksums.unreadable;
    if (slot < 0) return undefined;
    return this.noteMedium(found, `backing ${this.engine.slots[slot].backing}: a frame could not be read back for its checksum (EFAULT)`);
  }

  /** The snapshot being copied, as numactlx status shows it. */
  get progress(): { id: number; frozen_pages: number; pages_left: number } | undefined {
    const run = this.copying;
    return run && { id: run.req.id, frozen_pages: run.frozenPages, pages_left: run.remaining };
  }

  // ---- prepare --------------------------------------------------------------------------
  /** Starts staging the dirty pages for the next freeze (now, or when the current snapshot is committed). */
  prepare(): void {
    this.prepareWanted = true;
  }

  /**
   * One step of the prepare; true when it has just finished (the caller tells the
   * main thread, which then rings the doorbell).
   */
  prepareStep(): boolean {
    if (this.prepareWanted && this.phase.kind === 'idle' && !this.active) {
      this.prepareWanted = false;
      const steps = this.async ? precopySteps(this.engine, this.copier, this.scanner, this.precopy ??= new Precopy(this.engine), this.slices,
        this.options.capture) : prepareSteps(this.engine);
      this.phase = { kind: 'preparing', steps: this.options.extraPages ? this.extras.warmBefore(steps) : steps };
    }
    if (this.phase.kind !== 'preparing') return false;
    if (!this.phase.steps.next().done) return false;
    this.phase = IDLE;
    return true;
  }

  // ---- freeze ---------------------------------------------------------------------------
  /**
   * The freeze. Every thread of the program is stopped. Write-protects the pages DIRTY
   * now and takes the staged ones; records what the snapshot will hold; returns the
   * number of pages frozen for copying.
   */
  freeze(req: SnapshotRequest, threads: ThreadRegs[], tgidOf: (tid: number) => number): number {
    if (this.active) throw new Error(`snapshot ${this.currentId} is still being taken`);
    const lost = this.noteMedium(`as snapshot ${req.id} was being frozen`);
    if (lost) throw new Error(lost);
    // A freeze before its prepare ended (--snapshot-on-exit, a prepare that lost its program):
    // what it staged is in mm.staged (a pre-copy: in this.precopy), the rest is DIRTY and
    // protected (copied) now. The prepare's generator is closed (its finally blocks run).
    if (this.phase.kind === 'preparing') this.phase.steps.return(undefined);
    const precopy = this.precopy ?? new Precopy(this.engine);
    this.precopy = undefined;
    const { run, frozen } = this.async ? freezeAsync(this.engine, this.copier, this.scanner, precopy, req, threads, tgidOf, this.options.capture)
      : freeze(this.engine, req, threads, tgidOf);
    // Every process left out (ended before or during the freeze: a tick racing the
    // program's exit): a record with no process would be a snapshot of nothing.
    if (run.parts.size === 0) throw new SnapshotError(NO_PROCESS, { noProcess: true });
    this.phase = { kind: 'copying', run };
    if (this.options.capture === 'fork' || this.options.capture === 'auto') {
      this.forks = new HeldForks(run, (mm, pid) => {
        stageFromProgram(this.scanner, mm, run.parts.get(mm)!, pid);
        this.copier.flushProcess(pid, false);
        run.extraPages += this.extras.readNow(run, mm);
      }, this.engine.events, () => stageHeldParts(run, this.scanner));
    }
    const t0 = performance.now();
    run.extraPages = this.options.extraPages ? this.extras.read(run, this.forks?.wants) : 0;
    run.extraMs = performance.now() - t0;
    return frozen;
  }

  // ---- copy -----------------------------------------------------------------------------
  /** Makes the page holding addr writable now for the kernel's write (snapshot-copy.ts). 0 or -errno. */
  releaseForKernelWrite(pid: number, addr: number, tid: number): number {
    // Asynchronously protected pages are made writable by the kernel itself, exiting task or not.
    if (this.async) return 0;
    return this.copier.releaseForKernelWrite(pid, addr, tid);
  }

  /** Copies up to `pages` pending pages; true while pages remain (snapshot-copy.ts). */
  step(pages?: number): boolean {
    const run = this.copying;
    if (run && !run.failed) {
      const lost = this.noteUnreadable(`while snapshot ${run.req.id} was being copied`);
      if (lost) run.failed = lost;
    }
    if (run?.pauseKnown) readable(this.forks); // the copier reads nothing before: the forks' uffds are closed out of the pause
    carryStep(run);
    return this.copier.step(pages);
  }

  /** Copies every frozen page of pid's mm now (the process is about to lose its memory). */
  flushProcess(pid: number, exiting: boolean): void {
    const mm = readable(this.forks) && this.engine.mmOf(pid);
    this.copier.flushProcess(pid, exiting);
    if (mm && this.copying) this.copying.extraPages += this.extras.readHeld(this.copying, mm); // before its fork goes with it
  }

  setPause(ms: number): void { // the pause the tracer measured (interrupt to resume)
    const run = this.copying;
    if (run) Object.assign(run, { pauseMs: ms, pauseKnown: true, resumedAt: process.hrtime.bigint() });
  }

  get copied(): boolean { // every frozen page is copied (the commit may still wait for the pause)
    return (this.copying?.remaining ?? 0) === 0;
  }

  // ---- commit ---------------------------------------------------------------------------
  /**
   * One step of the commit: starts it once every page is copied and the pause is known;
   * returns the result when the snapshot is committed, undefined while not. Throws when
   * the snapshot failed (earlier ones intact).
   */
  commitStep(): SnapshotResult | undefined {
    if (this.phase.kind !== 'committing') {
      const run = this.copying;
      if (!run || !run.pauseKnown || run.remaining > 0 || run.carry) return undefined; // the forks live until the reset is done
      if (readable(this.forks)) run.extraPages += this.extras.readHeld(run); // the private pages outside the nodes, out of the forks
      this.forks?.release(); // every page is copied: the capture forks are let go
      this.forks = undefined;
      // Caught here, the snapshot fails with the reason instead of being committed into
      // a file no one will see again. (The commit checks the checksums read back too.)
      const problem = this.noteMedium(`as snapshot ${run.req.id} was being committed`);
      if (problem) run.failed ??= problem;
      // The pages read in the pause go to their frames now, out of it, in steps (the commit's first).
      this.phase = { kind: 'committing', id: run.req.id, steps: finishSteps(this, run, this.extras.storeSteps(run, this.checksums)) };
    }
    let r: IteratorResult<void, SnapshotResult>;
    try {
      r = this.phase.steps.next();
    } catch (err) {
      this.phase = IDLE;
      throw err;
    }
    if (!r.done) return undefined;
    this.phase = IDLE;
    return r.value;
  }

  /** The program has ended: copy what is left and commit now. */
  finishNow(): SnapshotResult | undefined {
    const run = this.copying;
    if (run) {
      run.pauseKnown = true;
      run.carry = undefined; // the program has ended: no next snapshot to carry its writes to
      while (this.step()) { /* copy what is left */ }
    }
    for (;;) {
      const r = this.commitStep();
      if (r || this.phase.kind !== 'committing') return r;
    }
  }
}
