// Registering a range of a program's mm with its userfaultfd: by the engine at the
// tracer's synchronous request (register), or by the tracer itself, which then notes it
// (src/channels/tracer-notes.ts); the note waits in the mm (queueNote) until the engine
// next reads the mm's uffd (uffd-events.ts applyNoted).
import type { NoteKind, Note } from '../channels/tracer-notes.js';
import type { Mm } from './mm.js';
import type { PagePolicy } from './ranges.js';
import type { EngineCore } from './engine-core.js';
import { dropStale } from './uffd-events.js';
import { registerFast } from '../sys/userfaultfd-fast.js';
import { REGISTER_MODE } from '../channels/tracer-notes.js';

/** Registers [start, start+len) of mm for missing faults with `policy`; 0 or -errno. */
export function registerRange(e: EngineCore, mm: Mm, start: number, len: number, policy: PagePolicy): number {
  dropStale(e, mm, start, start + len); // a reused address: the old pages go first
  const r = registerFast(mm.uffd, start, len, REGISTER_MODE);
  if (r < 0) return r;
  mm.track(start, start + len, policy);
  return 0;
}

/**
 * A noted range of `mm` (undefined: its process has left it, nothing to do), queued
 * until the engine next reads mm's uffd (applyNoted).
 */
export function queueNote(mm: Mm | undefined, note: Note & { kind: NoteKind.Registered }): void {
  mm?.noted.push({ start: note.start, end: note.start + note.len, policy: note.policy });
}
