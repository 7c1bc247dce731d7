// The placement a program runs with: a memory policy over real and virtual nodes and
// an optional CPU affinity. Real nodes go to the kernel (set_mempolicy); virtual
// nodes are numactlx's own.
import {
  MPOL_BIND, MPOL_DEFAULT, MPOL_INTERLEAVE, MPOL_LOCAL, MPOL_PREFERRED, MPOL_PREFERRED_MANY,
  MPOL_WEIGHTED_INTERLEAVE,
} from '../src/sys/mempolicy.js';
import type { VirtualNode } from './remap.js';

export type PolicyMode = 'default' | 'bind' | 'preferred' | 'preferred-many' | 'interleave'
  | 'weighted-interleave' | 'local';

export interface MemoryPolicy {
  mode: PolicyMode;
  /** Real and virtual nodes, ascending. */
  nodes: number[];
  /** --balancing with --membind: MPOL_F_NUMA_BALANCING. */
  balancing: boolean;
}

export interface Placement {
  memory: MemoryPolicy;
  /** CPUs to bind the program to, when -N/-C was given. */
  cpus?: number[];
  virtualNodes: VirtualNode[];
}

/** The kernel's mode numbers (<linux/mempolicy.h>), in numactl's policy_names order. */
/** A policy as the engine and tracer hold it: the kernel mode number and node ids. */
export interface PagePolicy {
  /** Kernel mode number (MPOL_BIND, MPOL_PREFERRED, MPOL_INTERLEAVE, …). */
  mode: number;
  /** Real and virtual node ids. */
  nodes: number[];
}

export const MODE_NUMBER: Record<PolicyMode, number> = {
  default: MPOL_DEFAULT,
  preferred: MPOL_PREFERRED,
  bind: MPOL_BIND,
  interleave: MPOL_INTERLEAVE,
  local: MPOL_LOCAL,
  'preferred-many': MPOL_PREFERRED_MANY,
  'weighted-interleave': MPOL_WEIGHTED_INTERLEAVE,
};

/** numactl's names for kernel modes, indexed by mode number (util.c policy_names). */
export const NUMACTL_POLICY_NAMES = ['default', 'preferred', 'bind', 'interleave', 'local',
  'preferred-many', 'weighted-interleave'] as const;

export const DEFAULT_POLICY: MemoryPolicy = { mode: 'default', nodes: [], balancing: false };

/** The nodes of a policy that are virtual. */
export function virtualNodesOf(policy: MemoryPolicy, virtualNodes: readonly VirtualNode[]): number[] {
  return policy.nodes.filter((n) => virtualNodes.some((v) => v.node === n));
}

/** The part of a policy the kernel can apply: its real nodes only. */
export function kernelPolicy(policy: MemoryPolicy, virtualNodes: readonly VirtualNode[]): MemoryPolicy {
  const virtual = new Set(virtualNodes.map((v) => v.node));
  return { ...policy, nodes: policy.nodes.filter((n) => !virtual.has(n)) };
}
