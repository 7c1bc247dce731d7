// The trapped memory-placement calls, at their seccomp stop (entry) and, for mmap and
// brk, at the syscall-exit stop that follows PTRACE_SYSCALL:
// - mmap (anonymous, private): runs; at exit the new range is registered when the
//   process policy names a virtual node — before the thread resumes (register.ts);
// - brk: runs; growth of the break is registered the same way;
// - mbind / set_mempolicy naming a virtual node: emulated (the kernel does not know the
//   node: it would say EINVAL) — the policy is remembered, the call returns 0;
// - get_mempolicy: answered from the emulated policy when one applies;
// - ptrace(TRACEME / ATTACH / SEIZE) of a task of the program: refused (ptrace-calls.ts).
// To skip a call at its seccomp stop: orig_rax = -1, rax = the result (the kernel then
// leaves rax alone).
//
// Only a call the kernel would accept is emulated. One it would refuse (a bad mode or
// flag, an unaligned start, a maxnode over the limit, a mask or result pointer it cannot
// read or write) is left to the kernel, which refuses it with its own errno — the
// program sees exactly what it would see on a real node, and the session goes on.
import { getRegs, readReg, setRegs, writeReg } from '../sys/ptrace.js';
import { SYS } from '../sys/arch/index.js';
import os from 'node:os';
import {
  MPOL_F_ADDR, MPOL_F_MEMS_ALLOWED, MPOL_F_NODE, MPOL_F_NUMA_BALANCING, MPOL_F_RELATIVE_NODES, MPOL_F_STATIC_NODES,
  MPOL_MF_MOVE, MPOL_MF_MOVE_ALL, MPOL_MF_STRICT, MPOL_WEIGHTED_INTERLEAVE,
} from '../sys/mempolicy.js';
import type { PagePolicy } from '../../policy/placement.js';
import type { EngineClient } from '../channels/tracer-engine.js';
import { readRemote, writeRemote } from './remote.js';
import { refusePtrace, type PtraceRefusals } from './ptrace-calls.js';
import { noteOwnUserfaultfd } from './own-userfaultfd.js';
import { registerRange } from './register.js';
import type { Proc, Thread } from './state.js';
import { PAGE_SIZE } from '../sys/page.js';

const PAGE = BigInt(PAGE_SIZE);
const { EFAULT, EPERM } = os.constants.errno;
const pageUp = (x: bigint): bigint => (x + PAGE - 1n) & ~(PAGE - 1n);
const isError = (ret: bigint): boolean => ret < 0n && ret > -4096n;
/** Node masks the kernel accepts have at most 1024 bits. */
const MAX_MASK_BITS = 1024n;

export interface SyscallContext {
  engine: EngineClient;
  virtualNodes: ReadonlySet<number>;
  /** Real nodes the program may use, for get_mempolicy(MPOL_F_MEMS_ALLOWED). */
  allowedReal: readonly number[];
  /** The program's ptrace calls on itself (ptrace-calls.ts). */
  ptrace: PtraceRefusals;
  /** The commands told that their own userfaultfd cannot have the node's memory (own-userfaultfd.ts). */
  userfaultfdTold: Set<string>;
}

export type Resume = 'cont' | 'syscall';

/** The kernel refuses a maxnode above this (get_nodes: PAGE_SIZE * BITS_PER_BYTE). */
const MAXNODE_LIMIT = 4096n * 8n;
const MODE_FLAGS = MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES | MPOL_F_NUMA_BALANCING;
const MBIND_FLAGS = MPOL_MF_STRICT | MPOL_MF_MOVE | MPOL_MF_MOVE_ALL;

/** Whether the kernel's sanitize_mpol_flags() accepts `mode` (with its flags). */
function validMode(mode: bigint): boolean {
  if (mode < 0n || mode > 0xffffffffn) return false;
  const m = Number(mode) | 0;
  const flags = m & MODE_FLAGS;
  const base = m & ~MODE_FLAGS;
  if (base < 0 || base > MPOL_WEIGHTED_INTERLEAVE) return false;
  return (flags & (MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES)) !== (MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES);
}

/**
 * The nodes of a user nodemask, or undefined where the kernel's get_nodes() would fail:
 * maxnode over the limit (EINVAL), bits set past MAX_MASK_BITS (EINVAL), a mask it
 * cannot read (EFAULT).
 */
function readNodemask(pid: number, addr: bigint, maxnode: bigint): number[] | undefined {
  if (addr === 0n || maxnode <= 1n) return [];
  if (maxnode - 1n > MAXNODE_LIMIT) return undefined;
  const bits = maxnode - 1n;
  const bytes = Number(((bits + 63n) / 64n) * 8n);
  let mask: Buffer;
  try {
    mask = readRemote(pid, addr, bytes);
  } catch {
    return undefined;
  }
  const nodes: number[] = [];
  for (let i = 0; i < Number(bits); i++) {
    if (!(mask[i >> 3] & (1 << (i & 7)))) continue;
    if (BigInt(i) >= MAX_MASK_BITS) return undefined;
    nodes.push(i);
  }
  return nodes;
}

/** Writes a nodemask into the program; false where the kernel's copy_to_user would fail. */
function writeNodemask(pid: number, addr: bigint, maxnode: bigint, nodes: readonly number[]): boolean {
  if (addr === 0n || maxnode <= 1n) return true;
  const bits = maxnode - 1n < MAX_MASK_BITS ? maxnode - 1n : MAX_MASK_BITS;
  const mask = Buffer.alloc(Number(((bits + 63n) / 64n) * 8n));
  for (const n of nodes) if (BigInt(n) < bits) mask[n >> 3] |= 1 << (n & 7);
  try {
    writeRemote(pid, addr, mask);
    return true;
  } catch {
    return false;
  }
}

function skip(tid: number, regs: Buffer, result: bigint): void {
  writeReg(regs, 'orig_rax', -1n);
  writeReg(regs, 'rax', result);
  setRegs(tid, regs);
}

const namesVirtual = (nodes: readonly number[], ctx: SyscallContext): boolean => nodes.some((n) => ctx.virtualNodes.has(n));

/** At a seccomp stop: decides the call's fate; returns how to resume the thread. */
export function onSeccompStop(thread: Thread, ctx: SyscallContext): Resume {
  const { tid, proc } = thread;
  const regs = getRegs(tid);
  const nr = Number(readReg(regs, 'orig_rax'));
  const arg = (i: number): bigint => readReg(regs, (['rdi', 'rsi', 'rdx', 'r10', 'r8', 'r9'] as const)[i]);
  switch (nr) {
    case SYS.mmap:
      // Nothing to register without a policy naming a virtual node: no exit stop either.
      if (!proc.policy) return 'cont';
      thread.pending = { kind: 'mmap', len: pageUp(arg(1)) };
      return 'syscall';
    case SYS.brk: {
      // A break given back (malloc's trim) or left as it is creates nothing to register:
      // no exit stop (≈ 40 µs less). The kernel does what it is asked then — but a break
      // below start_brk, which leaves it as it was (a shrink can also fail for want of
      // memory to split a VMA: the break is then lower here than in the kernel, and its
      // next growth registers a piece again, which UFFDIO_REGISTER and the engine take).
      const wanted = arg(0);
      if (proc.startBrk > 0n && wanted <= proc.brk) {
        if (wanted >= proc.startBrk) proc.brk = wanted;
        return 'cont';
      }
      thread.pending = { kind: 'brk' };
      return 'syscall';
    }
    case SYS.mbind: {
      const [start, len, mode] = [arg(0), pageUp(arg(1)), arg(2)];
      const nodes = readNodemask(proc.pid, arg(3), arg(4));
      if (nodes === undefined || !namesVirtual(nodes, ctx)) return 'cont';
      const valid = validMode(mode) && (arg(5) & ~BigInt(MBIND_FLAGS)) === 0n && (start & (PAGE - 1n)) === 0n
        && start + len >= start && len >= arg(1);
      if (!valid) return 'cont'; // the kernel refuses it: EINVAL
      const policy: PagePolicy = { mode: Number(mode), nodes };
      skip(tid, regs, BigInt(ctx.engine.setRangePolicy(proc.pid, start, len, policy)));
      return 'cont';
    }
    case SYS.set_mempolicy: {
      const nodes = readNodemask(proc.pid, arg(1), arg(2));
      // Refused by the kernel (EFAULT, EINVAL): the policy in force does not change.
      if (nodes === undefined || !validMode(arg(0))) return 'cont';
      if (!namesVirtual(nodes, ctx)) {
        proc.policy = undefined;
        return 'cont';
      }
      proc.policy = { mode: Number(arg(0)), nodes };
      ctx.engine.setProcessPolicy(proc.pid, proc.policy);
      skip(tid, regs, 0n);
      return 'cont';
    }
    case SYS.get_mempolicy:
      return getMempolicy(tid, proc, regs, arg, ctx);
    case SYS.ptrace:
      if (refusePtrace(proc.pid, Number(arg(0)), Number(BigInt.asIntN(32, arg(1))), ctx.ptrace)) skip(tid, regs, -BigInt(EPERM));
      return 'cont';
    case SYS.userfaultfd:
      noteOwnUserfaultfd(proc.pid, ctx.userfaultfdTold);
      return 'cont';
    case SYS.execve:
    case SYS.execveat:
      // A successful exec drops the process's memory with no exit stop: the pages a
      // snapshot froze and has not copied yet are copied now (early is harmless: a
      // frozen page is copied before any write to it). A freeze between here and the
      // exec is handled by the tracer (Tracer.freeze leaves the old image out).
      ctx.engine.exitStop(proc.pid, false);
      thread.execEntered = true;
      return 'cont';
    default:
      return 'cont';
  }
}

function getMempolicy(tid: number, proc: Proc, regs: Buffer, arg: (i: number) => bigint, ctx: SyscallContext): Resume {
  const [modePtr, maskPtr, maxnode, addr, flags] = [arg(0), arg(1), arg(2), arg(3), Number(arg(4))];
  if (maxnode - 1n > MAXNODE_LIMIT && maskPtr !== 0n) return 'cont'; // the kernel: EINVAL
  if (flags & MPOL_F_MEMS_ALLOWED) {
    const ok = writeNodemask(proc.pid, maskPtr, maxnode, [...ctx.allowedReal, ...ctx.virtualNodes]);
    skip(tid, regs, ok ? 0n : -BigInt(EFAULT));
    return 'cont';
  }
  let policy: PagePolicy | undefined;
  let node: number | undefined;
  if (flags & MPOL_F_ADDR) {
    // The engine knows every trapped range's policy and where each page went.
    const found = ctx.engine.queryAddress(proc.pid, addr);
    if (!found || !namesVirtual(found.policy.nodes, ctx)) return 'cont';
    policy = found.policy;
    node = found.node;
  } else {
    policy = proc.policy;
  }
  if (!policy) return 'cont';
  const firstVirtual = policy.nodes.find((n) => ctx.virtualNodes.has(n)) ?? policy.nodes[0];
  const mode = (flags & MPOL_F_NODE) ? (node !== undefined && node >= 0 ? node : firstVirtual) : policy.mode;
  let ok = true;
  if (modePtr !== 0n) {
    const b = Buffer.alloc(4);
    b.writeInt32LE(mode);
    try {
      writeRemote(proc.pid, modePtr, b);
    } catch {
      ok = false;
    }
  }
  if (ok && !(flags & MPOL_F_NODE)) ok = writeNodemask(proc.pid, maskPtr, maxnode, policy.nodes);
  skip(tid, regs, ok ? 0n : -BigInt(EFAULT));
  return 'cont';
}

/** At the syscall-exit stop of a trapped mmap/brk: registers what it created. */
export function onSyscallExit(thread: Thread, ctx: SyscallContext): void {
  const pending = thread.pending;
  thread.pending = undefined;
  if (!pending || pending.kind === 'exec') return;
  const { proc } = thread;
  const ret = BigInt.asIntN(64, readReg(getRegs(thread.tid), 'rax'));
  if (isError(ret)) return;
  if (pending.kind === 'mmap') {
    if (proc.policy) registerRange(proc, ctx.engine, ret, pending.len, proc.policy);
    return;
  }
  const from = pageUp(proc.brk);
  const to = pageUp(ret);
  if (to > from && proc.policy) registerRange(proc, ctx.engine, from, to - from, proc.policy);
  proc.brk = ret;
}
