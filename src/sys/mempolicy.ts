// NUMA memory policy: set_mempolicy(2), get_mempolicy(2), mbind(2) through syscall(2)
// (glibc has no wrappers; libnuma's are not used). Constants from <linux/mempolicy.h>,
// Linux 6.9+ for MPOL_WEIGHTED_INTERLEAVE.
// The policy set with set_mempolicy is per thread and inherited by fork/clone: the
// launcher sets it on the thread that spawns the program, as numactl does before exec.
import { SYS } from './arch/index.js';
import { bindSyscall, check } from './libc.js';

export const MPOL_DEFAULT = 0;
export const MPOL_PREFERRED = 1;
export const MPOL_BIND = 2;
export const MPOL_INTERLEAVE = 3;
export const MPOL_LOCAL = 4;
export const MPOL_PREFERRED_MANY = 5;
export const MPOL_WEIGHTED_INTERLEAVE = 6;

/** Mode flags, OR-ed into the mode. */
export const MPOL_F_NUMA_BALANCING = 1 << 13;
export const MPOL_F_RELATIVE_NODES = 1 << 14;
export const MPOL_F_STATIC_NODES = 1 << 15;

/** get_mempolicy flags. */
export const MPOL_F_NODE = 1 << 0;
export const MPOL_F_ADDR = 1 << 1;
export const MPOL_F_MEMS_ALLOWED = 1 << 2;

/** mbind flags. */
export const MPOL_MF_STRICT = 1 << 0;
export const MPOL_MF_MOVE = 1 << 1;
export const MPOL_MF_MOVE_ALL = 1 << 2;

/** Kernel names of the modes, as /proc/PID/numa_maps prints them. */
export const MPOL_NAMES = ['default', 'prefer', 'bind', 'interleave', 'local', 'prefer (many)',
  'weighted interleave'] as const;

/** Bits in the node masks passed to the kernel (MAX_NUMNODES is at most 1024). */
export const NODEMASK_BITS = 1024;

const setMempolicyRaw = bindSyscall(['int', 'void *', 'unsigned long']);
const getMempolicyRaw = bindSyscall(['_Out_ int *', '_Out_ void *', 'unsigned long', 'unsigned long', 'unsigned long']);

/** A kernel nodemask buffer with the given nodes set. */
export function nodemaskBuffer(nodes: Iterable<number>): Buffer {
  const mask = Buffer.alloc(NODEMASK_BITS / 8);
  for (const node of nodes) mask[node >> 3] |= 1 << (node & 7);
  return mask;
}

function nodesOfMask(mask: Buffer): number[] {
  const nodes: number[] = [];
  for (let i = 0; i < NODEMASK_BITS; i++) if (mask[i >> 3] & (1 << (i & 7))) nodes.push(i);
  return nodes;
}

/** set_mempolicy(mode | flags, nodes) for the calling thread. */
export function setMempolicy(mode: number, nodes: Iterable<number>): void {
  const mask = nodemaskBuffer(nodes);
  // maxnode counts bits + 1: the kernel reads maxnode - 1 bits (libnuma passes size + 1).
  check('set_mempolicy', setMempolicyRaw(SYS.set_mempolicy, mode, mask, NODEMASK_BITS + 1));
}

export interface Mempolicy {
  mode: number;
  nodes: number[];
}

/** get_mempolicy of the calling thread (flags 0), or of an address with MPOL_F_ADDR. */
export function getMempolicy(flags = 0, addr = 0n): Mempolicy {
  const mode = new Int32Array(1);
  const mask = Buffer.alloc(NODEMASK_BITS / 8);
  check('get_mempolicy', getMempolicyRaw(SYS.get_mempolicy, mode, mask, NODEMASK_BITS + 1, addr, flags));
  return { mode: mode[0], nodes: nodesOfMask(mask) };
}
