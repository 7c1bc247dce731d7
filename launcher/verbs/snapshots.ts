// `numactlx snapshots PATH [--json]`: the committed snapshots of a backing, one row each.
//
// Also what the offline verbs (snapshots, verify, export, diff, rm) share: their option
// parsing, opening a backing's snapshots through the catalog, and naming a snapshot by
// id or label. Each verb's work is a function over a SnapshotSource, so it is tested over
// an in-memory source; the run* wrappers only parse, open and print.
import minimist from 'minimist';
import { SetupError, UsageError } from '../errors.js';
import { formatBytes, formatTable } from './status.js';
import { openSnapshotSource } from '../../backing/catalog.js';
import type { SnapshotSource } from '../../src/snapshot/source.js';
import type { SnapshotRecord } from '../../src/snapshot/types.js';

// ---- shared by the offline verbs ----------------------------------------------------

export interface OfflineArgs {
  positional: string[];
  /** Options by name: strings for string options, booleans for flags. */
  options: Record<string, string | boolean | undefined>;
}

/**
 * Parses a verb's arguments: `flags` and `strings` name its options (--help always
 * exists), `aliases` their short forms. Unknown options, a string option without a value
 * or given twice are usage errors.
 */
export function parseOfflineArgs(verb: string, argv: string[], spec: { flags?: string[]; strings?: string[]; aliases?: Record<string, string> } = {}): OfflineArgs {
  const flags = [...(spec.flags ?? []), 'help'];
  const strings = spec.strings ?? [];
  const aliases = { h: 'help', ...spec.aliases };
  const valid = [...strings.map((s) => `--${s}`), ...flags.map((f) => `--${f}`)].join(', ');
  const parsed = minimist(argv, {
    boolean: flags,
    string: strings,
    alias: aliases,
    unknown: (arg) => {
      if (arg.startsWith('-') && arg !== '-') throw new UsageError(`${verb}: unknown option '${arg}' (valid: ${valid})`);
      return true;
    },
  });
  const options: OfflineArgs['options'] = {};
  for (const f of flags) options[f] = parsed[f] as boolean;
  for (const s of strings) {
    const v = parsed[s] as string | string[] | undefined;
    if (Array.isArray(v)) throw new UsageError(`${verb}: --${s} given more than once`);
    if (v === '') throw new UsageError(`${verb}: option '--${s}' requires an argument`);
    options[s] = v;
  }
  return { positional: parsed._.map(String), options };
}

/** The positional arguments `names` (all required), or a usage error naming the first missing. */
export function positionals(verb: string, args: OfflineArgs, names: string[]): string[] {
  if (args.positional.length < names.length) throw new UsageError(`${verb}: missing ${names[args.positional.length]}`);
  if (args.positional.length > names.length) {
    throw new UsageError(`${verb}: unexpected argument '${args.positional[names.length]}' (expected ${names.join(' ')})`);
  }
  return args.positional;
}

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
 * The snapshot `ref` names in `source`: an id (a positive integer), or else a label that
 * exactly one snapshot carries. An unknown one is the verb's error, listing what exists.
 */
export function findSnapshot(verb: string, source: SnapshotSource, ref: string): SnapshotRecord {
  const all = source.snapshots();
  const known = all.length === 0 ? 'it has no snapshots' : `its snapshots: ${formatIds(all.map((r) => r.id))}`;
  if (/^\d+$/.test(ref)) {
    const record = all.find((r) => r.id === Number(ref));
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

export const SNAPSHOTS_USAGE = 'usage: numactlx snapshots PATH [--json]\n';

/** Milliseconds for a table: 0.42ms, 12ms, 1.52s. */
export function formatMs(ms: number): string {
  if (ms < 10) return `${ms.toFixed(2).replace(/\.?0+$/, '') || '0'}ms`;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  return `${(ms / 1000).toFixed(2)}s`;
}

/** One snapshot as `snapshots --json` prints it. */
export function snapshotSummary(r: SnapshotRecord): Record<string, unknown> {
  return {
    id: r.id, label: r.label, time: r.time, program: r.program, node: r.node,
    pids: r.processes.map((p) => p.pid),
    pages: r.stats.pages, new_pages: r.stats.new_pages, bytes_written: r.stats.bytes_written,
    pause_ms: r.stats.pause_ms, copy_ms: r.stats.copy_ms,
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

export async function runSnapshots(argv: string[]): Promise<number> {
  const args = parseOfflineArgs('snapshots', argv, { flags: ['json'] });
  if (args.options.help) {
    process.stdout.write(SNAPSHOTS_USAGE);
    return 0;
  }
  const [path] = positionals('snapshots', args, ['PATH']);
  const text = await withSource('snapshots', path, (source) => listSnapshots(source, { json: args.options.json === true }));
  process.stdout.write(text);
  return 0;
}
