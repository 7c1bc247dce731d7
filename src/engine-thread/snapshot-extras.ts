// The pages of a snapshot that no virtual node holds, read in the freeze. A snapshot
// should be what `gcore` would write at that instant; the copy-on-write machinery covers
// the virtual nodes' pages only, because only they are registered with a userfaultfd
// and can be write-protected while the program runs on. The rest of what a core holds
// is read while every thread is still stopped, so it is of the same instant:
// - written pages of private file mappings (libraries' .data, .bss, relro, the dynamic
//   loader's list of libraries — what gdb needs to walk into shared libraries): the
//   pages pagemap shows present and anonymous (copied on write); the others are the
//   file's, which gdb reads from the file;
// - anonymous memory no virtual node holds: ranges whose policy names only real nodes,
//   and pages of trapped ranges a policy placed in ordinary memory (interleave,
//   preferred fallback: PLACED_REAL in the table, and present now);
// - shared anonymous memory and shmem (MAP_SHARED|MAP_ANONYMOUS, /dev/zero, System V
//   shared memory, /dev/shm, memfd): every present page (shared mappings of regular
//   files are the file's, left out as the kernel's core dumps leave them).
//
// In the pause they are only read, into a staging buffer that stays mapped between snapshots
// (no page of it is new); frames of the first node's backing are written at the commit. Not tracked between snapshots (no write
// protection), they are read again by every snapshot, their frames its own. Their count
// and the part of the pause they took are in the first node's record (extra_pages, extra_ms).
//
// Held by a capture fork (snapshot-capture.ts), a process's private pages are the fork's
// too: only its shared ones (and pages a trapped range placed in ordinary memory, which the
// live table names) are read in the pause; the private ones are read out of the fork at
// the commit, before it is killed (readHeld) — or in the pause after all, when no fork
// could be made (readNow).
import fs from 'node:fs';
import { closeFd } from '../sys/eventfd.js';
import { bufferAddress } from '../sys/mman.js';
import { openPagemap, readPagemapRun } from '../sys/pagemap.js';
import { PAGE, PLACED_REAL } from './page-table.js';
import { vmasOf, type MmPart, type SnapshotRun } from './snapshot.js';
import { MAX_IOV, type RemoteCopier } from './remote-copy.js';
import type { Engine, Mm } from './engine.js';
import type { ChecksumQueue } from '../channels/checksum-ring.js';
import type { Vma } from '../snapshot/types.js';

const DEBUG = process.env.NUMACTLX_DEBUG === '1';
/** The frames of extra pages go to this slot (the first virtual node). */
const EXTRA_SLOT = 0;
/** Extra pages written to frames per commit step (≈ 1–3 ms into fresh frames). */
const STORE_STEP = 64;
/** The staging buffer's bound; beyond it a snapshot fails rather than hold the program longer. */
const STAGING_MAX = 256 << 20;
/** Its size from the first prepare on (a program's library data is 1–4 MiB), written through WARM_STEP bytes a step then. */
const [STAGING_FIRST, WARM_STEP] = [4 << 20, 256 << 10];
const PAGEMAP_RUN = 512;
/** pagemap entry bits, in the upper u32: 63 present, 62 swapped, 61 file page or shared anonymous. */
const HAS_PAGE = 0xc000_0000;
const FILE_OR_SHARED = 0x2000_0000;

/** Shared mappings whose memory is no file's: every present page is the program's. */
const sharedAnonymous = (v: Vma): boolean => v.path === '' || v.path.startsWith('/dev/zero')
  || v.path.startsWith('/SYSV') || v.path.startsWith('/dev/shm/') || v.path.startsWith('/memfd:');

/** Which pages of `v` are extra: 'anonymous' (private: copied-on-write only), 'present' (shared anonymous), or none. */
function extraKind(v: Vma): 'anonymous' | 'present' | undefined {
  if (v.perms[0] !== 'r' || v.path === '[vvar]' || v.path === '[vsyscall]') return undefined;
  if (v.perms[3] === 'p') return 'anonymous';
  return sharedAnonymous(v) ? 'present' : undefined;
}

interface Staged { part: MmPart; addrs: number[]; first: number }

/** Which extra pages find() looks for: all of them, those read in the pause when a fork holds the rest, or that rest. */
type Which = 'all' | 'pause' | 'private';

/** Owned by the SnapshotEngine: the staging buffer and what the current snapshot staged in it. */
export class ExtraPages {
  private staging = Buffer.alloc(0);
  private stagingAddr = 0;
  private used = 0;
  private staged: Staged[] = [];
  /** The parts whose private extra pages a capture fork holds, to be read from it, with their untrapped VMAs of the freeze
   * (a munmap heard of before the commit leaves mm.ranges, not the fork: stress-ng's 1 GiB failed its last snapshot). */
  private held: Array<{ mm: Mm; part: MmPart; untrapped: Set<number> }> = [];
  private readonly pagemapBuf = Buffer.alloc(PAGEMAP_RUN * 8);

  constructor(private readonly engine: Engine, private readonly remote: RemoteCopier) {}

  /**
   * `prepare` after steps that make the staging buffer STAGING_FIRST long, every page written,
   * so that the pause takes no first writes — not at the engine's start, where 4 MiB of them
   * (≈ 10 ms here) delayed a session's start (docs/BENCHMARKS.md §5f). Closed early, it leaves the buffer be.
   */
  *warmBefore(prepare: Generator<void, void>): Generator<void, void> {
    if (this.staging.length < STAGING_FIRST) {
      const bigger = Buffer.alloc(STAGING_FIRST);
      for (let off = 0; off < STAGING_FIRST; off += WARM_STEP) {
        bigger.fill(1, off, off + WARM_STEP);
        yield;
      }
      this.staging.copy(bigger, 0, 0, this.used * PAGE);
      [this.staging, this.stagingAddr] = [bigger, Number(bufferAddress(bigger))];
    }
    yield* prepare; // return() goes on to it: its finally blocks run
  }

  /**
   * In the freeze (the program is stopped): reads every part's extra pages — of a part
   * `held` says a fork will hold, the shared ones only; returns how many.
   */
  read(run: SnapshotRun, held: (mm: Mm) => boolean = () => false): number {
    this.used = 0;
    this.staged = [];
    this.held = [];
    if (!this.engine.nodes[EXTRA_SLOT]) return 0;
    let findMs = 0;
    const t0 = performance.now();
    for (const [mm, part] of run.parts) {
      const f0 = performance.now();
      const later = held(mm);
      const untrapped = new Set(vmasOf(part.maps).filter((v) => mm.ranges.slice(v.start, v.end).length === 0).map((v) => v.start));
      if (later) this.held.push({ mm, part, untrapped });
      const addrs = this.find(mm, part, later ? 'pause' : 'all', untrapped);
      findMs += performance.now() - f0;
      if (!this.stage(run, part, addrs)) break;
    }
    if (DEBUG) fs.writeSync(2, `numactlx-engine: freeze: ${this.used} extra pages, found in ${findMs.toFixed(2)} ms, read in ${(performance.now() - t0 - findMs).toFixed(2)} ms\n`);
    return this.used;
  }

  /** No fork holds mm's image after all: its private extra pages are read now, in the pause; how many. */
  readNow(run: SnapshotRun, mm: Mm): number {
    const at = this.held.findIndex((h) => h.mm === mm);
    if (at < 0) return 0;
    const [{ part, untrapped }] = this.held.splice(at, 1);
    const before = this.used;
    this.stage(run, part, this.find(mm, part, 'private', untrapped));
    return this.used - before;
  }

  /**
   * At the commit, before the capture forks are killed — or at a process's exit stop, for
   * its mm (`only`), while its fork is still there: the private extra pages, read out of
   * the forks; how many. A process gone without an exit stop has lost its pages to the
   * snapshot (its mm is closed), these with the others.
   */
  readHeld(run: SnapshotRun, only?: Mm): number {
    const before = this.used;
    const taken = only ? this.held.filter((h) => h.mm === only) : this.held;
    this.held = only ? this.held.filter((h) => h.mm !== only) : [];
    for (const { mm, part, untrapped } of taken) {
      if (mm.pids.size === 0) continue;
      // A fork that could not be made had them read in the pause (readNow); one never asked for is a slip.
      if (!part.forked) {
        run.failed ??= `no fork held pid ${part.pid}'s image`;
        continue;
      }
      const [addrs, from] = [this.find(mm, part, 'private', untrapped), this.used];
      if (this.stage(run, part, addrs) && addrs.length > 0 && this.used === from) {
        run.failed ??= `the fork holding pid ${part.pid}'s image could not be read`;
      }
    }
    return this.used - before;
  }

  /** Reads `addrs` of part into the staging buffer; false when they would not fit (the snapshot fails). */
  private stage(run: SnapshotRun, part: MmPart, addrs: number[]): boolean {
    if (addrs.length === 0) return true;
    if ((this.used + addrs.length) * PAGE > STAGING_MAX) {
      run.failed ??= `more than ${STAGING_MAX >> 20} MiB of memory outside the virtual nodes to copy in the pause`;
      return false;
    }
    this.reserve(this.used + addrs.length);
    const got = this.readPages(part.reader, addrs, this.used);
    this.staged.push({ part, addrs: got, first: this.used });
    this.used += got.length;
    return true;
  }

  /**
   * At the commit (the program runs): writes the staged pages into frames, STORE_STEP
   * pages a step (fresh frames cost 10–40 µs a page here: 1,824 pages in one piece kept
   * faults waiting tens of ms).
   */
  *storeSteps(run: SnapshotRun, checksums: ChecksumQueue): Generator<void, void> {
    const node = this.engine.nodes[EXTRA_SLOT];
    try {
      yield* this.storeStaged(run, checksums, node);
    } finally {
      this.staged = [];
      checksums.kick();
    }
  }

  private *storeStaged(run: SnapshotRun, checksums: ChecksumQueue, node: Engine['nodes'][number]): Generator<void, void> {
    for (const { part, addrs, first } of this.staged) {
      for (let i = 0; i < addrs.length; i += STORE_STEP) {
        if (i > 0) yield;
        const frames: number[] = [];
        this.remote.reset();
        for (let j = i; j < Math.min(addrs.length, i + STORE_STEP); j++) {
          const frame = node.store.allocFrame();
          if (frame < 0) {
            run.failed ??= `backing ${node.backing}: no free frame for snapshot ${run.req.id} (the node is full)`;
            break;
          }
          // The snapshot's hold, let go once the record holds its own (snapshot-commit.ts).
          node.refs.set(frame, 1);
          frames.push(frame);
          this.remote.add(node.store.frameAddr(frame), this.stagingAddr + (first + j) * PAGE, PAGE);
        }
        // From this process's own staging buffer: always readable, all of it.
        const n = this.remote.run(process.pid);
        const copied = n < 0 ? 0 : Math.floor(n / PAGE);
        frames.forEach((frame, k) => {
          if (k >= copied) { this.engine.unref(EXTRA_SLOT, frame); return; }
          part.extra.set(addrs[i + k], frame, 0, EXTRA_SLOT);
          checksums.written(EXTRA_SLOT, frame);
          part.newPages[EXTRA_SLOT]++;
        });
        if (copied < frames.length) run.failed ??= `backing ${node.backing}: a frame could not be written for snapshot ${run.req.id}`;
        if (run.failed) return;
        checksums.kick();
      }
    }
  }

  /** The extra pages of one part, ascending (pagemap read while the program is stopped, or of its fork), `untrapped` its VMAs no trapped range covered at the freeze. */
  private find(mm: Mm, part: MmPart, which: Which, untrapped: Set<number>): number[] {
    const out: number[] = [];
    let fd: number;
    try {
      fd = openPagemap(part.reader);
    } catch {
      return out; // gone since the freeze read its maps
    }
    try {
      for (const v of vmasOf(part.maps)) {
        const kind = extraKind(v);
        if (!kind) continue;
        // A trapped VMA: only its pages placed in ordinary memory. (Never a page the
        // table does not hold: reading a missing page of a trapped range would fault on
        // a userfaultfd that only this thread serves.)
        if (!untrapped.has(v.start)) {
          if (which !== 'private') this.placedReal(mm, fd, v, out);
        } else if (which === 'all' || (which === 'pause') === (kind === 'present')) {
          this.scan(fd, v.start, v.end, kind, out);
        }
      }
    } finally {
      closeFd(fd);
    }
    return out;
  }

  /** The pages of [start, end) pagemap shows there (and anonymous, for 'anonymous'), into out. */
  private scan(fd: number, start: number, end: number, kind: 'anonymous' | 'present', out: number[], only?: (addr: number) => boolean): void {
    const buf = this.pagemapBuf;
    for (let at = start; at < end; at += PAGEMAP_RUN * PAGE) {
      const count = Math.min(PAGEMAP_RUN, (end - at) / PAGE);
      const read = readPagemapRun(fd, at, count, buf);
      for (let k = 0; k < read; k++) {
        const hi = buf.readUInt32LE(k * 8 + 4);
        if ((hi & HAS_PAGE) === 0 || (kind === 'anonymous' && (hi & FILE_OR_SHARED) !== 0)) continue;
        const addr = at + k * PAGE;
        if (!only || only(addr)) out.push(addr);
      }
    }
  }

  /** The PLACED_REAL pages of a trapped VMA that are present now, into out. */
  private placedReal(mm: Mm, fd: number, v: Vma, out: number[]): void {
    let lo = Infinity;
    let hi = -Infinity;
    mm.table.forEachRealIn(v.start, v.end, (addr) => {
      lo = Math.min(lo, addr);
      hi = Math.max(hi, addr + PAGE);
    });
    if (lo < hi) this.scan(fd, lo, hi, 'anonymous', out, (addr) => mm.table.get(addr) === PLACED_REAL);
  }

  private reserve(pages: number): void {
    if (this.staging.length >= pages * PAGE) return;
    const bigger = Buffer.alloc(Math.min(STAGING_MAX, Math.max(pages * PAGE, this.staging.length * 2)));
    this.staging.copy(bigger, 0, 0, this.used * PAGE);
    // Every page written now, not in a later pause: a large Buffer is fresh mmap'd memory,
    // and a first write to a page costs a fault (≈ 10 µs on these hypervisors).
    bigger.fill(1, this.used * PAGE);
    [this.staging, this.stagingAddr] = [bigger, Number(bufferAddress(bigger))];
  }

  /** process_vm_readv of `addrs` into the staging buffer from page `first` on; the pages read. */
  private readPages(pid: number, addrs: number[], first: number): number[] {
    const got: number[] = [];
    for (let i = 0; i < addrs.length;) {
      const end = Math.min(addrs.length, i + MAX_IOV);
      this.remote.reset();
      for (let j = i; j < end; j++) this.remote.add(this.stagingAddr + (first + got.length + j - i) * PAGE, addrs[j], PAGE);
      const n = this.remote.run(pid);
      const copied = n < 0 ? 0 : Math.floor(n / PAGE);
      for (let j = i; j < i + copied; j++) got.push(addrs[j]);
      // A short read stops at a page the kernel would not read (a device's mapping):
      // it is left out, and the read goes on after it.
      i += copied < end - i ? copied + 1 : copied;
    }
    return got;
  }
}
