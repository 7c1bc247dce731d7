// How the verbs print: aligned tables, page counts as sizes, command lines, ages and
// durations. Byte sizes themselves are policy/size.ts's (parsed and printed there).
import { formatBytes } from '../policy/size.js';
import { PAGE_SIZE } from '../src/sys/page.js';

/** Rows as columns two spaces apart, header first; the last column is not padded. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => (i < r.length - 1 ? cell.padEnd(widths[i]) : cell)).join('  ').trimEnd())
    .join('\n') + '\n';
}

/** A count of base pages as a size (the engine counts pages). */
export const formatPages = (pages: number): string => formatBytes(pages * PAGE_SIZE);

/** A command line for display: words quoted the way a shell would need them. */
export function formatCommand(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** "3d04h", "1h02m", "5m07s", "9s" */
export function formatUptime(startedIso: string, now: number = Date.now()): string {
  const started = Date.parse(startedIso);
  if (Number.isNaN(started)) return '?';
  let s = Math.max(0, Math.floor((now - started) / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  const two = (n: number): string => String(n).padStart(2, '0');
  if (d > 0) return `${d}d${two(h)}h`;
  if (h > 0) return `${h}h${two(m)}m`;
  if (m > 0) return `${m}m${two(s)}s`;
  return `${s}s`;
}

/** Milliseconds for a table: 0.42ms, 12ms, 1.52s. */
export function formatMs(ms: number): string {
  if (ms < 10) return `${ms.toFixed(2).replace(/\.?0+$/, '') || '0'}ms`;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  return `${(ms / 1000).toFixed(2)}s`;
}
