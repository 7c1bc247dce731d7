// `numactlx doctor` through the built binary (run `npm run build` first). This machine has
// every feature numactlx uses (root, Linux 6.18): any feature that is not ok fails the
// test by its name. NUMACTLX_DISABLE_FEATURES makes features absent the way an older
// kernel (Linux 6.1: no POISON) or a user without CAP_SYS_PTRACE (no EVENT_FORK) has them.
import { numactlx } from '../helpers/numactlx.js';

const EXPECTED = [
  'userfaultfd (kernel-mode faults)', '/dev/userfaultfd', 'uffd WP', 'uffd EVENT_FORK', 'uffd EVENT_REMAP',
  'uffd EVENT_REMOVE', 'uffd EVENT_UNMAP', 'uffd THREAD_ID', 'uffd POISON', 'uffd WP_UNPOPULATED', 'uffd WP_ASYNC',
  'uffd MOVE', 'ptrace (PTRACE_SEIZE)', 'seccomp (SECCOMP_RET_TRACE)', 'pidfd_open + pidfd_getfd',
  'process_madvise(MADV_DONTNEED)', 'PAGEMAP_SCAN', 'libpmem (cache flush for /dev/dax)',
];
const UNUSED = ['uffd WP_UNPOPULATED', 'uffd MOVE'];

interface JsonCheck { name: string; feature: string; status: string; ok: boolean; detail: string; fix?: string }
interface JsonReport { ok: boolean; missing: number; degraded: number; checks: JsonCheck[] }

const doctorJson = async (disable?: string): Promise<{ report: JsonReport; exitCode?: number; stderr: string }> => {
  const r = await numactlx(['doctor', '--json'], disable === undefined ? {} : { env: { NUMACTLX_DISABLE_FEATURES: disable } });
  return { report: JSON.parse(String(r.stdout)) as JsonReport, exitCode: r.exitCode, stderr: String(r.stderr) };
};

test('doctor prints one row per feature: every used one ok here, the unused ones said so; exit 0', async () => {
  const r = await numactlx(['doctor']);
  const [header, ...lines] = String(r.stdout).trimEnd().split('\n');
  expect(header).toMatch(/^CHECK +STATUS +DETAIL +FIX$/);
  const statusAt = header.indexOf('STATUS');
  const rows = lines.map((l) => ({ name: l.slice(0, statusAt).trim(), status: l.slice(statusAt).split(/\s+/)[0], line: l }));
  expect(rows.map((row) => row.name)).toEqual(EXPECTED);
  expect(rows.filter((row) => row.status !== (UNUSED.includes(row.name) ? 'unused' : 'ok')).map((row) => row.line)).toEqual([]);
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
});

test('doctor --json: every check ok or unused, with a detail and no fix', async () => {
  const { report, exitCode, stderr } = await doctorJson();
  expect(report.checks.map((c) => c.name)).toEqual(EXPECTED);
  expect(report.checks.filter((c) => c.status !== 'ok' && c.status !== 'unused').map((c) => `${c.name}: ${c.detail}`)).toEqual([]);
  for (const c of report.checks) {
    expect(c.detail).not.toBe('');
    expect(c.fix).toBeUndefined();
    expect(c.ok).toBe(true);
  }
  expect({ ok: report.ok, missing: report.missing, degraded: report.degraded }).toEqual({ ok: true, missing: 0, degraded: 0 });
  expect(stderr).toBe('');
  expect(exitCode).toBe(0);
});

test("Linux 6.1's features (no POISON, WP_ASYNC, PAGEMAP_SCAN, process_madvise; WP_UNPOPULATED, MOVE absent): degraded, exit 0", async () => {
  const { report, exitCode } = await doctorJson('POISON,WP_UNPOPULATED,WP_ASYNC,MOVE,PAGEMAP_SCAN,PROCESS_MADVISE');
  const by = new Map(report.checks.map((c) => [c.feature, c]));
  expect(by.get('POISON')).toMatchObject({ status: 'degraded', ok: true,
    detail: expect.stringMatching(/^disabled by NUMACTLX_DISABLE_FEATURES; without it: numactlx signals the faulting thread itself/) });
  // Without either, writes are tracked by write faults numactlx serves (synchronous dirty tracking).
  for (const f of ['WP_ASYNC', 'PAGEMAP_SCAN']) {
    expect(by.get(f)).toMatchObject({ status: 'degraded', ok: true,
      detail: expect.stringMatching(/^disabled by NUMACTLX_DISABLE_FEATURES; without it: every first write to a page after a snapshot is a write fault numactlx serves/) });
  }
  // Eviction drops each range with its own injected madvise.
  expect(by.get('PROCESS_MADVISE')).toMatchObject({ status: 'degraded', ok: true,
    detail: expect.stringMatching(/^disabled by NUMACTLX_DISABLE_FEATURES; without it: one injected madvise\(MADV_DONTNEED\) per range/) });
  for (const f of ['WP_UNPOPULATED', 'MOVE']) {
    expect(by.get(f)).toMatchObject({ status: 'unused', ok: true, detail: expect.stringMatching(/^absent \(Linux 6\.\d+\); not used by this build/) });
  }
  expect({ ok: report.ok, missing: report.missing, degraded: report.degraded }).toEqual({ ok: true, missing: 0, degraded: 4 });
  expect(exitCode).toBe(0);
});

test('a user without CAP_SYS_PTRACE but with /dev/userfaultfd: the device is used, EVENT_FORK degraded, exit 0', async () => {
  const { report, exitCode } = await doctorJson('USERFAULTFD,EVENT_FORK');
  const by = new Map(report.checks.map((c) => [c.feature, c]));
  expect(by.get('USERFAULTFD')).toMatchObject({ status: 'unused',
    detail: "disabled by NUMACTLX_DISABLE_FEATURES; not needed: the program's userfaultfd comes from /dev/userfaultfd" });
  expect(by.get('USERFAULTFD_DEVICE')).toMatchObject({ status: 'ok' });
  expect(by.get('EVENT_FORK')).toMatchObject({ status: 'degraded',
    detail: expect.stringContaining("without it: the tracer sets up each forked child's userfaultfd before it runs") });
  expect(report.ok).toBe(true);
  expect(exitCode).toBe(0);
});

test('a feature with no fallback missing: the row says what it is for and how to fix it, exit 1 with one line', async () => {
  const { report, exitCode, stderr } = await doctorJson('USERFAULTFD,USERFAULTFD_DEVICE,WP');
  const by = new Map(report.checks.map((c) => [c.feature, c]));
  expect(by.get('WP')).toMatchObject({ status: 'missing', ok: false,
    detail: 'disabled by NUMACTLX_DISABLE_FEATURES (for write protection: every snapshot is copy-on-write)' });
  expect(by.get('USERFAULTFD')).toMatchObject({ status: 'missing' });
  expect(by.get('USERFAULTFD_DEVICE')).toMatchObject({ status: 'missing' });
  expect({ ok: report.ok, missing: report.missing }).toEqual({ ok: false, missing: 3 });
  expect(stderr).toBe('numactlx: doctor: 3 features missing');
  expect(exitCode).toBe(1);
});

test('an unknown name in NUMACTLX_DISABLE_FEATURES is one line naming the known ones', async () => {
  const r = await numactlx(['doctor'], { env: { NUMACTLX_DISABLE_FEATURES: 'POISON,NOPE' } });
  expect(r.stderr).toMatch(/^numactlx: doctor: NUMACTLX_DISABLE_FEATURES: unknown feature 'NOPE' \(known: USERFAULTFD, USERFAULTFD_DEVICE, WP, /);
  expect(String(r.stderr).split('\n')).toHaveLength(1);
  expect(r.exitCode).toBe(1);
});

test('doctor --bogus is a usage error, with the usage of doctor', async () => {
  const r = await numactlx(['doctor', '--bogus']);
  expect(r.stderr).toBe("numactlx: doctor: unknown option '--bogus' (valid: --json, --help)\nusage: numactlx doctor [--json]");
  expect(r.stdout).toBe('');
  expect(r.exitCode).toBe(1);
});
