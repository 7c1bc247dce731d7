// Processes of the program that change their credentials (numactlx as root). userfaultfd(2)
// asks for CAP_SYS_PTRACE in the initial user namespace (vm.unprivileged_userfaultfd = 0):
// a process in a user namespace of its own (unshare -U, bwrap --unshare-user, a container)
// is refused it even as that namespace's root. Its userfaultfd comes from /dev/userfaultfd
// then, which asks for access to the device file (exec-setup.ts takeUserfaultfd). A process
// that dropped root has neither: it runs with ordinary memory, and one line says why.
import { execa } from 'execa';
import { otherUser } from '../helpers/other-user.js';
import { removeTmpDirs } from '../helpers/tmp.js';
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

test('a process that dropped root (setpriv --reuid): one line names its uid and both refusals, its memory is ordinary, its result right', async () => {
  const user = await otherUser();
  const { result, stats } = await onVirtualNode(['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', PYTHON, '-c', ALLOCATE], { size: '256m' });
  expect({ exit: result.exitCode, out: String(result.stdout).split(' ')[0] }).toEqual({ exit: 0, out: String(user.uid) });
  expect(result.stderr).toMatch(new RegExp(`^numactlx: python3 \\(pid \\d+\\) cannot have a userfaultfd \\(it runs as uid ${user.uid}, and vm\\.unprivileged_userfaultfd = 0 asks for CAP_SYS_PTRACE: EPERM; /dev/userfaultfd: open\\(/dev/userfaultfd\\) in the program failed: EACCES\\): its memory is ordinary memory, not on a virtual node, and not in snapshots \\(said once\\)$`));
  expect(node3(stats).pages_placed).toBeLessThan(PAGES);
}, 120000);
