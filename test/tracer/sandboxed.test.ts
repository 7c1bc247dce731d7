// Programs in a seccomp sandbox of their own (bubblewrap, systemd's SystemCallFilter=,
// Chrome's renderers): a whitelist filter that kills the process for any other call
// (SECCOMP_RET_KILL_PROCESS, SIGSYS). numactlx makes calls inside the program (injected
// with ptrace): into such a process it makes none, and says what that costs, once.
import { compileFixture } from '../helpers/fixtures.js';
import { node3, onVirtualNode } from '../helpers/virtual.js';
import { removeTmpDirs } from '../helpers/tmp.js';

afterAll(removeTmpDirs);

/** What the fixture prints for SIZE MiB: every page's first byte (its index + 1, mod 256), added up — 0…255 once a MiB. */
const sumOf = (mib: number): number => mib * (255 * 256 / 2);

// A program in a whitelist seccomp sandbox: the process_madvise that drops its pages,
// injected into it, was a call its filter kills for (SIGSYS, "Bad system call": exit 159).
// numactlx injects no drop into a process with a filter of its own: it says so once, and
// the node goes over its limit.
test('a program in a seccomp sandbox that kills for unknown calls: it runs to its end, every page right, and one line says its limit is not kept', async () => {
  const bin = await compileFixture('sandboxed');
  const { result, stats } = await onVirtualNode([bin, '32'], { size: '256m,resident=8m' });
  expect({ exit: result.exitCode, signal: result.signal, out: result.stdout }).toEqual({ exit: 0, signal: undefined, out: `sandboxed ok ${sumOf(32)}` });
  expect(result.stderr).toMatch(/^numactlx: process \d+ runs under a seccomp filter of its own: numactlx does not inject the call that drops its pages \(its filter could kill it for that call\), so --max-resident is not kept for its memory \(said once\)$/);
  expect(node3(stats).eviction!.evictions).toBe(0);
}, 300000);

// A sandbox wrapper's way: the filter installed, then execve of the program, which runs
// under it from its first instruction. numactlx's exec set-up (the injected calls that make
// the program's userfaultfd) was killed by it before the program ran.
test('a program exec\'d by a sandbox wrapper: it runs to its end untrapped, one line says why', async () => {
  const bin = await compileFixture('sandboxed');
  const { result, stats } = await onVirtualNode([bin, '32', 'exec'], { size: '256m' });
  expect({ exit: result.exitCode, signal: result.signal, out: result.stdout }).toEqual({ exit: 0, signal: undefined, out: `sandboxed ok ${sumOf(32)}` });
  expect(result.stderr).toMatch(/^numactlx: \S+ \(pid \d+\) cannot have a userfaultfd \(it runs under a seccomp filter of its own, which could kill it for the calls that make one\): its memory is ordinary memory, not on a virtual node, and not in snapshots \(said once\)$/);
  // The wrapper's own pages (before its exec) are on the node; none of the program's 8,192.
  expect(node3(stats).pages_placed).toBeLessThan(8192);
}, 120000);
