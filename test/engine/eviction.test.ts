// --max-resident: programs whose working set is four times their node's resident limit.
// The program checks every page it visits (evict_pattern: self-describing pages, a
// wrong, torn or stale page fails it) and reports VmHWM, the most it ever had resident:
// it must stay within the limit plus a stated slack, and --stats must show the pages
// going to the backing and coming back.
import path from 'node:path';
import { compileFixture } from '../helpers/fixtures.js';
import { ROOT } from '../helpers/numactlx.js';
import { node3, onVirtualNode } from '../helpers/virtual.js';
import { removeTmpDirs } from '../helpers/tmp.js';

afterAll(removeTmpDirs);

const MIB = 1024 * 1024;
/**
 * What the program may have resident beyond the limit: one fault-ahead window (1 MiB by
 * default: a fault is served with the run around it even at the limit), one more for the
 * faults served while a drop is under way, and 2 MiB for what is not on the node (the
 * program's code, libc, ld.so).
 */
const SLACK_KB = 4 * 1024;

function hwmKb(stdout: string): number {
  const m = /hwm_kb=(\d+)/.exec(stdout);
  if (!m) throw new Error(`no hwm_kb in ${stdout}`);
  return Number(m[1]);
}

test.each([
  ['seq', '64m', '16m', '2'],
  ['rand', '16m', '4m', '2'],
  ['zipf', '16m', '4m', '3'],
])('%s access over %s with resident=%s: every page right after its evictions and refaults, RSS within the limit', async (mode, size, resident, passes) => {
  const bin = await compileFixture('evict_pattern');
  const { result, stats } = await onVirtualNode([bin, mode, size, '7', passes], { size: `256m,resident=${resident}` });
  expect(result.stderr).toBe('');
  expect(result.exitCode).toBe(0);
  expect(result.stdout).toMatch(/^evict_pattern ok pages=\d+ visits=\d+ hwm_kb=\d+$/);
  const limitKb = Number.parseInt(resident, 10) * 1024;
  expect(hwmKb(result.stdout)).toBeLessThanOrEqual(limitKb + SLACK_KB);
  const ev = node3(stats).eviction!;
  expect(ev.max_resident_bytes).toBe(limitKb * 1024);
  // Four times the limit went through: at least three quarters of it left, and came back.
  const pages = Number.parseInt(size, 10) * MIB / 4096;
  expect(ev.evictions).toBeGreaterThan(pages * 3 / 4);
  expect(ev.refaults).toBeGreaterThan(0);
  expect(ev.bytes_written).toBeGreaterThan(0);
  expect(ev.bytes_read).toBe(ev.refaults * 4096);
  expect(ev.rounds).toBeGreaterThan(0);
  expect(ev.peak_resident_pages * 4).toBeLessThanOrEqual(limitKb + 1024);
  expect(node3(stats).pages_resident).toBe(0); // the program has ended
}, 300000);

// evict_pattern makes no trapped call while it walks its pages, so only the ring's stop can
// run a round. When the ring was a SIGURG to the program, a program that blocks SIGURG (the
// mask survives execve), or takes it with sigwait in a thread, gave none: before stop 30's
// nudge no round ran (hwm_kb 67,164 of a 16 MiB limit, rounds 0). The ring now wakes the
// tracer through its waker (src/channels/tracer-wake.ts), whatever the program's signals.
test.each([
  ['blocks SIGURG', (bin: string) => ['/usr/bin/python3', '-c',
    'import os, signal, sys\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGURG})\nos.execv(sys.argv[1], sys.argv[1:])\n', bin], {}],
  ['takes SIGURG with sigwait in a thread', (bin: string) => [bin], { EVICT_PATTERN_SIGWAIT: '1' }],
])('a program that %s: its rounds still run, RSS within the limit', async (_what, command, env) => {
  const bin = await compileFixture('evict_pattern');
  const { result, stats } = await onVirtualNode([...command(bin), 'seq', '64m', '7', '2'], { size: '256m,resident=16m', options: { env } });
  expect(result.stderr).toBe('');
  expect(result.exitCode).toBe(0);
  expect(hwmKb(result.stdout)).toBeLessThanOrEqual(16 * 1024 + SLACK_KB);
  const ev = node3(stats).eviction!;
  expect(ev.rounds).toBeGreaterThan(0);
  expect(ev.evictions).toBeGreaterThan(64 * MIB / 4096 * 3 / 4);
}, 300000);

test('python3 with 64 MiB of data under resident=16m: every chunk checked in random order, twice, and rewritten', async () => {
  const { result, stats } = await onVirtualNode(['/usr/bin/python3', path.join(ROOT, 'test/fixtures/python_evict.py'), '64', '3', '2'],
    { size: '512m,resident=16m' });
  expect(result.stderr).toBe('');
  expect(result.exitCode).toBe(0);
  const m = /^python ok chunks=1024 hwm_kb=(\d+) file_kb=(\d+)$/.exec(String(result.stdout));
  expect(m).not.toBeNull();
  // The interpreter's own code and libraries are file-backed, not on the node.
  expect(Number(m![1]) - Number(m![2])).toBeLessThanOrEqual(16 * 1024 + SLACK_KB);
  const ev = node3(stats).eviction!;
  expect(ev.evictions).toBeGreaterThan(3 * 16 * MIB / 4096);
  expect(ev.refaults).toBeGreaterThan(0);
}, 300000);

test('four threads filling 40 MiB under resident=8m: every thread\'s pages right, the rounds stop all of them', async () => {
  const bin = await compileFixture('threads');
  const { result, stats } = await onVirtualNode([bin, '4', '8'], { size: '512m,resident=8m' });
  expect(result.exitCode).toBe(0);
  expect(result.stdout).toBe('threads ok 4 f2efebe63398ddc7');
  const ev = node3(stats).eviction!;
  expect(ev.evictions).toBeGreaterThan(4 * 8 * MIB / 4096 / 2);
  expect(ev.peak_resident_pages).toBeLessThanOrEqual(8 * MIB / 4096 + 256);
}, 300000);

// A node full of pages that cannot go (mlock'd: MADV_DONTNEED refuses them) is let over its
// limit so that the program does not hang — but by a page per fault: a first touch there
// places only its own page, not a fault-ahead window (256 pages at the default 1 MiB; on
// ceec48a's code the 512 probe pages took about 10 faults).
test('a node over its limit with mlock\'d pages: each first touch places one page, not a window; every page right', async () => {
  const bin = await compileFixture('pinned_full');
  const PINNED = 600;
  const PROBE = 512;
  const { result, stats } = await onVirtualNode([bin, String(PINNED), String(PROBE), '11'], { size: '64m,resident=2m' });
  expect(result.stderr).toBe('');
  expect(result.exitCode).toBe(0);
  expect(result.stdout).toMatch(/^pinned_full ok [0-9a-f]{16}$/);
  const ev = node3(stats).eviction!;
  expect(ev.max_resident_bytes).toBe(2 * MIB);
  // The node was over its limit at every probe page's first touch: one fault each.
  expect(node3(stats).faults).toBeGreaterThanOrEqual(PROBE);
  expect(ev.peak_resident_pages).toBeGreaterThanOrEqual(PINNED);
});

// The kernel reads the node's memory (write(2) from it) while another thread keeps the
// node at its limit: a thread then waits for room in a fault taken inside the kernel, where
// only a fatal signal interrupts it, so it cannot stop for a round or a freeze until served
// (faults do not wait while the tracer stops threads: src/channels/evict-request.ts; and
// 50 ms at most). What the file got must be the pattern, and the session must end.
test('write(2) from evicted pages while another thread fills the node, snapshots every second: the session ends, every byte right', async () => {
  const bin = await compileFixture('kernel_reads');
  const { result, stats } = await onVirtualNode([bin, '2048', '30', '5'],
    { size: '64m,resident=2m', extra: ['--schedule', '*/1 * * * * *'], options: { timeout: 90000 } });
  expect(result.stderr).toBe('');
  expect(result.exitCode).toBe(0);
  expect(result.stdout).toMatch(/^kernel_reads ok \d+$/);
  const ev = node3(stats).eviction!;
  expect(ev.refaults).toBeGreaterThan(1024);
  expect(ev.rounds).toBeGreaterThan(10);
});
