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
//   A record (catalog-record-codec.ts encodes it):
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
// Writing it (one writer holding the lock; the commit protocol and the spare frames) is
// catalog-commit.ts's; `numactlx rm` and `numactlx repair` without a session are
// catalog-offline.ts's. Readers (catalog-source.ts) take no lock: see there.
import type { BackingStore } from './store.js';
import { rootLength, type RootEntry } from './catalog-root-codec.js';
import {
  CatalogCorruption, chainFrames, corruptCatalog, decodeImage, readImage, type CatalogImage,
  type FrameReader,
  type DamagedRecord,
} from './catalog-image.js';
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

/** The store's frames as a catalog-image.ts FrameReader. */
export function storeReader(store: BackingStore): FrameReader {
  return { frameCount: store.frameCount, readFrame: (f, out) => store.readFrame(f, out) };
}

/**
 * Keeps frames for the next root (n + 1 entries): frees extra spares, allocates missing
 * ones if it can (why there are spares: catalog-commit.ts).
 */
export function tidySpares(store: BackingStore, loaded: LoadedCatalog): void {
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

/** loadCatalog, once the image is read (or rebuilt: catalog-rebuild.ts). */
export function loadImage(store: BackingStore, image: CatalogImage | undefined): LoadedCatalog {
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
