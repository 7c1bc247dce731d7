// What happens at every exec stop (DESIGN.md §3.1 step 2): the new mm needs its own
// userfaultfd — created inside the program, since a uffd is bound to the mm of the
// process that creates it — taken over with pidfd_getfd and closed in the program;
// the seccomp filter on the first exec (children inherit it, and it survives exec);
// the break; and, when the policy names a virtual node, the anonymous ranges the new
// image already has (stack, bss, heap) registered before it runs an instruction.
import os from 'node:os';
import { SYS } from '../sys/arch/index.js';
import { pidfdGetfd, pidfdOpen } from '../sys/pidfd.js';
import { closeFd } from '../sys/eventfd.js';
import { errnoName, SysError } from '../sys/libc.js';
import { O_CLOEXEC, O_NONBLOCK, O_RDWR, USERFAULTFD_IOC_NEW } from '../sys/userfaultfd-uapi.js';
import { encodeFprog } from '../sys/seccomp.js';
import { injectChecked, injectSyscall, NotReadable } from './inject.js';
import { anonymousPrivate, readMaps } from './maps.js';
import { belowStack, writeRemote } from './remote.js';
import { memoryTrapFilter } from './seccomp-filter.js';
import type { Proc, Tasks, Thread } from './state.js';
import type { EngineClient } from '../channels/tracer-engine.js';
import { forgetUffd, registerRange } from './register.js';
import { dupCloexec } from '../sys/fcntl.js';
import { readProcStat } from '../sys/procfs.js';
import { injectPastFilters, UNREADABLE_FILTER } from './filter-verdict.js';
import { userfaultfdRefusal } from './limits.js';
import { handDevice, HAND_OVER_CALLS } from './handed-device.js';
import type { FilteredCall } from './seccomp-bpf.js';

const SECCOMP_SET_MODE_FILTER = 1n;
const AT_FDCWD = -100n;
const USERFAULTFD_DEVICE = Buffer.from('/dev/userfaultfd\0');
const PR_SET_NO_NEW_PRIVS = 38n;
const EACCES = 13n;

const FILTER = memoryTrapFilter();

/** Installs the memory-trap filter in `pid` (stopped): program and fprog go below its stack. */
export function installFilter(pid: number): void {
  const progAddr = belowStack(pid, FILTER.byteLength);
  const fprogAddr = (progAddr - 16n) & ~15n;
  writeRemote(pid, progAddr, FILTER);
  writeRemote(pid, fprogAddr, encodeFprog(FILTER.byteLength / 8, progAddr));
  let ret = injectSyscall(pid, SYS.seccomp, [SECCOMP_SET_MODE_FILTER, 0n, fprogAddr]);
  if (ret === -EACCES) {
    // Without CAP_SYS_ADMIN a filter needs no_new_privs (a set-uid program exec'd
    // later would then not gain privileges: only for non-root users).
    injectChecked(pid, 'prctl(PR_SET_NO_NEW_PRIVS)', SYS.prctl, [PR_SET_NO_NEW_PRIVS, 1n]);
    ret = injectSyscall(pid, SYS.seccomp, [SECCOMP_SET_MODE_FILTER, 0n, fprogAddr]);
  }
  if (ret < 0n) throw new SysError('seccomp(SECCOMP_SET_MODE_FILTER) in the program', Number(-ret));
}

/**
 * How one userfaultfd is made in the program: userfaultfd(2); /dev/userfaultfd opened with
 * its own access; or the device opened with numactlx's and handed to it (handed-device.ts).
 */
type UffdWay = 'syscall' | 'device' | 'handed';

/**
 * Where the program's userfaultfd comes from (src/kerndat/features.ts: USERFAULTFD,
 * USERFAULTFD_DEVICE); 'syscall-or-device': the device where the call is refused EPERM.
 */
export type UffdSource = 'syscall' | 'device' | 'syscall-or-device';

const { EMFILE, ENFILE, ENOMEM, EPERM } = os.constants.errno;
/**
 * What the program's own state can make userfaultfd(2) answer: EPERM for a process
 * that dropped root (vm.unprivileged_userfaultfd = 0 asks for CAP_SYS_PTRACE), no fd
 * left, no memory.
 */
const REFUSED = new Set([EPERM, EMFILE, ENFILE, ENOMEM]);

/** The program's process cannot have a userfaultfd: its memory stays ordinary memory. */
export class UserfaultfdRefused extends Error {
  /**
   * `reason`: why numactlx did not try (the message says it instead of the errno).
   * `byAccess`: refused for the process's credentials, which another way may not ask for.
   */
  constructor(readonly pid: number, readonly errno: number, readonly reason?: string, readonly byAccess = false) {
    super(`userfaultfd in pid ${pid} failed: ${reason ?? errnoName(errno)}`);
    this.name = 'UserfaultfdRefused';
  }
}

/** The uffd an injected call returned, or UserfaultfdRefused / SysError for its errno. */
function uffdOrRefused(pid: number, what: string, ret: bigint): bigint {
  if (ret >= 0n || ret <= -4096n) return ret;
  const errno = Number(-ret);
  if (REFUSED.has(errno)) throw new UserfaultfdRefused(pid, errno, undefined, errno === EPERM);
  throw new SysError(what, errno);
}

/**
 * A userfaultfd made inside `pid` (stopped): by userfaultfd(2), or — for a user
 * without CAP_SYS_PTRACE, where that cannot trap kernel-mode faults — from
 * /dev/userfaultfd, which the program opens with the user's own access to it. The
 * device's path goes below the stack (past the red zone), like the seccomp filter.
 */
function makeRemoteUserfaultfd(pid: number, source: UffdWay): bigint {
  const flags = BigInt(O_CLOEXEC | O_NONBLOCK);
  if (source === 'syscall') return uffdOrRefused(pid, 'userfaultfd in the program', injectSyscall(pid, SYS.userfaultfd, [flags]));
  const dev = source === 'handed' ? handDevice(pid) : openDeviceIn(pid);
  try {
    return uffdOrRefused(pid, 'ioctl(USERFAULTFD_IOC_NEW) in the program',
      injectSyscall(pid, SYS.ioctl, [dev, BigInt(USERFAULTFD_IOC_NEW), flags]));
  } finally {
    injectSyscall(pid, SYS.close, [dev]);
  }
}

/** /dev/userfaultfd opened in `pid` with its own access: its descriptor there. */
function openDeviceIn(pid: number): bigint {
  const pathAddr = belowStack(pid, USERFAULTFD_DEVICE.byteLength);
  writeRemote(pid, pathAddr, USERFAULTFD_DEVICE);
  return injectChecked(pid, 'open(/dev/userfaultfd) in the program', SYS.openat, [AT_FDCWD, pathAddr, BigInt(O_RDWR | O_CLOEXEC)]);
}

/** The calls makeRemoteUserfaultfd injects, as a filter sees them (descriptors and addresses unknown yet: 0). */
function userfaultfdCalls(source: UffdWay): FilteredCall[] {
  const flags = BigInt(O_CLOEXEC | O_NONBLOCK);
  const close = { nr: SYS.close, args: [0n] };
  if (source === 'syscall') return [{ nr: SYS.userfaultfd, args: [flags] }, close];
  const ioctl = { nr: SYS.ioctl, args: [0n, BigInt(USERFAULTFD_IOC_NEW), flags] };
  if (source === 'handed') return [...HAND_OVER_CALLS, ioctl, close];
  return [{ nr: SYS.openat, args: [AT_FDCWD, 0n, BigInt(O_RDWR | O_CLOEXEC)] }, ioctl, close];
}

/** The ways tried for a source, in order: each next one only if the one before was refused for the process's credentials. */
const WAYS: Record<UffdSource, readonly UffdWay[]> = {
  syscall: ['syscall'],
  device: ['device', 'handed'],
  'syscall-or-device': ['syscall', 'device', 'handed'],
};

/** What a refusal of `way` says in the line of a process left untrapped. */
function refusalOf(pid: number, way: UffdWay, err: UserfaultfdRefused): string {
  const why = err.reason ?? (way === 'syscall' ? userfaultfdRefusal(pid, err.errno) : errnoName(err.errno));
  return way === 'syscall' ? why : way === 'device' ? `/dev/userfaultfd: ${why}` : `numactlx's own /dev/userfaultfd: ${why}`;
}

/**
 * Creates a userfaultfd in `pid` and returns numactlx's duplicate of it, which the
 * caller owns. If the program dies on the way, nothing of it is left open here.
 *
 * userfaultfd(2) asks for CAP_SYS_PTRACE in the initial user namespace: a process in a
 * user namespace of its own (bwrap --unshare-user, unshare -U, a container) is refused it
 * even as that namespace's root, as is one that dropped root. The device asks for access
 * to its file, with the process's own credentials: the first has it, the second may not;
 * then numactlx opens the device with its own and hands it over (handed-device.ts).
 */
export function takeUserfaultfd(pid: number, source: UffdSource = 'syscall'): number {
  const ways = WAYS[source];
  if (ways.length === 1) return takeUserfaultfdBy(pid, ways[0]);
  const refusals: string[] = [];
  for (const [i, way] of ways.entries()) {
    try {
      return takeUserfaultfdBy(pid, way);
    } catch (err) {
      if (!(err instanceof UserfaultfdRefused)) throw err;
      if (!err.byAccess && i === 0) throw err; // no other way would do better: said as it is
      refusals.push(refusalOf(pid, way, err));
      if (!err.byAccess || i === ways.length - 1) throw new UserfaultfdRefused(pid, err.errno, refusals.join('; '));
    }
  }
  throw new Error('unreachable: the last way throws');
}

/** takeUserfaultfd one way. */
function takeUserfaultfdBy(pid: number, source: UffdWay): number {
  // Its calls are injected into the process: a seccomp filter of its own (a sandbox
  // wrapper's, inherited across its exec) killed it for them (SIGSYS). Made where every
  // filter lets them run, or past them (filter-verdict.ts); not made where they cannot be read.
  const fd = injectPastFilters(pid, pid, userfaultfdCalls(source), () => makeUserfaultfdIn(pid, source));
  if (typeof fd === 'number') return fd;
  throw new UserfaultfdRefused(pid, EPERM, 'it runs under a seccomp filter of its own, which could kill it for the calls that make one' +
    (fd === 'unreadable' ? `; ${UNREADABLE_FILTER}` : ''));
}

/** takeUserfaultfd's calls, made in `pid` (stopped). */
function makeUserfaultfdIn(pid: number, source: UffdWay): number {
  let remoteFd: bigint;
  try {
    remoteFd = makeRemoteUserfaultfd(pid, source);
  } catch (err) {
    // Its memory refused to numactlx: an injection's PTRACE_PEEKDATA (EIO: NotReadable), or
    // the write of the device's path through /proc/PID/mem (EACCES).
    const e = err as NodeJS.ErrnoException;
    if (err instanceof NotReadable || (e.path === `/proc/${pid}/mem` && (e.code === 'EACCES' || e.code === 'EPERM'))) {
      throw new UserfaultfdRefused(pid, EPERM, 'it is not dumpable (prctl PR_SET_DUMPABLE 0, or an exec of a program file the user may not read), and numactlx without CAP_SYS_PTRACE cannot make the calls that make one in it');
    }
    // A call made in it refused (the open of /dev/userfaultfd with the program's credentials,
    // or numactlx's own open of it for the hand-over), or the process out of descriptors.
    if (err instanceof SysError && (err.code === 'EACCES' || err.code === 'EPERM')) throw new UserfaultfdRefused(pid, err.errno, err.message, true);
    if (err instanceof SysError && REFUSED.has(err.errno)) throw new UserfaultfdRefused(pid, err.errno, err.message);
    throw err;
  }
  let fd = -1;
  const pidfd = pidfdOpen(pid);
  try {
    fd = pidfdGetfd(pidfd, Number(remoteFd));
  } finally {
    closeFd(pidfd);
  }
  try {
    injectSyscall(pid, SYS.close, [remoteFd]);
  } catch (err) {
    closeFd(fd);
    throw err;
  }
  return fd;
}

/**
 * The program break of `pid` at its exec stop: start_brk, field 47 of /proc/PID/stat
 * (exec sets brk = start_brk; the new image has not run). Read, not asked for with an
 * injected brk(0): that costs a round of single steps, and brk is trapped by the filter.
 */
export function breakAtExec(pid: number): bigint {
  const field = readProcStat(pid).field(47);
  if (field === undefined) throw new Error(`no start_brk in /proc/${pid}/stat`);
  return BigInt(field);
}

export interface AnonRange {
  start: bigint;
  len: bigint;
}

/** The anonymous private ranges `pid` has now. */
export function existingAnonRanges(pid: number): AnonRange[] {
  return anonymousPrivate(readMaps(pid)).map((e) => ({ start: e.start, len: e.end - e.start }));
}

export function setUpExec(proc: Proc, source: UffdSource): { uffd: number } {
  if (!proc.filtered) {
    installFilter(proc.pid);
    proc.filtered = true;
  }
  proc.brk = proc.startBrk = breakAtExec(proc.pid);
  return { uffd: takeUserfaultfd(proc.pid, source) };
}

/**
 * The syscall-exit stop of an exec (the exec stop itself is too early: see tracer.ts):
 * `thread` is the thread-group leader now; a non-leader that exec'd is gone. The old mm
 * is left, the new one gets its userfaultfd and the policy's ranges it already has. A
 * process that cannot have a userfaultfd runs on with ordinary memory (`refused`).
 */
export function onExecStop(tasks: Tasks, engine: EngineClient, thread: Thread, formerTid: number,
  source: UffdSource, refused: (err: UserfaultfdRefused) => void): void {
  if (formerTid !== thread.tid) tasks.threads.delete(formerTid);
  const proc = thread.proc;
  proc.execed = true;
  forgetUffd(proc);
  engine.ended(proc.pid); // noted: read before the AddMm below
  let uffd: number;
  try {
    ({ uffd } = setUpExec(proc, source));
  } catch (err) {
    if (!(err instanceof UserfaultfdRefused)) throw err;
    refused(err);
    return;
  }
  // The tracer's own descriptor of it (register.ts), taken while the tracer still owns
  // `uffd`: once the engine has it, a process killed now would let the engine close it.
  const own = dupCloexec(uffd);
  const r = engine.addMm(proc.pid, uffd);
  if (r !== 0) {
    closeFd(uffd);
    if (own >= 0) closeFd(own);
    throw new SysError(`UFFDIO_API for the program's userfaultfd (pid ${proc.pid})`, -r);
  }
  proc.uffd = Math.max(-1, own);
  if (proc.policy) {
    for (const range of existingAnonRanges(proc.pid)) registerRange(proc, engine, range.start, range.len, proc.policy);
  }
}
