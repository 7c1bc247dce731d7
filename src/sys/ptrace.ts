// ptrace(2): requests, options, event numbers and typed wrappers, following <linux/ptrace.h>
// of Linux 6.1, plus the x86-only PTRACE_GETREGS/SETREGS of <asm/ptrace-abi.h> (numactlx
// runs on x86_64 only: see ./arch/index.ts) and siginfo_t offsets of glibc 2.36 <signal.h>.
//
// The tracer is a thread, not a process: every call for a tracee must come from the
// thread that seized it (the tracer worker), synchronously — never through koffi's
// `.async`, which runs on the libuv pool.
import os from 'node:os';
import { koffi, libc, SysError, clearErrno, toU64 } from './libc.js';
import { arch, type UserRegName } from './arch/index.js';

const { ENOENT } = os.constants.errno;
/** sizeof(struct sock_filter). */
const SOCK_FILTER_BYTES = 8;

/** Size of `struct user_regs_struct`, what GETREGS/SETREGS transfer. */
export const USER_REGS_SIZE = arch.USER_REGS_SIZE;

/** Request numbers. */
export const PTRACE = {
  TRACEME: 0,
  PEEKTEXT: 1,
  PEEKDATA: 2,
  PEEKUSER: 3,
  POKETEXT: 4,
  POKEDATA: 5,
  POKEUSER: 6,
  CONT: 7,
  KILL: 8,
  SINGLESTEP: 9,
  GETREGS: 12, // x86
  SETREGS: 13, // x86
  ATTACH: 16,
  DETACH: 17,
  SYSCALL: 24,
  SETOPTIONS: 0x4200,
  GETEVENTMSG: 0x4201,
  GETSIGINFO: 0x4202,
  SETSIGINFO: 0x4203,
  GETREGSET: 0x4204,
  SETREGSET: 0x4205,
  SEIZE: 0x4206,
  INTERRUPT: 0x4207,
  LISTEN: 0x4208,
  PEEKSIGINFO: 0x4209,
  GETSIGMASK: 0x420a,
  SETSIGMASK: 0x420b,
  SECCOMP_GET_FILTER: 0x420c,
  GET_SYSCALL_INFO: 0x420e,
  GET_RSEQ_CONFIGURATION: 0x420f, // 5.13
} as const;
export type PtraceRequestName = keyof typeof PTRACE;

/** PTRACE_EVENT_* values (status >> 16 of an event stop). */
export const PTRACE_EVENT = {
  FORK: 1, VFORK: 2, CLONE: 3, EXEC: 4, VFORK_DONE: 5, EXIT: 6, SECCOMP: 7, STOP: 128,
} as const;

/** PTRACE_O_* options for PTRACE_SEIZE / PTRACE_SETOPTIONS. */
export const PTRACE_O = {
  TRACESYSGOOD: 1,
  TRACEFORK: 1 << PTRACE_EVENT.FORK,
  TRACEVFORK: 1 << PTRACE_EVENT.VFORK,
  TRACECLONE: 1 << PTRACE_EVENT.CLONE,
  TRACEEXEC: 1 << PTRACE_EVENT.EXEC,
  TRACEVFORKDONE: 1 << PTRACE_EVENT.VFORK_DONE,
  TRACEEXIT: 1 << PTRACE_EVENT.EXIT,
  TRACESECCOMP: 1 << PTRACE_EVENT.SECCOMP,
  /** The tracee gets SIGKILL when the tracer exits (DESIGN.md §3.2: never run on with zero pages). */
  EXITKILL: 1 << 20,
  SUSPEND_SECCOMP: 1 << 21,
} as const;

/** siginfo_t is 128 bytes; offsets of the fields a tracer reads. */
export const SIGINFO_SIZE = 128;
export const SIGINFO_OFFSET = {
  signo: 0, errno: 4, code: 8,
  pid: 16, uid: 20, status: 24, // SIGCHLD, kill()
  addr: 16, // SIGSEGV, SIGBUS
  addrLsb: 24, // SIGBUS BUS_MCEERR_* (short)
  value: 24, // SI_QUEUE (sigval)
  callAddr: 16, syscall: 24, arch: 28, // SIGSYS
} as const;

// ptrace is variadic in glibc (and PEEK* returns the word, not via `data`); two fixed
// prototypes: integer addr/data, and a buffer as data.
const ptraceInt = libc.func('ptrace', 'long', ['int', 'int', 'uintptr_t', 'uintptr_t']);
const ptraceBuf = libc.func('ptrace', 'long', ['int', 'int', 'uintptr_t', 'void *']);

function fail(request: PtraceRequestName): never {
  throw new SysError(`ptrace(PTRACE_${request})`, koffi.errno());
}

function call(request: PtraceRequestName, pid: number, addr: bigint | number, data: bigint | number): void {
  if (Number(ptraceInt(PTRACE[request], pid, addr, data)) === -1) fail(request);
}

function callBuf(request: PtraceRequestName, pid: number, buf: Uint8Array): void {
  if (Number(ptraceBuf(PTRACE[request], pid, 0, buf)) === -1) fail(request);
}

/** PTRACE_SEIZE with PTRACE_O_* options: attaches without stopping the tracee. */
export function seize(pid: number, options: number): void {
  call('SEIZE', pid, 0, options);
}

export function setOptions(pid: number, options: number): void {
  call('SETOPTIONS', pid, 0, options);
}

/** PTRACE_INTERRUPT: a group-stop-like PTRACE_EVENT_STOP for a seized tracee. */
export function interrupt(pid: number): void {
  call('INTERRUPT', pid, 0, 0);
}

/** PTRACE_CONT, delivering `sig` (0 for none: a signal-delivery stop is re-injected by passing it). */
export function cont(pid: number, sig = 0): void {
  call('CONT', pid, 0, sig);
}

/** PTRACE_SYSCALL: resume until the next syscall entry or exit. */
export function contSyscall(pid: number, sig = 0): void {
  call('SYSCALL', pid, 0, sig);
}

export function singleStep(pid: number, sig = 0): void {
  call('SINGLESTEP', pid, 0, sig);
}

/** PTRACE_LISTEN: leave a group-stopped seized tracee stopped but able to report. */
export function listen(pid: number): void {
  call('LISTEN', pid, 0, 0);
}

export function detach(pid: number, sig = 0): void {
  call('DETACH', pid, 0, sig);
}

/** struct ptrace_rseq_configuration (<linux/ptrace.h>, 5.13): u64 rseq_abi_pointer, u32 rseq_abi_size, signature, flags, pad. */
const RSEQ_CONFIGURATION_SIZE = 24;

/**
 * PTRACE_GET_RSEQ_CONFIGURATION: the thread's registered rseq area (addr 0 when it has
 * none), which the kernel writes on the thread's way back to user mode.
 */
export function getRseqArea(pid: number): { addr: bigint; size: number } {
  const buf = Buffer.alloc(RSEQ_CONFIGURATION_SIZE);
  // `addr` is the size of the caller's struct (the kernel copies at most that much).
  if (Number(ptraceBuf(PTRACE.GET_RSEQ_CONFIGURATION, pid, RSEQ_CONFIGURATION_SIZE, buf)) === -1) fail('GET_RSEQ_CONFIGURATION');
  return { addr: buf.readBigUInt64LE(0), size: buf.readUInt32LE(8) };
}

/** PTRACE_GETREGS into `out` (USER_REGS_SIZE bytes of user_regs_struct), which is returned. */
export function getRegs(pid: number, out: Buffer = Buffer.alloc(USER_REGS_SIZE)): Buffer {
  if (out.byteLength < USER_REGS_SIZE) throw new RangeError(`register buffer of ${out.byteLength} bytes < ${USER_REGS_SIZE}`);
  callBuf('GETREGS', pid, out);
  return out;
}

export function setRegs(pid: number, regs: Buffer): void {
  if (regs.byteLength < USER_REGS_SIZE) throw new RangeError(`register buffer of ${regs.byteLength} bytes < ${USER_REGS_SIZE}`);
  callBuf('SETREGS', pid, regs);
}

/** One register of a user_regs_struct buffer. */
export function readReg(regs: Buffer, name: UserRegName): bigint {
  return regs.readBigUInt64LE(arch.userRegOffset(name));
}

export function writeReg(regs: Buffer, name: UserRegName, value: bigint): void {
  regs.writeBigUInt64LE(BigInt.asUintN(64, value), arch.userRegOffset(name));
}

/**
 * PTRACE_PEEKDATA: the word at `addr` of the tracee. -1 is a valid word, so errno is
 * cleared before the call and is the only failure signal.
 */
export function peekData(pid: number, addr: bigint): bigint {
  clearErrno();
  const word = ptraceInt(PTRACE.PEEKDATA, pid, addr, 0) as number | bigint;
  if (koffi.errno() !== 0) fail('PEEKDATA');
  return toU64(word);
}

export function pokeData(pid: number, addr: bigint, word: bigint): void {
  call('POKEDATA', pid, addr, BigInt.asUintN(64, word));
}

/** PTRACE_GETEVENTMSG: the new pid at a fork/clone stop, the exit status at EXIT, the filter's data at SECCOMP. */
export function getEventMsg(pid: number): bigint {
  const out = Buffer.alloc(8);
  callBuf('GETEVENTMSG', pid, out);
  return out.readBigUInt64LE(0);
}

export interface SiginfoHead {
  signo: number;
  errno: number;
  code: number;
}

/** PTRACE_GETSIGINFO into `out` (SIGINFO_SIZE bytes), which is returned. */
export function getSiginfo(pid: number, out: Buffer = Buffer.alloc(SIGINFO_SIZE)): Buffer {
  callBuf('GETSIGINFO', pid, out);
  return out;
}

/** PTRACE_SETSIGINFO: the siginfo the tracee gets with the signal of its signal-delivery stop. */
export function setSiginfo(pid: number, info: Buffer): void {
  if (info.byteLength < SIGINFO_SIZE) throw new RangeError(`siginfo buffer of ${info.byteLength} bytes < ${SIGINFO_SIZE}`);
  callBuf('SETSIGINFO', pid, info);
}

/** si_signo, si_errno and si_code of a siginfo buffer. */
export function siginfoHead(info: Buffer): SiginfoHead {
  return {
    signo: info.readInt32LE(SIGINFO_OFFSET.signo),
    errno: info.readInt32LE(SIGINFO_OFFSET.errno),
    code: info.readInt32LE(SIGINFO_OFFSET.code),
  };
}

/**
 * PTRACE_SECCOMP_GET_FILTER: the instructions (struct sock_filter[]) of seccomp filter
 * `index` of stopped tracee `tid` — 0 is the one installed last —, or undefined past the
 * first (ENOENT). Needs CAP_SYS_ADMIN and a caller under no seccomp filter (EACCES), a
 * kernel with CONFIG_CHECKPOINT_RESTORE (EIO without it).
 */
export function seccompFilter(tid: number, index: number): Buffer | undefined {
  const len = Number(ptraceInt(PTRACE.SECCOMP_GET_FILTER, tid, index, 0));
  if (len === -1) {
    if (koffi.errno() === ENOENT) return undefined;
    fail('SECCOMP_GET_FILTER');
  }
  const out = Buffer.alloc(len * SOCK_FILTER_BYTES);
  if (Number(ptraceBuf(PTRACE.SECCOMP_GET_FILTER, tid, index, out)) === -1) fail('SECCOMP_GET_FILTER');
  return out;
}
