// Tracer → engine without waiting: what the engine must know before it next acts, but
// need not answer. The synchronous TracerChannel costs two thread switches a call (an
// eventfd wake-up of the engine, a futex wake-up of the tracer): ≈ 2–10 µs on one vCPU,
// ≈ 70 µs each across two here. Notes wake nobody:
// - Registered: a range the program mapped (mmap, brk), which the tracer registered
//   itself with UFFDIO_REGISTER on its own duplicate of the mm's uffd (the ioctl works
//   from any thread of numactlx) before resuming the thread: its policy;
// - Exited: a process is at its last thread's exit stop while no snapshot is active
//   (with one, ExitStop is a command: its frozen pages are copied while they exist);
// - LeftMm: a process has ended (it is reaped): the engine lets go of its mm;
// - Forked: a process forked a child, whose pid names the mm the engine made at the
//   parent's UFFD_EVENT_FORK (only while `busy` is clear, as Exited). The child runs
//   before the engine has read it: a fault of the child is read after the note was
//   written, so the child is named before its fault is handled. The note can come
//   while the engine has read the FORK message but not handled it yet (the read lets
//   the forker go on): the name then waits in the parent's mm for it (uffd-events.ts);
// - SharesMm: a vfork or CLONE_VM child is on its creator's mm (only while `busy` is clear).
//
// Why a note may wait (engine-worker.ts, uffd-events.ts applyNoted): a noted range
// waits in its mm until the engine next reads that mm's uffd, and is applied right after
// that read(2), before what it read is handled; before every command and before it reads
// program memory, the engine reads the uffd of every mm with ranges waiting. A note is
// written before the thread that mapped the range resumes, so a fault in the range is
// read after the note was written and finds the range. Every event queued before that
// read is handled already or in that batch, as when the engine registers a range itself
// after reading what is queued (dropStale); an UNMAP/REMAP of an earlier mapping at the
// same addresses that comes later (the kernel frees the addresses before it queues the
// event) leaves the new range alone (reused-addresses.ts). test/tracer/trapped-races
// checks it: no first fault outside a known range, no page the table holds wrongly.
//
// One thing notes must never allow: the engine reading program memory (a snapshot's
// copy or pre-copy, eviction) at a stale address the tracer has registered again and
// the engine does not know yet — process_vm_readv would fault on a uffd only the engine
// serves. So while the engine reads program memory it is `busy`, and the tracer then
// registers through the synchronous channel. The handshake (Dekker's, over sequentially
// consistent Atomics): the tracer sets `registering`, then looks at `busy`; the engine
// sets `busy`, then waits for `registering` to clear and reads the notes. Either the
// tracer sees `busy`, or the engine sees its note.
//
// `busy` also tells the tracer that a snapshot may be active: the engine sets it before
// it answers the Freeze command that starts one, and clears it only once none is active
// and none is being prepared. A later snapshot needs a later Freeze, which reads the
// notes first: an Exited note written while `busy` is clear needs no copy.
//
// Layout at `byteOffset` of the TracerChannel's SharedArrayBuffer: Int32 [0] head (the
// next note the engine reads), [1] tail (the next the tracer writes), [2] busy,
// [3] registering; then NOTES notes of NOTE_F64 doubles: kind, pid, start, len, mode,
// nnodes, nodes… (user-space addresses are below 2^47: a double holds them exactly). A
// policy with more nodes than fit, or a full ring, goes through the synchronous channel.
import type { PagePolicy } from '../../policy/placement.js';
import { UFFDIO_REGISTER_MODE } from '../sys/userfaultfd-uapi.js';

/** How every range is registered, by the engine and by the tracer: MISSING (placement) and WP (snapshots; free until a page is protected). */
export const REGISTER_MODE = Number(UFFDIO_REGISTER_MODE.MISSING | UFFDIO_REGISTER_MODE.WP);

const HEAD = 0;
const TAIL = 1;
const BUSY = 2;
const REGISTERING = 3;
const HEADER_BYTES = 16;
/** A power of two: head and tail are free-running Int32 counters. */
const NOTES = 1024;
const NOTE_F64 = 16;
const MAX_NODES = NOTE_F64 - 6;
export const NOTES_BYTES = HEADER_BYTES + NOTES * NOTE_F64 * 8;

export enum NoteKind {
  Registered = 1,
  Exited = 2,
  LeftMm = 3,
  Forked = 4,
  SharesMm = 5,
}

export type Note =
  | { kind: NoteKind.Registered; pid: number; start: number; len: number; policy: PagePolicy }
  | { kind: NoteKind.Exited | NoteKind.LeftMm; pid: number }
  | { kind: NoteKind.Forked | NoteKind.SharesMm; pid: number; child: number };

export class TracerNotes {
  private readonly ctl: Int32Array;
  private readonly slots: Float64Array;

  /** The ring at `byteOffset` (a multiple of 8) of `sab`, NOTES_BYTES long. */
  constructor(sab: SharedArrayBuffer, byteOffset: number) {
    this.ctl = new Int32Array(sab, byteOffset, 4);
    this.slots = new Float64Array(sab, byteOffset + HEADER_BYTES, NOTES * NOTE_F64);
  }

  // ---- the tracer's side ------------------------------------------------------------------
  /**
   * Tracer: whether it may register a range with `policy` itself now and note it (then
   * `put` and `end` must follow); false: the engine is reading program memory, the ring
   * is full or the policy too long — use the synchronous channel.
   */
  begin(policy: PagePolicy): boolean {
    if (policy.nodes.length > MAX_NODES) return false;
    if (((Atomics.load(this.ctl, TAIL) - Atomics.load(this.ctl, HEAD)) | 0) >= NOTES) return false;
    Atomics.store(this.ctl, REGISTERING, 1);
    if (Atomics.load(this.ctl, BUSY) === 0) return true;
    Atomics.store(this.ctl, REGISTERING, 0);
    return false;
  }

  /** Tracer, between begin and end: notes a range it registered (room was checked by begin). */
  put(pid: number, start: number, len: number, policy: PagePolicy): void {
    const tail = Atomics.load(this.ctl, TAIL);
    const s = this.slots;
    const at = (tail & (NOTES - 1)) * NOTE_F64;
    s[at] = NoteKind.Registered;
    s[at + 1] = pid;
    s[at + 2] = start;
    s[at + 3] = len;
    s[at + 4] = policy.mode;
    s[at + 5] = policy.nodes.length;
    for (let i = 0; i < policy.nodes.length; i++) s[at + 6 + i] = policy.nodes[i];
    // The store of the tail publishes the slots (the plain stores above come before it).
    Atomics.store(this.ctl, TAIL, (tail + 1) | 0);
  }

  /**
   * Tracer: notes that pid ended (LeftMm), or is at its exit stop (Exited: only while
   * `busy` is clear — see above); false when it must be a command (ring full, or busy).
   */
  putEnd(kind: NoteKind.Exited | NoteKind.LeftMm, pid: number): boolean {
    if (kind === NoteKind.Exited && Atomics.load(this.ctl, BUSY) !== 0) return false;
    return this.putPids(kind, pid, 0);
  }

  /**
   * Tracer: notes that `pid` forked `child` (Forked), or made `child` on its mm (SharesMm),
   * only while `busy` is clear; false when it must be a command.
   */
  putChild(kind: NoteKind.Forked | NoteKind.SharesMm, pid: number, child: number): boolean {
    if (Atomics.load(this.ctl, BUSY) !== 0) return false;
    return this.putPids(kind, pid, child);
  }

  /** A note of one or two pids; false if the ring is full. */
  private putPids(kind: NoteKind, pid: number, other: number): boolean {
    const tail = Atomics.load(this.ctl, TAIL);
    if (((tail - Atomics.load(this.ctl, HEAD)) | 0) >= NOTES) return false;
    const at = (tail & (NOTES - 1)) * NOTE_F64;
    this.slots[at] = kind;
    this.slots[at + 1] = pid;
    this.slots[at + 2] = other;
    Atomics.store(this.ctl, TAIL, (tail + 1) | 0);
    return true;
  }

  /** Tracer: the registration begun is over (noted or failed). */
  end(): void {
    Atomics.store(this.ctl, REGISTERING, 0);
  }

  // ---- the engine's side ------------------------------------------------------------------
  /**
   * Engine: from now on (on) the tracer registers through the synchronous channel; waits
   * for a registration in progress to be noted. The caller reads the notes next.
   */
  setBusy(on: boolean, yieldCpu: () => void): void {
    Atomics.store(this.ctl, BUSY, on ? 1 : 0);
    if (on) while (Atomics.load(this.ctl, REGISTERING) !== 0) yieldCpu();
  }

  /** Tracer and engine: whether the engine reads program memory or a snapshot is active. */
  get busy(): boolean {
    return Atomics.load(this.ctl, BUSY) !== 0;
  }

  /** Engine: hands every note written so far to `apply`, oldest first. */
  drain(apply: (note: Note) => void): void {
    const tail = Atomics.load(this.ctl, TAIL);
    let head = Atomics.load(this.ctl, HEAD);
    if (head === tail) return;
    const s = this.slots;
    for (; head !== tail; head = (head + 1) | 0) {
      const at = (head & (NOTES - 1)) * NOTE_F64;
      const kind = s[at] as NoteKind;
      let note: Note;
      if (kind === NoteKind.Registered) {
        note = { kind, pid: s[at + 1], start: s[at + 2], len: s[at + 3], policy: { mode: s[at + 4], nodes: Array.from(s.subarray(at + 6, at + 6 + s[at + 5])) } };
      } else if (kind === NoteKind.Forked || kind === NoteKind.SharesMm) note = { kind, pid: s[at + 1], child: s[at + 2] };
      else note = { kind, pid: s[at + 1] };
      // Freed one by one: a note applied is never read again, even if `apply` throws.
      Atomics.store(this.ctl, HEAD, (head + 1) | 0);
      apply(note);
    }
  }
}
