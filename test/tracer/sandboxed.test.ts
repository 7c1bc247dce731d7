// Programs in a seccomp sandbox of their own (bubblewrap, systemd's SystemCallFilter=,
// Chrome's renderers): a whitelist filter that kills the process for any other call
// (SECCOMP_RET_KILL_PROCESS, SIGSYS). numactlx makes calls inside the program (injected
// with ptrace): as root it runs the program's filters on them first, makes them as they
// are where the filters let them run, and past the filters (PTRACE_O_SUSPEND_SECCOMP, for
// the injected calls alone) where they would not (src/tracer-thread/filter-verdict.ts).
// Without root (the filters unreadable), it makes none, and says what that costs, once
// (test/kerndat/unprivileged.test.ts).
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { compileFixture } from '../helpers/fixtures.js';
import { NUMACTLX, numactlx } from '../helpers/numactlx.js';
import { waitFor } from '../helpers/proc.js';
import { node3, onVirtualNode } from '../helpers/virtual.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';
import { otherUser } from '../helpers/other-user.js';

afterAll(removeTmpDirs);

/** What the fixture prints for SIZE MiB: every page's first byte (its index + 1, mod 256), added up — 0…255 once a MiB. */
const sumOf = (mib: number): number => mib * (255 * 256 / 2);

// A deny-list sandbox (systemd's SystemCallFilter=~@mount …, made by libseccomp) kills for a
// few calls and lets the rest run, the calls numactlx injects among them: they are made as
// they are. A whitelist kills for the process_madvise that drops the pages (SIGSYS, "Bad
// system call": exit 159, before numactlx read filters): the drop is made past it. Either
// way the program keeps its limit, and nothing is said.
const DENY_NOTE = 'these tests need libseccomp-dev (seccomp.h, -lseccomp) for the fixture';
const denylist = (): Promise<string> => compileFixture('sandboxed_denylist', ['-lseccomp']).catch((err: Error) => {
  throw new Error(`${DENY_NOTE}: ${err.message}`);
});

test.each([['a whitelist', 'sandboxed'], ['a libseccomp deny-list', 'sandboxed_denylist']])('a program in %s sandbox (%s): its pages are evicted under --max-resident, nothing said, every page right', async (_kind, name) => {
  const bin = name === 'sandboxed' ? await compileFixture(name) : await denylist();
  const { result, stats } = await onVirtualNode([bin, '32'], { size: '256m,resident=8m' });
  expect({ exit: result.exitCode, signal: result.signal, out: result.stdout, err: result.stderr })
    .toEqual({ exit: 0, signal: undefined, out: `${name} ok ${sumOf(32)}`, err: '' });
  // 32 MiB written twice through an 8 MiB limit: most pages went to the backing and came back.
  expect(node3(stats).eviction!.evictions).toBeGreaterThan(4096);
  expect(node3(stats).eviction!.peak_resident_pages).toBeLessThanOrEqual(2048 + 1024);
}, 300000);

// Past the filter means for numactlx's calls alone: after rounds whose drops were made
// past it, the program's own forbidden call (acct) still kills it.
test('a whitelist-sandboxed program whose pages were dropped past its filter: its own forbidden call still kills it (SIGSYS)', async () => {
  const bin = await compileFixture('sandboxed');
  const { result, stats } = await onVirtualNode([bin, '32'], { size: '256m,resident=8m', options: { env: { SANDBOXED_FORBIDDEN: '1' } } });
  expect(node3(stats).eviction!.evictions).toBeGreaterThan(4096);
  expect({ out: result.stdout, err: result.stderr }).toEqual({ out: `sandboxed ok ${sumOf(32)}`, err: '' });
  expect(result.signal).toBe('SIGSYS'); // numactlx ends as its program did
}, 300000);

// A sandbox wrapper's way: the filter installed, then execve of the program, which runs
// under it from its first instruction. numactlx's exec set-up (the injected calls that make
// the program's userfaultfd) was killed by a whitelist before the program ran: they are
// made past it, and as they are under a deny-list.
test.each([['a whitelist', 'sandboxed'], ['a libseccomp deny-list', 'sandboxed_denylist']])('a program exec\'d by %s sandbox wrapper (%s): its userfaultfd is made, its pages are on the node, nothing said', async (_kind, name) => {
  const bin = name === 'sandboxed' ? await compileFixture(name) : await denylist();
  const { result, stats } = await onVirtualNode([bin, '32', 'exec'], { size: '256m' });
  expect({ exit: result.exitCode, signal: result.signal, out: result.stdout, err: result.stderr })
    .toEqual({ exit: 0, signal: undefined, out: `${name} ok ${sumOf(32)}`, err: '' });
  expect(node3(stats).pages_placed).toBeGreaterThanOrEqual(8192); // the program's 32 MiB
}, 120000);

// A process that dropped root is handed /dev/userfaultfd down a socketpair made in it
// (handed-device.ts). Under a deny-list that kills for socketpair and recvmsg, as a sandbox
// that forbids sockets does, those calls are made past the filter (numactlx as root): the
// program is not killed for numactlx's calls, and its memory is on the node.
test('a process that dropped root, exec\'d by a sandbox that kills for socketpair and recvmsg: handed the device past the filter, on the node, nothing said', async () => {
  const bin = await denylist();
  const user = await otherUser();
  const { result, stats } = await onVirtualNode(['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', bin, '32', 'exec', 'nosocket'], { size: '256m' });
  expect({ exit: result.exitCode, signal: result.signal, out: result.stdout, err: result.stderr })
    .toEqual({ exit: 0, signal: undefined, out: `sandboxed_denylist ok ${sumOf(32)}`, err: '' });
  expect(node3(stats).pages_placed).toBeGreaterThanOrEqual(8192); // the program's 32 MiB
}, 120000);

// NUMACTLX_SNAPSHOT_CAPTURE=fork holds a snapshot's image in a fork made by a clone
// injected into the program: a whitelist killed it for that (SIGSYS, exit 159), after the
// snapshot had committed, and later such a program was pre-copied instead. As root the
// tracer runs the filters on the clone: made as it is under the deny-list, past the
// whitelist (capture-fork.ts). The program's own forbidden call (acct) still kills it.
test.each([['a whitelist', 'sandboxed'], ['a libseccomp deny-list', 'sandboxed_denylist']])('snapshots held by a fork, of a program in %s sandbox (%s): held by a fork, committed, verified; its own forbidden call still kills it', async (_kind, name) => {
  const bin = name === 'sandboxed' ? await compileFixture(name) : await denylist();
  const dir = tmpDir();
  const backing = path.join(dir, 'node3.img');
  const statsFile = path.join(dir, 'stats.json');
  const env = { NUMACTLX_RUNTIME_DIR: tmpDir(), NUMACTLX_SNAPSHOT_CAPTURE: 'fork', SANDBOXED_HOLD: '1', SANDBOXED_FORBIDDEN: '1' };
  const session = execa(NUMACTLX, [`--remap=3,${backing},size=256m`, '--membind=3', '--stats', statsFile, '--', bin, '32'], { env, reject: false, stdin: 'pipe' });
  let out = '';
  session.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  await waitFor('the program to fill its pages', () => out.includes('filled'), 20_000, 20);
  for (let i = 0; i < 2; i++) {
    const snap = await numactlx(['snapshot', '--wait', String(session.pid)], { env, timeout: 20_000 });
    expect({ exit: snap.exitCode, stderr: snap.stderr }).toEqual({ exit: 0, stderr: '' });
  }
  session.stdin!.end('go\n');
  const r = await session;
  expect({ signal: r.signal, out: r.stdout }).toEqual({ signal: 'SIGSYS', out: `filled\n${name} ok ${sumOf(32)}` });
  const { events } = JSON.parse(fs.readFileSync(statsFile, 'utf8')) as { events: { capture_forks?: number; capture_fallbacks?: number } };
  expect({ forks: events.capture_forks, fallbacks: events.capture_fallbacks ?? 0 }).toEqual({ forks: 2, fallbacks: 0 });
  const verify = await numactlx(['verify', backing]);
  expect({ exit: verify.exitCode, out: verify.stdout }).toEqual({ exit: 0, out: expect.stringMatching(/: 2 snapshots, \d+ pages, \d+ frames: clean$/) });
}, 120000);

// The filter looks at an argument: madvise and process_madvise are killed for only with
// MADV_DONTNEED, the advice of the drop. Run on the drop's own arguments, it would refuse
// it (seccomp-bpf.test.ts has that verdict): the drop is made past the filter.
test('a deny-list sandbox that kills for MADV_DONTNEED: the drop is made past it, the limit kept, nothing said, every page right', async () => {
  const { result, stats } = await onVirtualNode([await denylist(), '32', 'dontneed'], { size: '256m,resident=8m' });
  expect({ exit: result.exitCode, signal: result.signal, out: result.stdout, err: result.stderr })
    .toEqual({ exit: 0, signal: undefined, out: `sandboxed_denylist ok ${sumOf(32)}`, err: '' });
  expect(node3(stats).eviction!.evictions).toBeGreaterThan(4096);
}, 300000);
