// Idle-time warming of the backings' frames, the engine's part: which frames are worth
// reading before a copy writes them (backing/frame-warmer.ts says why), published to the
// checksum worker, which reads them when it has nothing else to do, below the program's
// priority (src/checksum-thread/idle-warming.ts). The engine owns the frame allocators, so
// it says how far: the frames handed out (the program's pages' own frames, which a first
// snapshot copies into) and, after a snapshot, as many more as that snapshot copied pages
// (or took frames, if more), with their space reserved: the next snapshot needs a new frame
// for each page the program rewrote of those the last one holds, and the allocator hands
// fresh frames out in order.
//
// Held off while a snapshot or --keep's deletion is under way (the worker's CRCs and sync
// come first). Regular files only (the worker's reason). Off with --max-resident — reading
// the frames of evicted pages would bring back into memory what eviction took out — and
// with NUMACTLX_WARM_FRAMES=0.
import fs from 'node:fs';
import { WarmGoals } from '../channels/warm-goals.js';
import type { NodeStats } from '../channels/session-stats.js';
import { warmable } from '../../backing/frame-warmer.js';

const DEBUG = process.env.NUMACTLX_DEBUG === '1';

/** What warming needs of a node's store (BackingStore). */
export interface WarmableStore {
  readonly kind: string;
  readonly framesHandedOut: number;
  reserveFramesAhead(count: number): number;
}

export class FrameWarming {
  private readonly goals: WarmGoals;
  /** Per slot: warmed at all. */
  private readonly on: boolean[];
  /** Some slot is: otherwise a turn does nothing (it runs before every poll, faults' too). */
  private readonly any: boolean;
  /** Per slot: frames to warm past those handed out: what the last snapshot copied or took. */
  private readonly ahead: number[];
  /** Per slot: pages the snapshot just committed copied (took), until the turn that ends its work. */
  private copied: number[] | undefined;
  /** Per slot: the frames handed out when the work under way began, or undefined when idle. */
  private before: number[] | undefined;
  /** Per slot: the most frames asked for so far (reserving again only past it). */
  private readonly asked: number[];

  constructor(private readonly stores: readonly WarmableStore[], buffer: SharedArrayBuffer, enabled: boolean) {
    this.goals = new WarmGoals(buffer);
    this.on = stores.map((s) => enabled && warmable(s.kind));
    this.any = this.on.includes(true);
    this.ahead = stores.map(() => 0);
    this.asked = stores.map(() => 0);
  }

  /** Before each poll of the engine loop: `busy` while a snapshot or a deletion is under way. */
  turn(busy: boolean): void {
    if (!this.any) return;
    if (busy) {
      if (this.before) return;
      if (DEBUG) this.say();
      this.before = this.stores.map((s) => s.framesHandedOut);
      this.goals.hold(true);
      return;
    }
    if (this.before) {
      this.stores.forEach((s, i) => { this.ahead[i] = Math.max(0, s.framesHandedOut - this.before![i], this.copied?.[i] ?? 0); });
      this.before = undefined;
      this.copied = undefined;
      this.goals.hold(false);
      if (DEBUG) this.say();
    }
    for (let i = 0; i < this.stores.length; i++) {
      if (!this.on[i]) continue;
      const want = this.stores[i].framesHandedOut + this.ahead[i];
      if (want <= this.asked[i]) continue;
      this.asked[i] = want;
      this.goals.setGoal(i, Math.min(want, this.stores[i].reserveFramesAhead(want)));
    }
  }

  /** A snapshot was committed: `pages` it copied per slot (its records' new_pages). */
  took(pages: number[]): void {
    this.copied = pages;
  }

  /** The nodes' statistics with frames_warmed on the nodes warmed. */
  report(nodes: NodeStats[]): NodeStats[] {
    return nodes.map((n, i) => (this.on[i] ? { ...n, frames_warmed: this.goals.warmed(i) } : n));
  }

  /** With NUMACTLX_DEBUG, at each snapshot's start and end: how far warming had got. */
  private say(): void {
    for (let i = 0; i < this.stores.length; i++) {
      if (!this.on[i]) continue;
      fs.writeSync(2, `numactlx-engine: frames warmed on slot ${i}: ${this.goals.warmed(i)} of ${this.asked[i]} (handed out ${this.stores[i].framesHandedOut}, ahead ${this.ahead[i]})\n`);
    }
  }
}
