// What both export formats (raw: export-raw.ts, ELF core: elf-core.ts) share: the error
// an export fails with, choosing the process, cutting its pages into runs, and copying
// frames out with their checksums checked (a bad frame is written as found and listed,
// never skipped), plus the summary every export returns.
import fs from 'node:fs';
import zlib from 'node:zlib';
import { PAGE_SIZE } from '../sys/page.js';
import { NO_PROGRESS, type Progress } from './progress.js';
import type { SnapshotSource } from './source.js';
import type { SnapshotPage, SnapshotProcess, SnapshotRecord, Vma } from './types.js';

/** An export that cannot be done; the message is the user's line (the verb adds its name). */
export class ExportError extends Error {
  /** The errno name when a system call failed ("EEXIST"). */
  readonly code?: string;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ExportError';
    const code = (options?.cause as NodeJS.ErrnoException | undefined)?.code;
    if (typeof code === 'string') this.code = code;
  }
}

export const hex = (n: number | bigint): string => `0x${n.toString(16)}`;

/** The process `pid` of the record, or its first (the program) when pid is undefined. */
export function chooseProcess(record: SnapshotRecord, pid?: number): SnapshotProcess {
  if (record.processes.length === 0) throw new ExportError(`snapshot ${record.id} has no process`);
  if (pid === undefined) return record.processes[0];
  const proc = record.processes.find((p) => p.pid === pid);
  if (!proc) {
    throw new ExportError(`snapshot ${record.id} has no process ${pid} (its processes: ${record.processes.map((p) => p.pid).join(', ')})`);
  }
  return proc;
}

/** Contiguous pages inside one VMA (or outside all of them): one PT_LOAD, one raw run. */
export interface PageRun {
  addr: number;
  /** Index in proc.pages of the run's first page, and its length in pages. */
  first: number;
  count: number;
  vma: Vma | undefined;
}

/**
 * The process's pages cut into runs: a run ends where the next page is not adjacent or
 * lies in another VMA (its permissions may differ). Throws when the pages are not
 * strictly ascending — a damaged record, which `numactlx verify` names.
 */
export function pageRuns(record: SnapshotRecord, proc: SnapshotProcess): PageRun[] {
  const vmas = [...proc.vmas].sort((a, b) => a.start - b.start);
  const runs: PageRun[] = [];
  let v = 0;
  let cur: PageRun | undefined;
  let prev = -1;
  for (let i = 0; i < proc.pages.length; i++) {
    const addr = proc.pages[i].addr;
    if (addr <= prev || addr % PAGE_SIZE !== 0) {
      throw new ExportError(`snapshot ${record.id} is damaged: pid ${proc.pid}: page ${hex(addr)} is out of order ` +
        'or unaligned (numactlx verify lists the problems)');
    }
    prev = addr;
    while (v < vmas.length && vmas[v].end <= addr) v++;
    const vma = v < vmas.length && vmas[v].start <= addr ? vmas[v] : undefined;
    if (cur && cur.vma === vma && addr === cur.addr + cur.count * PAGE_SIZE) {
      cur.count++;
    } else {
      cur = { addr, first: i, count: 1, vma };
      runs.push(cur);
    }
  }
  return runs;
}

/**
 * Reads frame `frame` into `out` (4096 bytes). A source may return its own buffer (a view
 * of its mapping) rather than fill `out`: copy it then.
 */
export function readFrameInto(source: SnapshotSource, frame: number, out: Buffer): Buffer {
  const got = source.readFrame(frame, out);
  if (got.buffer !== out.buffer || got.byteOffset !== out.byteOffset) got.copy(out, 0, 0, PAGE_SIZE);
  return out;
}

/** A page whose frame no longer has the checksum recorded when it was written. */
export interface BadPage {
  pid: number;
  addr: number;
  frame: number;
}

export interface CopyResult {
  pages: number;
  /** Bytes written to the output. */
  bytes: number;
  badPages: BadPage[];
}

const CHUNK_PAGES = 256; // 1 MiB a write

/**
 * Copies the pages of `runs` to `fd` from byte `position` on, run after run, with no gap
 * (each run's offset is the previous one's end). Checks every frame's CRC32 on the way.
 */
export function copyRuns(source: SnapshotSource, proc: SnapshotProcess, runs: readonly PageRun[], fd: number,
  position: number, progress: Progress = NO_PROGRESS): CopyResult {
  const chunk = Buffer.alloc(CHUNK_PAGES * PAGE_SIZE);
  const result: CopyResult = { pages: 0, bytes: 0, badPages: [] };
  let filled = 0;
  const flush = (): void => {
    let off = 0;
    while (off < filled * PAGE_SIZE) off += fs.writeSync(fd, chunk, off, filled * PAGE_SIZE - off, position + result.bytes + off);
    result.bytes += off;
    progress.tick(filled);
    filled = 0;
  };
  for (const run of runs) {
    for (let i = run.first; i < run.first + run.count; i++) {
      const page: SnapshotPage = proc.pages[i];
      const slot = chunk.subarray(filled * PAGE_SIZE, (filled + 1) * PAGE_SIZE);
      readFrameInto(source, page.frame, slot);
      if (zlib.crc32(slot) !== page.crc) result.badPages.push({ pid: proc.pid, addr: page.addr, frame: page.frame });
      result.pages++;
      if (++filled === CHUNK_PAGES) flush();
    }
  }
  if (filled > 0) flush();
  return result;
}

export interface ExportOptions {
  /** One process only (default for raw: every process of the snapshot). */
  pid?: number;
  force?: boolean;
  progress?: Progress;
}

export interface ExportSummary {
  /** What was written: the core file, or the raw directory. */
  path: string;
  pids: number[];
  threads: number;
  pages: number;
  bytes: number;
  /** PT_LOAD segments (core) or runs (raw). */
  runs: number;
  /** Pages whose frame failed its checksum: exported as found. */
  badPages: BadPage[];
}
