// Exporting a snapshot out of a backing: what both formats share (choosing the process,
// cutting its pages into runs, copying frames out with their checksums checked, creating
// output files safely) and the raw format itself.
//
// Raw export, `-o DIR`:
//   DIR/pages.bin   every page of the exported processes, 4096 bytes each, process after
//                   process, each in ascending address order
//   DIR/index.json  { format, version, page_size, id, label, time, program, node,
//                     processes: [{ pid, exe, command, vmas, threads: [{ tid, regs }],
//                               runs: [{ addr, pages, offset }] }] }
//                   addresses and registers are "0x…" strings (u64s do not fit a JSON
//                   number); `offset` is the run's byte offset in pages.bin.
//
// Output files are created mode 0600 (they hold the program's memory) with
// O_EXCL|O_NOFOLLOW: never through a symbolic link, never over an existing file unless
// `force`, and then by rename() of a new file over it (rename replaces a link itself,
// it does not follow it), so a failed export leaves the old file as it was.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { USER_REGS_FIELDS } from '../sys/arch/index.js';
import { PAGE_SIZE } from '../sys/page.js';
import { NO_PROGRESS, type Progress } from './progress.js';
import type { SnapshotSource } from './source.js';
import type { SnapshotPage, SnapshotProcess, SnapshotRecord, Vma } from './types.js';

export const RAW_FORMAT = 'numactlx-raw';
export const RAW_VERSION = 1;

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

/** A new output file being written; commit() makes it the file at `path`. */
export interface OutputFile {
  readonly path: string;
  readonly fd: number;
  /** Closes it and (with force) renames it over the old file. */
  commit(): void;
  /** Closes and removes what this export created. */
  abort(): void;
}

const errno = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? 'EIO';

function isSymlink(file: string): boolean {
  try {
    return fs.lstatSync(file).isSymbolicLink();
  } catch {
    return false;
  }
}

const S_ISVTX = 0o1000;

/**
 * The directory an output goes into must be one no other user can rearrange: owned by
 * us or root, and not writable by group or others unless sticky (/tmp is fine: its
 * sticky bit keeps others from renaming or deleting what numactlx creates there).
 * Otherwise another user could swap the file or directory numactlx just wrote — a
 * snapshot holds program memory.
 */
export function checkOutputParent(dir: string, shown: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    return; // creating in it fails next, with its own errno
  }
  const euid = process.geteuid?.() ?? 0;
  const where = path.dirname(shown) || '.';
  if (st.uid !== euid && st.uid !== 0) {
    throw new ExportError(`${where} belongs to uid ${st.uid}: numactlx writes snapshots only into directories of yours or root's`);
  }
  if ((st.mode & 0o022) !== 0 && (st.mode & S_ISVTX) === 0) {
    const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
    throw new ExportError(`${where} has mode ${mode}: other users could replace what numactlx writes there ` +
      '(choose a directory only you can write, or one with the sticky bit like /tmp)');
  }
}

/**
 * Creates `name` in directory `dir` (a path, possibly a /proc/self/fd/N magic link to a
 * directory already opened), mode 0600, never through a symlink. `shown` is the path the
 * user gave, for messages.
 */
export function createOutput(dir: string, name: string, shown: string, force: boolean): OutputFile {
  checkOutputParent(dir, shown);
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
  const flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;
  const target = path.join(dir, name);
  if (!force) {
    let fd: number;
    try {
      fd = fs.openSync(target, flags, 0o600);
    } catch (err) {
      if (errno(err) === 'EEXIST') {
        throw new ExportError(isSymlink(target)
          ? `${shown} is a symbolic link: numactlx never writes through one (remove it, or --force to replace the link itself)`
          : `${shown} exists (use --force to replace it)`, { cause: err });
      }
      throw new ExportError(`cannot create ${shown}: ${errno(err)}`, { cause: err });
    }
    return {
      path: shown, fd,
      commit: () => fs.closeSync(fd),
      abort: () => {
        fs.closeSync(fd);
        fs.rmSync(target, { force: true });
      },
    };
  }
  try {
    if (fs.lstatSync(target).isDirectory()) throw new ExportError(`${shown} is a directory: EISDIR`);
  } catch (err) {
    if (err instanceof ExportError) throw err;
  }
  const temp = path.join(dir, `.${name}.numactlx-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
  let fd: number;
  try {
    fd = fs.openSync(temp, flags, 0o600);
  } catch (err) {
    throw new ExportError(`cannot create a file next to ${shown}: ${errno(err)}`, { cause: err });
  }
  return {
    path: shown, fd,
    commit: () => {
      fs.closeSync(fd);
      try {
        fs.renameSync(temp, target);
      } catch (err) {
        fs.rmSync(temp, { force: true });
        throw new ExportError(`cannot replace ${shown}: ${errno(err)}`, { cause: err });
      }
    },
    abort: () => {
      fs.closeSync(fd);
      fs.rmSync(temp, { force: true });
    },
  };
}

/**
 * Opens (creating it mode 0700 when missing) the output directory, never through a
 * symbolic link. The returned path is /proc/self/fd/N: files created under it land in the
 * directory that was checked, even if `dir` is replaced meanwhile. close() releases it.
 */
export function openOutputDir(dir: string): { path: string; close(): void; removeIfCreated(): void } {
  checkOutputParent(path.dirname(path.resolve(dir)), dir);
  let created = false;
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
    created = true;
  } catch (err) {
    if (errno(err) !== 'EEXIST') throw new ExportError(`cannot create directory ${dir}: ${errno(err)}`, { cause: err });
  }
  const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = fs.constants;
  let fd: number;
  try {
    fd = fs.openSync(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  } catch (err) {
    if (errno(err) === 'ELOOP' || isSymlink(dir)) {
      throw new ExportError(`${dir} is a symbolic link: numactlx never writes through one`, { cause: err });
    }
    throw new ExportError(errno(err) === 'ENOTDIR' ? `${dir} is not a directory: ENOTDIR` : `cannot open ${dir}: ${errno(err)}`,
      { cause: err });
  }
  return {
    path: `/proc/self/fd/${fd}`,
    close: () => {
      if (fd < 0) return;
      fs.closeSync(fd);
      fd = -1;
    },
    // A failed export leaves nothing behind: not even the directory it made (if empty).
    removeIfCreated: () => {
      if (!created) return;
      try { fs.rmdirSync(dir); } catch { /* not empty, or gone: leave it */ }
    },
  };
}

/** The registers of a user_regs_struct buffer by name, as "0x…" strings. */
export function regsToJson(regs: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  USER_REGS_FIELDS.forEach((name, i) => {
    out[name] = i * 8 + 8 <= regs.length ? hex(regs.readBigUInt64LE(i * 8)) : '0x0';
  });
  return out;
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

/** `--format raw -o DIR`: DIR/pages.bin and DIR/index.json (see the header comment). */
export function exportRaw(source: SnapshotSource, record: SnapshotRecord, outDir: string,
  options: ExportOptions = {}): ExportSummary {
  const procs = options.pid === undefined ? record.processes : [chooseProcess(record, options.pid)];
  const cut = procs.map((proc) => ({ proc, runs: pageRuns(record, proc) }));
  const dir = openOutputDir(outDir);
  const summary: ExportSummary = { path: outDir, pids: procs.map((p) => p.pid), threads: 0, pages: 0, bytes: 0, runs: 0, badPages: [] };
  const outputs: OutputFile[] = [];
  try {
    const pagesFile = createOutput(dir.path, 'pages.bin', path.join(outDir, 'pages.bin'), options.force ?? false);
    outputs.push(pagesFile);
    const indexFile = createOutput(dir.path, 'index.json', path.join(outDir, 'index.json'), options.force ?? false);
    outputs.push(indexFile);
    const processes = cut.map(({ proc, runs }) => {
      // The runs cover the pages in order, so a run starts run.first pages into the process's part.
      const jsonRuns = runs.map((run) => ({ addr: hex(run.addr), pages: run.count, offset: summary.bytes + run.first * PAGE_SIZE }));
      const copied = copyRuns(source, proc, runs, pagesFile.fd, summary.bytes, options.progress);
      summary.pages += copied.pages;
      summary.bytes += copied.bytes;
      summary.runs += runs.length;
      summary.threads += proc.threads.length;
      summary.badPages.push(...copied.badPages);
      return {
        pid: proc.pid, exe: proc.exe, command: proc.command,
        vmas: proc.vmas.map((v) => ({ start: hex(v.start), end: hex(v.end), perms: v.perms, offset: v.offset, path: v.path })),
        threads: proc.threads.map((t) => ({ tid: t.tid, regs: regsToJson(t.regs) })),
        runs: jsonRuns,
      };
    });
    const index = {
      format: RAW_FORMAT, version: RAW_VERSION, page_size: PAGE_SIZE,
      id: record.id, label: record.label, time: record.time, program: record.program, node: record.node,
      processes,
    };
    fs.writeSync(indexFile.fd, `${JSON.stringify(index, null, 2)}\n`);
    for (const out of outputs.splice(0)) out.commit();
    return summary;
  } catch (err) {
    for (const out of outputs) {
      try {
        out.abort();
      } catch {
        // the export's own error is the one to report
      }
    }
    dir.close();
    dir.removeIfCreated();
    throw err instanceof ExportError || !(err as NodeJS.ErrnoException).code ? err
      : new ExportError(`writing ${outDir}: ${errno(err)}`, { cause: err });
  } finally {
    options.progress?.done();
    dir.close();
  }
}
