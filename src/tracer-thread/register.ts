// Registering a range the program just mapped (mmap, brk growth) with its mm's
// userfaultfd, before the thread that mapped it resumes (DESIGN.md §3.1 step 3).
//
// The tracer does it itself when it can: UFFDIO_REGISTER on its own duplicate of the
// mm's uffd, then a note with the range's policy for the engine, which is not woken or
// waited for (src/channels/tracer-notes.ts says why that is safe). That saves each
// trapped mmap and brk a round trip to the engine thread — two thread switches. Through
// the synchronous channel (engine.register) otherwise: while the engine reads program
// memory (a snapshot, eviction), and for a process whose uffd the engine does not have.
import { registerFast } from '../sys/userfaultfd-fast.js';
import { closeFd } from '../sys/eventfd.js';
import { REGISTER_MODE } from '../channels/tracer-notes.js';
import type { EngineClient } from '../channels/tracer-engine.js';
import type { PagePolicy } from '../../policy/placement.js';
import type { Proc } from './state.js';

/**
 * Registers [start, start+len) of `proc` with `policy`. A range the kernel refuses (a
 * mapping another thread has unmapped again by now) stays ordinary memory.
 */
export function registerRange(proc: Proc, engine: EngineClient, start: bigint, len: bigint, policy: PagePolicy): void {
  // The duplicate is asked for once per mm (a forked child's uffd came to the engine with
  // its parent's UFFD_EVENT_FORK); -1: the engine has none for this process.
  if (proc.uffd === undefined) proc.uffd = Math.max(-1, engine.dupUffd(proc.pid));
  const notes = engine.notes;
  if (proc.uffd < 0 || !notes.begin(policy)) {
    engine.register(proc.pid, start, len, policy);
    return;
  }
  try {
    if (registerFast(proc.uffd, Number(start), Number(len), REGISTER_MODE) === 0) notes.put(proc.pid, Number(start), Number(len), policy);
  } finally {
    notes.end();
  }
}

/** `proc` left its mm (exec, exit): its duplicate of the old uffd is closed. */
export function forgetUffd(proc: Proc): void {
  if (proc.uffd !== undefined && proc.uffd >= 0) closeFd(proc.uffd);
  proc.uffd = undefined;
}
