// `numactlx doctor [--json]`: checks the kernel and permissions numactlx depends on and
// prints one row per check — name, ok/missing, detail, and for a missing one the fix.
// The probes live in ./doctor-checks.ts; this file parses argv and prints.
//
// Exit status: 0 when every required check is ok, else 1 with a last line on stderr,
// `numactlx: doctor: N checks failed`.
import { UsageError } from '../errors.js';
import { runChecks, type CheckResult } from './doctor-checks.js';

interface DoctorArgs {
  json: boolean;
}

function parseDoctorArgs(argv: string[]): DoctorArgs {
  const args: DoctorArgs = { json: false };
  for (const arg of argv) {
    if (arg === '--json') args.json = true;
    else throw new UsageError(`doctor: unknown argument '${arg}' (valid: --json)`);
  }
  return args;
}

const status = (c: CheckResult): string => (c.ok ? 'ok' : 'missing');

/** The checks as an aligned table, header first. */
export function formatTable(checks: readonly CheckResult[]): string {
  const rows = [['CHECK', 'STATUS', 'DETAIL', 'FIX'],
    ...checks.map((c) => [c.name, status(c), c.detail, c.fix ?? ''])];
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]) : cell)).join('  ').trimEnd())
    .join('\n') + '\n';
}

/** The checks as JSON: `{ ok, failed, checks: [{ name, status, ok, required, detail, fix? }] }`. */
export function formatJson(checks: readonly CheckResult[]): string {
  const failed = checks.filter((c) => c.required && !c.ok).length;
  const out = checks.map((c) => ({ name: c.name, status: status(c), ok: c.ok, required: c.required, detail: c.detail,
    ...(c.fix === undefined ? {} : { fix: c.fix }) }));
  return `${JSON.stringify({ ok: failed === 0, failed, checks: out }, null, 2)}\n`;
}

export async function runDoctor(argv: string[]): Promise<number> {
  const args = parseDoctorArgs(argv);
  const checks = runChecks();
  process.stdout.write(args.json ? formatJson(checks) : formatTable(checks));
  const failed = checks.filter((c) => c.required && !c.ok).length;
  if (failed === 0) return 0;
  process.stderr.write(`numactlx: doctor: ${failed} checks failed\n`);
  return 1;
}
