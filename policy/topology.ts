// The machine's real NUMA topology, read the way libnuma reads it: nodes and CPUs
// from /sys/devices/system/{node,cpu}, the task's allowed sets from
// /proc/self/status (Mems_allowed_list, Cpus_allowed_list: the cpuset and the
// affinity numactlx itself was started with).
import fs from 'node:fs';
import path from 'node:path';
import { parseKernelList } from './idlist.js';

export interface NodeInfo {
  id: number;
  cpus: number[];
  /** MemTotal and MemFree of the node in bytes. */
  memTotal: bigint;
  memFree: bigint;
  /** Distance to every node in `Topology.nodes` order, from nodeN/distance. */
  distances: number[];
}

export interface Topology {
  /** Nodes the machine has (node/online), ascending. */
  nodes: NodeInfo[];
  /** Configured CPUs (cpu/possible). */
  cpus: number[];
  /** Nodes this task may allocate on (Mems_allowed_list). */
  allowedNodes: number[];
  /** CPUs this task may run on (Cpus_allowed_list). */
  allowedCpus: number[];
}

function readText(file: string): string {
  return fs.readFileSync(file, 'utf8');
}

function meminfoField(text: string, field: string): bigint {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(text);
  return m ? BigInt(m[1]) * 1024n : 0n;
}

function statusList(status: string, field: string): number[] {
  const m = new RegExp(`^${field}:\\s*(.*)$`, 'm').exec(status);
  return m ? parseKernelList(m[1]) : [];
}

/** Reads the topology. `sysRoot` is '/sys' except in tests. */
export function readTopology(sysRoot = '/sys'): Topology {
  const nodeDir = path.join(sysRoot, 'devices/system/node');
  const ids = fs.existsSync(path.join(nodeDir, 'online'))
    ? parseKernelList(readText(path.join(nodeDir, 'online')))
    : [0];
  const nodes = ids.map((id): NodeInfo => {
    const dir = path.join(nodeDir, `node${id}`);
    const meminfo = fs.existsSync(path.join(dir, 'meminfo')) ? readText(path.join(dir, 'meminfo')) : '';
    const cpulist = fs.existsSync(path.join(dir, 'cpulist')) ? readText(path.join(dir, 'cpulist')) : '';
    const distance = fs.existsSync(path.join(dir, 'distance')) ? readText(path.join(dir, 'distance')) : '';
    return {
      id,
      cpus: parseKernelList(cpulist),
      memTotal: meminfoField(meminfo, 'MemTotal'),
      memFree: meminfoField(meminfo, 'MemFree'),
      distances: distance.trim() === '' ? [] : distance.trim().split(/\s+/).map(Number),
    };
  });
  const cpus = parseKernelList(readText(path.join(sysRoot, 'devices/system/cpu/possible')));
  const status = readText('/proc/self/status');
  const allowedNodes = statusList(status, 'Mems_allowed_list').filter((n) => ids.includes(n));
  const allowedCpus = statusList(status, 'Cpus_allowed_list').filter((c) => cpus.includes(c));
  return { nodes, cpus, allowedNodes, allowedCpus };
}

/** CPUs of the given real nodes (a node without CPUs adds none). */
export function cpusOfNodes(topo: Topology, nodes: readonly number[]): number[] {
  const set = new Set<number>();
  for (const node of topo.nodes) if (nodes.includes(node.id)) for (const cpu of node.cpus) set.add(cpu);
  return [...set].sort((a, b) => a - b);
}

/** Whether the machine has node `id` (online, or with a sysfs directory). */
export function machineHasNode(topo: Topology, id: number, sysRoot = '/sys'): boolean {
  return topo.nodes.some((n) => n.id === id) ||
    fs.existsSync(path.join(sysRoot, 'devices/system/node', `node${id}`));
}
