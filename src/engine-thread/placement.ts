// Which node a page of a trapped range goes to, under the range's policy — numactl's
// policies extended to virtual nodes (README, "Virtual-node semantics"):
//   bind        the policy's virtual nodes first, in order, while they have room; then
//               its real nodes; a bind with no real node and no room left → SIGBUS
//               (an exhausted NUMA node under MPOL_BIND)
//   preferred,  the virtual nodes while they have room, then ordinary memory
//   preferred-many   (counted as a fallback)
//   interleave  page i of the range goes to nodes[i mod n]; a full virtual node's
//   weighted-   pages fall back to ordinary memory (counted)
//   interleave
// Real-node pages of a trapped range are still served by numactlx (the whole range is
// registered) but are ordinary memory: no frame, not counted on a virtual node.
import {
  MPOL_BIND, MPOL_INTERLEAVE, MPOL_PREFERRED, MPOL_PREFERRED_MANY, MPOL_WEIGHTED_INTERLEAVE,
} from '../sys/mempolicy.js';
import type { PagePolicy } from './ranges.js';

/** A page goes to ordinary memory. */
export const TO_REAL = -1;
/** A page cannot be placed: the faulting thread gets SIGBUS. */
export const TO_SIGBUS = -2;
/** A page goes to ordinary memory because its virtual node is full. */
export const TO_FALLBACK = -3;

export interface NodeRoom {
  /** Slot of virtual node `id` in the engine's table, or -1 for a real node. */
  slotOf(id: number): number;
  hasRoom(slot: number): boolean;
}

const MODE_MASK = 0xff; // strip MPOL_F_* flags

/** The slot (≥ 0) of the virtual node page `pageIndex` of a range goes to, or TO_*. */
export function placePage(policy: PagePolicy, pageIndex: number, room: NodeRoom): number {
  const mode = policy.mode & MODE_MASK;
  const nodes = policy.nodes;
  if (mode === MPOL_INTERLEAVE || mode === MPOL_WEIGHTED_INTERLEAVE) {
    const slot = room.slotOf(nodes[pageIndex % nodes.length]);
    if (slot < 0) return TO_REAL;
    return room.hasRoom(slot) ? slot : TO_FALLBACK;
  }
  let anyReal = false;
  let anyVirtual = false;
  for (const id of nodes) {
    const slot = room.slotOf(id);
    if (slot < 0) { anyReal = true; continue; }
    anyVirtual = true;
    if (room.hasRoom(slot)) return slot;
  }
  if (!anyVirtual) return TO_REAL;
  if (mode === MPOL_BIND) return anyReal ? TO_FALLBACK : TO_SIGBUS;
  if (mode === MPOL_PREFERRED || mode === MPOL_PREFERRED_MANY) return TO_FALLBACK;
  return TO_REAL;
}
