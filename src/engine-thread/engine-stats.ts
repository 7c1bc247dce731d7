// The session's statistics as the engine sees them (status, ps, --stats): every node,
// every process on a live mm and those whose mm has ended, the uffd events.
import type { EngineCore } from './engine-core.js';
import type { Mm, VirtualNodeRuntime } from './mm.js';
import { PAGE } from './page-table.js';
import type { NodeStats, ProcessStats, SessionStats } from '../channels/session-stats.js';

/** A node's counters at the start. */
export function newNodeStats(n: VirtualNodeRuntime): NodeStats {
  return {
    node: n.node, backing: n.backing, kind: n.kind, size_bytes: n.store.frameCount * PAGE,
    pages_placed: 0, pages_resident: 0, faults: 0, fault_ahead_pages: 0, pages_fallback: 0,
    sigbus: 0, frames_in_use: 0,
  };
}

/** Every node, every process on a live mm and those whose mm has ended, the uffd events. */
export function sessionStats(e: EngineCore, byPid: ReadonlyMap<number, Mm>, ended: readonly ProcessStats[],
  exeOf: (pid: number) => string): SessionStats {
  const live = [...byPid.entries()].map(([pid, mm]) => ({
    pid, exe: exeOf(pid) || mm.exe, command: mm.command, faults: mm.faults, write_faults: mm.writeFaults, pages_resident: mm.resident,
    ranges: mm.ranges.size,
    ...(e.eviction ? { pages_evicted: mm.eviction.evicted } : {}),
  }));
  const processes = [...live, ...ended.map((p) => ({ ...p, exited: true }))];
  return {
    nodes: e.nodeStats.map((s, i) => ({ ...s, frames_in_use: e.slots[i].store.framesInUse,
      ...(s.eviction ? { eviction: { ...s.eviction } } : {}) })),
    processes,
    events: { ...e.events },
    fault_ahead_pages_window: e.faultAheadPages, dirty_tracking: e.dirtyTracking,
  };
}
