// Whether a program's own seccomp filters let the calls numactlx injects into it run, and
// how those calls get past filters that would not.
//
// numactlx makes calls inside the program with ptrace (its userfaultfd at an exec, the
// drop of an eviction round). A sandbox's filter (bubblewrap, systemd's
// SystemCallFilter=, Chrome's renderers) applies to them as to the program's own calls, and
// a whitelist kills the process for a call it does not list (SIGSYS). Where the tracer may
// read the filters (PTRACE_SECCOMP_GET_FILTER: root, and numactlx itself under no filter),
// each one is run here on the calls about to be injected, as the kernel would run it
// (classic BPF over struct seccomp_data, the checks of kernel/seccomp.c
// seccomp_check_filter): where every filter says ALLOW or LOG the calls are made as they
// are. Where one would not (a whitelist without process_madvise), the injected calls alone
// are let past them, CRIU's way: PTRACE_O_SUSPEND_SECCOMP set on the stopped thread for
// those calls, its options put back before it runs its own code again — the program's own
// calls stay filtered. Where they cannot be read (not root), a process with a filter of its
// own gets none (the caller says so).
//
// Filters only accumulate (none is ever removed), so a verdict holds until the process
// installs another; the callers ask at each injection, which costs a few ptrace calls.
import { AUDIT_ARCH } from '../sys/arch/index.js';
import { getRegs, PTRACE_O, readReg, seccompFilter, setOptions } from '../sys/ptrace.js';
import { hasOwnSeccompFilter } from '../sys/procfs.js';
import {
  BPF_A, BPF_ABS, BPF_ADD, BPF_ALU, BPF_AND, BPF_DIV, BPF_IMM, BPF_JA, BPF_JEQ, BPF_JGE, BPF_JGT, BPF_JMP, BPF_JSET,
  BPF_LD, BPF_LDX, BPF_LEN, BPF_LSH, BPF_MEM, BPF_MISC, BPF_MOD, BPF_MUL, BPF_NEG, BPF_OR, BPF_RET, BPF_RSH, BPF_ST,
  BPF_STX, BPF_SUB, BPF_TAX, BPF_TXA, BPF_W, BPF_X, BPF_XOR, SECCOMP_RET, SECCOMP_RET_ACTION_FULL,
} from '../sys/seccomp.js';
import { memoryTrapFilter } from './seccomp-filter.js';
import { TRACEE_OPTIONS } from './start-program.js';
import { isEsrch } from './task-gone.js';
import { killIfAlive } from '../sys/signal.js';

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
function actionOf(program: Buffer, data: Buffer): number {
  try {
    return (runFilter(program, data) & SECCOMP_RET_ACTION_FULL) >>> 0;
  } catch (err) {
    if (err instanceof DivideByZero) return SECCOMP_RET.KILL_THREAD;
    throw err;
  }
}

/** numactlx's own filter as the kernel hands it back (encoded once): skipped, as a call it traps stops in numactlx itself (inject.ts). */
let ownFilter: Buffer | undefined;

/** What the filters say of a set of calls: all run; one would not; or they cannot be read or run. */
type FilterVerdict = 'allow' | 'refuse' | 'unknown';

/** Said after "its filter could kill it for …" when the verdict is unknown. */
export const UNREADABLE_FILTER = 'only root may read the filter to know';

/**
 * Whether every seccomp filter of stopped thread `tid` but numactlx's own lets each of
 * `calls`, injected at the thread's instruction pointer, run (ALLOW or LOG): 'allow';
 * 'refuse' when one would not; 'unknown' when the filters cannot be read or run (not
 * root, numactlx itself under a filter, a kernel without PTRACE_SECCOMP_GET_FILTER).
 */
function filterVerdict(tid: number, calls: FilteredCall[]): FilterVerdict {
  let ip: bigint;
  const ours = ownFilter ??= memoryTrapFilter();
  try {
    // The injected syscall instruction is put at the thread's rip (inject.ts): the kernel sees rip + 2.
    ip = readReg(getRegs(tid), 'rip') + 2n;
    for (let index = 0; ; index++) {
      const program = seccompFilter(tid, index);
      if (!program) return 'allow';
      if (program.equals(ours)) continue;
      for (const call of calls) {
        const action = actionOf(program, seccompData(call, ip));
        if (action !== SECCOMP_RET.ALLOW && action !== SECCOMP_RET.LOG) return 'refuse';
      }
    }
  } catch {
    return 'unknown';
  }
}

/** How injected calls get past a process's own filters (passFilters). */
export type FilterPass = 'none' | 'suspended' | 'refused' | 'unreadable';

/**
 * Before calls are injected into stopped thread `tid` of process `pid`: 'none' when
 * nothing stands in their way (no filter of its own, or every filter lets `calls` run);
 * 'suspended' when a filter would not and the thread's filters are suspended now
 * (PTRACE_O_SUSPEND_SECCOMP: the caller calls resumeFilters before the thread runs its own
 * code again); 'refused' when they would not and cannot be suspended; 'unreadable' when
 * they cannot be read (UNREADABLE_FILTER says why).
 */
export function passFilters(pid: number, tid: number, calls: FilteredCall[]): FilterPass {
  if (!hasOwnSeccompFilter(pid)) return 'none';
  const verdict = filterVerdict(tid, calls);
  if (verdict === 'allow') return 'none';
  if (verdict === 'unknown') return 'unreadable';
  try {
    setOptions(tid, TRACEE_OPTIONS | PTRACE_O.SUSPEND_SECCOMP);
    return 'suspended';
  } catch {
    return 'refused';
  }
}

/**
 * Thread `tid`'s filters apply again (after passFilters said 'suspended'). Nothing if it
 * is gone; if they cannot be put back on a live thread, its process is killed rather than
 * left to run past its sandbox.
 */
export function resumeFilters(tid: number): void {
  try {
    setOptions(tid, TRACEE_OPTIONS);
  } catch (err) {
    if (!isEsrch(err)) killIfAlive(tid);
  }
}
