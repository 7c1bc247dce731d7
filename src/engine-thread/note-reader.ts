// The engine's side of the tracer's notes (src/channels/tracer-notes.ts), in the order
// the tracer wrote them:
// - Registered: the range waits in its mm for the next read of the mm's uffd
//   (register-range.ts); the mm is remembered, so that `apply` reads it before a command
//   or a read of program memory (only the mms with a range noted since, not every mm);
// - Forked, SharesMm: the child is named at once (its fault may be in the batch being
//   read: the drain runs between a uffd read and its handling, uffd-events.ts service);
// - Exited, LeftMm: applied by `apply`, between uffd reads and commands (leaving an mm
//   closes a uffd), and only to the mm the pid had when the note was read: a fork noted
//   after an end may have named a new mm with the same pid, reused.
import { NoteKind, type TracerNotes } from '../channels/tracer-notes.js';
import { queueNote } from './register-range.js';
import type { Mm } from './mm.js';

/** What the notes act on: the engine (engine.ts) and the snapshot engine's flush. */
export interface NoteTarget {
  mmOf(pid: number): Mm | undefined;
  /** The mm is still the engine's (not closed). */
  isOpen(mm: Mm): boolean;
  service(mm: Mm): void;
  forked(parentPid: number, childPid: number): number;
  sharesMm(parentPid: number, childPid: number): void;
  leaveMm(pid: number): void;
  /** A process at its last thread's exit stop (snapshot-engine.ts). */
  exited(pid: number): void;
}

interface Ended {
  kind: NoteKind.Exited | NoteKind.LeftMm;
  pid: number;
  mm: Mm | undefined;
}

export class NoteReader {
  private readonly ended: Ended[] = [];
  private readonly withNotes = new Set<Mm>();

  constructor(private readonly notes: TracerNotes, private readonly target: NoteTarget) {}

  /** Takes every note written so far: ranges queued in their mms, forks named; ends kept for `apply`. */
  drain(): void {
    const t = this.target;
    this.notes.drain((n) => {
      if (n.kind === NoteKind.Forked) t.forked(n.pid, n.child);
      else if (n.kind === NoteKind.SharesMm) t.sharesMm(n.pid, n.child);
      else if (n.kind !== NoteKind.Registered) this.ended.push({ kind: n.kind, pid: n.pid, mm: t.mmOf(n.pid) });
      else {
        const mm = t.mmOf(n.pid);
        queueNote(mm, n);
        if (mm) this.withNotes.add(mm);
      }
    });
  }

  /** drain, then read the mms with ranges noted and apply the ends: everything noted is known. */
  apply(): void {
    const t = this.target;
    this.drain();
    for (const mm of this.withNotes) {
      this.withNotes.delete(mm);
      if (mm.noted.length > 0 && t.isOpen(mm)) t.service(mm);
    }
    for (const n of this.ended.splice(0)) {
      if (t.mmOf(n.pid) !== n.mm) continue;
      if (n.kind === NoteKind.Exited) t.exited(n.pid);
      else t.leaveMm(n.pid);
    }
  }
}
