// `numactlx export PATH SNAP --format core|raw -o OUT [--pid PID] [--force]`: one snapshot
// out of a backing, as an ELF core gdb opens (one process: --pid, default the program) or
// as raw pages plus a JSON index (every process, or --pid's). SNAP is an id or a label.
// The output is checked before the backing is read, so an existing OUT fails at once.
import fs from 'node:fs';
import pathLib from 'node:path';
import { SetupError, UsageError } from '../errors.js';
import { writeCore } from '../../src/snapshot/elf-core.js';
import { chooseProcess, ExportError, hex, pageRuns, type ExportSummary } from '../../src/snapshot/export-pages.js';
import { exportRaw } from '../../src/snapshot/export-raw.js';
import { createProgress, type Progress } from '../../src/snapshot/progress.js';
import type { SnapshotSource } from '../../src/snapshot/source.js';
import { formatBytes } from '../../policy/size.js';
import { positionals, type Verb, type VerbArgs } from './parse.js';
import { findSnapshot, parsePidOption, withSource } from './snapshots.js';
import { printErr, printOut } from '../output.js';

export const EXPORT_FORMATS = ['core', 'raw'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const exportCommand: Verb = {
  spec: {
    name: 'export',
    usage: 'usage: numactlx export PATH SNAP --format core|raw -o OUT [--pid PID] [--force]\n',
    options: [
      { name: 'format', type: 'string' },
      { name: 'output', type: 'string', short: 'o' },
      { name: 'pid', type: 'string' },
      { name: 'force', type: 'boolean' },
    ],
  },
  run: runExport,
};

export interface ExportRequest {
  /** Snapshot id or label. */
  snapshot: string;
  format: ExportFormat;
  out: string;
  pid?: number;
  force?: boolean;
  /** A progress bar over `pages` pages; none by default. */
  progress?: (pages: number) => Progress;
}

/** Refuses an output that exists (without --force) or is a symbolic link, before any work. */
export function checkOutput(format: ExportFormat, out: string, force: boolean): void {
  const targets = format === 'raw' ? [out, pathLib.join(out, 'pages.bin'), pathLib.join(out, 'index.json')] : [out];
  targets.forEach((target, i) => {
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(target);
    } catch {
      return; // missing: to be created
    }
    if (stat.isSymbolicLink() && ((format === 'raw' && i === 0) || !force)) {
      // --force replaces a link to a file by the new file (rename), never writing through it.
      throw new SetupError(`export: ${target} is a symbolic link: numactlx never writes through one`
        + `${format === 'raw' && i === 0 ? '' : ' (remove it, or --force to replace the link itself)'}`);
    }
    if (format === 'raw' && i === 0) {
      if (!stat.isDirectory()) throw new SetupError(`export: ${out} is not a directory: ENOTDIR (--format raw writes DIR/pages.bin and DIR/index.json)`);
      return;
    }
    if (stat.isDirectory()) throw new SetupError(`export: ${target} is a directory: EISDIR`);
    if (!force) throw new SetupError(`export: ${target} exists (use --force to replace it)`);
  });
}

/** What an export did: the summary of the snapshot `id`. */
export interface ExportDone extends ExportSummary {
  id: number;
}

/** Exports one snapshot of `source` as `req` says. */
export function exportSnapshot(source: SnapshotSource, req: ExportRequest): ExportDone {
  const record = findSnapshot('export', source, req.snapshot);
  try {
    const procs = req.format === 'core' || req.pid !== undefined ? [chooseProcess(record, req.pid)] : record.processes;
    const pages = procs.reduce((n, p) => n + p.pages.length, 0);
    procs.forEach((p) => pageRuns(record, p)); // a damaged record fails here, before OUT is created
    const progress = req.progress?.(pages);
    const summary = req.format === 'core'
      ? writeCore(source, record, req.pid, req.out, progress, req.force)
      : exportRaw(source, record, req.out, { pid: req.pid, force: req.force, progress });
    return { id: record.id, ...summary };
  } catch (err) {
    if (err instanceof ExportError) throw new SetupError(`export: ${err.message}`, { cause: err });
    throw err;
  }
}

/** What `numactlx export` prints: what was written, and pages that failed their checksum. */
export function formatExport(format: ExportFormat, s: ExportDone): { out: string; err: string } {
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  const what = format === 'core'
    ? `ELF core of pid ${s.pids[0]} (${plural(s.threads, 'thread')})`
    : `raw pages of ${s.pids.length === 1 ? 'pid' : 'pids'} ${s.pids.join(', ')}`;
  const out = `snapshot ${s.id}: ${what} to ${s.path}: ${plural(s.pages, 'page')} in ${plural(s.runs, format === 'core' ? 'segment' : 'run')}, `
    + `${formatBytes(s.bytes)}\n`;
  const bad = s.badPages;
  const err = bad.length === 0 ? '' : `numactlx: export: warning: ${bad.length === 1 ? '1 page failed its checksum and was'
    : `${bad.length} pages failed their checksums and were`} exported as found (first: ${hex(bad[0].addr)} of pid ${bad[0].pid}, `
    + `frame ${bad[0].frame}); run numactlx verify\n`;
  return { out, err };
}

async function runExport(args: VerbArgs): Promise<number> {
  const [path, snapshot] = positionals('export', args, ['PATH', 'SNAP']);
  const format = args.strings.format;
  if (format === undefined) throw new UsageError('export: missing --format (core or raw)');
  if (!(EXPORT_FORMATS as readonly string[]).includes(format)) {
    throw new UsageError(`export: invalid --format '${format}' (valid: ${EXPORT_FORMATS.join(', ')})`);
  }
  const out = args.strings.output;
  if (out === undefined) throw new UsageError(`export: missing -o OUT (${format === 'core' ? 'the core file' : 'a directory'} to write)`);
  const pid = args.strings.pid === undefined ? undefined : parsePidOption('export', args.strings.pid);
  const force = args.flags.force;
  checkOutput(format as ExportFormat, out, force);
  const req: ExportRequest = {
    snapshot, format: format as ExportFormat, out, pid, force, progress: (pages) => createProgress('export', pages),
  };
  const done = await withSource('export', path, (source) => exportSnapshot(source, req));
  const text = formatExport(format as ExportFormat, done);
  printOut(text.out);
  printErr(text.err);
  return 0;
}
