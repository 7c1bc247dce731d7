// A forked child's mm: made from its parent's when the engine reads UFFD_EVENT_FORK
// (uffd-events.ts onFork), or, on a kernel without the event, when the tracer has made
// the child a userfaultfd of its own (forkWithoutEvent).
import { copyParentPages } from './fork-pages.js';
import { Mm } from './mm.js';
import { PageMap } from './page-map.js';
import { registerFast } from '../sys/userfaultfd-fast.js';
import { closeFd } from '../sys/eventfd.js';
import { REGISTER_MODE } from '../channels/tracer-notes.js';
import type { EngineCore } from './engine-core.js';

/**
 * The mm of a child forked from `parent`, on userfaultfd `ufd` (from UFFD_EVENT_FORK, or
 * made by the tracer where the kernel has no fork event): the parent's ranges and policy,
 * and its pages. A virtual page shares its parent's home frame (one more reference): a
 * fork charges the node nothing, as a real node's copy-on-write does not; the snapshot
 * that first copies one of the two pages gives it a frame of its own (a frame with
 * more than one reference is never written in place: snapshot-copy.ts). A page clean in
 * the parent (its frame holds its content, write-protected) stays clean in the child if
 * the kernel kept the protection on the child's copy; fork-pages.ts checks that against
 * the child's pagemap and makes the others DIRTY. Joins the engine's poll list.
 */
export function forkChild(e: EngineCore, parent: Mm, ufd: number): Mm {
  const child = new Mm(ufd, parent.exe);
  child.command = parent.command;
  for (const r of parent.ranges.all()) child.ranges.add(r.start, r.end, r.policy);
  child.policy = parent.policy;
  // The child has a copy of every page the parent had, tracked or not.
  child.untracked = parent.untracked.map(([a, b]) => [a, b]);
  // Its clean pages are the parent's last snapshot's (same frames, same content): its
  // first snapshot starts from that map, less what the parent dropped since.
  child.snap = parent.snap.derive(parent.drops, [], new PageMap());
  copyParentPages(e, parent, child);
  e.mms.set(ufd, child);
  e.pollListChanged();
  return child;
}

/**
 * A fork no userfaultfd reported (no UFFD_FEATURE_EVENT_FORK: it needs CAP_SYS_PTRACE).
 * At fork the kernel dropped the child's registrations (dup_userfaultfd): its memory is
 * plain anonymous memory, its inherited pages present and writable. The tracer made it
 * `uffd` while it is stopped before its first instruction; the child gets what
 * UFFD_EVENT_FORK would have given it, and its ranges are registered on `uffd`.
 * Undefined (uffd closed) when the parent's mm is gone.
 */
export function forkWithoutEvent(e: EngineCore, parent: Mm | undefined, uffd: number): Mm | undefined {
  // Events the parent caused before the fork (munmap, mremap) change what the child has.
  if (parent) e.service(parent);
  if (!parent || !e.mms.has(parent.uffd)) {
    closeFd(uffd);
    return undefined;
  }
  const child = forkChild(e, parent, uffd);
  e.events.fork++;
  for (const r of [...child.ranges.all()]) {
    if (registerFast(uffd, r.start, r.end - r.start, REGISTER_MODE) < 0) child.ranges.remove(r.start, r.end); // gone before the fork
  }
  return child;
}
