// seccomp(2) and classic BPF, following <linux/seccomp.h>, <linux/filter.h> and
// <linux/bpf_common.h> of Linux 6.1.
//
// numactlx installs its filter inside the program (an injected seccomp(2) whose
// sock_fprog and instructions were written into the program's memory), so this module
// mostly lays bytes out: encodeFilter for the instructions, encodeFprog for the header
// pointing at wherever they were put. seccompSetModeFilter installs in the calling
// thread — only for tests and tools, never in numactlx itself.
import os from 'node:os';
import { koffi, bindSyscall, check, SysError } from './libc.js';
import { SYS } from './arch/index.js';

/** seccomp(2) operations. */
export const SECCOMP_SET_MODE_STRICT = 0;
export const SECCOMP_SET_MODE_FILTER = 1;
export const SECCOMP_GET_ACTION_AVAIL = 2;
export const SECCOMP_GET_NOTIF_SIZES = 3;

/** Flags of SECCOMP_SET_MODE_FILTER. */
export const SECCOMP_FILTER_FLAG = {
  TSYNC: 1 << 0, LOG: 1 << 1, SPEC_ALLOW: 1 << 2, NEW_LISTENER: 1 << 3, TSYNC_ESRCH: 1 << 4,
  WAIT_KILLABLE_RECV: 1 << 5,
} as const;

/** Filter return actions (the high 16 bits; the low 16 are data, e.g. an errno). */
export const SECCOMP_RET = {
  KILL_PROCESS: 0x80000000, KILL_THREAD: 0x00000000, TRAP: 0x00030000, ERRNO: 0x00050000,
  USER_NOTIF: 0x7fc00000, TRACE: 0x7ff00000, LOG: 0x7ffc0000, ALLOW: 0x7fff0000,
} as const;
export const SECCOMP_RET_ACTION_FULL = 0xffff0000;
export const SECCOMP_RET_DATA = 0x0000ffff;

/** `struct seccomp_data`, what a filter loads from (BPF_ABS offsets). */
export const SeccompData = koffi.struct({
  nr: 'int', arch: 'uint32_t', instruction_pointer: 'uint64_t', args: koffi.array('uint64_t', 6),
});
export const SECCOMP_DATA = {
  nr: koffi.offsetof(SeccompData, 'nr'),
  arch: koffi.offsetof(SeccompData, 'arch'),
  instructionPointer: koffi.offsetof(SeccompData, 'instruction_pointer'),
  /** Offset of args[i]'s low 32 bits (x86_64 is little-endian; the high half is +4). */
  arg: (i: number): number => koffi.offsetof(SeccompData, 'args') + 8 * i,
} as const;

/** `struct sock_filter` (8 bytes) and `struct sock_fprog` (16 bytes on x86_64). */
export const SockFilter = koffi.struct({ code: 'uint16_t', jt: 'uint8_t', jf: 'uint8_t', k: 'uint32_t' });
export const SockFprog = koffi.struct({ len: 'unsigned short', filter: 'void *' });
export const SOCK_FILTER_SIZE = koffi.sizeof(SockFilter);
export const SOCK_FPROG_SIZE = koffi.sizeof(SockFprog);
export const BPF_MAXINSNS = 4096;

// Instruction classes, sizes, modes, ALU/JMP operations and sources (<linux/bpf_common.h>),
// and the RET/MISC fields (<linux/filter.h>).
export const BPF_LD = 0x00;
export const BPF_LDX = 0x01;
export const BPF_ST = 0x02;
export const BPF_STX = 0x03;
export const BPF_ALU = 0x04;
export const BPF_JMP = 0x05;
export const BPF_RET = 0x06;
export const BPF_MISC = 0x07;
export const BPF_W = 0x00;
export const BPF_H = 0x08;
export const BPF_B = 0x10;
export const BPF_IMM = 0x00;
export const BPF_ABS = 0x20;
export const BPF_IND = 0x40;
export const BPF_MEM = 0x60;
export const BPF_LEN = 0x80;
export const BPF_MSH = 0xa0;
export const BPF_ADD = 0x00;
export const BPF_SUB = 0x10;
export const BPF_MUL = 0x20;
export const BPF_DIV = 0x30;
export const BPF_OR = 0x40;
export const BPF_AND = 0x50;
export const BPF_LSH = 0x60;
export const BPF_RSH = 0x70;
export const BPF_NEG = 0x80;
export const BPF_MOD = 0x90;
export const BPF_XOR = 0xa0;
export const BPF_JA = 0x00;
export const BPF_JEQ = 0x10;
export const BPF_JGT = 0x20;
export const BPF_JGE = 0x30;
export const BPF_JSET = 0x40;
export const BPF_K = 0x00;
export const BPF_X = 0x08;
export const BPF_A = 0x10;
export const BPF_TAX = 0x00;
export const BPF_TXA = 0x80;

export interface SockFilterInsn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

/** BPF_STMT(code, k). */
export function bpfStmt(code: number, k: number): SockFilterInsn {
  return { code, jt: 0, jf: 0, k: k >>> 0 };
}

/** BPF_JUMP(code, k, jt, jf): jt/jf are forward offsets (0–255) from the next instruction. */
export function bpfJump(code: number, k: number, jt: number, jf: number): SockFilterInsn {
  if (jt < 0 || jt > 255 || jf < 0 || jf > 255) throw new RangeError(`BPF jump offsets ${jt}/${jf} out of 0..255`);
  return { code, jt, jf, k: k >>> 0 };
}

/** The instructions as an array of struct sock_filter. */
export function encodeFilter(insns: readonly SockFilterInsn[]): Buffer {
  if (insns.length === 0 || insns.length > BPF_MAXINSNS) {
    throw new RangeError(`a BPF program has 1..${BPF_MAXINSNS} instructions, not ${insns.length}`);
  }
  const buf = Buffer.alloc(insns.length * SOCK_FILTER_SIZE);
  insns.forEach((insn, i) => {
    const o = i * SOCK_FILTER_SIZE;
    buf.writeUInt16LE(insn.code, o);
    buf.writeUInt8(insn.jt, o + 2);
    buf.writeUInt8(insn.jf, o + 3);
    buf.writeUInt32LE(insn.k >>> 0, o + 4);
  });
  return buf;
}

/**
 * A struct sock_fprog for `len` instructions at `filterAddr` — an address in whichever
 * process will call seccomp(2) with it.
 */
export function encodeFprog(len: number, filterAddr: bigint): Buffer {
  const buf = Buffer.alloc(SOCK_FPROG_SIZE);
  buf.writeUInt16LE(len, koffi.offsetof(SockFprog, 'len'));
  buf.writeBigUInt64LE(filterAddr, koffi.offsetof(SockFprog, 'filter'));
  return buf;
}

const seccompRaw = bindSyscall(['unsigned int', 'unsigned int', 'void *']);

/**
 * Installs a filter on the calling thread (all threads with FILTER_FLAG.TSYNC). Needs
 * no_new_privs or CAP_SYS_ADMIN. The kernel copies the program during the call.
 * Returns the syscall's result (a listener fd with NEW_LISTENER, else 0).
 */
export function seccompSetModeFilter(flags: number, program: Buffer): number {
  const fprog = encodeFprog(program.byteLength / SOCK_FILTER_SIZE, koffi.address(program));
  return check('seccomp(SECCOMP_SET_MODE_FILTER)', seccompRaw(SYS.seccomp, SECCOMP_SET_MODE_FILTER, flags, fprog));
}

/** SECCOMP_GET_ACTION_AVAIL: whether the kernel knows a RET_* action (no filter installed). */
export function seccompActionAvailable(action: number): boolean {
  const a = Buffer.alloc(4);
  a.writeUInt32LE(action >>> 0, 0);
  if (Number(seccompRaw(SYS.seccomp, SECCOMP_GET_ACTION_AVAIL, 0, a)) === 0) return true;
  const errno = koffi.errno();
  if (errno === os.constants.errno.EOPNOTSUPP) return false; // Node names 95 ENOTSUP
  throw new SysError('seccomp(SECCOMP_GET_ACTION_AVAIL)', errno);
}
