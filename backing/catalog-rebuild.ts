// Rebuilding a damaged catalog root (`numactlx repair`, reliability issue item 6). The
// root is the one place that lists the snapshots, so a damaged one — its checksum wrong,
// its chain broken — made every snapshot unreadable, although each record is
// self-contained and has its own CRC32 in the root entry that names it. The rebuilt
// root lists every snapshot whose record still reads back verified, found through:
//
//   1. the damaged root itself, read without its checksum: an entry (id, first frame,
//      length, record CRC) whose record reads back with that CRC is right — a damaged
//      entry cannot be verified by the very record it misnames;
//   2. the root the other superblock copy commits (the commit before this one; the next
//      root is written over the root before *that*, never over it), checked by its CRC,
//      for an id whose entry in the damaged root does not verify.
//
// A snapshot the previous root lists and the damaged one does not was deleted by the
// last commit, and stays deleted — unless the damaged root's listing is itself incomplete
// (its count or its chain is what was damaged), when it is kept: resurrecting a deleted
// snapshot is the lesser harm, and `verify` checks its pages. Ids are never given twice:
// the next id is above every id either root names and both roots' next ids. The layout
// is drawn in catalog.ts.
import { BackingError } from './errors.js';
import { FRAME_SIZE } from './format.js';
import { chainFrames, readRecordChain, readRootChain, type CatalogImage, type FrameReader } from './catalog-image.js';
import { CatalogFormatError } from './catalog-bytes.js';
import { MAX_ENTRIES, parsePointer, ROOT_ENTRY, ROOT_HEADER, rootLength, type Root, type RootEntry } from './catalog-root-codec.js';

/** What rebuilding the root found. */
export interface RootRebuild {
  image: CatalogImage;
  /** The snapshots the rebuilt root lists, and which root's entry each was read through. */
  kept: Array<{ id: number; from: 'root' | 'previous root' }>;
  /** Snapshots the damaged root (or, where it is incomplete, the previous one) named whose record does not read. */
  lost: Array<{ id: number; reason: string }>;
}

/** The damaged root as far as it reads: its entries, its next id, whether the listing is whole. */
interface LooseRoot {
  entries: RootEntry[];
  nextId: number;
  complete: boolean;
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** Reads the chain at `first` for as long as it links sanely, and its entries, without any checksum. */
function readLoosely(reader: FrameReader, first: number): LooseRoot {
  const frame = Buffer.alloc(FRAME_SIZE);
  const parts: Buffer[] = [];
  const seen = new Set<number>();
  let next = first;
  let ended = false;
  while (parts.length < chainFrames(rootLength(MAX_ENTRIES))) {
    if (!(Number.isInteger(next) && next >= 0 && next < reader.frameCount) || seen.has(next)) break;
    seen.add(next);
    try {
      reader.readFrame(next, frame);
    } catch (err) {
      if (err instanceof BackingError) break; // a frame that cannot be read: the listing ends there
      throw err;
    }
    parts.push(Buffer.from(frame.subarray(4)));
    const link = frame.readUInt32LE(0);
    if (link === 0) { ended = true; break; }
    next = link - 1;
  }
  const data = Buffer.concat(parts);
  if (data.length < ROOT_HEADER) return { entries: [], nextId: 0, complete: false };
  const count = data.readUInt32LE(12);
  const entries: RootEntry[] = [];
  let gaps = false;
  for (let i = 0, off = ROOT_HEADER; off + ROOT_ENTRY <= data.length; i++, off += ROOT_ENTRY) {
    const slot = data.subarray(off, off + ROOT_ENTRY);
    // The zero padding after the last entry (ids start at 1), once the count is reached.
    if (isZero(slot)) {
      if (i >= count) break;
      gaps = true;
      continue;
    }
    entries.push({ id: slot.readUInt32LE(0), frame: slot.readUInt32LE(4), length: Number(slot.readBigUInt64LE(8)), crc: slot.readUInt32LE(16) });
  }
  const complete = ended && !gaps && entries.length === count && parts.length === chainFrames(rootLength(count));
  return { entries, nextId: data.readUInt32LE(16), complete };
}

/** The root `pointer` commits, checked as a loader would; undefined when it does not read. */
function readRoot(reader: FrameReader, pointer: bigint | undefined): Root | undefined {
  try {
    const at = pointer === undefined ? undefined : parsePointer(pointer);
    return at && readRootChain(reader, at, new Set()).root;
  } catch (err) {
    if (err instanceof CatalogFormatError || err instanceof BackingError) return undefined;
    throw err;
  }
}

/**
 * Rebuilds the catalog committed by `pointer` (whose root is damaged) from its records,
 * with the root `previous` commits (the other superblock copy's catalog field) as the
 * second source; see the header comment. The image has no root frames: the caller
 * commits a new root.
 */
export function rebuildImage(reader: FrameReader, pointer: bigint, previous: bigint | undefined): RootRebuild {
  let at: { frame: number } | undefined;
  try {
    at = parsePointer(pointer);
  } catch {
    at = undefined;
  }
  const damaged = at ? readLoosely(reader, at.frame) : { entries: [], nextId: 0, complete: false };
  const before = readRoot(reader, previous);
  const newest = new Map(damaged.entries.map((e) => [e.id, e]));
  const older = new Map((before?.entries ?? []).map((e) => [e.id, e]));
  const ids = [...new Set([...newest.keys(), ...(damaged.complete ? [] : older.keys())])].sort((a, b) => a - b);

  let taken = new Set<number>();
  const image: CatalogImage = { root: { nextId: 0, entries: [] }, rootFrames: [], records: [], damaged: [] };
  const kept: RootRebuild['kept'] = [];
  const lost: RootRebuild['lost'] = [];
  for (const id of ids) {
    let why = '';
    for (const [from, entry] of [['root', newest.get(id)], ['previous root', older.get(id)]] as const) {
      if (!entry) continue;
      const trial = new Set(taken);
      try {
        const blob = readRecordChain(reader, entry, trial);
        image.records.push({ entry, frames: blob.frames, data: blob.data });
        kept.push({ id, from });
        taken = trial;
        why = '';
        break;
      } catch (err) {
        if (!(err instanceof CatalogFormatError || err instanceof BackingError)) throw err;
        why ||= `snapshot ${id} (record at frame ${entry.frame}): ${err.message}`;
      }
    }
    if (why) lost.push({ id, reason: why });
  }
  const highest = Math.max(0, ...newest.keys(), ...older.keys());
  image.root = { nextId: Math.max(highest + 1, damaged.nextId, before?.nextId ?? 0), entries: image.records.map((r) => r.entry) };
  return { image, kept, lost };
}
