// Processes of the program that change their credentials (numactlx as root). userfaultfd(2)
// asks for CAP_SYS_PTRACE in the initial user namespace (vm.unprivileged_userfaultfd = 0):
// a process in a user namespace of its own (unshare -U, bwrap --unshare-user, a container)
// is refused it even as that namespace's root. Its userfaultfd comes from /dev/userfaultfd
// then, which asks for access to the device file (exec-setup.ts takeUserfaultfd). A process
// that dropped root has neither: numactlx opens the device and hands it over
// (handed-device.ts). Without the device (before Linux 6.1) it runs with ordinary memory,
// and one line says why.
import { execa } from 'execa';
import { otherUser } from '../helpers/other-user.js';
import { removeTmpDirs } from '../helpers/tmp.js';
import { numactlx } from '../helpers/numactlx.js';
import { node3, onVirtualNode } from '../helpers/virtual.js';

afterAll(removeTmpDirs);

const PYTHON = '/usr/bin/python3';
/** 64 MiB, a byte written in each page, then the process's uid and user namespace. */
const ALLOCATE = 'import os; m = bytearray(64 << 20); m[::4096] = b"x" * (len(m) // 4096); print(os.getuid(), os.readlink("/proc/self/ns/user"))';
const PAGES = (64 << 20) / 4096;

beforeAll(async () => {
  const r = await execa('unshare', ['-U', '-r', 'true'], { reject: false });
  if (r.exitCode !== 0) throw new Error(`these tests need user namespaces (unshare -U -r: ${r.stderr}; CONFIG_USER_NS, user.max_user_namespaces)`);
});

test.each([
  ['its root (unshare -U -r)', ['unshare', '-U', '-r']],
  ['a user namespace with a pid namespace (unshare -U -r -p -f --mount-proc)', ['unshare', '-U', '-r', '-p', '-f', '--mount-proc']],
])('a process in a user namespace of its own, as %s: its memory is on the node, nothing said', async (_kind, wrapper) => {
  const { result, stats } = await onVirtualNode([...wrapper, PYTHON, '-c', ALLOCATE], { size: '256m' });
  expect({ exit: result.exitCode, err: result.stderr }).toEqual({ exit: 0, err: '' });
  const ownNs = (await execa('readlink', ['/proc/self/ns/user'])).stdout;
  const [uid, ns] = String(result.stdout).split(' ');
  expect({ uid, other: ns !== ownNs }).toEqual({ uid: '0', other: true });
  expect(node3(stats).pages_placed).toBeGreaterThanOrEqual(PAGES);
}, 120000);

/**
 * ALLOCATE, then what each of its descriptors names (what numactlx's calls in it may have
 * left); it ends without freeing its memory, which the exit snapshot then holds.
 */
const ALLOCATE_AND_FDS = `${ALLOCATE}; fds = ["/proc/self/fd/" + f for f in os.listdir("/proc/self/fd")]; print(sorted(os.readlink(f) for f in fds if os.path.lexists(f)), flush=True); os._exit(0)`;

// setpriv execs python3 in its own process, whose exit is the exit snapshot's; runuser
// forks it (a PAM session) and waits: the exit snapshot is runuser's, after python3's end.
test.each([
  ['setpriv --reuid, which execs', (u: { uid: number; gid: number }) => ['setpriv', `--reuid=${u.uid}`, `--regid=${u.gid}`, '--clear-groups'], true],
  ['runuser -u, a PAM session that forks', (u: { name: string }) => ['runuser', '-u', u.name, '--'], false],
])('a process that dropped root (%s): /dev/userfaultfd handed over, its memory on the node, nothing said, no descriptor left', async (_kind, drop, inExitSnapshot) => {
  const user = await otherUser();
  const { result, stats, backing } = await onVirtualNode([...drop(user), PYTHON, '-c', ALLOCATE_AND_FDS], { size: '256m', extra: ['--snapshot-on-exit'] });
  expect({ exit: result.exitCode, err: result.stderr }).toEqual({ exit: 0, err: '' });
  const [ids, fds] = String(result.stdout).split('\n');
  expect(ids.split(' ')[0]).toBe(String(user.uid));
  // The hand-over's socketpair and the device, and the userfaultfd made in it, are closed
  // there: it has the descriptors it has when run the same way without numactlx.
  const alone = await execa(drop(user)[0], [...drop(user).slice(1), PYTHON, '-c', ALLOCATE_AND_FDS], { reject: false, stdin: 'ignore' });
  const kinds = (list: string): string => list.replace(/\[\d+\]/g, '');
  expect(kinds(fds)).toBe(kinds(String(alone.stdout).split('\n')[1]));
  expect(node3(stats).pages_placed).toBeGreaterThanOrEqual(PAGES);
  const snaps = JSON.parse((await numactlx(['snapshots', backing, '--json'])).stdout) as Array<{ pages: number }>;
  expect(snaps.length).toBe(1);
  if (inExitSnapshot) expect(snaps[0].pages).toBeGreaterThanOrEqual(PAGES);
}, 120000);

test('a process that dropped root on a kernel without /dev/userfaultfd (disabled): one line names its uid and the refusal, its memory is ordinary, its result right', async () => {
  const user = await otherUser();
  const { result, stats } = await onVirtualNode(['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', PYTHON, '-c', ALLOCATE],
    { size: '256m', options: { env: { NUMACTLX_DISABLE_FEATURES: 'USERFAULTFD_DEVICE' } } });
  expect({ exit: result.exitCode, out: String(result.stdout).split(' ')[0] }).toEqual({ exit: 0, out: String(user.uid) });
  expect(result.stderr).toMatch(new RegExp(`^numactlx: python3 \\(pid \\d+\\) cannot have a userfaultfd \\(it runs as uid ${user.uid}, and vm\\.unprivileged_userfaultfd = 0 asks for CAP_SYS_PTRACE: EPERM\\): its memory is ordinary memory, not on a virtual node, and not in snapshots \\(said once\\)$`));
  expect(node3(stats).pages_placed).toBeLessThan(PAGES);
}, 120000);
