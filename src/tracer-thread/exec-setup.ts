// What happens at every exec stop (DESIGN.md §3.1 step 2): the new mm needs its own
// userfaultfd — created inside the program, since a uffd is bound to the mm of the
// process that creates it — taken over with pidfd_getfd and closed in the program;
// the seccomp filter on the first exec (children inherit it, and it survives exec);
// the break; and, when the policy names a virtual node, the anonymous ranges the new
// image already has (stack, bss, heap) registered before it runs an instruction.
import { SYS } from '../sys/arch/index.js';
import { pidfdGetfd, pidfdOpen } from '../sys/pidfd.js';
import { closeFd } from '../sys/eventfd.js';
import { SysError } from '../sys/libc.js';
import { O_CLOEXEC, O_NONBLOCK } from '../sys/userfaultfd-uapi.js';
import { getRegs, readReg } from '../sys/ptrace.js';
import { encodeFprog } from '../sys/seccomp.js';
import { injectChecked, injectSyscall } from './inject.js';
import { anonymousPrivate, readMaps } from './maps.js';
import { writeRemote } from './remote.js';
import { memoryTrapFilter } from './seccomp-filter.js';
import type { Proc } from './state.js';

const SECCOMP_SET_MODE_FILTER = 1n;
const PR_SET_NO_NEW_PRIVS = 38n;
const EACCES = 13n;
/** The x86_64 ABI's red zone below rsp, which leaf code may use: never write there. */
const RED_ZONE = 128n;

const FILTER = memoryTrapFilter();

/** Installs the memory-trap filter in `pid` (stopped): program and fprog go below its stack. */
export function installFilter(pid: number): void {
  const rsp = readReg(getRegs(pid), 'rsp');
  const progAddr = (rsp - RED_ZONE - BigInt(FILTER.byteLength)) & ~15n;
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

/** Creates a userfaultfd in `pid` and returns numactlx's duplicate of it. */
export function takeUserfaultfd(pid: number): number {
  const remoteFd = injectChecked(pid, 'userfaultfd in the program', SYS.userfaultfd, [BigInt(O_CLOEXEC | O_NONBLOCK)]);
  const pidfd = pidfdOpen(pid);
  try {
    return pidfdGetfd(pidfd, Number(remoteFd));
  } finally {
    closeFd(pidfd);
    injectSyscall(pid, SYS.close, [remoteFd]);
  }
}

/** The current program break of `pid`. */
export function currentBreak(pid: number): bigint {
  return injectSyscall(pid, SYS.brk, [0n]);
}

export interface AnonRange {
  start: bigint;
  len: bigint;
}

/** The anonymous private ranges `pid` has now. */
export function existingAnonRanges(pid: number): AnonRange[] {
  return anonymousPrivate(readMaps(pid)).map((e) => ({ start: e.start, len: e.end - e.start }));
}

export function setUpExec(proc: Proc): { uffd: number } {
  if (!proc.filtered) {
    installFilter(proc.pid);
    proc.filtered = true;
  }
  const uffd = takeUserfaultfd(proc.pid);
  proc.brk = currentBreak(proc.pid);
  return { uffd };
}
