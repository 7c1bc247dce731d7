// --remap=NODE,PATH[,size=SIZE]: the virtual-node table. A virtual node is a node id
// the machine does not have, backed by a file or a /dev/dax device.
import fs from 'node:fs';
import path from 'node:path';
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

/** What names one file whatever its spelling: device and inode when it exists, else its absolute path. */
function fileKey(file: string): string {
  try {
    const st = fs.statSync(file);
    return `${st.dev}:${st.ino}`;
  } catch {
    return path.resolve(file);
  }
}

/** Validates the specs against the machine and each other: the virtual-node table. */
export function buildVirtualNodes(specs: RemapSpec[], topo: Topology): VirtualNode[] {
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
    try {
      return { node: spec.node, backing: inspectBacking(spec.path, spec.size) };
    } catch (err) {
      throw new PolicyError(`${spec.path}: ${(err as Error).message}`, { cause: err });
    }
  });
}
