// The engine's part of a snapshot held by a fork (NUMACTLX_SNAPSHOT_CAPTURE=fork, chosen
// by src/kerndat/features.ts chooseCapture; the tracer's part is
// src/tracer-thread/capture-fork.ts).
//
// In the freeze nothing of such an mm is read or copied. Before any thread resumes, the tracer
// makes one process of each such mm fork (captureNext, then captured): the child's memory is
// the freeze's image, kept by the kernel's copy-on-write however the program writes on.
// After the pause its written pages are found in the child and staged PENDING (held-staging.ts),
// and the copier (snapshot-copy.ts) reads them out of the child as it reads a synchronous
// snapshot's frozen pages. So there are no pre-copy passes, no page is copied twice, and no write of the
// program waits on numactlx: what it pays is the fork, then the kernel's copy-on-write
// faults (Redis BGSAVE's costs). Once every page is copied the children are killed.
//
// The capture's UFFD_EVENT_FORK hands the engine the child's uffd (uffd-events.ts onFork,
// Mm.captureFork). It is closed before the copy starts, which unregisters the child's ranges:
// the child never runs, and every page the copier reads is present in it (a read of an absent
// page gets nothing, where a registered range would queue a fault only this thread could serve).
// Closed after the pause, at the first read of a fork (readable), not in it: the close clears the
// uffd-wp bit of every page of the child's ranges, 25–33 ms for 1 GiB here.
//
// What a fork does not hold: a MADV_DONTFORK mapping (QEMU may give guest RAM one) is not
// in the child; a MADV_WIPEONFORK mapping is in it, empty. The prepare looks for both in
// each process's smaps (forkWouldLack): such an mm is pre-copied in that snapshot instead
// (Mm.noCapture, looked at again at every prepare). A mapping madvised between the prepare
// and the freeze is still caught:
// - DONTFORK: the child's maps differ from the parent's: the mm's pages are copied now, in
//   the pause;
// - WIPEONFORK: the copier finds the pages absent in the child (snapshot-copy.ts
//   keepPresent) and the snapshot fails with the reason, nothing lost.
// No fork could be made (no thread to inject into, the pid limit): copied now, in the pause.
import fs from 'node:fs';
import os from 'node:os';
import { closeFd } from '../sys/eventfd.js';
import { pidfdOpen, pidfdSendSignal } from '../sys/pidfd.js';
import { killIfAlive } from '../sys/signal.js';
import { hasOwnSeccompFilter, mapsText, mayReadSeccompFilters, readSmaps, type SmapsVma } from '../sys/procfs.js';
import { COPYING, DIRTY, PAGE, PENDING } from './page-table.js';
import { MAX_IOV } from './remote-copy.js';
import type { SnapshotRun, MmPart } from './snapshot.js';
import type { Mm } from './mm.js';
import type { EventStats } from '../channels/session-stats.js';

const { ENOENT, EPERM } = os.constants.errno;
const { SIGKILL } = os.constants.signals;
const DEBUG = process.env.NUMACTLX_DEBUG === '1';
const SANDBOXED = 'it runs under a seccomp filter of its own, which could kill it for the clone';

/**
 * Whether pid's filters keep its capture fork from being made. Where numactlx may read
 * them (root) the tracer runs them on the clone, and makes it past one that would refuse
 * it (capture-fork.ts); otherwise a filter could kill the process for it (SIGSYS).
 */
function sandboxed(pid: number): boolean {
  return !mayReadSeccompFilters() && hasOwnSeccompFilter(pid);
}

/**
 * Why a fork of pid would not hold its memory, from its smaps' VmFlags (undefined: it
 * would). Read at the prepare, the program running, in one engine turn: 2.7–3.8 ms for a
 * redis-server holding 100 MiB here (its faults on new pages wait that long; its writes do
 * not) — unless the prepare read them already (`vmas`: a first prepare, adopting pages).
 */
export function forkWouldLack(pid: number, vmas?: SmapsVma[]): string | undefined {
  let flags: string[];
  try {
    flags = (vmas ?? readSmaps(pid)).flatMap((v) => v.flags);
  } catch {
    return undefined; // gone: the freeze leaves it out
  }
  if (flags.includes('dc')) return 'a mapping of it is not in its forks (MADV_DONTFORK)';
  // The capture fork is a clone injected into it: a sandbox's filter killed it for that (SIGSYS).
  if (sandboxed(pid)) return SANDBOXED;
  if (flags.includes('wf')) return 'a mapping of it is empty in its forks (MADV_WIPEONFORK)';
  return undefined;
}

/**
 * NUMACTLX_SNAPSHOT_CAPTURE=auto: pre-copy slices ended with more `left` than the pause may
 * copy (the program writes faster than it is copied: precopy-slices.ts). The mms with pages
 * left are held by a fork in the freeze, where a fork can hold them (forkWouldLack, read now,
 * the program running), instead of having them copied in the pause. Returns a note for
 * NUMACTLX_DEBUG.
 */
export function holdUnconverged(left: Map<Mm, number>, pausePages: number, livePid: (mm: Mm) => number | undefined,
  saturated: boolean): string {
  if ([...left.values()].reduce((a, b) => a + b, 0) <= pausePages) return '';
  const held: number[] = [];
  for (const [mm, pages] of left) {
    const pid = livePid(mm);
    if (pages === 0 || pid === undefined) continue;
    mm.noCapture = forkWouldLack(pid);
    mm.holdByFork = mm.noCapture === undefined;
    if (mm.holdByFork) held.push(pid);
    mm.holdAhead = mm.holdByFork && saturated ? HOLD_AHEAD : 0;
  }
  return held.length > 0 ? `; held by a fork: ${held.join(' ')}` : '';
}

/**
 * Prepares after a saturated one (its last pass found nearly all it copied written again:
 * precopy.ts SATURATED) that hold the mm by a fork without any pass; the next one measures
 * again. Such passes copy what the program rewrites before the freeze: a 1 GiB random writer
 * pinned with numactlx spent 3 s in them per snapshot.
 */
const HOLD_AHEAD = 3;

/** At a prepare's start (auto): whether mm is held by a fork without passes (Mm.holdAhead), where a fork can hold it. */
export function holdAhead(mm: Mm, pid: number | undefined): boolean {
  if (mm.holdAhead <= 0 || pid === undefined) return false;
  mm.holdAhead--;
  mm.noCapture = forkWouldLack(pid);
  return mm.noCapture === undefined;
}

/** Why a snapshot of an mm cannot be held by its fork `child`, from their maps; undefined if it can. */
export function notHeldBy(parentMaps: string, child: number): string | undefined {
  const childMaps = mapsText(child);
  if (childMaps === '') return `its fork ${child} is gone`;
  if (childMaps === parentMaps) return undefined;
  return 'a mapping of it is not in its forks (MADV_DONTFORK)';
}

/** The capture forks of one snapshot: asked for in its freeze, killed once its pages are copied. */
export class HeldForks {
  /** The mms with pages to copy that a fork may hold, and the pid the tracer forks for each. */
  private readonly wanted: Array<{ mm: Mm; pid: number }>;
  /** The same mms, for the freeze's other steps (ExtraPages.read) to ask. */
  private readonly asked: Set<Mm>;
  private expected: { mm: Mm; pid: number } | undefined;
  private readonly held: Array<{ pidfd: number }> = [];
  /** The capture children's uffds, closed after the pause (closeUffds). */
  private readonly uffds: number[] = [];

  /**
   * `copyNow`: copies an mm's pages in the pause, through the stopped program; `stage`:
   * stages the held parts out of their forks (held-staging.ts), before their uffds are closed.
   */
  constructor(private readonly run: SnapshotRun, private readonly copyNow: (mm: Mm, pid: number) => void,
    private readonly events: EventStats, private readonly stage: () => void) {
    this.wanted = [...run.parts].filter(([mm, part]) => (part.left > 0 || part.unstaged) && !mm.noCapture).map(([mm, part]) => ({ mm, pid: part.reader }));
    this.asked = new Set(this.wanted.map((w) => w.mm));
  }

  /** How many mms are left for the tracer to fork (TracerOp.Freeze tells it). */
  get wantedCount(): number {
    return this.wanted.length;
  }

  /** Stages the held parts (held-staging.ts) once every fork is made; their uffds are closed at the first read (readable). */
  stageHeld(): void {
    if (this.done) this.stage();
  }

  /** Every fork asked for is made, or its part copied now: the held parts may be staged (held-staging.ts). */
  get done(): boolean {
    return this.wanted.length === 0 && !this.expected;
  }

  /** Whether a fork is asked to hold mm's part (it may still fail to: `copyNow` then). */
  wants = (mm: Mm): boolean => this.asked.has(mm);

  /** The pid of the next process to fork (its mm now expects the fork's event), or 0 when none is left. */
  next(): number {
    for (let w = this.wanted.shift(); w; w = this.wanted.shift()) {
      if (!sandboxed(w.pid)) {
        w.mm.captureFork = 0;
        this.expected = w;
        return w.pid;
      }
      // A freeze with no prepare before it (forkWouldLack looks there): no clone injected.
      w.mm.noCapture = SANDBOXED;
      this.events.capture_fallbacks = (this.events.capture_fallbacks ?? 0) + 1;
      this.copyNow(w.mm, w.pid);
    }
    return 0;
  }

  /** The tracer made pid's fork `child` (or could not: -errno). 0, or -ENOENT if pid's fork was not asked for. */
  captured(pid: number, child: number): number {
    const w = this.expected;
    if (!w || w.pid !== pid) return -ENOENT;
    this.expected = undefined;
    const { mm } = w;
    const ufd = mm.captureFork;
    mm.captureFork = -1;
    if (ufd > 0) this.uffds.push(ufd);
    const part = this.run.parts.get(mm);
    if (child > 0 && part) {
      const problem = ufd > 0 ? notHeldBy(part.maps, child) : 'its fork event did not come';
      const pidfd = problem ? -1 : openPidfd(child);
      if (pidfd >= 0) {
        Object.assign(part, { reader: child, forked: true });
        this.held.push({ pidfd });
        this.events.capture_forks = (this.events.capture_forks ?? 0) + 1;
        return 0;
      }
      killIfAlive(child);
      if (problem) mm.noCapture = problem;
      if (DEBUG) fs.writeSync(2, `numactlx-engine: capture fork of pid ${pid} not kept: ${problem ?? 'no pidfd'}\n`);
    } else {
      // EPERM: a filter of pid's would refuse the clone and could not be suspended for it.
      if (child === -EPERM) mm.noCapture = SANDBOXED;
      if (DEBUG) fs.writeSync(2, `numactlx-engine: no capture fork of pid ${pid}: ${child}\n`);
    }
    this.events.capture_fallbacks = (this.events.capture_fallbacks ?? 0) + 1;
    this.copyNow(mm, pid);
    return 0;
  }

  /** Closes the capture children's uffds: after the pause, before any read of a fork (readable; the header says why). */
  closeUffds(): void {
    this.stageHeld(); // the close clears the uffd-wp bits the staging reads
    for (const ufd of this.uffds.splice(0)) closeFd(ufd);
  }

  /** Kills every capture fork of the snapshot (its pages are copied, or it has failed). */
  release(): void {
    this.closeUffds();
    for (const { pidfd } of this.held.splice(0)) {
      try {
        pidfdSendSignal(pidfd, SIGKILL);
        if (DEBUG) fs.writeSync(2, `numactlx-engine: capture fork killed (pidfd ${pidfd})\n`);
      } catch (err) {
        if (DEBUG) fs.writeSync(2, `numactlx-engine: capture fork: ${(err as Error).message}\n`);
      }
      closeFd(pidfd);
    }
    if (this.expected) this.expected.mm.captureFork = -1;
  }
}

/** The capture forks, once they may be read (HeldForks.closeUffds): every read of a fork asks here first. */
export function readable(forks: HeldForks | undefined): HeldForks | undefined {
  forks?.closeUffds();
  return forks;
}

function openPidfd(pid: number): number {
  try {
    return pidfdOpen(pid);
  } catch {
    return -1;
  }
}

/**
 * A frozen page the copier did not find in the capture fork (a MADV_WIPEONFORK mapping
 * set after the prepare looked: forkWouldLack): the snapshot fails with the reason, the
 * page stays DIRTY for a later one, which the prepare pre-copies while the mapping is there.
 */
export function notInFork(run: SnapshotRun | undefined, mm: Mm, part: MmPart, addr: number): void {
  mm.noCapture ??= 'a mapping of it is empty in its forks (MADV_WIPEONFORK)';
  if (run) run.failed ??= `pid ${part.pid}: page 0x${addr.toString(16)} is not in the fork that holds its image (${mm.noCapture}), set after the snapshot looked for such mappings: nothing is lost, take it again`;
  mm.table.setFlags(addr, DIRTY);
}

/** What copyBeforeDrop copies with (snapshot-copy.ts FrozenPageCopier; named here, not imported: that module imports this one). */
interface PageCopier {
  copyPages(mm: Mm, run: SnapshotRun, part: MmPart, addrs: number[]): void;
}

/**
 * [start, end) of mm leaves the program (munmap, MADV_DONTNEED, mremap's source) while a
 * fork holds its snapshot: the frozen pages there not copied yet are copied out of the
 * fork first, so none is lost to the snapshot (a synchronous snapshot loses them).
 */
export function copyBeforeDrop(copier: PageCopier, run: SnapshotRun | undefined, mm: Mm, start: number, end: number): void {
  const part = run?.parts.get(mm);
  if (!run || !part?.forked || part.left === 0) return;
  // The part's runs (ascending) list every frozen page: a drop of a large sparse range
  // (a 1 TiB reservation) walks what is frozen in it, not each of its pages.
  const batch: number[] = [];
  const { runs } = part;
  for (let i = part.run; i < runs.length && runs[i] < end; i += 2) { // the runs before part.run are copied
    for (let page = Math.max(runs[i], start); page < Math.min(runs[i + 1], end); page += PAGE) {
      const flags = mm.table.get(page) > 0 ? mm.table.flagsOf(page) : 0;
      if ((flags & (PENDING | COPYING)) !== PENDING) continue;
      mm.table.setFlags(page, flags | COPYING);
      batch.push(page);
      if (batch.length === MAX_IOV) copier.copyPages(mm, run, part, batch.splice(0));
    }
  }
  if (batch.length > 0) copier.copyPages(mm, run, part, batch);
}
