// --remap=NODE,PATH[,size=SIZE]: the virtual-node table. A virtual node is a node id
// the machine does not have, backed by a file or a /dev/dax device.
import { PolicyError } from './errors.js';
import { parseSize } from './size.js';
import { machineHasNode, type Topology } from './topology.js';
import { inspectBacking, type BackingTarget } from '../backing/inspect.js';

/** The largest node id the kernel's nodemasks can name (MAX_NUMNODES - 1). */
export const MAX_NODE_ID = 1023;

export interface VirtualNode {
  node: number;
  backing: BackingTarget;
}

export interface RemapSpec {
  node: number;
  path: string;
  size?: bigint;
}

/** Splits one --remap value. The path may contain commas; `,size=` must come last. */
export function parseRemap(value: string): RemapSpec {
  const m = /^([^,]*),(.+?)(?:,size=([^,]*))?$/.exec(value);
  if (!m) throw new PolicyError('expected NODE,PATH[,size=SIZE]');
  if (!/^\d+$/.test(m[1])) throw new PolicyError(`'${m[1]}' is not a node number`);
  const node = Number(m[1]);
  if (node > MAX_NODE_ID) throw new PolicyError(`node ${node} is larger than ${MAX_NODE_ID}`);
  return { node, path: m[2], size: m[3] === undefined ? undefined : parseSize(m[3]) };
}

/** Validates the specs against the machine and each other: the virtual-node table. */
export function buildVirtualNodes(specs: RemapSpec[], topo: Topology): VirtualNode[] {
  const seenNodes = new Set<number>();
  const seenPaths = new Set<string>();
  return specs.map((spec) => {
    if (machineHasNode(topo, spec.node)) {
      throw new PolicyError(`node ${spec.node} is a real node of this machine; a virtual node needs an unused id`);
    }
    if (seenNodes.has(spec.node)) throw new PolicyError(`node ${spec.node} is remapped twice`);
    if (seenPaths.has(spec.path)) throw new PolicyError(`${spec.path} backs two nodes`);
    seenNodes.add(spec.node);
    seenPaths.add(spec.path);
    try {
      return { node: spec.node, backing: inspectBacking(spec.path, spec.size) };
    } catch (err) {
      throw new PolicyError(`${spec.path}: ${(err as Error).message}`, { cause: err });
    }
  });
}
