// Eviction's rules for faults (--max-resident), apart from its rounds (eviction.ts): when
// a fault on a node at its resident limit waits for a round to make room, and how many
// pages a fault may place. The rounds set what these rules read: when a node is let over
// its limit (letOver: no victim found, a stop that drops nothing, a request the tracer
// does not take), and the round in progress.
import type { EvictChannel } from '../channels/evict-request.js';
import type { EvictionStats } from '../channels/session-stats.js';
import type { EvictionRound } from './eviction-round.js';
import type { Mm } from './engine.js';

/** A fault waits this long at most, then is served one page past the limit: a thread faulting inside
 * the kernel cannot stop until served, and the round's stop waits for it. */
const MAX_WAIT_MS = 50;

export class FaultWaits {
  /** Per node (slot): until when faults do not wait, the node let over its limit (performance.now()). */
  private readonly letOverUntil: number[];
  private readonly waitingSince = new Map<number, number>(); // a waiting fault's page → when it first waited

  /** `limits`: per node (slot) the most pages it may keep in the program's memory, 0 for none. */
  constructor(private readonly limits: number[], private readonly resident: (slot: number) => number,
    private readonly channel: EvictChannel, private readonly stats: (slot: number) => EvictionStats) {
    this.letOverUntil = limits.map(() => 0);
  }

  /** Faults on node `slot` stop waiting for `ms`: the node may go over its limit meanwhile. */
  letOver(slot: number, ms: number): void {
    this.letOverUntil[slot] = performance.now() + ms;
  }

  isLetOver(slot: number, now: number): boolean {
    return now < this.letOverUntil[slot];
  }

  /** A round ended: every fault still waiting starts its MAX_WAIT_MS anew. */
  roundEnded(): void {
    this.waitingSince.clear();
  }

  /** Whether a fault at `addr` of `mm` on node `slot` waits for room (queued as a retry). */
  mustWait(slot: number, mm: Mm, addr: number, isRetry: boolean, round: EvictionRound | undefined): boolean {
    const limit = this.limits[slot];
    if (!limit || this.resident(slot) < limit) return false;
    const now = performance.now();
    if (this.isLetOver(slot, now)) return false;
    // While the tracer stops threads nothing waits (evict-request.ts: a thread faulting inside
    // the kernel cannot stop until served); during a drop only the injected thread runs and
    // must not wait, and a retry (another thread's fault from before the stop) waits for the
    // round's end.
    if (this.channel.stopping) return false;
    if (round?.mm === mm && round.phase === 'dropping') return isRetry;
    const since = this.waitingSince.get(addr);
    if (since === undefined) this.waitingSince.set(addr, now);
    else if (now - since > MAX_WAIT_MS) { this.waitingSince.delete(addr); return false; }
    if (!isRetry) this.stats(slot).fault_waits++;
    return true;
  }

  /** The pages a fault on node `slot` may place: the room left under its limit, at least one. */
  room(slot: number): number {
    const limit = this.limits[slot];
    return limit ? Math.max(1, limit - this.resident(slot)) : Infinity;
  }
}
