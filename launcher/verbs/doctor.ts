// `numactlx doctor [--json]`: what numactlx needs from the kernel and the user's
// permissions, one row per feature (src/kerndat/features.ts has the table, probe.ts the
// probes): ok; degraded (absent, and what numactlx's fallback costs); missing (absent
// with no fallback: what cannot work, and how to fix it); unused (listed, not used).
//
// Exit status: 0 when numactlx can do its job (nothing missing), else 1 with a last line
// on stderr, `numactlx: doctor: N features missing`.
import { formatTable } from '../format.js';
import { judge, type FeatureRow } from '../../src/kerndat/features.js';
import { probeKernel } from '../../src/kerndat/probe.js';
import { THOROUGH } from '../../src/kerndat/probe-thorough.js';
import { SetupError } from '../errors.js';
import { positionals, type Verb, type VerbArgs } from './parse.js';
import { printErr, printOut } from '../output.js';

export const doctorCommand: Verb = {
  spec: { name: 'doctor', usage: 'usage: numactlx doctor [--json]\n', options: [{ name: 'json', type: 'boolean' }] },
  run: runDoctor,
};

/** The rows as an aligned table, header first. */
export function formatRows(rows: readonly FeatureRow[]): string {
  return formatTable([['CHECK', 'STATUS', 'DETAIL', 'FIX'], ...rows.map((r) => [r.label, r.status, r.detail, r.fix ?? ''])]);
}

/** The rows as JSON: `{ ok, missing, degraded, checks: [{ name, feature, status, ok, detail, fix? }] }`. */
export function formatJson(rows: readonly FeatureRow[]): string {
  const count = (s: string): number => rows.filter((r) => r.status === s).length;
  const checks = rows.map((r) => ({ name: r.label, feature: r.name, status: r.status, ok: r.status !== 'missing', detail: r.detail,
    ...(r.fix === undefined || r.status === 'ok' || r.status === 'unused' ? {} : { fix: r.fix }) }));
  return `${JSON.stringify({ ok: count('missing') === 0, missing: count('missing'), degraded: count('degraded'), checks }, null, 2)}\n`;
}

async function runDoctor(args: VerbArgs): Promise<number> {
  positionals('doctor', args, []);
  let rows: FeatureRow[];
  try {
    rows = judge(probeKernel(THOROUGH));
  } catch (err) {
    throw new SetupError(`doctor: ${(err as Error).message}`, { cause: err });
  }
  // A fix is shown where something is absent and it matters.
  const shown = rows.map((r) => (r.status === 'ok' || r.status === 'unused' ? { ...r, fix: undefined } : r));
  printOut(args.flags.json ? formatJson(shown) : formatRows(shown));
  const missing = rows.filter((r) => r.status === 'missing').length;
  if (missing === 0) return 0;
  printErr(`numactlx: doctor: ${missing} feature${missing === 1 ? '' : 's'} missing\n`);
  return 1;
}
