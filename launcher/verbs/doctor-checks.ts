// The probes behind `numactlx doctor`: each one tries the kernel interface numactlx needs,
// the way numactlx will use it, and says what is missing and how to fix it (CRIU's
// kerndat_uffd(): ENOSYS/EPERM mean "absent, enable this", anything else is reported as is).
//
// Every probe catches its own errors, closes every fd it opened, unmaps what it mapped and
// reaps every child it started, whatever fails.
import fs from 'node:fs';
import os from 'node:os';
import { describeError, errnoOf } from '../errors.js';
import * as uffd from '../../src/sys/userfaultfd-calls.js';
import * as uapi from '../../src/sys/userfaultfd-uapi.js';
import { seize, PTRACE_O } from '../../src/sys/ptrace.js';
import { seccompActionAvailable, SECCOMP_RET } from '../../src/sys/seccomp.js';
import * as mman from '../../src/sys/mman.js';
import { pidfdOpen, pidfdGetfd } from '../../src/sys/pidfd.js';
import { openPagemap, pagemapScan, PAGE_IS } from '../../src/sys/pagemap.js';
import { spawnProgram } from '../../src/sys/spawn.js';
import { waitpid, __WALL, WIFEXITED, WIFSIGNALED } from '../../src/sys/wait.js';
import { kill } from '../../src/sys/signal.js';

export interface CheckResult {
  name: string;
  ok: boolean;
  /** A failed required check fails the doctor; an optional one is only reported. */
  required: boolean;
  detail: string;
  /** How to fix it; set when the check failed. */
  fix?: string;
}

const ROOT_OR_SYSCTL = 'run as root or set vm.unprivileged_userfaultfd=1 (sysctl)';
const PAGE = BigInt(mman.PAGE_SIZE);

/** Runs `body`; a throw becomes a failed check whose fix `fixFor` chooses from the errno. */
function attempt(name: string, required: boolean, body: () => string,
  fixFor: (errno: string | undefined) => string): CheckResult {
  try {
    return { name, ok: true, required, detail: body() };
  } catch (err) {
    return { name, ok: false, required, detail: describeError(err), fix: fixFor(errnoOf(err)) };
  }
}

function readSysctl(path: string): string | undefined {
  try {
    return fs.readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function closeQuietly(fd: number): void {
  try { fs.closeSync(fd); } catch { /* already closed */ }
}

function withFd<T>(fd: number, use: (fd: number) => T): T {
  try {
    return use(fd);
  } finally {
    closeQuietly(fd);
  }
}

function withAnonPage<T>(use: (addr: bigint) => T): T {
  const addr = mman.mmap(0n, PAGE, mman.PROT_READ | mman.PROT_WRITE, mman.MAP_PRIVATE | mman.MAP_ANONYMOUS, -1, 0n);
  try {
    return use(addr);
  } finally {
    mman.munmap(addr, PAGE);
  }
}

/** A throw-away userfaultfd for probing: user-mode-only needs no privilege, plain is the fallback. */
function probeFd(): number {
  try {
    return uffd.userfaultfd(uapi.UFFD_USER_MODE_ONLY | uapi.O_CLOEXEC | uapi.O_NONBLOCK);
  } catch {
    return uffd.userfaultfd(uapi.O_CLOEXEC | uapi.O_NONBLOCK);
  }
}

function checkUserfaultfd(): CheckResult[] {
  const unpriv = readSysctl('/proc/sys/vm/unprivileged_userfaultfd');
  const sysctl = `vm.unprivileged_userfaultfd=${unpriv ?? 'absent'}`;
  return [
    attempt('userfaultfd (user-mode faults)', true, () => {
      withFd(uffd.userfaultfd(uapi.UFFD_USER_MODE_ONLY | uapi.O_CLOEXEC | uapi.O_NONBLOCK), () => undefined);
      return 'userfaultfd(UFFD_USER_MODE_ONLY) works';
    }, (e) => (e === 'ENOSYS' ? 'a kernel built with CONFIG_USERFAULTFD=y'
      : e === 'EINVAL' ? 'kernel ≥ 5.11 for UFFD_USER_MODE_ONLY'
        : 'userfaultfd is blocked (a container\'s seccomp profile?): allow the userfaultfd syscall')),
    // The program's own syscalls (read() into trapped memory…) fault in kernel mode:
    // numactlx needs a uffd without UFFD_USER_MODE_ONLY.
    attempt('userfaultfd (kernel-mode faults)', true, () => {
      withFd(uffd.userfaultfd(uapi.O_CLOEXEC | uapi.O_NONBLOCK), () => undefined);
      return `allowed (uid ${process.getuid?.() ?? '?'}, ${sysctl})`;
    }, (e) => (e === 'EPERM' ? ROOT_OR_SYSCTL : 'a kernel built with CONFIG_USERFAULTFD=y')),
    attempt('/dev/userfaultfd', false, () => {
      withFd(uffd.userfaultfdFromDevice(uapi.O_CLOEXEC), () => undefined);
      return 'USERFAULTFD_IOC_NEW works';
    }, (e) => (e === 'ENOENT' ? '(optional) kernel ≥ 6.1 provides /dev/userfaultfd'
      : e === 'EACCES' || e === 'EPERM' ? '(optional) give the user read-write access to /dev/userfaultfd'
        : '(optional) kernel ≥ 6.1 with CONFIG_USERFAULTFD=y')),
  ];
}

/** The features numactlx enables, with the release that added them and what they are for. */
const FEATURES: { key: uapi.UffdFeatureName; label: string; since: string }[] = [
  { key: 'PAGEFAULT_FLAG_WP', label: 'WP', since: '5.7' },
  { key: 'WP_UNPOPULATED', label: 'WP_UNPOPULATED', since: '6.4' },
  { key: 'WP_ASYNC', label: 'WP_ASYNC', since: '6.7' },
  { key: 'EVENT_FORK', label: 'EVENT_FORK', since: '4.11' },
  { key: 'EVENT_REMAP', label: 'EVENT_REMAP', since: '4.11' },
  { key: 'EVENT_REMOVE', label: 'EVENT_REMOVE', since: '4.11' },
  { key: 'EVENT_UNMAP', label: 'EVENT_UNMAP', since: '4.11' },
  { key: 'THREAD_ID', label: 'THREAD_ID', since: '4.14' },
  { key: 'MOVE', label: 'MOVE', since: '6.8' },
  { key: 'POISON', label: 'POISON', since: '6.6' },
];

function checkFeatures(): CheckResult[] {
  let offered: bigint | undefined;
  const missing = attempt('uffd MISSING', true, () => withFd(probeFd(), (fd) => {
    offered = uffd.uffdioApi(fd, 0n).features;
    // MISSING has no feature bit: it is the base mode; register a page to prove it.
    return withAnonPage((addr) => {
      uffd.register(fd, addr, PAGE, uapi.UFFDIO_REGISTER_MODE.MISSING);
      uffd.unregister(fd, addr, PAGE);
      return 'UFFDIO_API and UFFDIO_REGISTER (anonymous memory) work';
    });
  }), () => 'a kernel built with CONFIG_USERFAULTFD=y');
  const rows = [missing];
  for (const { key, label, since } of FEATURES) {
    const fix = key === 'PAGEFAULT_FLAG_WP'
      ? `kernel ≥ ${since} with CONFIG_HAVE_ARCH_USERFAULTFD_WP for UFFD_FEATURE_${key}`
      : `kernel ≥ ${since} for UFFD_FEATURE_${key}`;
    rows.push(attempt(`uffd ${label}`, true, () => {
      if (offered === undefined) throw new Error('no UFFDIO_API answer');
      if ((offered & uapi.UFFD_FEATURE[key]) === 0n) throw new Error(`UFFDIO_API does not offer UFFD_FEATURE_${key}`);
      // Offered is not enough: EVENT_FORK, for one, also needs CAP_SYS_PTRACE to enable.
      withFd(probeFd(), (fd) => uffd.uffdioApi(fd, uapi.UFFD_FEATURE[key]));
      return 'offered and enabled';
    }, (e) => (e === 'EPERM' ? 'needs CAP_SYS_PTRACE: run as root' : fix)));
  }
  return rows;
}

function checkPtrace(): CheckResult {
  const scope = readSysctl('/proc/sys/kernel/yama/ptrace_scope');
  const yama = scope === undefined ? 'no Yama' : `kernel.yama.ptrace_scope=${scope}`;
  return attempt('ptrace (PTRACE_SEIZE)', true, () => {
    const pid = spawnProgram({ file: 'sleep', argv: ['sleep', '10'], searchPath: true });
    try {
      seize(pid, PTRACE_O.EXITKILL);
    } finally {
      try { kill(pid, os.constants.signals.SIGKILL); } catch { /* already gone */ }
      for (;;) {
        const { status } = waitpid(pid, __WALL);
        if (WIFEXITED(status) || WIFSIGNALED(status)) break;
      }
    }
    return `seized a child (${yama})`;
  }, (e) => (e === 'EPERM'
    ? (Number(scope) >= 2 ? 'set kernel.yama.ptrace_scope=1 (sysctl; 3 needs a reboot) or run as root'
      : 'run as root or allow ptrace (CAP_SYS_PTRACE; a container\'s seccomp profile)')
    : 'a kernel that allows ptrace (PTRACE_SEIZE needs ≥ 3.4)'));
}

function checkSeccomp(): CheckResult {
  return attempt('seccomp (SECCOMP_RET_TRACE)', true, () => {
    const avail = readSysctl('/proc/sys/kernel/seccomp/actions_avail');
    if (avail !== undefined && !avail.split(/\s+/).includes('trace')) {
      throw new Error(`/proc/sys/kernel/seccomp/actions_avail lacks trace: ${avail}`);
    }
    if (!seccompActionAvailable(SECCOMP_RET.TRACE)) throw new Error('SECCOMP_GET_ACTION_AVAIL: RET_TRACE unknown');
    return `RET_TRACE available (SECCOMP_GET_ACTION_AVAIL${avail === undefined ? '' : ', actions_avail'})`;
  }, () => 'a kernel built with CONFIG_SECCOMP_FILTER=y');
}

function checkPidfd(): CheckResult {
  return attempt('pidfd_open + pidfd_getfd', true, () => {
    withFd(pidfdOpen(process.pid), (pidfd) => withFd(pidfdGetfd(pidfd, 0), () => undefined));
    return 'duplicated fd 0 of this process';
  }, (e) => (e === 'ENOSYS' ? 'kernel ≥ 5.6 for pidfd_getfd (5.3 for pidfd_open)'
    : 'run as root (pidfd_getfd needs ptrace access)'));
}

function checkProcessMadvise(): CheckResult {
  return attempt('process_madvise(MADV_DONTNEED)', true, () => withAnonPage((addr) => {
    mman.copyToAddress(addr, Buffer.alloc(mman.PAGE_SIZE, 0xa5));
    withFd(pidfdOpen(process.pid), (pidfd) => {
      const done = mman.processMadvise(pidfd, [{ base: addr, len: PAGE }], mman.MADV_DONTNEED);
      if (done !== PAGE) throw new Error(`process_madvise advised ${done} of ${PAGE} bytes`);
    });
    if (!mman.copyFromAddress(addr, mman.PAGE_SIZE).every((b) => b === 0)) {
      throw new Error('the page still holds data after MADV_DONTNEED');
    }
    return 'own anonymous page dropped through a pidfd, reads as zero';
  }), (e) => (e === 'ENOSYS' ? 'kernel ≥ 5.10 for process_madvise'
    : e === 'EINVAL' ? 'kernel ≥ 6.13 for process_madvise(MADV_DONTNEED) on own memory' : 'run as root'));
}

function checkPagemapScan(): CheckResult {
  return attempt('PAGEMAP_SCAN', true, () => withFd(openPagemap('self'), (fd) => withAnonPage((addr) => {
    mman.copyToAddress(addr, Buffer.alloc(8, 1));
    const { regions } = pagemapScan(fd, { start: addr, end: addr + PAGE, categoryMask: PAGE_IS.PRESENT, returnMask: PAGE_IS.PRESENT });
    if (regions.length !== 1 || regions[0].start !== addr) throw new Error('PAGEMAP_SCAN did not report a present page');
    return 'ioctl on /proc/self/pagemap works';
  })), (e) => (e === 'ENOTTY' || e === 'EINVAL' ? 'kernel ≥ 6.7 for PAGEMAP_SCAN' : 'a readable /proc/self/pagemap (mount /proc)'));
}

/** Runs every probe, in order; never throws. */
export function runChecks(): CheckResult[] {
  return [
    ...checkUserfaultfd(),
    ...checkFeatures(),
    checkPtrace(),
    checkSeccomp(),
    checkPidfd(),
    checkProcessMadvise(),
    checkPagemapScan(),
  ];
}
