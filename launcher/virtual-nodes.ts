// The virtual-node table of a launch: every --remap=NODE,PATH[,size=…][,resident=…], and
// --max-resident SIZE, the resident limit of every virtual node that sets none of its own.
import type { OptionEvent } from './argv.js';
import { SetupError, UsageError } from './errors.js';
import { parseSize } from '../policy/size.js';
import { buildVirtualNodes, parseRemap, type RemapSpec, type VirtualNode } from '../policy/remap.js';
import type { Topology } from '../policy/topology.js';

/** The virtual nodes --remap declares, with their resident limits (--max-resident, resident=). */
export function virtualNodeTable(events: OptionEvent[], topo: Topology): VirtualNode[] {
  // --max-resident SIZE: every virtual node's resident limit (a node's resident= wins).
  let maxResident: bigint | undefined;
  for (const ev of events.filter((e) => e.name === 'max-resident')) {
    try {
      maxResident = parseSize(ev.value ?? '');
    } catch (err) {
      throw new UsageError(`invalid ${ev.spelled} '${ev.value}': ${(err as Error).message}`, { cause: err });
    }
    if (!events.some((e) => e.name === 'remap')) {
      throw new UsageError(`${ev.spelled} needs a virtual node (--remap=NODE,PATH): it limits the memory of virtual nodes`);
    }
  }
  const remaps: RemapSpec[] = events.filter((e) => e.name === 'remap').map((e) => {
    try {
      return parseRemap(e.value ?? '');
    } catch (err) {
      throw new UsageError(`invalid --remap '${e.value}': ${(err as Error).message}`, { cause: err });
    }
  });
  // What the options say is well-formed from here: a backing that is missing, foreign or
  // corrupt, or a size its device refuses, is one line without the usage text.
  try {
    return buildVirtualNodes(remaps, topo, maxResident);
  } catch (err) {
    throw new SetupError(`invalid --remap: ${(err as Error).message}`, { cause: err });
  }
}
