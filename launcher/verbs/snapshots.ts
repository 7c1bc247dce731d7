// `numactlx snapshots PATH [--json]`: the committed snapshots of a backing, one row each.
//
// Also what the offline verbs (snapshots, verify, export, diff, rm) share: opening a
// backing's snapshots through the catalog, and naming a snapshot by id or label (their
// options are parsed by ./parse.ts, as every verb's). Each verb's work is a function over a SnapshotSource, so it is tested over
// an in-memory source; the run* wrappers only parse, open and print.
import { SetupError, UsageError } from '../errors.js';
import { formatMs, formatTable } from '../format.js';
import { formatBytes } from '../../policy/size.js';
import { openSnapshotSource } from '../../backing/catalog.js';
import { repairHint } from '../../backing/catalog-image.js';
import type { SnapshotSource } from '../../src/snapshot/source.js';
import type { SnapshotRecord } from '../../src/snapshot/types.js';
import { positionals, type Verb, type VerbArgs } from './parse.js';
import { printErr, printOut } from '../output.js';

// ---- shared by the offline verbs ----------------------------------------------------

/** A --pid value: a positive decimal integer. */
export function parsePidOption(verb: string, text: string): number {
  if (!/^[1-9]\d{0,9}$/.test(text) || Number(text) > 0x7fffffff) {
    throw new UsageError(`${verb}: invalid --pid '${text}' (a process id: a positive integer)`);
  }
  return Number(text);
}

/** Errors of programming (not of the backing) pass through with their stack. */
const isBug = (err: unknown): boolean => err instanceof TypeError || err instanceof ReferenceError || err instanceof SyntaxError;

/** An error from the catalog as the verb's one line. */
export function catalogError(verb: string, path: string, err: unknown): unknown {
  if (isBug(err) || err instanceof SetupError || err instanceof UsageError || !(err instanceof Error)) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const message = err.message.includes(path) ? err.message : `${path}: ${err.message}`;
  return new SetupError(`${verb}: ${message}${typeof code === 'string' && !message.includes(code) ? `: ${code}` : ''}`, { cause: err });
}

/**
 * Opens PATH's snapshots for `verb` (read-only, without the backing's lock: a session may
 * be running on it), runs `work` over them, closes them.
 */
export async function withSource<T>(verb: string, path: string, work: (source: SnapshotSource) => T | Promise<T>): Promise<T> {
  let source: SnapshotSource;
  try {
    source = openSnapshotSource(path);
  } catch (err) {
    throw catalogError(verb, path, err);
  }
  try {
    return await work(source);
  } finally {
    source.close();
  }
}

/** Ids as short ranges: 1-3, 5, 8-9. */
export function formatIds(ids: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < ids.length;) {
    let j = i;
    while (j + 1 < ids.length && ids[j + 1] === ids[j] + 1) j++;
    parts.push(j > i ? `${ids[i]}-${ids[j]}` : String(ids[i]));
    i = j + 1;
  }
  return parts.join(', ');
}

/**
 * The snapshot `ref` names in `source`: an id (a positive integer, no leading zeros), or else a label that
 * exactly one snapshot carries. An unknown one is the verb's error, listing what exists.
 */
export function findSnapshot(verb: string, source: SnapshotSource, ref: string): SnapshotRecord {
  const all = source.snapshots();
  const known = all.length === 0 ? 'it has no snapshots' : `its snapshots: ${formatIds(all.map((r) => r.id))}`;
  // An id as numactlx prints it: no leading zeros ('00001' is not snapshot 1: a typo
  // must not pick a snapshot to rm), compared as text (above 2^53 Number(ref) rounds).
  if (/^(0|[1-9]\d*)$/.test(ref)) {
    const record = all.find((r) => String(r.id) === ref);
    const damaged = source.damaged?.find((d) => String(d.id) === ref);
    if (!record && damaged) {
      throw new SetupError(`${verb}: snapshot ${ref} of ${source.path} is damaged (${damaged.reason}); ${repairHint(source.path)}`);
    }
    if (!record) throw new SetupError(`${verb}: no snapshot ${ref} in ${source.path} (${known})`);
    return record;
  }
  const labelled = all.filter((r) => r.label === ref);
  if (labelled.length === 1) return labelled[0];
  if (labelled.length > 1) {
    throw new SetupError(`${verb}: label '${ref}' names ${labelled.length} snapshots in ${source.path} (ids ${formatIds(labelled.map((r) => r.id))}): give the id`);
  }
  throw new SetupError(`${verb}: no snapshot '${ref}' in ${source.path} (not an id, and no snapshot has that label; ${known})`);
}

// ---- numactlx snapshots ---------------------------------------------------------------

export const snapshotsCommand: Verb = {
  spec: { name: 'snapshots', usage: 'usage: numactlx snapshots PATH [--json]\n', options: [{ name: 'json', type: 'boolean' }] },
  run: runSnapshots,
};

/** One snapshot as `snapshots --json` prints it. */
export function snapshotSummary(r: SnapshotRecord): Record<string, unknown> {
  return {
    id: r.id, label: r.label, time: r.time, program: r.program, node: r.node,
    pids: r.processes.map((p) => p.pid),
    pages: r.stats.pages, new_pages: r.stats.new_pages, bytes_written: r.stats.bytes_written,
    pause_ms: r.stats.pause_ms, copy_ms: r.stats.copy_ms,
    // Pages no virtual node holds, copied in the pause (written library data, shared memory).
    ...(r.stats.extra_pages === undefined ? {} : { extra_pages: r.stats.extra_pages, extra_ms: r.stats.extra_ms }),
  };
}

/** The output of `numactlx snapshots`: a table, or with json a JSON array. */
export function listSnapshots(source: SnapshotSource, opts: { json?: boolean } = {}): string {
  const records = source.snapshots();
  if (opts.json) return `${JSON.stringify(records.map(snapshotSummary), null, 2)}\n`;
  if (records.length === 0) return `no snapshots in ${source.path}\n`;
  return formatTable([
    ['ID', 'LABEL', 'TIME', 'PAGES', 'NEW', 'WRITTEN', 'PAUSE', 'COPY'],
    ...records.map((r) => [String(r.id), r.label ?? '-', r.time.replace(/\.\d+Z$/, 'Z'), String(r.stats.pages),
      String(r.stats.new_pages), formatBytes(r.stats.bytes_written), formatMs(r.stats.pause_ms), formatMs(r.stats.copy_ms)]),
  ]);
}

/** One line per damaged record: the listing goes on without them. */
export function damagedLines(verb: string, source: SnapshotSource): string {
  return (source.damaged ?? []).map((d) => `numactlx: ${verb}: snapshot ${d.id} of ${source.path} is damaged and left out ` +
    `(${d.reason}); ${repairHint(source.path)}\n`).join('');
}

async function runSnapshots(args: VerbArgs): Promise<number> {
  const [path] = positionals('snapshots', args, ['PATH']);
  const text = await withSource('snapshots', path, (source) => {
    printErr(damagedLines('snapshots', source));
    return listSnapshots(source, { json: args.flags.json });
  });
  printOut(text);
  return 0;
}
