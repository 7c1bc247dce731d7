// Writing a backing's snapshot catalog (its layout is drawn in catalog.ts): committing a
// snapshot's record, deleting snapshots, dropping damaged records, committing the catalog
// again as it is. Every change is a new root published by a new superblock generation.
//
// Commit (one writer, holding the lock: the session, or `numactlx rm`):
//   1. the engine writes and syncs the snapshot's page frames;
//   2. the record goes into newly allocated frames, the new root into spare frames
//      (allocated, in no committed root);
//   3. store.sync() (msync, fsync): record and root are durable;
//   4. store.commitCatalog(pointer): the new superblock generation, fsynced;
//   (the engine commits in steps: 3 and 4's msync and fsync run on its checksum worker
//   while it serves faults — an fsync here took 10–100 ms; MakeDurable, durability.ts)
//   5. then the old root's frames become spares and a deleted record's are freed.
// A kill -9 before 4 leaves the previous superblock in effect, and the frames of 2 are
// referenced by nothing: free at the next open. A torn superblock write fails its CRC
// and opening uses the other slot, the previous commit. No frame is freed before a
// newer superblock is durable, and the slot written next is always the older one, so
// the superblock opening can fall back to never references a reused frame. When
// commitCatalog itself fails, whether its write landed is unknown: the frames of 2 stay
// allocated (leaked until close) so that neither outcome references a reused frame. On
// /dev/dax sync() flushes nothing (durability.ts): the order holds against a crash of
// numactlx; against power loss only where the platform's persistence domain has the caches.
//
// Spares: deleting must work on a full node (it is how a full node gets room back), so
// the writer keeps frames for the next root allocated: the old root's after each commit,
// topped up when a frame is free. A delete never needs a new frame.
import zlib from 'node:zlib';
import { BackingError, BackingStore } from './store.js';
import { catalogPointer, encodeRoot } from './catalog-root-codec.js';
import { encodeRecordSteps, ENCODE_STEP_PAGES } from './catalog-record-codec.js';
import { drain } from './steps.js';
import { CatalogCorruption, chainFrames, corruptCatalog, readRecord, writeChain, writeChainSteps, type DamagedRecord } from './catalog-image.js';
import {
  storeReader, tidySpares, UnknownSnapshotError, type Catalog, type CatalogEntry, type LoadedCatalog,
} from './catalog.js';
import type { SnapshotRecord } from './record-types.js';
import type { MakeDurable } from './durability.js';

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

/** publishSteps, every sync on the calling thread. */
function publish(store: BackingStore, loaded: LoadedCatalog, next: Catalog, fresh: number[]): void {
  drain(publishSteps(store, loaded, next, fresh));
}

/**
 * Writes `next` as the committed catalog (steps 2–5 of the header comment). `durable`
 * makes the writes of steps 3 and 4 durable (elsewhere, while this yields); without it
 * they are synced here. `fresh`: frames this commit allocated (a new record's), freed if
 * it fails before committing.
 */
function* publishSteps(store: BackingStore, loaded: LoadedCatalog, next: Catalog, fresh: number[],
  durable?: MakeDurable): Generator<void, void> {
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
    if (durable) {
      store.flushCaches();
      yield* durable();
    } else store.sync();
  } catch (err) {
    undo();
    throw err;
  }
  // If this throws, the frames of this commit are left allocated: see the header comment.
  const pointer = catalogPointer(rootFrames[0], zlib.crc32(root));
  if (durable) yield* store.commitCatalogSteps(pointer, durable);
  else store.commitCatalog(pointer);
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
 * (the engine serves faults between), and so does `durable` while the syncs run
 * elsewhere (without it they run here); writing the record does not yield. The catalog
 * must not change between the first step and the last (the engine commits one snapshot
 * at a time, and prunes after).
 */
export function* commitSnapshotSteps(store: BackingStore, loaded: LoadedCatalog, record: SnapshotRecord,
  durable?: MakeDurable): Generator<void, void> {
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
  let written = false;
  try {
    yield* writeChainSteps((f, bytes) => store.writeFrame(f, bytes), data, frames);
    written = true;
  } finally {
    // A write that threw, or steps closed between frames: the record's frames are free again.
    if (!written) for (const f of frames) store.freeFrame(f);
  }
  const records = [...catalog.records, entry].sort((a, b) => a.id - b.id);
  yield* publishSteps(store, loaded, { records, nextId: Math.max(catalog.nextId, record.id + 1) }, frames, durable);
}

/**
 * Commits the catalog without the snapshots `ids` and returns their records (read back
 * from the backing), ascending id, so the engine can drop their page references and
 * free the page frames no longer used; the records' own frames are freed here. An id
 * not in the catalog: UnknownSnapshotError, nothing changed.
 */
export function deleteSnapshots(store: BackingStore, loaded: LoadedCatalog, ids: number[]): SnapshotRecord[] {
  return drain(deleteSnapshotsSteps(store, loaded, ids));
}

/** deleteSnapshots with publishSteps' `durable` (the engine's --keep: its syncs elsewhere). */
export function* deleteSnapshotsSteps(store: BackingStore, loaded: LoadedCatalog, ids: number[],
  durable?: MakeDurable): Generator<void, SnapshotRecord[]> {
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
  yield* publishSteps(store, loaded, { records: catalog.records.filter((e) => !drop.has(e.id)), nextId: catalog.nextId }, [], durable);
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

/** Commits the catalog as it is: a new superblock generation naming a new copy of the root. */
export function republish(store: BackingStore, loaded: LoadedCatalog): void {
  publish(store, loaded, { records: loaded.catalog.records, nextId: loaded.catalog.nextId }, []);
}

/** The engine's view of one node's catalog (engine.ts NodeCatalog). */
export class SnapshotCatalog {
  constructor(readonly store: BackingStore, readonly loaded: LoadedCatalog) {}

  commitSteps(record: SnapshotRecord, durable: MakeDurable): Generator<void, void> {
    return commitSnapshotSteps(this.store, this.loaded, record, durable);
  }

  removeSteps(ids: number[], durable: MakeDurable): Generator<void, SnapshotRecord[]> {
    return deleteSnapshotsSteps(this.store, this.loaded, ids, durable);
  }
}
