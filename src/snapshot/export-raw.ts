// The raw export format, `numactlx export --format raw -o DIR`:
//
//   DIR/pages.bin   every page of the exported processes, 4096 bytes each, process after
//                   process, each in ascending address order
//   DIR/index.json  { format, version, page_size, id, label, time, program, node,
//                     processes: [{ pid, exe, command, vmas, threads: [{ tid, regs }],
//                               runs: [{ addr, pages, offset }] }] }
//                   addresses and registers are "0x…" strings (u64s do not fit a JSON
//                   number); `offset` is the run's byte offset in pages.bin.
//
// The pages are cut and copied by export-pages.ts, the files created by export-output.ts.
import fs from 'node:fs';
import path from 'node:path';
import { USER_REGS_FIELDS } from '../sys/arch/index.js';
import { PAGE_SIZE } from '../sys/page.js';
import { chooseProcess, copyRuns, ExportError, hex, pageRuns, type ExportOptions, type ExportSummary } from './export-pages.js';
import { createOutput, errno, openOutputDir, type OutputFile } from './export-output.js';
import type { SnapshotSource } from './source.js';
import type { SnapshotRecord } from './types.js';

export const RAW_FORMAT = 'numactlx-raw';
export const RAW_VERSION = 1;

/** The registers of a user_regs_struct buffer by name, as "0x…" strings. */
export function regsToJson(regs: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  USER_REGS_FIELDS.forEach((name, i) => {
    out[name] = i * 8 + 8 <= regs.length ? hex(regs.readBigUInt64LE(i * 8)) : '0x0';
  });
  return out;
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
