// The snapshot catalog of a backing: which snapshots it holds and where their pages
// are. It lives in frames the allocator hands out, like the pages, so it takes no
// reserved area and grows with the snapshots; the superblock's catalog field is the one
// place that names it, and writing that field (a new superblock generation, format.ts)
// is the commit. Frames in use are derived from it when a backing is opened (refs,
// claimFrames), never stored.
//
//   superblock.catalog (u64): 0 = no catalog yet; else
//     bits 0–31   the root's first frame + 1
//     bits 32–63  CRC32 (zlib) of the root's bytes
//
//   A chain (how the root and each record, "blobs", are stored), per frame:
//     0   4     next frame of the chain + 1; 0 in the last frame
//     4   4092  the next 4092 bytes of the blob (the last frame zero-padded)
//
//   The root, 24 + 24 × n bytes:
//     0   8  magic "NXCATLG\0"
//     8   4  version (1)
//     12  4  n: snapshots in the catalog
//     16  4  next id: above every id committed so far (ids are not reused)
//     20  4  zero
//     24  n × 24, ascending id: 0 4 id, 4 4 first frame of the record's chain,
//             8 8 record length in bytes, 16 4 CRC32 of the record, 20 4 zero
//
//   A record (catalog-codec.ts encodes it):
//     0   8  magic "NXSNAPR\0"
//     8   4  version (1)
//     12  4  J
//     16  J  header, JSON (UTF-8): {id, label, time, program, node, stats, processes:
//            [{pid, exe, command, vmas: [[start, end, perms, offset, path], …], threads,
//            pages, mapBytes}]}
//     then per process, in the header's order:
//       threads × (tid u32, length u32, the registers: user_regs_struct, 216 bytes on x86_64)
//       the page map, mapBytes bytes of LEB128 varints, per run of consecutive pages:
//         gap (pages since the previous run's end; since page 0 for the first), count ≥ 1,
//         count × zigzag(frame − previous frame − 1) (the previous frame starts at −1 and
//         carries across runs: a frame allocated after the one before costs one byte)
//       pages × u32: CRC32 of each page's 4096 bytes as written
//     nothing after the last process. ≈ 5 bytes per page: 1.3 MB for 1 GiB of pages.
//
// Checksums chain down from the superblock: its CRC covers the catalog field, which
// holds the root's CRC; the root holds each record's; a record holds each page's. A
// reader that verifies down the chain has exactly what one commit wrote, or an error:
// never a mix of two commits. Errors: "catalog of PATH is corrupt: root (frame F):
// checksum mismatch …", "… snapshot 3 (record at frame F): bad magic", …
//
// Commit (one writer, holding the lock: the session, or `numactlx rm`):
//   1. the engine writes and syncs the snapshot's page frames;
//   2. the record goes into newly allocated frames, the new root into spare frames
//      (allocated, in no committed root);
//   3. store.sync() (msync, fsync): record and root are durable;
//   4. store.commitCatalog(pointer): the new superblock generation, fsynced;
//   5. then the old root's frames become spares and a deleted record's are freed.
// A kill -9 before 4 leaves the previous superblock in effect, and the frames of 2 are
// referenced by nothing: free at the next open. A torn superblock write fails its CRC
// and opening uses the other slot, the previous commit. No frame is freed before a
// newer superblock is durable, and the slot written next is always the older one, so
// the superblock opening can fall back to never references a reused frame. When
// commitCatalog itself fails, whether its write landed is unknown: the frames of 2 stay
// allocated (leaked until close) so that neither outcome references a reused frame. On
// /dev/dax sync() flushes nothing (store.ts): the order holds against a crash of
// numactlx; against power loss only where the platform's persistence domain has the caches.
//
// Spares: deleting must work on a full node (it is how a full node gets room back), so
// the writer keeps frames for the next root allocated: the old root's after each commit,
// topped up when a frame is free. A delete never needs a new frame.
//
// Readers (catalog-source.ts) take no lock: see there.
import zlib from 'node:zlib';
import { BackingError, BackingStore } from './store.js';
import { catalogPointer, drain, encodeRecordSteps, encodeRoot, ENCODE_STEP_PAGES, rootLength, type RootEntry } from './catalog-codec.js';
import {
  CatalogCorruption, chainFrames, corruptCatalog, decodeImage, readImage, readRecord, writeChain, type CatalogImage,
  type FrameReader,
  type DamagedRecord,
} from './catalog-image.js';
import { openBackingTarget } from './catalog-source.js';
import { rebuildImage } from './catalog-rebuild.js';
import type { SnapshotRecord } from './record-types.js';
import { FrameCounts } from './frame-counts.js';

export { openSnapshotSource } from './catalog-source.js';

export interface CatalogEntry extends RootEntry {
  /** The frames of the record's chain (known in memory, not stored in the root). */
  frames: number[];
}

export interface Catalog {
  /** Ascending id. */
  records: CatalogEntry[];
  nextId: number;
}

export interface LoadedCatalog {
  /** The committed catalog: commitSnapshot and deleteSnapshots keep it current. */
  catalog: Catalog;
  /** The snapshots found at load, ascending id. Not kept current (records stay on the medium). */
  snapshots: SnapshotRecord[];
  /**
   * Per frame (frameCount entries), how many pages of the loaded snapshots use it. As
   * loaded: the engine counts from here on (commit and delete do not touch it).
   */
  refs: FrameCounts;
  /** The committed root's frames. */
  rootFrames: number[];
  /** Allocated frames in no committed root: where the next root goes. */
  spareFrames: number[];
  /**
   * Records the root lists that cannot be read: they stay listed (a session or `rm`
   * never drops them on its own) until `numactlx repair` does (dropDamaged).
   */
  damaged: DamagedRecord[];
}

/** A snapshot id the catalog does not hold. */
export class UnknownSnapshotError extends Error {
  readonly path: string;
  readonly id: number;

  constructor(path: string, id: number) {
    super(`${path} has no snapshot ${id}`);
    this.name = 'UnknownSnapshotError';
    this.path = path;
    this.id = id;
  }
}

function storeReader(store: BackingStore): FrameReader {
  return { frameCount: store.frameCount, readFrame: (f, out) => store.readFrame(f, out) };
}

function noFrame(store: BackingStore): BackingError {
  return new BackingError(store.path, 'no-space', `backing ${store.path}: no free frame for the snapshot catalog`,
    store.noSpace ? { cause: store.noSpace } : undefined);
}

/** `count` new frames, or undefined (none kept) when the node is full. */
function allocFrames(store: BackingStore, count: number): number[] | undefined {
  const frames: number[] = [];
  while (frames.length < count) {
    const f = store.allocFrame();
    if (f < 0) {
      for (const g of frames) store.freeFrame(g);
      return undefined;
    }
    frames.push(f);
  }
  return frames;
}

/** Keeps frames for the next root (n + 1 entries): frees extra spares, allocates missing ones if it can. */
function tidySpares(store: BackingStore, loaded: LoadedCatalog): void {
  const want = chainFrames(rootLength(loaded.catalog.records.length + 1));
  while (loaded.spareFrames.length > want) store.freeFrame(loaded.spareFrames.pop() as number);
  while (loaded.spareFrames.length < want) {
    const f = store.allocFrame();
    if (f < 0) return; // best effort: a delete still fits in the frames of the root it replaces
    loaded.spareFrames.push(f);
  }
}

/**
 * Reads and verifies the committed catalog of a just-opened store, and marks every
 * frame it references (pages, records, root) in use in the allocator: call it before
 * the first allocFrame. Throws BackingError 'corrupt' naming what is wrong; a corrupt
 * catalog is never dropped.
 */
export function loadCatalog(store: BackingStore): LoadedCatalog {
  let image: CatalogImage | undefined;
  try {
    image = readImage(storeReader(store), store.superblock.catalog);
  } catch (err) {
    throw err instanceof CatalogCorruption ? corruptCatalog(store.path, err) : err;
  }
  return loadImage(store, image);
}

/** loadCatalog, once the image is read. */
function loadImage(store: BackingStore, image: CatalogImage | undefined): LoadedCatalog {
  let snapshots: SnapshotRecord[] = [];
  try {
    if (image) snapshots = decodeImage(image, store.frameCount);
  } catch (err) {
    throw err instanceof CatalogCorruption ? corruptCatalog(store.path, err) : err;
  }
  const refs = new FrameCounts(store.frameCount);
  for (const s of snapshots) for (const p of s.processes) for (const page of p.pages) refs.inc(page.frame);
  const meta = image ? [...image.rootFrames, ...image.records.flatMap((r) => r.frames), ...image.damaged.flatMap((d) => d.frames)] : [];
  store.claimFrames((function* used(): Generator<number> {
    yield* refs.nonZero();
    yield* meta;
  })());
  const loaded: LoadedCatalog = {
    catalog: {
      records: image ? [...image.records, ...image.damaged].map(({ entry, frames }) => ({ ...entry, frames })).sort((a, b) => a.id - b.id) : [],
      nextId: image ? image.root.nextId : 1,
    },
    snapshots, refs, rootFrames: image ? image.rootFrames : [], spareFrames: [], damaged: image ? image.damaged : [],
  };
  // A backing that never had a snapshot gets its spare with its first commit, so that a
  // session without snapshots uses no frame for the catalog.
  if (image) tidySpares(store, loaded);
  return loaded;
}

/**
 * Writes `next` as the committed catalog (steps 2–5 of the header comment). `fresh`:
 * frames this commit allocated (a new record's), freed if it fails before committing.
 */
function publish(store: BackingStore, loaded: LoadedCatalog, next: Catalog, fresh: number[]): void {
  const root = encodeRoot({ nextId: next.nextId, entries: next.records.map(({ id, frame, length, crc }) => ({ id, frame, length, crc })) });
  const need = chainFrames(root.length);
  const rootFrames = loaded.spareFrames.splice(0, need);
  const more = allocFrames(store, need - rootFrames.length);
  const undo = (): void => {
    loaded.spareFrames.unshift(...rootFrames);
    for (const f of fresh) store.freeFrame(f);
  };
  if (more === undefined) {
    undo();
    throw noFrame(store);
  }
  rootFrames.push(...more);
  try {
    writeChain((f, bytes) => store.writeFrame(f, bytes), root, rootFrames);
    store.sync();
  } catch (err) {
    undo();
    throw err;
  }
  // If this throws, the frames of this commit are left allocated: see the header comment.
  store.commitCatalog(catalogPointer(rootFrames[0], zlib.crc32(root)));
  loaded.spareFrames.push(...loaded.rootFrames);
  loaded.rootFrames = rootFrames;
  loaded.catalog.records = next.records;
  loaded.catalog.nextId = next.nextId;
  tidySpares(store, loaded);
}

/**
 * Commits `record`: its page frames must already be written and synced. Throws
 * BackingError 'no-space' ("backing PATH: no free frame for the snapshot catalog") when
 * there is no frame for the record or the root, leaving the committed state as it was.
 */
export function commitSnapshot(store: BackingStore, loaded: LoadedCatalog, record: SnapshotRecord): void {
  drain(commitSnapshotSteps(store, loaded, record));
}

/**
 * commitSnapshot in steps: the checks and the encoding yield every few thousand pages
 * (the engine serves faults between); writing and publishing the record do not yield.
 * The catalog must not change between the first step and the last.
 */
export function* commitSnapshotSteps(store: BackingStore, loaded: LoadedCatalog, record: SnapshotRecord): Generator<void, void> {
  const { catalog } = loaded;
  if (catalog.records.some((e) => e.id === record.id)) {
    throw new RangeError(`snapshot ${record.id} is already in the catalog of ${store.path}`);
  }
  // What loadCatalog would refuse must not be committed: frames in the backing, and not
  // the catalog's own.
  const meta = new Set([...loaded.rootFrames, ...loaded.spareFrames, ...catalog.records.flatMap((e) => e.frames)]);
  let checked = 0;
  for (const p of record.processes) {
    for (const page of p.pages) {
      if (++checked % ENCODE_STEP_PAGES === 0) yield;
      if (!(page.frame >= 0 && page.frame < store.frameCount) || meta.has(page.frame)) {
        throw new RangeError(`snapshot ${record.id}: page 0x${page.addr.toString(16)} of pid ${p.pid} ` +
          `names frame ${page.frame}, which is ${meta.has(page.frame) ? 'the catalog\'s' : 'outside the backing'}`);
      }
    }
  }
  const data = yield* encodeRecordSteps(record);
  const frames = allocFrames(store, chainFrames(data.length));
  if (frames === undefined) throw noFrame(store);
  const entry: CatalogEntry = { id: record.id, frame: frames[0], length: data.length, crc: zlib.crc32(data), frames };
  try {
    writeChain((f, bytes) => store.writeFrame(f, bytes), data, frames);
  } catch (err) {
    for (const f of frames) store.freeFrame(f);
    throw err;
  }
  const records = [...catalog.records, entry].sort((a, b) => a.id - b.id);
  publish(store, loaded, { records, nextId: Math.max(catalog.nextId, record.id + 1) }, frames);
}

/**
 * Commits the catalog without the snapshots `ids` and returns their records (read back
 * from the backing), ascending id, so the engine can drop their page references and
 * free the page frames no longer used; the records' own frames are freed here. An id
 * not in the catalog: UnknownSnapshotError, nothing changed.
 */
export function deleteSnapshots(store: BackingStore, loaded: LoadedCatalog, ids: number[]): SnapshotRecord[] {
  const drop = new Set(ids);
  const { catalog } = loaded;
  for (const id of drop) {
    if (!catalog.records.some((e) => e.id === id)) throw new UnknownSnapshotError(store.path, id);
  }
  const gone = catalog.records.filter((e) => drop.has(e.id));
  if (gone.length === 0) return [];
  let removed: SnapshotRecord[];
  try {
    removed = gone.map((e) => readRecord(storeReader(store), e));
  } catch (err) {
    throw err instanceof CatalogCorruption ? corruptCatalog(store.path, err) : err;
  }
  publish(store, loaded, { records: catalog.records.filter((e) => !drop.has(e.id)), nextId: catalog.nextId }, []);
  for (const e of gone) for (const f of e.frames) store.freeFrame(f);
  return removed;
}

/**
 * `numactlx repair`: commits the catalog without the damaged records (their pages were
 * never counted; their chains' frames are freed). Returns what was dropped.
 */
export function dropDamaged(store: BackingStore, loaded: LoadedCatalog): DamagedRecord[] {
  const gone = loaded.damaged;
  if (gone.length === 0) return [];
  const drop = new Set(gone.map((d) => d.entry.id));
  const { catalog } = loaded;
  const freed = catalog.records.filter((e) => drop.has(e.id));
  publish(store, loaded, { records: catalog.records.filter((e) => !drop.has(e.id)), nextId: catalog.nextId }, []);
  for (const e of freed) for (const f of e.frames) store.freeFrame(f);
  loaded.damaged = [];
  return gone;
}

/**
 * `numactlx repair PATH` (no session may hold it): drops the damaged records and, when a
 * superblock copy was damaged, commits the catalog again so that the damaged slot is
 * rewritten (the next generation goes to the slot not in use). A damaged root is rebuilt
 * from the records that still read (catalog-rebuild.ts) and committed to both slots.
 * Returns what it did.
 */
export function repairBacking(path: string): {
  dropped: Array<{ id: number; reason: string }>; kept: number[]; superblock?: string;
  root?: { damage: string; fromPrevious: number[] };
} {
  const store = BackingStore.open(openBackingTarget(path));
  try {
    let loaded: LoadedCatalog;
    let root: { damage: string; fromPrevious: number[] } | undefined;
    let lost: Array<{ id: number; reason: string }> = [];
    try {
      loaded = loadCatalog(store);
    } catch (err) {
      const cause = err instanceof BackingError && err.cause instanceof CatalogCorruption ? err.cause : undefined;
      if (!cause || !(cause.where.startsWith('root') || cause.where === 'catalog field')) throw err;
      const rebuilt = rebuildImage(storeReader(store), store.superblock.catalog, store.otherSuperblock()?.catalog);
      loaded = loadImage(store, rebuilt.image);
      root = { damage: cause.message, fromPrevious: rebuilt.kept.filter((k) => k.from === 'previous root').map((k) => k.id) };
      lost = rebuilt.lost;
    }
    const superblock = store.superblockDamage;
    const dropped = [...lost, ...dropDamaged(store, loaded).map((d) => ({ id: d.entry.id, reason: d.reason }))].sort((a, b) => a.id - b.id);
    // A damaged copy, or a rebuilt root: the catalog committed once more (twice: when the
    // copy in use was itself the recovered one, or so that neither slot names the
    // damaged root) rewrites both slots.
    if (root || (superblock && dropped.length === 0)) {
      republish(store, loaded);
      republish(store, loaded);
    }
    return { dropped, kept: loaded.catalog.records.map((e) => e.id), superblock, root };
  } finally {
    store.close();
  }
}

/** Commits the catalog as it is: a new superblock generation naming a new copy of the root. */
function republish(store: BackingStore, loaded: LoadedCatalog): void {
  publish(store, loaded, { records: loaded.catalog.records, nextId: loaded.catalog.nextId }, []);
}

/** The engine's view of one node's catalog (engine.ts NodeCatalog). */
export class SnapshotCatalog {
  constructor(readonly store: BackingStore, readonly loaded: LoadedCatalog) {}

  commitSteps(record: SnapshotRecord): Generator<void, void> {
    return commitSnapshotSteps(this.store, this.loaded, record);
  }

  remove(ids: number[]): SnapshotRecord[] {
    return deleteSnapshots(this.store, this.loaded, ids);
  }
}

/**
 * `numactlx rm PATH ID` when no session owns the backing: takes its lock (BackingError
 * 'in-use' when a session holds it), deletes the snapshot, frees its frames, closes.
 * Returns the deleted record.
 */
export function removeSnapshot(path: string, id: number): SnapshotRecord {
  const store = BackingStore.open(openBackingTarget(path));
  try {
    const loaded = loadCatalog(store);
    const [removed] = deleteSnapshots(store, loaded, [id]);
    for (const p of removed.processes) {
      for (const page of p.pages) if (loaded.refs.get(page.frame) > 0 && loaded.refs.dec(page.frame) === 0) store.freeFrame(page.frame);
    }
    return removed;
  } finally {
    store.close();
  }
}
