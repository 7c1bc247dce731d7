// --hardware: numactl's inventory (numactl.c hardware()), with the virtual nodes
// added: no CPUs, size = the backing's size, free = what the backing can still take.
// Distances: a virtual node is 10 from itself and one step (10) beyond the machine's
// farthest real distance from every other node — memory behind userfaultfd is the
// farthest memory a program can have.
import type { Topology } from '../policy/topology.js';
import type { VirtualNode } from '../policy/remap.js';
import { formatIdList } from '../policy/idlist.js';
import { formatMB } from '../policy/size.js';
import { nodeCapacity } from '../backing/inspect.js';

interface Row { id: number; cpus: number[]; size: bigint; free: bigint }

function cpuText(cpus: number[], compress: boolean): string {
  if (!compress) return cpus.map((c) => ` ${c}`).join('');
  if (cpus.length === 0) return ' (0)';
  return ` ${formatIdList(cpus).split(',').join(', ')} (${cpus.length})`;
}

// Column width 3, as numactl 2.0.16 (Debian 12) prints (later numactl uses 4).
const col = (n: number | string): string => String(n).padStart(3, ' ');

/** The --hardware report. */
export function hardwareReport(topo: Topology, virtualNodes: readonly VirtualNode[], cpuCompress: boolean): string {
  const rows: Row[] = [
    ...topo.nodes.map((n) => ({ id: n.id, cpus: n.cpus, size: n.memTotal, free: n.memFree })),
    ...virtualNodes.map((v) => {
      const size = nodeCapacity(v.backing);
      return { id: v.node, cpus: [], size, free: v.backing.free < size ? v.backing.free : size };
    }),
  ].sort((a, b) => a.id - b.id);
  const ids = rows.map((r) => r.id);
  const out = [`available: ${rows.length} nodes (${formatIdList(ids)})`];
  for (const r of rows) {
    out.push(`node ${r.id} cpus:${cpuText(r.cpus, cpuCompress)}`);
    out.push(`node ${r.id} size: ${formatMB(r.size)}`);
    out.push(`node ${r.id} free: ${formatMB(r.free)}`);
  }
  const realIds = topo.nodes.map((n) => n.id);
  const maxReal = Math.max(10, ...topo.nodes.flatMap((n) => n.distances));
  const distance = (a: number, b: number): number => {
    if (a === b) return topo.nodes.find((n) => n.id === a)?.distances[realIds.indexOf(a)] ?? 10;
    const na = topo.nodes.find((n) => n.id === a);
    if (na && realIds.includes(b)) return na.distances[realIds.indexOf(b)] ?? 0;
    return maxReal + 10;
  };
  if (topo.nodes.every((n) => n.distances.length === 0)) {
    out.push('No distance information available.');
  } else {
    out.push('node distances:');
    out.push(`node ${ids.map((id) => `${col(id)} `).join('')}`);
    for (const a of ids) out.push(`${col(a)}: ${ids.map((b) => `${col(distance(a, b))} `).join('')}`);
  }
  return `${out.join('\n')}\n`;
}
