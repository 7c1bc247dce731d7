// The tracer's synchronous calls into the engine (see engine/channel.ts). Each returns
// only when the engine has done it: a range is registered before its thread resumes.
import { TracerChannel, TracerOp } from '../engine/channel.js';
import type { PagePolicy } from '../engine/ranges.js';

export class EngineClient {
  constructor(private readonly channel: TracerChannel) {}

  private put(values: number[], policy?: PagePolicy): void {
    const a = this.channel.args;
    values.forEach((v, i) => { a[i] = v; });
    if (policy) {
      a[values.length] = policy.mode;
      a[values.length + 1] = policy.nodes.length;
      policy.nodes.forEach((n, i) => { a[values.length + 2 + i] = n; });
    }
  }

  addMm(pid: number, uffd: number): number {
    this.put([pid, uffd]);
    return this.channel.call(TracerOp.AddMm);
  }

  register(pid: number, start: bigint, len: bigint, policy: PagePolicy): number {
    this.put([pid, Number(start), Number(len)], policy);
    return this.channel.call(TracerOp.Register);
  }

  setRangePolicy(pid: number, start: bigint, len: bigint, policy: PagePolicy): number {
    this.put([pid, Number(start), Number(len)], policy);
    return this.channel.call(TracerOp.SetRangePolicy);
  }

  setProcessPolicy(pid: number, policy: PagePolicy): number {
    this.put([pid], policy);
    return this.channel.call(TracerOp.SetProcessPolicy);
  }

  /** The policy and node of the page at addr, if it is in a trapped range. */
  queryAddress(pid: number, addr: bigint): { policy: PagePolicy; node: number } | undefined {
    this.put([pid, Number(addr)]);
    if (this.channel.call(TracerOp.QueryAddress) !== 0) return undefined;
    const a = this.channel.args;
    const n = a[1];
    return { policy: { mode: a[0], nodes: Array.from(a.subarray(2, 2 + n)) }, node: a[2 + n] };
  }

  forked(parentPid: number, childPid: number): number {
    this.put([parentPid, childPid]);
    return this.channel.call(TracerOp.Forked);
  }

  sharesMm(parentPid: number, childPid: number): number {
    this.put([parentPid, childPid]);
    return this.channel.call(TracerOp.SharesMm);
  }

  /** Freezes for snapshot `id`; returns the pages frozen (or -errno). */
  freeze(id: number): number {
    this.put([id]);
    return this.channel.call(TracerOp.Freeze);
  }

  setPause(ms: number): void {
    this.put([ms]);
    this.channel.call(TracerOp.SetPause);
  }

  /**
   * pid is about to lose its memory: copy its frozen pages now. `exiting`: at its last
   * thread's exit stop (no later freeze includes it); false at an execve, which may fail.
   */
  exitStop(pid: number, exiting = true): void {
    this.put([pid, exiting ? 1 : 0]);
    this.channel.call(TracerOp.ExitStop);
  }

  /** A thread of pid is exiting: its clear_child_tid word at addr must be writable. */
  threadExit(pid: number, addr: bigint): number {
    this.put([pid, Number(addr)]);
    return this.channel.call(TracerOp.ThreadExit);
  }

  leaveMm(pid: number): number {
    this.put([pid]);
    return this.channel.call(TracerOp.LeaveMm);
  }
}
