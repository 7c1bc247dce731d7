// The probes behind ./features.ts: each tries a kernel interface the way numactlx uses it
// (CRIU's kerndat_uffd(): ENOSYS/EPERM mean "absent, enable this"). A session runs these,
// the quick ones, once before its program starts (probeKernel()); `doctor` adds those of
// ./probe-thorough.ts (a real PTRACE_SEIZE of a child, process_madvise, libpmem).
//
// Every probe catches its own errors, closes every fd it opened, unmaps what it mapped and
// reaps every child it started, whatever fails.
import fs from 'node:fs';
import * as uffd from '../sys/userfaultfd-calls.js';
import * as uapi from '../sys/userfaultfd-uapi.js';
import { SysError } from '../sys/libc.js';
import { seccompActionAvailable, SECCOMP_RET } from '../sys/seccomp.js';
import * as mman from '../sys/mman.js';
import { pidfdOpen, pidfdGetfd } from '../sys/pidfd.js';
import { hasCapability } from '../sys/process.js';
import { openPagemap, pagemapScan, PAGE_IS } from '../sys/pagemap.js';
import {
  chooseCapture, chooseDirtyTracking, SNAPSHOT_CAPTURE_ENV, type SnapshotCapture, DIRTY_TRACKING_ENV, DISABLE_ENV, disabledFeatures, FEATURE_NAMES, missingLine, presentFeatures, type FeatureName, type KernelFeatures,
  type DirtyTracking, type Probe, type ProbeResults,
} from './features.js';

const PAGE = BigInt(mman.PAGE_SIZE);
/** CAP_SYS_PTRACE's bit in /proc/self/status CapEff (<linux/capability.h>). */
const CAP_SYS_PTRACE = 19;

const errnoOf = (err: unknown): string | undefined => (err instanceof SysError ? err.code : undefined);
const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

function readText(path: string): string | undefined {
  try {
    return fs.readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

export function closeQuietly(fd: number): void {
  try { fs.closeSync(fd); } catch { /* already closed */ }
}

export function withFd<T>(fd: number, use: (fd: number) => T): T {
  try {
    return use(fd);
  } finally {
    closeQuietly(fd);
  }
}

export function withAnonPage<T>(use: (addr: bigint) => T): T {
  const addr = mman.mmap(0n, PAGE, mman.PROT_READ | mman.PROT_WRITE, mman.MAP_PRIVATE | mman.MAP_ANONYMOUS, -1, 0n);
  try {
    return use(addr);
  } finally {
    mman.munmap(addr, PAGE);
  }
}

/** Runs `body`; a throw becomes an absent feature whose fix `fixFor` picks from the errno. */
export function attempt(body: () => string, fixFor: (errno: string | undefined) => string | undefined): Probe {
  try {
    return { present: true, detail: body() };
  } catch (err) {
    return { present: false, detail: message(err), fix: fixFor(errnoOf(err)) };
  }
}

/** Whether this process has CAP_SYS_PTRACE in its effective set. */
export function hasCapSysPtrace(): boolean {
  return hasCapability(CAP_SYS_PTRACE);
}

const PRIVILEGE_FIX = 'run as root, or grant CAP_SYS_PTRACE, or set vm.unprivileged_userfaultfd=1';

function probeSyscall(): Probe {
  const unpriv = readText('/proc/sys/vm/unprivileged_userfaultfd');
  const who = `uid ${process.getuid?.() ?? '?'}, vm.unprivileged_userfaultfd=${unpriv ?? 'absent'}`;
  const probe = attempt(() => withFd(uffd.userfaultfd(uapi.O_CLOEXEC | uapi.O_NONBLOCK), () => `userfaultfd(2) works (${who})`),
    (e) => (e === 'ENOSYS' ? 'a kernel built with CONFIG_USERFAULTFD=y'
      : e === 'EPERM' ? PRIVILEGE_FIX : 'allow the userfaultfd system call (a container\'s seccomp profile?)'));
  return probe.present ? probe : { ...probe, detail: `${probe.detail} (${who})` };
}

function probeDevice(): Probe {
  return attempt(() => withFd(uffd.userfaultfdFromDevice(uapi.O_CLOEXEC | uapi.O_NONBLOCK), () => '/dev/userfaultfd: USERFAULTFD_IOC_NEW works'),
    (e) => (e === 'ENOENT' ? 'Linux 6.1 or later has /dev/userfaultfd (CONFIG_USERFAULTFD)'
      : e === 'EACCES' || e === 'EPERM'
        ? 'give the user read-write access to /dev/userfaultfd (README, Permissions)'
        : undefined));
}

/** A throw-away userfaultfd: user-mode-only needs no privilege; then the others. */
function scratchFd(): number {
  try {
    return uffd.userfaultfd(uapi.UFFD_USER_MODE_ONLY | uapi.O_CLOEXEC | uapi.O_NONBLOCK);
  } catch {
    try {
      return uffd.userfaultfd(uapi.O_CLOEXEC | uapi.O_NONBLOCK);
    } catch {
      return uffd.userfaultfdFromDevice(uapi.O_CLOEXEC | uapi.O_NONBLOCK);
    }
  }
}

type UffdFeature = 'WP' | 'EVENT_FORK' | 'EVENT_REMAP' | 'EVENT_REMOVE' | 'EVENT_UNMAP' | 'THREAD_ID' | 'POISON'
  | 'WP_UNPOPULATED' | 'WP_ASYNC' | 'MOVE';
const UFFD_BITS: Record<UffdFeature, uapi.UffdFeatureName> = {
  WP: 'PAGEFAULT_FLAG_WP', EVENT_FORK: 'EVENT_FORK', EVENT_REMAP: 'EVENT_REMAP', EVENT_REMOVE: 'EVENT_REMOVE',
  EVENT_UNMAP: 'EVENT_UNMAP', THREAD_ID: 'THREAD_ID', POISON: 'POISON', WP_UNPOPULATED: 'WP_UNPOPULATED',
  WP_ASYNC: 'WP_ASYNC', MOVE: 'MOVE',
};

/** Each uffd feature offered by UFFDIO_API, then enabled for real on a fresh fd. */
function probeUffdFeatures(): Record<UffdFeature, Probe> {
  let offered: bigint | undefined;
  let why = '';
  try {
    offered = withFd(scratchFd(), (fd) => uffd.uffdioApi(fd, 0n).features);
  } catch (err) {
    why = message(err);
  }
  const out = {} as Record<UffdFeature, Probe>;
  for (const [name, bit] of Object.entries(UFFD_BITS) as Array<[UffdFeature, uapi.UffdFeatureName]>) {
    const flag = `UFFD_FEATURE_${bit}`;
    if (offered === undefined) {
      out[name] = { present: false, detail: `no userfaultfd to ask (${why})`, fix: 'see the userfaultfd rows' };
      continue;
    }
    if ((offered & uapi.UFFD_FEATURE[bit]) === 0n) {
      out[name] = { present: false, detail: `UFFDIO_API does not offer ${flag}`,
        fix: name === 'WP' ? 'a kernel with CONFIG_HAVE_ARCH_USERFAULTFD_WP (x86_64: Linux 5.7)' : undefined };
      continue;
    }
    // Offered is not enough: EVENT_FORK also needs CAP_SYS_PTRACE in the caller of UFFDIO_API.
    out[name] = attempt(() => withFd(scratchFd(), (fd) => {
      uffd.uffdioApi(fd, uapi.UFFD_FEATURE[bit]);
      if (name !== 'WP') return `${flag} offered and enabled`;
      // The way the engine registers every range: MISSING and WP on anonymous memory.
      return withAnonPage((addr) => {
        uffd.register(fd, addr, PAGE, uapi.UFFDIO_REGISTER_MODE.MISSING | uapi.UFFDIO_REGISTER_MODE.WP);
        uffd.unregister(fd, addr, PAGE);
        return `${flag} enabled; anonymous memory registers for MISSING and WP`;
      });
    }), (e) => (e === 'EPERM' && name === 'EVENT_FORK' ? 'run as root, or grant CAP_SYS_PTRACE' : undefined));
    if (!out[name].present && name === 'EVENT_FORK' && errnoIn(out[name].detail, 'EPERM')) {
      out[name].detail = `UFFDIO_API(${flag}): EPERM (needs CAP_SYS_PTRACE)`;
    }
  }
  return out;
}

const errnoIn = (detail: string, code: string): boolean => detail.endsWith(`: ${code}`);

/** A session's start: no child is spawned; Yama and capabilities say whether PTRACE_SEIZE of a child can work. */
export function probePtraceQuick(): Probe {
  const scope = readText('/proc/sys/kernel/yama/ptrace_scope');
  const yama = scope === undefined ? 'no Yama' : `kernel.yama.ptrace_scope=${scope}`;
  if (scope === '3') return { present: false, detail: `${yama}: ptrace is disabled`, fix: 'set kernel.yama.ptrace_scope=1 (needs a reboot from 3)' };
  if (scope === '2' && !hasCapSysPtrace()) {
    return { present: false, detail: `${yama}: only CAP_SYS_PTRACE may trace`, fix: 'set kernel.yama.ptrace_scope=1 (sysctl), or run as root' };
  }
  return { present: true, detail: `a child may be traced (${yama})` };
}

function probeSeccomp(): Probe {
  return attempt(() => {
    const avail = readText('/proc/sys/kernel/seccomp/actions_avail');
    if (avail !== undefined && !avail.split(/\s+/).includes('trace')) {
      throw new Error(`/proc/sys/kernel/seccomp/actions_avail lacks trace: ${avail}`);
    }
    if (!seccompActionAvailable(SECCOMP_RET.TRACE)) throw new Error('SECCOMP_GET_ACTION_AVAIL: RET_TRACE unknown');
    return `RET_TRACE available (SECCOMP_GET_ACTION_AVAIL${avail === undefined ? '' : ', actions_avail'})`;
  }, () => 'a kernel built with CONFIG_SECCOMP_FILTER=y');
}

function probePidfd(): Probe {
  return attempt(() => {
    withFd(pidfdOpen(process.pid), (pidfd) => withFd(pidfdGetfd(pidfd, 0), () => undefined));
    return 'duplicated fd 0 of this process';
  }, (e) => (e === 'ENOSYS' ? 'Linux 5.6 has pidfd_getfd (5.3 pidfd_open)' : undefined));
}

/** An ioctl on /proc/self/pagemap over one page of this process: a session's start can afford it. */
function probePagemapScan(): Probe {
  return attempt(() => withFd(openPagemap('self'), (fd) => withAnonPage((addr) => {
    mman.copyToAddress(addr, Buffer.alloc(8, 1));
    const { regions } = pagemapScan(fd, { start: addr, end: addr + PAGE, categoryMask: PAGE_IS.PRESENT, returnMask: PAGE_IS.PRESENT });
    if (regions.length !== 1 || regions[0].start !== addr) throw new Error('PAGEMAP_SCAN did not report a present page');
    return 'ioctl on /proc/self/pagemap works';
  })), (e) => (e === 'ENOTTY' || e === 'EINVAL' ? 'Linux 6.7 has PAGEMAP_SCAN' : undefined));
}

const SKIPPED: Probe = { present: false, detail: 'not probed at a session start', skipped: true };

/** Probes that `doctor` adds (./probe-thorough.ts), by feature. */
export type MoreProbes = Partial<Record<FeatureName, () => Probe>>;

/**
 * Probes the kernel: the quick probes a session needs before its program starts (a few
 * system calls, no child process), plus `more` (doctor's); a feature neither probes is
 * `skipped`. Throws on an unknown name in NUMACTLX_DISABLE_FEATURES.
 */
export function probeKernel(more: MoreProbes = {}, env: NodeJS.ProcessEnv = process.env): ProbeResults {
  const disabled = disabledFeatures(env[DISABLE_ENV]);
  const results = {
    USERFAULTFD: probeSyscall(),
    USERFAULTFD_DEVICE: probeDevice(),
    ...probeUffdFeatures(),
    PTRACE: probePtraceQuick(),
    SECCOMP_TRACE: probeSeccomp(),
    PIDFD_GETFD: probePidfd(),
    PROCESS_MADVISE: SKIPPED,
    PAGEMAP_SCAN: probePagemapScan(),
    LIBPMEM: SKIPPED,
  } as ProbeResults;
  for (const [name, probe] of Object.entries(more) as Array<[FeatureName, () => Probe]>) results[name] = probe();
  for (const name of FEATURE_NAMES) {
    if (disabled.has(name)) results[name] = { present: false, detail: `disabled by ${DISABLE_ENV}` };
  }
  return results;
}

/**
 * A session's start: the features present (for the threads' start data), or a throw
 * whose message is the one line naming the missing feature and the kernel that has it.
 */
export function sessionFeatures(env: NodeJS.ProcessEnv = process.env, evicting = false):
  { features: KernelFeatures; dirtyTracking: DirtyTracking; capture: SnapshotCapture } {
  const results = probeKernel({}, env);
  const missing = missingLine(results);
  if (missing) throw new Error(missing);
  const features = presentFeatures(results);
  const dirtyTracking = chooseDirtyTracking(features, env[DIRTY_TRACKING_ENV], evicting);
  return { features, dirtyTracking, capture: chooseCapture(features, dirtyTracking, env[SNAPSHOT_CAPTURE_ENV]) };
}
