// A snapshot in the engine: redirect-on-write over userfaultfd write protection
// (DESIGN.md §3.2), in three phases.
//
// Prepare (the program runs): the DIRTY pages — written since the last snapshot, or
// new — are write-protected in small steps between fault service and become PENDING
// ("staged"). A write to a staged page before the freeze makes it DIRTY|PENDING and
// writable again, with no copy: the snapshot is not cut yet. Up to three passes while
// many pages were written again. This is DESIGN's freeze split in two, so that the pause
// is proportional to what the program writes during the prepare, not to the dirty set.
//
// Freeze (the program's threads are stopped by the tracer): the pages DIRTY now are
// write-protected and become PENDING. Staged pages not written since are still
// protected and unchanged since their staging: the snapshot holds both. Clean pages are
// protected already and keep their frame.
//
// Copy (the program runs again): pending pages are read with process_vm_readv into
// frames, in small batches between fault service. A write to a pending page copies that
// page first. INVARIANT, from the freeze to the end of the copy: no page becomes
// writable again before its frame is written — a page leaves PENDING only by being
// copied, and only a write-protect fault on a page that is not PENDING makes it writable.
//
// Frames: a page's frame holds its content as of the last snapshot that copied it. It
// is copied in place when no committed snapshot references that frame, else into a new
// frame (the older snapshot keeps the old one). Clean pages are not copied: the
// snapshot references their frame. Every snapshot is complete; all but the first are
// incremental.
//
// Durable, then visible: the frames are synced, then the catalog commits the record.
//
// That is synchronous dirty tracking. With asynchronous tracking (UFFD_FEATURE_WP_ASYNC +
// PAGEMAP_SCAN: dirty-scan.ts) prepare and freeze are precopy.ts instead: the pages are
// copied before and in the freeze, none is PENDING, and the copy phase has nothing left —
// unless a fork holds the image (snapshot-capture.ts): then the written pages are PENDING
// and copied out of the fork (`reader`) after the freeze, none of them write-protected for it.
import type { SnapshotProcess, SnapshotRecord, ThreadRegs, Vma } from '../snapshot/types.js';
import { PAGE } from './page-table.js';
import { PageMap } from './page-map.js';
import type { Mm } from './mm.js';

/** What one address space contributes to a snapshot being taken. */
export interface MmPart {
  pid: number;
  exe: string;
  command: string[];
  /** The VMAs at the freeze: `maps` is /proc/PID/maps read then, parsed into `vmas` at the commit. */
  vmas: Vma[];
  maps: string;
  threads: ThreadRegs[];
  /**
   * A task whose mm this is, alive at the freeze: process_vm_readv and /proc/TID/maps go
   * through it. Or the snapshot's capture fork (`forked`), whose memory is the freeze's.
   */
  reader: number;
  forked?: boolean;
  /** Held by a fork: its written pages are staged out of the fork after the pause (held-staging.ts). */
  unstaged?: boolean;
  /**
   * Pending pages as [start, end) runs, flattened: the staged runs, then the frozen ones
   * (each list ascending; a page may be in both). `run`/`next`: the copier's place.
   */
  runs: number[];
  run: number;
  next: number;
  /** Entries of `runs` not reached by the copier yet. */
  left: number;
  /** The pages copied by this snapshot (frame, CRC, slot). */
  copied: PageMap;
  /** The pages no virtual node holds, copied in the freeze (snapshot-extras.ts): this snapshot's alone. */
  extra: PageMap;
  /** Pages copied per slot. */
  newPages: number[];
  /** Pending pages dropped (munmap, DONTNEED) before they could be copied. */
  lost: Set<number>;
  /** The map of the previous snapshot and what was dropped since it (at the freeze). */
  prev: PageMap;
  drops: Array<[number, number]>;
}

/** A part with nothing recorded yet (the freeze fills in what it reads; the pre-copy starts from this). */
export function newPart(mm: Mm, pid: number, slots: number): MmPart {
  return {
    pid: mm.ownerPid || pid, exe: mm.exe, command: mm.command, vmas: [], maps: '', threads: [], reader: pid,
    runs: [], run: 0, next: 0, left: 0,
    copied: new PageMap(), extra: new PageMap(), newPages: new Array<number>(slots).fill(0), lost: new Set(), prev: mm.snap, drops: [],
  };
}

/** What the copier writes pages for: a snapshot being taken, or a pre-copy (precopy.ts) before its freeze. */
export interface CopyTarget {
  /** Why the snapshot fails, once known. */
  failed: string | undefined;
  /** "snapshot N", for messages. */
  readonly name: string;
}

export interface SnapshotRequest {
  id: number;
  label: string | null;
  program: string[];
}

export class SnapshotRun implements CopyTarget {
  readonly time = new Date().toISOString();
  readonly parts = new Map<Mm, MmPart>();
  pauseMs = 0;
  /** The tracer reports the pause after resuming the program; the record waits for it. */
  pauseKnown = false;
  /** When the tracer resumed the program (set with the pause). */
  resumedAt = process.hrtime.bigint();
  failed: string | undefined;
  /** Pages frozen for copying (set by the freeze; `remaining` counts down from it). */
  frozenPages = 0;
  /** Pages copied in the freeze because no virtual node holds them, and the time that took. */
  extraPages = 0;
  extraMs = 0;
  /** A held snapshot's reset of the program's written pages, in steps before the commit (held-staging.ts). */
  carry: Generator<void, void> | undefined;

  constructor(readonly req: SnapshotRequest) {}

  get name(): string {
    return `snapshot ${this.req.id}`;
  }

  /** Pending pages not copied yet, over every part. */
  get remaining(): number {
    let n = 0;
    for (const p of this.parts.values()) n += p.left;
    return n;
  }

  /** The record of this snapshot for the virtual node in `slot`; `pages` per part, ascending. */
  record(node: number, slot: number, pagesByPart: Map<MmPart, SnapshotProcess['pages']>, copyMs: number): SnapshotRecord {
    const processes: SnapshotProcess[] = [...this.parts.values()].map((p) => ({
      pid: p.pid, exe: p.exe, command: p.command, vmas: p.vmas, threads: p.threads,
      pages: pagesByPart.get(p) ?? [],
    }));
    const pages = processes.reduce((n, p) => n + p.pages.length, 0);
    let newPages = 0;
    for (const p of this.parts.values()) newPages += p.newPages[slot] ?? 0;
    return {
      id: this.req.id, label: this.req.label, time: this.time, program: this.req.program, node, processes,
      stats: { pages, new_pages: newPages, bytes_written: newPages * PAGE, pause_ms: this.pauseMs, copy_ms: copyMs,
        ...(slot === 0 ? { extra_pages: this.extraPages, extra_ms: Math.round(this.extraMs * 1000) / 1000 } : {}) },
    };
  }
}

/** Takes up to `max` of a part's pending pages (run order) into `out`; returns how many. */
export function takePending(part: MmPart, max: number, out: number[]): number {
  out.length = 0;
  while (out.length < max && part.run < part.runs.length) {
    if (part.next >= part.runs[part.run + 1]) {
      part.run += 2;
      if (part.run < part.runs.length) part.next = part.runs[part.run];
      continue;
    }
    out.push(part.next);
    part.next += PAGE;
    part.left--;
  }
  return out.length;
}

/** Pages in flattened [start, end) runs. */
export function pagesInRuns(runs: number[]): number {
  let n = 0;
  for (let i = 0; i < runs.length; i += 2) n += (runs[i + 1] - runs[i]) / PAGE;
  return n;
}

/** /proc/PID/maps as VMAs. */
export function vmasOf(text: string): Vma[] {
  const out: Vma[] = [];
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) \S+ \d+\s*(.*)$/.exec(line);
    if (!m) continue;
    // [vsyscall] sits at 0xffffffffff600000, beyond user space and beyond exact numbers.
    if (m[1].length > 12) continue;
    out.push({ start: Number.parseInt(m[1], 16), end: Number.parseInt(m[2], 16), perms: m[3],
      offset: Number.parseInt(m[4], 16), path: m[5] });
  }
  return out;
}
