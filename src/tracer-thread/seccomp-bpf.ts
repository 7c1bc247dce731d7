// Classic BPF as seccomp runs it: a filter program (struct sock_filter[]) over struct
// seccomp_data, with the opcodes and checks of kernel/seccomp.c (seccomp_check_filter,
// and the classic-BPF interpreter's 32-bit registers A and X and its 16 scratch words).
// Pure: the tracer reads the program's filters (filter-verdict.ts) and asks here what
// each would answer to a call it is about to inject.
import { AUDIT_ARCH } from '../sys/arch/index.js';
import {
  BPF_A, BPF_ABS, BPF_ADD, BPF_ALU, BPF_AND, BPF_DIV, BPF_IMM, BPF_JA, BPF_JEQ, BPF_JGE, BPF_JGT, BPF_JMP, BPF_JSET,
  BPF_LD, BPF_LDX, BPF_LEN, BPF_LSH, BPF_MEM, BPF_MISC, BPF_MOD, BPF_MUL, BPF_NEG, BPF_OR, BPF_RET, BPF_RSH, BPF_ST,
  BPF_STX, BPF_SUB, BPF_TAX, BPF_TXA, BPF_W, BPF_X, BPF_XOR, SECCOMP_RET, SECCOMP_RET_ACTION_FULL,
} from '../sys/seccomp.js';

/** One call as a filter sees it (struct seccomp_data, without arch and instruction pointer). */
export interface FilteredCall {
  nr: number;
  /** Up to six arguments; missing ones are 0. */
  args: bigint[];
}

/** struct seccomp_data: nr, arch, instruction_pointer, args[6] — 64 bytes. */
const DATA_BYTES = 64;
const SCRATCH_WORDS = 16; // BPF_MEMWORDS

/** The struct seccomp_data a filter loads from, for `call` made at `ip` (the address after its syscall instruction). */
export function seccompData(call: FilteredCall, ip: bigint): Buffer {
  const data = Buffer.alloc(DATA_BYTES);
  data.writeInt32LE(call.nr, 0);
  data.writeUInt32LE(AUDIT_ARCH, 4);
  data.writeBigUInt64LE(BigInt.asUintN(64, ip), 8);
  for (let i = 0; i < 6; i++) data.writeBigUInt64LE(BigInt.asUintN(64, call.args[i] ?? 0n), 16 + 8 * i);
  return data;
}

/**
 * Runs classic-BPF `program` (struct sock_filter[]) on `data` as seccomp does; returns
 * its 32-bit result (action | data). Throws on an instruction seccomp would not have
 * accepted (the caller then cannot tell: it does not inject).
 */
export function runFilter(program: Buffer, data: Buffer): number {
  const n = program.byteLength / 8;
  const mem = new Uint32Array(SCRATCH_WORDS);
  let a = 0;
  let x = 0;
  for (let pc = 0; pc < n; pc++) {
    const o = pc * 8;
    const code = program.readUInt16LE(o);
    const jt = program.readUInt8(o + 2);
    const jf = program.readUInt8(o + 3);
    const k = program.readUInt32LE(o + 4);
    const cls = code & 0x07;
    const src = code & BPF_X ? x : k;
    switch (cls) {
      case BPF_LD:
        if (code === (BPF_LD | BPF_W | BPF_ABS)) {
          if (k % 4 !== 0 || k >= DATA_BYTES) throw new RangeError(`BPF load at offset ${k} of seccomp_data`);
          a = data.readUInt32LE(k);
        } else if (code === (BPF_LD | BPF_W | BPF_LEN)) a = DATA_BYTES;
        else if (code === (BPF_LD | BPF_IMM)) a = k;
        else if (code === (BPF_LD | BPF_MEM)) a = mem[scratch(k)];
        else throw new RangeError(`BPF opcode 0x${code.toString(16)} at ${pc}`);
        break;
      case BPF_LDX:
        if (code === (BPF_LDX | BPF_W | BPF_LEN)) x = DATA_BYTES;
        else if (code === (BPF_LDX | BPF_IMM)) x = k;
        else if (code === (BPF_LDX | BPF_MEM)) x = mem[scratch(k)];
        else throw new RangeError(`BPF opcode 0x${code.toString(16)} at ${pc}`);
        break;
      case BPF_ST:
        mem[scratch(k)] = a;
        break;
      case BPF_STX:
        mem[scratch(k)] = x;
        break;
      case BPF_ALU:
        a = alu(code & 0xf0, a, src);
        break;
      case BPF_JMP: {
        const op = code & 0xf0;
        if (op === BPF_JA) {
          pc += k;
          break;
        }
        const taken = op === BPF_JEQ ? a === src : op === BPF_JGT ? a > src : op === BPF_JGE ? a >= src
          : op === BPF_JSET ? (a & src) !== 0 : undefined;
        if (taken === undefined) throw new RangeError(`BPF opcode 0x${code.toString(16)} at ${pc}`);
        pc += taken ? jt : jf;
        break;
      }
      case BPF_RET:
        return ((code & 0x18) === BPF_A ? a : k) >>> 0;
      case BPF_MISC:
        if ((code & 0xf8) === BPF_TAX) x = a;
        else if ((code & 0xf8) === BPF_TXA) a = x;
        break;
      default:
        throw new RangeError(`BPF opcode 0x${code.toString(16)} at ${pc}`);
    }
  }
  // seccomp_check_filter refuses a program that can run off its end.
  throw new RangeError('BPF program without a return at its end');
}

function scratch(k: number): number {
  if (k >= SCRATCH_WORDS) throw new RangeError(`BPF scratch word ${k}`);
  return k;
}

/** A 32-bit ALU operation of classic BPF. A division by an X of 0 ends the program with 0 in the kernel: here too. */
function alu(op: number, a: number, v: number): number {
  switch (op) {
    case BPF_ADD: return (a + v) >>> 0;
    case BPF_SUB: return (a - v) >>> 0;
    case BPF_MUL: return Math.imul(a, v) >>> 0;
    case BPF_DIV: if (v === 0) throw new DivideByZero(); return Math.floor(a / v) >>> 0;
    case BPF_MOD: if (v === 0) throw new DivideByZero(); return (a % v) >>> 0;
    case BPF_OR: return (a | v) >>> 0;
    case BPF_AND: return (a & v) >>> 0;
    case BPF_XOR: return (a ^ v) >>> 0;
    case BPF_LSH: return v >= 32 ? 0 : (a << v) >>> 0;
    case BPF_RSH: return v >= 32 ? 0 : a >>> v;
    case BPF_NEG: return (-a) >>> 0;
    default: throw new RangeError(`BPF ALU operation 0x${op.toString(16)}`);
  }
}

class DivideByZero extends Error {}

/** The action of running `program` on `data` (a division by zero is SECCOMP_RET_KILL_THREAD, 0, as in the kernel). */
export function actionOf(program: Buffer, data: Buffer): number {
  try {
    return (runFilter(program, data) & SECCOMP_RET_ACTION_FULL) >>> 0;
  } catch (err) {
    if (err instanceof DivideByZero) return SECCOMP_RET.KILL_THREAD;
    throw err;
  }
}
