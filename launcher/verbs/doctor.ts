// `numactlx doctor [--json]`: checks the kernel and permissions numactlx depends on and
// prints one row per check — name, ok/missing, detail, and for a missing one the fix.
// The probes live in ./doctor-checks.ts; this file prints.
//
// Exit status: 0 when every required check is ok, else 1 with a last line on stderr,
// `numactlx: doctor: N checks failed`.
import { formatTable } from '../format.js';
import { runChecks, type CheckResult } from './doctor-checks.js';
import { positionals, type Verb, type VerbArgs } from './parse.js';
import { printErr, printOut } from '../output.js';

export const doctorCommand: Verb = {
  spec: { name: 'doctor', usage: 'usage: numactlx doctor [--json]\n', options: [{ name: 'json', type: 'boolean' }] },
  run: runDoctor,
};

const status = (c: CheckResult): string => (c.ok ? 'ok' : 'missing');

/** The checks as an aligned table, header first. */
export function formatChecks(checks: readonly CheckResult[]): string {
  return formatTable([['CHECK', 'STATUS', 'DETAIL', 'FIX'], ...checks.map((c) => [c.name, status(c), c.detail, c.fix ?? ''])]);
}

/** The checks as JSON: `{ ok, failed, checks: [{ name, status, ok, required, detail, fix? }] }`. */
export function formatJson(checks: readonly CheckResult[]): string {
  const failed = checks.filter((c) => c.required && !c.ok).length;
  const out = checks.map((c) => ({ name: c.name, status: status(c), ok: c.ok, required: c.required, detail: c.detail,
    ...(c.fix === undefined ? {} : { fix: c.fix }) }));
  return `${JSON.stringify({ ok: failed === 0, failed, checks: out }, null, 2)}\n`;
}

async function runDoctor(args: VerbArgs): Promise<number> {
  positionals('doctor', args, []);
  const checks = runChecks();
  printOut(args.flags.json ? formatJson(checks) : formatChecks(checks));
  const failed = checks.filter((c) => c.required && !c.ok).length;
  if (failed === 0) return 0;
  printErr(`numactlx: doctor: ${failed} checks failed\n`);
  return 1;
}
