// `numactlx diff PATH A B [--json]`: the pages whose contents differ between snapshots A
// and B (ids or labels), and the pages only one of them has, as address ranges:
//
//   0x7f3a1c000000-0x7f3a1c003000 changed (3 pages)
//   0x7f3a1c200000-0x7f3a1c201000 only in 2 (1 page)
//   snapshot 2 → 3: 3 pages changed, 1 only in 2, 0 only in 3, 1020 unchanged (4 compared)
//
// With several processes each line starts with `pid P: `. Exit 0 whatever the difference.
import { diffSnapshots, pagesToCompare, type DiffKind, type DiffResult } from '../../src/snapshot/diff.js';
import { hex } from '../../src/snapshot/export-pages.js';
import { createProgress, type Progress } from '../../src/snapshot/progress.js';
import type { SnapshotSource } from '../../src/snapshot/source.js';
import { positionals, type Verb, type VerbArgs } from './parse.js';
import { findSnapshot, withSource } from './snapshots.js';
import { printOut } from '../output.js';

export const diffCommand: Verb = {
  spec: { name: 'diff', usage: 'usage: numactlx diff PATH A B [--json]\n', options: [{ name: 'json', type: 'boolean' }] },
  run: runDiff,
};

const pages = (n: number): string => `${n} page${n === 1 ? '' : 's'}`;

/** The difference report: ranges, then the summary line. */
export function formatDiff(d: DiffResult): string {
  const pids = new Set(d.ranges.map((r) => r.pid));
  const what: Record<DiffKind, string> = { changed: 'changed', only_in_a: `only in ${d.a}`, only_in_b: `only in ${d.b}` };
  const lines = d.ranges.map((r) => `${pids.size > 1 ? `pid ${r.pid}: ` : ''}${hex(r.start)}-${hex(r.end)} ${what[r.kind]} (${pages(r.pages)})`);
  lines.push(`snapshot ${d.a} → ${d.b}: ${pages(d.changed)} changed, ${d.onlyInA} only in ${d.a}, ${d.onlyInB} only in ${d.b}, `
    + `${d.unchanged} unchanged (${d.compared} compared)`);
  return `${lines.join('\n')}\n`;
}

/** The difference as `diff --json` prints it (addresses as "0x…" strings). */
export function diffJson(d: DiffResult): Record<string, unknown> {
  return {
    a: d.a, b: d.b,
    ranges: d.ranges.map((r) => ({ pid: r.pid, start: hex(r.start), end: hex(r.end), pages: r.pages, kind: r.kind })),
    summary: { changed_pages: d.changed, only_in_a_pages: d.onlyInA, only_in_b_pages: d.onlyInB, unchanged_pages: d.unchanged, compared_pages: d.compared },
  };
}

/** `numactlx diff` over `source`: its output. */
export function diffVerb(source: SnapshotSource, refA: string, refB: string,
  opts: { json?: boolean; progress?: (pages: number) => Progress } = {}): string {
  const a = findSnapshot('diff', source, refA);
  const b = findSnapshot('diff', source, refB);
  const d = diffSnapshots(source, a, b, opts.progress?.(pagesToCompare(a, b)));
  return opts.json ? `${JSON.stringify(diffJson(d), null, 2)}\n` : formatDiff(d);
}

async function runDiff(args: VerbArgs): Promise<number> {
  const [path, a, b] = positionals('diff', args, ['PATH', 'A', 'B']);
  const text = await withSource('diff', path, (source) => diffVerb(source, a, b, {
    json: args.flags.json, progress: (n) => createProgress('diff', n),
  }));
  printOut(text);
  return 0;
}
