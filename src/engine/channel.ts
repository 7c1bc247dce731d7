// How other threads hand the engine work. The engine thread sits in poll(2) over its
// userfaultfds and one eventfd, so commands travel through shared memory and a write
// to that eventfd — a MessagePort would not be read until poll returned to the event
// loop.
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
  /** id: every thread is stopped (registers in the doorbell); freeze for snapshot id. */
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
}

const STATE = 0;
const OP = 1;
const RESULT = 2;
const ARGS_OFFSET = 16; // bytes: after 4 Int32 slots
export const CHANNEL_BYTES = 16 + 8 * 1100;

export class TracerChannel {
  private readonly ctl: Int32Array;
  readonly args: Float64Array;

  constructor(readonly sab: SharedArrayBuffer, private readonly eventFd: number) {
    this.ctl = new Int32Array(sab, 0, 4);
    this.args = new Float64Array(sab, ARGS_OFFSET);
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

  constructor(sab: SharedArrayBuffer) {
    this.ctl = new Int32Array(sab, 0, 4);
    this.args = new Float64Array(sab, ARGS_OFFSET);
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
 * Main thread → engine: a request flag in shared memory plus the eventfd; the engine
 * answers with postMessage (sending does not need the engine's event loop). Requests
 * are coalesced: several status requests before the engine looks are answered once.
 */
export enum MainRequest {
  Stats = 1,
  Shutdown = 2,
  /** --keep: delete the oldest unlabelled snapshots beyond the number in slot 1. */
  Prune = 3,
  /** Stage the dirty pages for the next snapshot (the engine answers 'prepared'). */
  Prepare = 4,
}

export class MainMailbox {
  private readonly flags: Int32Array;

  constructor(readonly sab: SharedArrayBuffer, private readonly eventFd?: number) {
    this.flags = new Int32Array(sab);
  }

  post(req: MainRequest, value = 0): void {
    if (req === MainRequest.Prune) Atomics.store(this.flags, 1, value);
    Atomics.or(this.flags, 0, 1 << req);
    if (this.eventFd !== undefined) eventfdSignal(this.eventFd);
  }

  /** The value posted with a request (engine side). */
  value(): number {
    return Atomics.load(this.flags, 1);
  }

  /** Takes every posted request (engine side). */
  take(): number {
    return Atomics.exchange(this.flags, 0, 0);
  }
}
