// A snapshot in the engine: redirect-on-write over userfaultfd write protection
// (DESIGN.md §3.2).
//
// Freeze (the program's threads are stopped by the tracer): every DIRTY page — written
// since the last snapshot, or new — is write-protected and becomes PENDING; clean pages
// already are write-protected and keep their frame. The pause is proportional to the
// dirty set, not to the node.
//
// Copy (the program runs again): pending pages are read with process_vm_readv into
// frames, in batches between fault service. A write to a pending page copies that page
// first. INVARIANT: no page becomes writable again before its frame is written — a
// page leaves PENDING only by being copied, and only a write-protect fault on a page
// that is not PENDING makes it writable.
//
// Frames: a page's frame holds its content as of the last snapshot that copied it. It
// is copied in place when no committed snapshot references that frame, else into a new
// frame (the older snapshot keeps the old one). Clean pages are not copied: the
// snapshot references their frame. Every snapshot is complete; all but the first are
// incremental.
//
// Durable, then visible: the frames are synced, then the catalog commits the record.
import zlib from 'node:zlib';
import type { SnapshotPage, SnapshotProcess, SnapshotRecord, ThreadRegs, Vma } from '../snapshot/types.js';
import { PAGE } from './page-table.js';

/** Per address space: the pages of its last committed snapshot, sorted by address. */
export interface SnapMap {
  addrs: number[];
  frames: number[];
  crcs: number[];
  slots: number[];
}

export const EMPTY_MAP: SnapMap = { addrs: [], frames: [], crcs: [], slots: [] };

export interface CopiedPage {
  frame: number;
  crc: number;
  slot: number;
}

/** What one address space contributes to a snapshot being taken. */
export interface MmPart {
  pid: number;
  exe: string;
  command: string[];
  vmas: Vma[];
  threads: ThreadRegs[];
  /** Pending pages as ascending [start, end) runs, flattened; `next` is the next page to copy. */
  runs: number[];
  run: number;
  next: number;
  /** Pending pages not reached by the copier yet. */
  left: number;
  copied: Map<number, CopiedPage>;
  /** Pending pages dropped (munmap, DONTNEED) before they could be copied. */
  lost: Set<number>;
  /** The map of the previous snapshot and what was dropped since it (at the freeze). */
  prev: SnapMap;
  drops: Array<[number, number]>;
}

export interface SnapshotRequest {
  id: number;
  label: string | null;
  program: string[];
}

export class SnapshotRun {
  readonly time = new Date().toISOString();
  readonly parts = new Map<unknown, MmPart>(); // keyed by Mm
  pauseMs = 0;
  /** The tracer reports the pause after resuming the program; the record waits for it. */
  pauseKnown = false;
  /** When the tracer resumed the program (set with the pause). */
  resumedAt = process.hrtime.bigint();
  newPages = 0;
  failed: string | undefined;

  constructor(readonly req: SnapshotRequest) {}

  /** Pending pages not copied yet, over every part. */
  get remaining(): number {
    let n = 0;
    for (const p of this.parts.values()) n += p.left;
    return n;
  }

  /**
   * The complete page list of one part on one node: the previous snapshot's pages that
   * were neither dropped since nor copied again, plus the pages copied now.
   */
  static pagesOf(part: MmPart, slot: number): { pages: SnapshotPage[]; map: SnapMap } {
    const out: Array<SnapshotPage & { slot: number }> = [];
    const dropped = (addr: number): boolean => part.drops.some(([s, e]) => addr >= s && addr < e);
    const { prev } = part;
    for (let i = 0; i < prev.addrs.length; i++) {
      const addr = prev.addrs[i];
      if (part.copied.has(addr) || part.lost.has(addr) || dropped(addr)) continue;
      out.push({ addr, frame: prev.frames[i], crc: prev.crcs[i], slot: prev.slots[i] });
    }
    for (const [addr, c] of part.copied) out.push({ addr, frame: c.frame, crc: c.crc, slot: c.slot });
    out.sort((a, b) => a.addr - b.addr);
    const map: SnapMap = { addrs: [], frames: [], crcs: [], slots: [] };
    for (const p of out) {
      map.addrs.push(p.addr); map.frames.push(p.frame); map.crcs.push(p.crc); map.slots.push(p.slot);
    }
    const pages = out.filter((p) => p.slot === slot).map(({ addr, frame, crc }) => ({ addr, frame, crc }));
    return { pages, map };
  }

  /** The record of this snapshot for the virtual node in `slot`. */
  record(node: number, slot: number, pagesByPart: Map<MmPart, SnapshotPage[]>, copyMs: number): SnapshotRecord {
    const processes: SnapshotProcess[] = [...this.parts.values()].map((p) => ({
      pid: p.pid, exe: p.exe, command: p.command, vmas: p.vmas, threads: p.threads,
      pages: pagesByPart.get(p) ?? [],
    }));
    const pages = processes.reduce((n, p) => n + p.pages.length, 0);
    let newPages = 0;
    for (const p of this.parts.values()) for (const c of p.copied.values()) if (c.slot === slot) newPages++;
    return {
      id: this.req.id, label: this.req.label, time: this.time, program: this.req.program, node, processes,
      stats: { pages, new_pages: newPages, bytes_written: newPages * PAGE, pause_ms: this.pauseMs, copy_ms: copyMs },
    };
  }
}

/** Takes up to `max` of a part's pending pages, in address order. */
export function takePending(part: MmPart, max: number): number[] {
  const out: number[] = [];
  while (out.length < max && part.run < part.runs.length) {
    if (part.next < part.runs[part.run]) part.next = part.runs[part.run];
    if (part.next >= part.runs[part.run + 1]) { part.run += 2; continue; }
    out.push(part.next);
    part.next += PAGE;
    part.left--;
  }
  return out;
}

/** CRC32 of a frame's bytes (a view over the backing mapping). */
export function frameCrc(view: Buffer): number {
  return zlib.crc32(view);
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
