// --remap=NODE,PATH[,size=SIZE][,resident=SIZE]: the virtual-node table. A virtual node is
// a node id the machine does not have, backed by a file or a /dev/dax device. `resident=`
// (or --max-resident for every node without its own) is the most of the node's pages kept
// in the program's memory: past it, pages are evicted to the backing.
import fs from 'node:fs';
import path from 'node:path';
import { PolicyError } from './errors.js';
import { formatBytes, parseSize } from './size.js';
import { machineHasNode, type Topology } from './topology.js';
import { inspectBacking, type BackingTarget } from '../backing/inspect.js';

/** The largest node id the kernel's nodemasks can name (MAX_NUMNODES - 1). */
export const MAX_NODE_ID = 1023;

export interface VirtualNode {
  node: number;
  backing: BackingTarget;
  /** The most bytes of the node's pages in the program's memory (a multiple of 4 KiB), if limited. */
  maxResident?: bigint;
}

export interface RemapSpec {
  node: number;
  path: string;
  size?: bigint;
  resident?: bigint;
}

/** The smallest resident limit: below it a round of eviction would hardly leave room for one fault-ahead. */
export const MIN_RESIDENT = 2n << 20n;

/** Splits one --remap value. The path may contain commas; `,size=` and `,resident=` come last. */
export function parseRemap(value: string): RemapSpec {
  const m = /^([^,]*),(.+?)((?:,(?:size|resident)=[^,]*)*)$/.exec(value);
  if (!m) throw new PolicyError('expected NODE,PATH[,size=SIZE][,resident=SIZE]');
  if (!/^\d+$/.test(m[1])) throw new PolicyError(`'${m[1]}' is not a node number`);
  const node = Number(m[1]);
  if (node > MAX_NODE_ID) throw new PolicyError(`node ${node} is larger than ${MAX_NODE_ID}`);
  const spec: RemapSpec = { node, path: m[2] };
  for (const opt of m[3].split(',').slice(1)) {
    const [key, text] = opt.split('=') as ['size' | 'resident', string];
    if (spec[key] !== undefined) throw new PolicyError(`${key}= given twice`);
    spec[key] = parseSize(text);
  }
  return spec;
}

/** Checks a resident limit against the node's size; the limit in whole pages. */
export function checkResident(limit: bigint, nodeSize: bigint, what: string): bigint {
  if (limit < MIN_RESIDENT) throw new PolicyError(`${what} is below the smallest limit, ${formatBytes(Number(MIN_RESIDENT))}`);
  if (limit > nodeSize) throw new PolicyError(`${what} is larger than the node (${formatBytes(Number(nodeSize))})`);
  return limit - (limit % 4096n);
}

/** What names one file whatever its spelling: device and inode when it exists, else its absolute path. */
function fileKey(file: string): string {
  try {
    const st = fs.statSync(file);
    return `${st.dev}:${st.ino}`;
  } catch {
    return path.resolve(file);
  }
}

/**
 * Validates the specs against the machine and each other: the virtual-node table.
 * `maxResident`: --max-resident, for every node without a resident= of its own.
 */
export function buildVirtualNodes(specs: RemapSpec[], topo: Topology, maxResident?: bigint): VirtualNode[] {
  const seenNodes = new Set<number>();
  const seenPaths = new Map<string, string>();
  return specs.map((spec) => {
    if (machineHasNode(topo, spec.node)) {
      throw new PolicyError(`node ${spec.node} is a real node of this machine; a virtual node needs an unused id`);
    }
    if (seenNodes.has(spec.node)) throw new PolicyError(`node ${spec.node} is remapped twice`);
    // The same file under two spellings (./a.img and a.img, a hard link): one backing,
    // which one session cannot lock twice — said here, not as "in use by" our own pid.
    const key = fileKey(spec.path);
    const earlier = seenPaths.get(key);
    if (earlier !== undefined) {
      throw new PolicyError(earlier === spec.path ? `${spec.path} backs two nodes` : `${spec.path} backs two nodes (it is ${earlier})`);
    }
    seenNodes.add(spec.node);
    seenPaths.set(key, spec.path);
    let backing: BackingTarget;
    try {
      backing = inspectBacking(spec.path, spec.size);
    } catch (err) {
      throw new PolicyError(`${spec.path}: ${(err as Error).message}`, { cause: err });
    }
    const limit = spec.resident ?? maxResident;
    if (limit === undefined) return { node: spec.node, backing };
    const what = spec.resident !== undefined ? `resident=${formatBytes(Number(limit))} of node ${spec.node}`
      : `--max-resident ${formatBytes(Number(limit))} for node ${spec.node}`;
    return { node: spec.node, backing, maxResident: checkResident(limit, backing.size, what) };
  });
}
