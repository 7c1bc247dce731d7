// How other threads hand the engine work. The engine thread sits in poll(2) over its
// userfaultfds and one eventfd, so commands travel through shared memory and a write
// to that eventfd — a MessagePort would not be read until poll returned to the event
// loop.
//
// The tracer → engine channel, both ends: TracerChannel + EngineClient (the tracer's
// typed calls) and TracerChannelServer (the engine's end, engine-worker.ts serves it).
//
// TracerChannel: synchronous. The tracer writes a command into a SharedArrayBuffer,
// signals the eventfd and blocks in Atomics.wait until the engine has executed it.
// This is what makes "registered before the thread resumes" true: the tracer does not
// resume a tracee until register() has returned. Only the tracer thread uses it.
//
// Layout (Int32 slots, then a Float64 argument area; addresses fit a double exactly:
// user-space addresses are below 2^47):
//   [0] state: 0 idle, 1 request posted, 2 reply ready
//   [1] op  [2] result (0 ok, or -errno)  [3] reserved
//   f64[2..] arguments
import { eventfdSignal } from '../sys/eventfd.js';
import { NoteKind, NOTES_BYTES, TracerNotes } from './tracer-notes.js';
import type { PagePolicy } from '../../policy/placement.js';

export enum TracerOp {
  /** pid, uffd: a new mm (after exec) whose uffd numactlx now holds. */
  AddMm = 1,
  /** pid, start, len, mode, nnodes, nodes…: register a range with a policy. */
  Register = 2,
  /** parentPid, childPid: a fork created a new mm (its uffd came as UFFD_EVENT_FORK). */
  Forked = 3,
  /** parentPid, childPid: the child shares the parent's mm (vfork, CLONE_VM). */
  SharesMm = 4,
  /** pid: the process left its mm (exec or exit). */
  LeaveMm = 5,
  /** pid, start, len, mode, nnodes, nodes…: the program changed a range's policy (mbind). */
  SetRangePolicy = 6,
  /** pid, mode, nnodes, nodes…: the program changed its own policy (set_mempolicy). */
  SetProcessPolicy = 7,
  /** pid, addr → args: mode, nnodes, nodes…, then the page's node (-1 ordinary memory). */
  QueryAddress = 8,
  /**
   * id: every thread is stopped (registers in the doorbell); freeze for snapshot id. → args[0]:
   * how many mms capture forks are to hold (CaptureNext; with NUMACTLX_SNAPSHOT_CAPTURE=auto
   * mostly none, and the tracer then asks nothing more in the pause).
   */
  Freeze = 9,
  /** ms: the pause the tracer measured for the snapshot being copied. */
  SetPause = 10,
  /** pid: the process is at its exit stop: copy its frozen pages while its memory exists. */
  ExitStop = 11,
  /**
   * pid, addr: a thread is at its exit stop and the kernel is about to write 0 to its
   * clear_child_tid word at addr (then FUTEX_WAKE its joiners): make that page writable.
   */
  ThreadExit = 12,
  /**
   * parentPid, childPid, uffd: a fork the kernel reported to no userfaultfd (no
   * UFFD_FEATURE_EVENT_FORK without CAP_SYS_PTRACE); the tracer made the child's uffd
   * while the child is stopped before its first instruction.
   */
  ForkedWithUffd = 13,
  /**
   * pid, n, then n [start, end) pairs (--max-resident): the threads of pid's mm are
   * stopped for an eviction. The engine writes the ranges to drop to the eviction channel
   * (evict-request.ts) and returns how many (or -errno). Nothing in the n ranges is
   * dropped: the kernel or the tracer touches them before the threads resume (the
   * injected thread's rseq area, the stopped threads' stack tops).
   */
  EvictRanges = 14,
  /** pid, bytes dropped (or -errno), pause ms: the drop is done; the threads resume next. */
  EvictDone = 15,
  /**
   * pid: a duplicate of the uffd of pid's mm, for the tracer to register ranges on
   * itself (tracer-notes.ts); the tracer owns it from then on. -errno when pid has none.
   */
  DupUffd = 16,
  /**
   * A freeze with NUMACTLX_SNAPSHOT_CAPTURE=fork|auto, after Freeze: the pid of a process whose
   * mm has pages to copy and no capture fork yet, or 0. The engine then expects that
   * mm's next UFFD_EVENT_FORK to be the capture's (snapshot-capture.ts).
   */
  CaptureNext = 17,
  /**
   * pid, child (or -errno): the capture fork of pid's mm, made by an injected clone and
   * held stopped; -errno when it could not be made (the engine copies that mm's pages
   * now, in the pause).
   */
  Captured = 18,
}

const STATE = 0;
const OP = 1;
const RESULT = 2;
const ARGS_OFFSET = 16; // bytes: after 4 Int32 slots
const NOTES_OFFSET = ARGS_OFFSET + 8 * 1100;
export const CHANNEL_BYTES = NOTES_OFFSET + NOTES_BYTES;

export class TracerChannel {
  private readonly ctl: Int32Array;
  readonly args: Float64Array;
  /** Ranges the tracer registered itself (tracer-notes.ts). */
  readonly notes: TracerNotes;

  constructor(readonly sab: SharedArrayBuffer, private readonly eventFd: number) {
    this.ctl = new Int32Array(sab, 0, 4);
    this.args = new Float64Array(sab, ARGS_OFFSET, 1100);
    this.notes = new TracerNotes(sab, NOTES_OFFSET);
  }

  /** Posts the command whose arguments are already in `args`; returns the engine's result. */
  call(op: TracerOp): number {
    Atomics.store(this.ctl, OP, op);
    Atomics.store(this.ctl, STATE, 1);
    eventfdSignal(this.eventFd);
    while (Atomics.load(this.ctl, STATE) !== 2) Atomics.wait(this.ctl, STATE, 1);
    const result = Atomics.load(this.ctl, RESULT);
    Atomics.store(this.ctl, STATE, 0);
    return result;
  }
}

/** The engine's side of the TracerChannel. */
export class TracerChannelServer {
  private readonly ctl: Int32Array;
  readonly args: Float64Array;
  readonly notes: TracerNotes;

  constructor(sab: SharedArrayBuffer) {
    this.ctl = new Int32Array(sab, 0, 4);
    this.args = new Float64Array(sab, ARGS_OFFSET, 1100);
    this.notes = new TracerNotes(sab, NOTES_OFFSET);
  }

  /** The posted op, or 0 when none is waiting. */
  pending(): number {
    return Atomics.load(this.ctl, STATE) === 1 ? Atomics.load(this.ctl, OP) : 0;
  }

  reply(result: number): void {
    Atomics.store(this.ctl, RESULT, result);
    Atomics.store(this.ctl, STATE, 2);
    Atomics.notify(this.ctl, STATE);
  }
}

/**
 * The tracer's typed calls. Each returns only when the engine has done it: a range is
 * registered before its thread resumes.
 */
export class EngineClient {
  constructor(private readonly channel: TracerChannel) {}

  /** Ranges the tracer registered itself, for the engine to read without being woken. */
  get notes(): TracerNotes {
    return this.channel.notes;
  }

  /** A duplicate of the uffd of pid's mm, the caller's to close; -errno when it has none. */
  dupUffd(pid: number): number {
    this.put([pid]);
    return this.channel.call(TracerOp.DupUffd);
  }

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

  /**
   * parentPid forked childPid (its UFFD_EVENT_FORK has been read): noted, not waited for,
   * unless the engine reads program memory or a snapshot is active (tracer-notes.ts).
   */
  forked(parentPid: number, childPid: number): void {
    if (this.channel.notes.putChild(NoteKind.Forked, parentPid, childPid)) return;
    this.put([parentPid, childPid]);
    this.channel.call(TracerOp.Forked);
  }

  forkedWithUffd(parentPid: number, childPid: number, uffd: number): number {
    this.put([parentPid, childPid, uffd]);
    return this.channel.call(TracerOp.ForkedWithUffd);
  }

  /** childPid (vfork, CLONE_VM) is on parentPid's mm: noted, as forked. */
  sharesMm(parentPid: number, childPid: number): void {
    if (this.channel.notes.putChild(NoteKind.SharesMm, parentPid, childPid)) return;
    this.put([parentPid, childPid]);
    this.channel.call(TracerOp.SharesMm);
  }

  /** Freezes for snapshot `id`; returns the pages frozen (or -errno) and how many capture forks are wanted. */
  freeze(id: number): { frozen: number; forks: number } {
    this.put([id]);
    const frozen = this.channel.call(TracerOp.Freeze);
    return { frozen, forks: frozen >= 0 ? this.channel.args[0] : 0 };
  }

  /** The next process to fork for the freeze's capture (0: none left). */
  captureNext(): number {
    this.put([]);
    return this.channel.call(TracerOp.CaptureNext);
  }

  /** pid's capture fork is `child` (or -errno: none could be made). */
  captured(pid: number, child: number): number {
    this.put([pid, child]);
    return this.channel.call(TracerOp.Captured);
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
    // No snapshot active (tracer-notes.ts): nothing to copy; an exit is only noted.
    if (!exiting && !this.channel.notes.busy) return;
    if (exiting && this.channel.notes.putEnd(NoteKind.Exited, pid)) return;
    this.put([pid, exiting ? 1 : 0]);
    this.channel.call(TracerOp.ExitStop);
  }

  /** Thread tid of pid is exiting: its clear_child_tid word at addr must be writable. */
  threadExit(pid: number, addr: bigint, tid: number): number {
    this.put([pid, Number(addr), tid]);
    return this.channel.call(TracerOp.ThreadExit);
  }

  /**
   * --max-resident: the ranges to drop from pid's stopped mm (in the eviction channel),
   * keeping the pages of `keep` ([start, end) pairs, at most 500); how many, or -errno.
   */
  evictRanges(pid: number, keep: number[]): number {
    this.put([pid, keep.length / 2, ...keep.slice(0, 1000)]);
    return this.channel.call(TracerOp.EvictRanges);
  }

  /** --max-resident: the drop is done (`bytes` dropped, or -errno); `pauseMs` the threads were stopped. */
  evictDone(pid: number, bytes: number, pauseMs: number): void {
    this.put([pid, bytes, pauseMs]);
    this.channel.call(TracerOp.EvictDone);
  }

  leaveMm(pid: number): number {
    this.put([pid]);
    return this.channel.call(TracerOp.LeaveMm);
  }

  /** pid has ended (reaped): as leaveMm, but noted, not waited for (tracer-notes.ts). */
  ended(pid: number): void {
    if (!this.channel.notes.putEnd(NoteKind.LeftMm, pid)) this.leaveMm(pid);
  }
}
