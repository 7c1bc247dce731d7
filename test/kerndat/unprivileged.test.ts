// numactlx run by a user without root or CAP_SYS_PTRACE (README, Permissions): given
// read-write access to /dev/userfaultfd (and ptrace of their own children, which this
// machine's kernel allows), the user runs numactlx fully; without it numactlx says what
// is missing before the program starts. The second user (helpers/other-user.ts) runs
// numactlx in a private mount namespace where /dev/userfaultfd is a node of the same
// device that the test made theirs, so the machine's own device is left alone.
import fs from 'node:fs';
import path from 'node:path';
import { execa, execaSync } from 'execa';
import { compileFixture } from '../helpers/fixtures.js';
import { NUMACTLX } from '../helpers/numactlx.js';
import { childrenOf, isWaker, waitFor } from '../helpers/proc.js';
import { otherUser, OTHER_USER, type OtherUser } from '../helpers/other-user.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

let other: OtherUser;
let device: { major: number; minor: number };

beforeAll(async () => {
  other = await otherUser();
  const st = fs.statSync('/dev/userfaultfd', { throwIfNoEntry: false });
  if (!st?.isCharacterDevice()) throw new Error('these tests need /dev/userfaultfd (Linux 6.1, CONFIG_USERFAULTFD)');
  const rdev = BigInt(st.rdev); // glibc's gnu_dev_major/minor
  device = { major: Number((rdev >> 8n) & 0xfffn), minor: Number((rdev & 0xffn) | ((rdev >> 12n) & 0xfff00n)) };
});
afterAll(removeTmpDirs);

/** A directory the other user owns (mode 0700): their backing and their socket directory. */
function theirDir(): string {
  const dir = tmpDir();
  fs.chownSync(dir, other.uid, other.gid);
  return dir;
}

/**
 * Runs `numactlx ARGS` as the other user, with /dev/userfaultfd theirs at `mode` (0600:
 * read-write; 0: no access) in a private mount namespace; under `wrapper` (a command that
 * execs the rest: prlimit) if given. The subprocess, which resolves to its result.
 */
function asUser(args: string[], mode: number, cwd: string, env: Record<string, string> = {}, wrapper: string[] = []) {
  const node = path.join(tmpDir(), 'userfaultfd');
  const r = execaSync('mknod', ['-m', mode.toString(8), node, 'c', String(device.major), String(device.minor)], { reject: false });
  if (r.exitCode !== 0) throw new Error(`mknod of a /dev/userfaultfd node failed: ${r.stderr}`);
  fs.chownSync(node, other.uid, other.gid);
  fs.chmodSync(path.dirname(node), 0o755);
  return execa('unshare', ['-m', '--', 'sh', '-c', 'mount --bind "$1" /dev/userfaultfd && u=$2 && shift 2 && exec runuser -u "$u" -- "$@"',
    'sh', node, OTHER_USER, ...wrapper, NUMACTLX, ...args], {
    reject: false, stdin: 'ignore', cwd, extendEnv: false,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/', LANG: 'C.UTF-8', NUMACTLX_RUNTIME_DIR: cwd, ...env },
  });
}

test('with read-write access to /dev/userfaultfd: doctor says ok (EVENT_FORK degraded), exit 0', async () => {
  const dir = theirDir();
  const r = await asUser(['doctor', '--json'], 0o600, dir);
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  const by = new Map((JSON.parse(String(r.stdout)).checks as Array<{ feature: string; status: string; detail: string }>).map((c) => [c.feature, c]));
  expect(by.get('USERFAULTFD')).toMatchObject({ status: 'unused', detail: expect.stringMatching(/^userfaultfd failed: EPERM \(uid \d+, vm\.unprivileged_userfaultfd=0\); not needed/) });
  expect(by.get('USERFAULTFD_DEVICE')?.status).toBe('ok');
  expect(by.get('EVENT_FORK')).toMatchObject({ status: 'degraded', detail: expect.stringMatching(/EPERM \(needs CAP_SYS_PTRACE\)/) });
});

test('with read-write access to /dev/userfaultfd: a program that forks and execs runs on the node, and its snapshot verifies', async () => {
  const bin = await compileFixture('fork_exec');
  const dir = theirDir();
  const backing = path.join(dir, 'n3.img');
  const r = await asUser([`--remap=3,${backing},size=256m`, '--membind=3', '--snapshot-on-exit', '--', bin, '16'], 0o600, dir);
  expect({ exit: r.exitCode, err: r.stderr, last: String(r.stdout).split('\n').at(-1) }).toEqual({ exit: 0, err: '', last: 'fork_exec ok 16' });
  expect(fs.statSync(backing).uid).toBe(other.uid);
  const list = await asUser(['snapshots', backing, '--json'], 0o600, dir);
  const snaps = JSON.parse(String(list.stdout)) as Array<{ pages: number }>;
  expect(snaps).toHaveLength(1);
  expect(snaps[0].pages).toBeGreaterThan(4096); // the 16 MiB the program wrote, at least
  const verify = await asUser(['verify', backing], 0o600, dir);
  expect({ exit: verify.exitCode, err: verify.stderr }).toEqual({ exit: 0, err: '' });
}, 120000);

// A program that makes itself non-dumpable (ssh-agent, gpg-agent do) takes away ptrace's
// read access, which numactlx's reads of it (maps, pagemap, process_vm_readv) need unless
// it has CAP_SYS_PTRACE; being its tracer does not exempt it. The snapshot used to fail
// with "no process of the session is running" while the program ran on.
test('with read-write access to /dev/userfaultfd, a program that makes itself non-dumpable: its snapshot fails with one line saying why, the program is unharmed', async () => {
  const dir = theirDir();
  const backing = path.join(dir, 'n3.img');
  const program = 'import ctypes\nctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0\n' +
    'buf = bytearray(4 << 20)\nfor i in range(0, len(buf), 4096): buf[i] = 7\nprint("sum", sum(buf[::4096]))\n';
  const r = await asUser([`--remap=3,${backing},size=64m`, '--membind=3', '--snapshot-on-exit', '--', 'python3', '-c', program], 0o600, dir);
  expect({ exit: r.exitCode, out: r.stdout }).toEqual({ exit: 0, out: `sum ${7 * 1024}` });
  expect(String(r.stderr)).toMatch(/^numactlx: snapshot 1: process \d+ does not let numactlx read its memory \(EACCES\): it is not dumpable \(prctl PR_SET_DUMPABLE 0, or an exec of a program file the user may not read\); run numactlx as root, or with CAP_SYS_PTRACE$/);
}, 120000);

// Under --max-resident, eviction writes each page back with process_vm_readv and drops it
// by a call injected into the program (which saves the word it overwrites with
// PTRACE_PEEKDATA): reads a non-dumpable program refuses a non-root numactlx. The drop's
// PEEKDATA failed with EIO and ended the session: "the tracer failed and killed the program".
test('with read-write access to /dev/userfaultfd, a non-dumpable program under --max-resident: one line says it keeps no limit, it runs to its end, its memory right', async () => {
  const dir = theirDir();
  const backing = path.join(dir, 'n3.img');
  const stats = path.join(dir, 'stats.json');
  const program = 'import ctypes\nctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0\n' +
    'buf = bytearray(32 << 20)\nfor i in range(0, len(buf), 4096): buf[i] = 7\nprint("sum", sum(buf[::4096]))\n';
  const r = await asUser([`--remap=3,${backing},size=256m,resident=4m`, '--membind=3', '--stats', stats, '--', 'python3', '-c', program], 0o600, dir);
  expect({ exit: r.exitCode, out: r.stdout }).toEqual({ exit: 0, out: `sum ${7 * 8192}` });
  expect(String(r.stderr)).toMatch(/^numactlx: process \d+ does not let numactlx read its memory \(EPERM\): it is not dumpable \(prctl PR_SET_DUMPABLE 0, or an exec of a program file the user may not read\); run numactlx as root, or with CAP_SYS_PTRACE: it keeps no --max-resident limit$/);
  // Its 32 MiB stayed in its memory, as said (rounds before its prctl, in python's start, ran).
  const node = (JSON.parse(fs.readFileSync(stats, 'utf8')) as { nodes: Array<{ node: number; eviction: { peak_resident_pages: number } }> }).nodes.find((n) => n.node === 3)!;
  expect(node.eviction.peak_resident_pages).toBeGreaterThan(8192);
}, 120000);

// A deny-list sandbox lets numactlx's calls run, but only root may read a filter to know
// (PTRACE_SECCOMP_GET_FILTER needs CAP_SYS_ADMIN): as root the drop is made
// (tracer/sandboxed.test.ts); here none is, and one line says so.
test('with read-write access to /dev/userfaultfd, a program in a deny-list sandbox under --max-resident: its filter cannot be read, one line says the limit is not kept, its memory right', async () => {
  const bin = await compileFixture('sandboxed_denylist', ['-lseccomp']);
  const dir = theirDir();
  const r = await asUser([`--remap=3,${path.join(dir, 'n3.img')},size=256m,resident=8m`, '--membind=3', '--', bin, '32'], 0o600, dir);
  expect({ exit: r.exitCode, out: r.stdout }).toEqual({ exit: 0, out: `sandboxed_denylist ok ${32 * (255 * 256 / 2)}` });
  expect(String(r.stderr)).toMatch(/^numactlx: process \d+ runs under a seccomp filter of its own: numactlx does not inject the call that drops its pages \(its filter could kill it for that call; only root may read the filter to know\), so --max-resident is not kept for its memory \(said once\)$/);
}, 120000);

// Without UFFD_EVENT_FORK (Linux before 4.11, or disabled) the tracer makes a forked child's
// userfaultfd by calls injected into it, which read its memory: a non-dumpable parent's
// child refuses that too, and the session used to end at its fork.
test('with read-write access to /dev/userfaultfd and no EVENT_FORK, a non-dumpable program that forks: its child runs untrapped, said once, both right', async () => {
  const dir = theirDir();
  const backing = path.join(dir, 'n3.img');
  const program = 'import ctypes, os\nctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0\n' +
    'pid = os.fork()\nif pid == 0:\n    b = bytearray(8 << 20)\n    for i in range(0, len(b), 4096): b[i] = 3\n    os._exit(0 if sum(b[::4096]) == 3 * 2048 else 1)\n' +
    'st = os.waitpid(pid, 0)[1]\nbuf = bytearray(4 << 20)\nfor i in range(0, len(buf), 4096): buf[i] = 7\nprint("child", st, "sum", sum(buf[::4096]))\n';
  const r = await asUser([`--remap=3,${backing},size=64m`, '--membind=3', '--', 'python3', '-c', program], 0o600, dir, { NUMACTLX_DISABLE_FEATURES: 'EVENT_FORK' });
  expect({ exit: r.exitCode, out: r.stdout }).toEqual({ exit: 0, out: `child 0 sum ${7 * 1024}` });
  expect(String(r.stderr)).toMatch(/^numactlx: python3 \(pid \d+\) cannot have a userfaultfd \(it is not dumpable \(prctl PR_SET_DUMPABLE 0, or an exec of a program file the user may not read\), and numactlx without CAP_SYS_PTRACE cannot make the calls that make one in it\): its memory is ordinary memory, not on a virtual node, and not in snapshots \(said once\)$/);
}, 120000);

// A program file the user may run but not read (mode 0711) makes its process non-dumpable at
// its exec (the kernel's would_dump): the exec's set-up cannot inject its calls either.
test('with read-write access to /dev/userfaultfd, a program the user may run but not read: it runs untrapped, said once, its result right', async () => {
  const dir = theirDir();
  const bin = path.join(tmpDir(), 'hidden');
  fs.chmodSync(path.dirname(bin), 0o755);
  fs.copyFileSync('/bin/echo', bin);
  fs.chmodSync(bin, 0o711); // root's: the other user may run it, not read it
  const r = await asUser([`--remap=3,${path.join(dir, 'n3.img')},size=64m`, '--membind=3', '--', 'sh', '-c', `${bin} hello; echo done`], 0o600, dir);
  expect({ exit: r.exitCode, out: r.stdout }).toEqual({ exit: 0, out: 'hello\ndone' });
  expect(String(r.stderr)).toMatch(/^numactlx: hidden \(pid \d+\) cannot have a userfaultfd \(it is not dumpable/);
}, 120000);

test('without access to /dev/userfaultfd: one line says what is missing, before the program starts', async () => {
  const dir = theirDir();
  const marker = path.join(dir, 'ran');
  const backing = path.join(dir, 'n3.img');
  const r = await asUser([`--remap=3,${backing},size=16m`, '--membind=3', '--', 'touch', marker], 0, dir);
  expect(r.stderr).toBe("numactlx: no way to make the program's userfaultfd (trapping kernel-mode faults: read() into its memory): " +
    `userfaultfd failed: EPERM (uid ${other.uid}, vm.unprivileged_userfaultfd=0); open(/dev/userfaultfd) failed: EACCES; ` +
    'give the user read-write access to /dev/userfaultfd (README, Permissions); or run as root, or grant CAP_SYS_PTRACE, ' +
    'or set vm.unprivileged_userfaultfd=1');
  expect(r.exitCode).toBe(1);
  expect(fs.existsSync(marker)).toBe(false);
  expect(fs.existsSync(backing)).toBe(false);
});

// Nor is fault service raised above the program (src/sys/thread-priority.ts): every thread
// of numactlx, as the program sees them, is at the nice it started with.
test('without CAP_SYS_NICE or an RLIMIT_NICE to come back: snapshot steps and fault service run at numactlx\'s priority (src/engine-thread/background-priority.ts)', async () => {
  const dir = theirDir();
  const backing = path.join(dir, 'n3.img');
  const r = await asUser([`--remap=3,${backing},size=16m`, '--membind=3', '--snapshot-on-exit', '--', 'sh', '-c', 'awk \'{ print $19 }\' /proc/$PPID/task/*/stat | sort -u'],
    0o600, dir, { NUMACTLX_DEBUG: '1', NUMACTLX_SNAPSHOT_NICE: '10' });
  expect(r.exitCode).toBe(0);
  expect(String(r.stdout)).toBe('0');
  expect(String(r.stderr)).toContain("numactlx-engine: snapshot steps at numactlx's priority (nice 0): raising it back would need CAP_SYS_NICE or RLIMIT_NICE\n");
  const verify = await asUser(['verify', backing], 0o600, dir);
  expect({ exit: verify.exitCode, err: verify.stderr }).toEqual({ exit: 0, err: '' });
}, 120000);

// The waker (src/tracer-thread/waker.ts) killed while the user is over numactlx's
// RLIMIT_NPROC (root is exempt from it; the user's processes count, numactlx's threads
// among them): it cannot be started again. The session goes on — said once —, the
// tracer looks for requests every 10 ms meanwhile, so a snapshot of a program that only
// sleeps still commits, and once the user is under the limit, a new waker is started.
test('with read-write access to /dev/userfaultfd, the waker killed over RLIMIT_NPROC: said once, a snapshot of a sleeping program still commits, a new waker once under the limit', async () => {
  const dir = theirDir();
  const [fill, stop] = [path.join(dir, 'fill'), path.join(dir, 'stop')];
  // The program lifts its own limit, and on `fill` forks 80 sleepers (the user then over
  // numactlx's 64) until `fill` is gone; otherwise it sleeps: no event of it wakes the tracer.
  const program = [
    'import os, resource, time',
    'hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]',
    'resource.setrlimit(resource.RLIMIT_NPROC, (hard, hard))',
    'print(os.getppid(), flush=True)',
    'kids = []',
    `while not os.path.exists(${JSON.stringify(stop)}):`,
    `    if os.path.exists(${JSON.stringify(fill)}) and not kids:`,
    '        r, w = os.pipe()',
    '        for _ in range(80):',
    '            pid = os.fork()',
    '            if pid == 0: os.close(w); os.read(r, 1); os._exit(0)',
    '            kids.append(pid)',
    '        os.close(r); print("full", flush=True)',
    `    if kids and not os.path.exists(${JSON.stringify(fill)}):`,
    '        os.close(w); [os.waitpid(k, 0) for k in kids]; kids = []; print("emptied", flush=True)',
    '    time.sleep(0.01)',
    'print("done")',
  ].join('\n');
  const session = asUser([`--remap=3,${path.join(dir, 'n3.img')},size=1g`, '--membind=3', '--', 'python3', '-c', program], 0o600, dir, {},
    ['prlimit', '--nproc=64:', '--']);
  let out = '';
  let err = '';
  session.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  session.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  try {
    const nx = await waitFor('the program\'s first line (numactlx\'s pid)', () => /^(\d+)\n/.exec(out)?.[1], 30_000, 20);
    const wakerOf = (): number | undefined => childrenOf(Number(nx), true).find(isWaker);
    // A first snapshot starts every thread numactlx has (the checksum worker): none is made over the limit.
    expect((await asUser(['snapshot', '--wait', nx], 0o600, dir)).exitCode).toBe(0);
    const first = await waitFor('the waker', wakerOf, 20_000, 20);
    fs.writeFileSync(fill, '');
    await waitFor('the program\'s 80 sleepers', () => (out.includes('full') ? true : undefined), 30_000, 20);
    process.kill(first, 'SIGKILL');
    await waitFor('the line saying the waker cannot be started', () => (err.includes('waker') ? true : undefined), 20_000, 20);
    const snap = await asUser(['snapshot', '--wait', nx], 0o600, dir);
    expect({ exit: snap.exitCode, err: snap.stderr, waker: wakerOf() }).toEqual({ exit: 0, err: '', waker: undefined });
    fs.rmSync(fill);
    await waitFor('the sleepers to end', () => (out.includes('emptied') ? true : undefined), 30_000, 20);
    const second = await waitFor('a new waker', wakerOf, 20_000, 20);
    expect(second).not.toBe(first);
    fs.writeFileSync(stop, '');
    const r = await session;
    expect({ exit: r.exitCode, out: r.stdout }).toEqual({ exit: 0, out: `${nx}\nfull\nemptied\ndone` });
    expect(String(r.stderr)).toMatch(/^numactlx: cannot start its waker process \(\/bin\/cat\): posix_spawn failed: (EAGAIN|EWOULDBLOCK): until it can, numactlx looks for snapshot and eviction requests every 10 ms \(tried again each second\)$/);
  } finally {
    fs.writeFileSync(stop, '');
    session.kill('SIGKILL');
    await session.catch(() => undefined);
  }
}, 120000);
