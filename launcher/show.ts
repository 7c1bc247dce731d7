// --show: numactl's report of the policy a program would run with (numactl.c show()),
// read back from the kernel after applying the real-node part to this thread, with
// the virtual nodes overlaid. numactlx exits right after, so changing the main
// thread's policy and affinity here is harmless.
import fs from 'node:fs';
import { getMempolicy, setMempolicy, MPOL_F_NODE, MPOL_F_NUMA_BALANCING } from '../src/sys/mempolicy.js';
import { schedGetaffinity, schedSetaffinity } from '../src/sys/sched.js';
import {
  kernelPolicy, MODE_NUMBER, NUMACTL_POLICY_NAMES, virtualNodesOf, type Placement,
} from '../policy/placement.js';
import type { Topology } from '../policy/topology.js';
import { formatMB } from '../policy/size.js';

const mask = (name: string, ids: readonly number[]): string =>
  `${name}: ${[...ids].sort((a, b) => a - b).map((id) => `${id} `).join('')}`;

function policyName(mode: number): string {
  return NUMACTL_POLICY_NAMES[mode] ?? `[${mode}]`;
}

/** The --show report for a placement (the policy options before --show). */
export function showReport(placement: Placement, policyGiven: boolean, topo: Topology): string {
  const { memory, virtualNodes } = placement;
  const virtualInPolicy = virtualNodesOf(memory, virtualNodes).length > 0;
  const real = kernelPolicy(memory, virtualNodes);
  if (policyGiven && !virtualInPolicy) {
    setMempolicy(MODE_NUMBER[real.mode] | (real.balancing ? MPOL_F_NUMA_BALANCING : 0), real.nodes);
  }
  if (placement.cpus) schedSetaffinity(0, placement.cpus);

  const kernel = getMempolicy();
  // The overlay: a policy naming a virtual node is numactlx's, not the kernel's.
  const mode = virtualInPolicy ? MODE_NUMBER[memory.mode] : kernel.mode;
  const nodes = virtualInPolicy ? memory.nodes : kernel.nodes;
  let next = nodes[0] ?? 0;
  if (!virtualInPolicy) {
    try { next = getMempolicy(MPOL_F_NODE).mode; } catch { next = 0; }
  }
  const affinity = schedGetaffinity(0);
  const runNodes = topo.nodes.filter((n) => topo.allowedNodes.includes(n.id) && n.cpus.some((c) => affinity.includes(c)))
    .map((n) => n.id);
  const allNodes = [...topo.allowedNodes, ...virtualNodes.map((v) => v.node)];

  const physcpubindLine = mask('physcpubind', affinity);
  const lines = [`policy: ${policyName(mode)}`];
  switch (mode) {
    case MODE_NUMBER.preferred: lines.push(`preferred node: ${nodes[0] ?? 0}`); break;
    case MODE_NUMBER.default: lines.push('preferred node: current'); break;
    case MODE_NUMBER.interleave:
    case MODE_NUMBER['weighted-interleave']: lines.push(`preferred node: ${next} (interleave next)`); break;
    case MODE_NUMBER.bind: lines.push(`preferred node: ${nodes[0]}`); break;
    case MODE_NUMBER['preferred-many']: lines.push(`preferred node: ${next} (preferred-many)`); break;
    // numactl prints no newline for other modes (local, or a mode with flags such as
    // bind|MPOL_F_NUMA_BALANCING): the next line continues this one. Kept for parity.
    default: lines.push(`preferred node: ${physcpubindLine}`);
  }
  if (mode === MODE_NUMBER.interleave || mode === MODE_NUMBER['weighted-interleave']) {
    lines.push(mask('interleavemask', nodes));
    if (mode === MODE_NUMBER['weighted-interleave']) {
      const weights = nodes.map((n) => {
        try {
          return ` ${fs.readFileSync(`/sys/kernel/mm/mempolicy/weighted_interleave/node${n}`, 'utf8').trim()}`;
        } catch {
          return '';
        }
      });
      lines.push(`interleaveweights:${weights.join('')}`);
    }
    lines.push(`interleavenode: ${next}`);
  }
  if (!lines[lines.length - 1].endsWith(physcpubindLine)) lines.push(physcpubindLine);
  lines.push(mask('cpubind', runNodes));
  lines.push(mask('nodebind', runNodes));
  lines.push(mask('membind', mode === MODE_NUMBER.bind ? nodes : allNodes));
  // libnuma's numa_preferred_many() returns whatever mask get_mempolicy filled in,
  // whatever the mode: the policy's nodes.
  lines.push(mask('preferred', nodes));
  for (const v of virtualNodes) {
    lines.push(`virtual node ${v.node}: ${v.backing.path} (${v.backing.kind}, ${formatMB(v.backing.size)})`);
  }
  return `${lines.join('\n')}\n`;
}
