// The architecture in use, chosen once from process.arch. numactlx injects syscalls
// and reads registers, so an unsupported architecture is a hard error (as numactl's
// syscall.c stops the build with "Add syscalls for your architecture").
//
// Every module outside src/sys/arch imports architecture facts from here, never from
// an architecture's own file: a port adds its file and one line to selectArch().
import * as x86_64 from './x86_64.js';

function selectArch(): typeof x86_64 {
  if (process.arch === 'x64') return x86_64;
  throw new Error(`numactlx supports x86_64 only; this is ${process.arch}`);
}

export const arch = selectArch();

export const ARCH_NAME = arch.ARCH_NAME;
/** The seccomp audit architecture (AUDIT_ARCH_*) of this architecture. */
export const AUDIT_ARCH = arch.AUDIT_ARCH;
/** System call numbers. */
export const SYS = arch.SYS;
/** `struct user_regs_struct`: field names in order and size in bytes. */
export const USER_REGS_FIELDS = arch.USER_REGS_FIELDS;
export const USER_REGS_SIZE = arch.USER_REGS_SIZE;
export const userRegOffset = arch.userRegOffset;
/** The syscall instruction, and the registers of a syscall's number, result and arguments. */
export const SYSCALL_INSN = arch.SYSCALL_INSN;
export const SYSCALL_REGS = arch.SYSCALL_REGS;

export type SyscallName = keyof typeof SYS;
export type UserRegName = (typeof USER_REGS_FIELDS)[number];
