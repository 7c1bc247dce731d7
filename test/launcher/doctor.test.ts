// `numactlx doctor` through the built binary (run `npm run build` first). This machine has
// every feature (root, Linux 6.18): any check that is not ok fails the test by its name.
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/numactlx.js', import.meta.url));
const numactlx = (...args: string[]) => execa('node', [BIN, ...args], { reject: false });

const EXPECTED = [
  'userfaultfd (user-mode faults)', 'userfaultfd (kernel-mode faults)', '/dev/userfaultfd', 'uffd MISSING',
  'uffd WP', 'uffd WP_UNPOPULATED', 'uffd WP_ASYNC', 'uffd EVENT_FORK', 'uffd EVENT_REMAP', 'uffd EVENT_REMOVE',
  'uffd EVENT_UNMAP', 'uffd THREAD_ID', 'uffd MOVE', 'uffd POISON', 'ptrace (PTRACE_SEIZE)',
  'seccomp (SECCOMP_RET_TRACE)', 'pidfd_open + pidfd_getfd', 'process_madvise(MADV_DONTNEED)', 'PAGEMAP_SCAN',
];

interface JsonCheck { name: string; status: string; ok: boolean; required: boolean; detail: string; fix?: string }

test('doctor prints one ok row per check and exits 0', async () => {
  const r = await numactlx('doctor');
  const [header, ...lines] = r.stdout.trimEnd().split('\n');
  expect(header).toMatch(/^CHECK +STATUS +DETAIL +FIX$/);
  const statusAt = header.indexOf('STATUS');
  const rows = lines.map((l) => ({ name: l.slice(0, statusAt).trim(), status: l.slice(statusAt).split(/\s+/)[0], line: l }));
  expect(rows.map((row) => row.name)).toEqual(EXPECTED);
  expect(rows.filter((row) => row.status !== 'ok').map((row) => row.line)).toEqual([]);
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
});

test('doctor --json reports every check ok', async () => {
  const r = await numactlx('doctor', '--json');
  const out = JSON.parse(r.stdout) as { ok: boolean; failed: number; checks: JsonCheck[] };
  expect(out.checks.map((c) => c.name)).toEqual(EXPECTED);
  expect(out.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail} (fix: ${c.fix})`)).toEqual([]);
  for (const c of out.checks) {
    expect(c.status).toBe('ok');
    expect(c.detail).not.toBe('');
    expect(c.fix).toBeUndefined();
  }
  expect(out.checks.filter((c) => !c.required).map((c) => c.name)).toEqual(['/dev/userfaultfd']);
  expect({ ok: out.ok, failed: out.failed }).toEqual({ ok: true, failed: 0 });
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
});

test('doctor --bogus is a usage error, with the usage of doctor', async () => {
  const r = await numactlx('doctor', '--bogus');
  expect(r.stderr).toBe("numactlx: doctor: unknown option '--bogus' (valid: --json, --help)\nusage: numactlx doctor [--json]");
  expect(r.stdout).toBe('');
  expect(r.exitCode).toBe(1);
});
