// Commit, the last phase of a snapshot: once every frozen page is copied, wait for the
// frames' checksums, make the frames durable (durable before visible: snapshot.ts), then
// commit a record per node to its catalog, in steps between fault service
// (COMMIT_STEP_CHUNKS, COMMIT_STEP_PAGES).
import fs from 'node:fs';
import { PageMap } from './page-map.js';
import type { RemoteCopier } from './remote-copy.js';
import { vmasOf, type MmPart, type SnapshotRun } from './snapshot.js';
import type { Engine } from './engine.js';
import type { ChecksumQueue } from '../channels/checksum-ring.js';
import type { SnapshotPage, SnapshotRecord, SnapshotStats } from '../snapshot/types.js';

/** Page-map chunks (512 pages each) turned into record pages per commit step (~0.15 ms). */
const COMMIT_STEP_CHUNKS = 1;
/** Frame references taken per commit step. */
const COMMIT_STEP_PAGES = 16384;

/** The checksum worker made no progress for this long: the engine computes what is left. */
const CHECKSUM_STALL_MS = 2000;
/** CRCs the engine computes per commit step when there is no checksum worker (~0.2 ms). */
const CHECKSUM_STEP_PAGES = 256;

const DEBUG = process.env.NUMACTLX_DEBUG === '1';
const ms = (from: bigint, to: bigint = process.hrtime.bigint()): number => Number(to - from) / 1e6;

export interface SnapshotResult {
  id: number;
  records: SnapshotRecord[];
  /**
   * Pages frozen but gone before the copier reached them (unmapped, discarded, or their
   * process ended without an exit stop): the snapshot holds everything else.
   */
  lostPages: number;
}

/** A committed snapshot of the backings (for --keep). */
export interface CommittedSnapshot { id: number; label: string | null }

/** What the commit works with (the SnapshotEngine). */
export interface CommitContext {
  readonly engine: Engine;
  readonly checksums: ChecksumQueue;
  /** The copier's timings are reported and reset by the commit. */
  readonly remote: RemoteCopier;
  /** Committed snapshots, oldest first: the commit appends its own. */
  readonly committed: CommittedSnapshot[];
  /** The commit waits for the checksum worker's sync: the engine loop may sleep 1 ms in poll. */
  waitingOnWorker: boolean;
  /** A frame whose checksum could not be read back: the backing lost, as one sentence (found: where). */
  noteUnreadable(found: string): string | undefined;
}

/**
 * The backings durable (a snapshot's frames, a catalog commit's writes): msync + fsync on
 * the checksum worker (half a second for 4 GiB on a file; 10–100 ms for a catalog commit,
 * which the engine must not spend away from faults), here without one. A sync
 * that failed there runs again here, which throws the BackingError that says why.
 */
export function* syncOnWorker(ctx: CommitContext): Generator<void, void> {
  if (ctx.checksums.hasWorker) {
    const gen = ctx.checksums.requestSync();
    ctx.waitingOnWorker = true;
    try {
      for (;;) {
        let done = false;
        try {
          done = ctx.checksums.synced(gen);
        } catch {
          break; // failed there: sync here for the error
        }
        if (done) return;
        if (!ctx.checksums.hasWorker) break; // it stopped: sync here
        yield;
      }
    } finally {
      ctx.waitingOnWorker = false;
    }
  }
  ctx.engine.nodes.forEach((node) => node.store.sync());
}

/**
 * Every pending page is copied: `first` (the pause's extra pages written to frames), then
 * make the frames durable, then commit a record per node. Yields between steps; returns
 * the records.
 */
export function* finishSteps(ctx: CommitContext, run: SnapshotRun, first?: Generator<void, void>): Generator<void, SnapshotResult> {
  const engine = ctx.engine;
  try {
    if (first) yield* first;
    return yield* commitRun(ctx, run);
  } finally {
    for (const part of run.parts.values()) {
      part.copied.forEach((_addr, frame, _crc, slot) => engine.unref(slot, frame));
      part.extra.forEach((_addr, frame, _crc, slot) => engine.unref(slot, frame));
    }
  }
}

function* commitRun(ctx: CommitContext, run: SnapshotRun): Generator<void, SnapshotResult> {
  const engine = ctx.engine;
  // The checksums of the frames copied (src/channels/checksum-ring.ts): computed meanwhile by the checksum
  // worker; waited for here, between fault service, and done here if it stalls.
  let waitedSince = process.hrtime.bigint();
  let lastPending = -1;
  while (!ctx.checksums.settled) {
    if (!ctx.checksums.hasWorker) {
      ctx.checksums.settleSome(CHECKSUM_STEP_PAGES);
      yield;
      continue;
    }
    const pending = ctx.checksums.pending;
    if (pending !== lastPending) { lastPending = pending; waitedSince = process.hrtime.bigint(); }
    if (ms(waitedSince) > CHECKSUM_STALL_MS) { ctx.checksums.settleSome(); break; }
    yield;
  }
  for (const part of run.parts.values()) {
    part.copied.fillCrcs((frame, slot) => ctx.checksums.crc(slot, frame));
    part.extra.fillCrcs((frame, slot) => ctx.checksums.crc(slot, frame));
  }
  const unreadable = ctx.noteUnreadable(`as snapshot ${run.req.id} was being committed`);
  if (unreadable) run.failed ??= unreadable;
  const tFinish = process.hrtime.bigint();
  // Whether or not the commit succeeds, each mm's pages now live in the frames this
  // run left them in: the next snapshot must start from this map, not the older one.
  const maps = new Map<MmPart, PageMap>();
  for (const [key, part] of run.parts) {
    const map = part.prev.derive(part.drops, part.lost, part.copied);
    key.snap = map;
    // The record holds the extra pages too; the next snapshot copies its own (snapshot-extras.ts).
    maps.set(part, part.extra.size > 0 ? map.derive([], [], part.extra) : map);
  }
  if (run.failed) throw new Error(run.failed);
  for (const part of run.parts.values()) part.vmas = vmasOf(part.maps);
  const tSync = process.hrtime.bigint();
  yield* syncOnWorker(ctx);
  const tSynced = process.hrtime.bigint();
  // copy_ms: from the resume to the frames being durable (the record is committed next).
  const copyMs = ms(run.resumedAt, tSynced);
  yield;
  const records: SnapshotRecord[] = [];
  const outside = new Map<MmPart, number[]>();
  for (let slot = 0; slot < engine.nodes.length; slot++) {
    const node = engine.nodes[slot];
    const pagesByPart = new Map<MmPart, SnapshotPage[]>();
    for (const [part, map] of maps) {
      const pages: SnapshotPage[] = [];
      const keys = map.keys();
      const { vmas } = part;
      let v = 0;
      for (let i = 0; i < keys.length; i++) {
        map.pagesIn(keys[i], slot, (addr, frame, crc) => {
          while (v < vmas.length && vmas[v].end <= addr) v++;
          if (v < vmas.length && vmas[v].start <= addr) pages.push({ addr, frame, crc });
          else if (outside.has(part)) outside.get(part)!.push(addr);
          else outside.set(part, [addr]);
        });
        if (i % COMMIT_STEP_CHUNKS === COMMIT_STEP_CHUNKS - 1) yield;
      }
      pagesByPart.set(part, pages);
    }
    const record = run.record(node.node, slot, pagesByPart, copyMs);
    if (node.catalog) yield* node.catalog.commitSteps(record, () => syncOnWorker(ctx));
    yield;
    // The snapshot now holds a reference on each of its frames.
    let n = 0;
    for (const p of record.processes) {
      for (const page of p.pages) {
        node.refs.inc(page.frame);
        if (++n % COMMIT_STEP_PAGES === 0) yield;
      }
    }
    records.push(record);
    yield;
  }
  leaveOutside(ctx, run, outside);
  if (DEBUG) {
    fs.writeSync(2, `numactlx-engine: snapshot ${run.req.id}: copy ${copyMs.toFixed(1)} ms (process_vm_readv ${(ctx.remote.readvNs / 1e6).toFixed(1)}, ` +
      `populate ${(ctx.remote.populateNs / 1e6).toFixed(1)}), ` +
      `maps ${ms(tFinish, tSync)} ms, sync ${ms(tSync, tSynced)} ms, commit ${ms(tSynced)} ms\n`);
  }
  ctx.remote.readvNs = 0;
  ctx.remote.populateNs = 0;
  ctx.committed.push({ id: run.req.id, label: run.req.label });
  let lostPages = 0;
  for (const part of run.parts.values()) lostPages += part.lost.size;
  return { id: run.req.id, records, lostPages };
}

/**
 * A point-in-time image holds the pages mapped at its instant, as /proc/PID/maps read in
 * the freeze has them (part.vmas). A page of the map at an address no VMA covered is a
 * bookkeeping slip — the engine missed that its mapping went away (seen about once in a
 * hundred churn-test sessions, cause not found yet) — not memory of the program: it is
 * left out of the record (above) and of the next snapshot's map, counted in
 * events.outside_vma, and named with NUMACTLX_DEBUG.
 */
function leaveOutside(ctx: CommitContext, run: SnapshotRun, outside: Map<MmPart, number[]>): void {
  for (const [mm, part] of run.parts) {
    const addrs = outside.get(part);
    if (!addrs) continue;
    mm.snap = mm.snap.derive([], addrs, new PageMap());
    ctx.engine.events.outside_vma += addrs.length;
    if (DEBUG) {
      fs.writeSync(2, `numactlx-engine: snapshot ${run.req.id}: pid ${part.pid}: ${addrs.length} page(s) outside every VMA at the freeze, ` +
        `left out: ${addrs.slice(0, 8).map((a) => a.toString(16)).join(' ')} (table entry ${mm.table.get(addrs[0])}, flags ${mm.table.flagsOf(addrs[0])}; ` +
        `ranges there ${JSON.stringify(mm.ranges.slice(addrs[0], addrs[0] + 4096))}; pids ${[...mm.pids].join(',')}; VMAs around: ` +
        `${part.vmas.filter((v) => v.end > addrs[0] - (1 << 20) && v.start < addrs[0] + (1 << 20)).map((v) => `${v.start.toString(16)}-${v.end.toString(16)}`).join(' ')})\n`);
    }
  }
}

/** The figures of a snapshot's records (one per backing) as one: sums, and the pause and copy they share. */
export function sumStats(records: SnapshotRecord[]): SnapshotStats {
  const s: SnapshotStats = { pages: 0, new_pages: 0, bytes_written: 0, pause_ms: 0, copy_ms: 0 };
  for (const r of records) {
    s.pages += r.stats.pages; s.new_pages += r.stats.new_pages; s.bytes_written += r.stats.bytes_written;
    s.pause_ms = r.stats.pause_ms; s.copy_ms = r.stats.copy_ms;
  }
  return s;
}
