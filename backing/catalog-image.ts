// A committed catalog as stored: the chains of frames that hold the root and the
// records, written and read back with their checksums verified. Both sides use it: the
// session through its store (catalog.ts: kernel copies, so a truncated file is an error,
// not a SIGBUS), the offline readers through pread or a read-only mapping
// (catalog-source.ts). The layout is drawn in catalog.ts.
import zlib from 'node:zlib';
import { BackingError } from './errors.js';
import { drain } from './steps.js';
import { FRAME_SIZE } from './format.js';
import { CatalogFormatError } from './catalog-bytes.js';
import { decodeRecord } from './catalog-record-codec.js';
import { decodeRoot, parsePointer, rootLengthOf, ROOT_HEADER, type Root, type RootEntry } from './catalog-root-codec.js';
import type { SnapshotRecord } from './record-types.js';

/** Bytes of a blob per frame of its chain: the first 4 bytes link to the next frame. */
export const CHAIN_PAYLOAD = FRAME_SIZE - 4;

/** Frames a blob of `length` bytes takes. */
export function chainFrames(length: number): number {
  return Math.max(1, Math.ceil(length / CHAIN_PAYLOAD));
}

/** How a catalog's frames are read: into `out` (FRAME_SIZE bytes). */
export interface FrameReader {
  readonly frameCount: number;
  readFrame(frame: number, out: Buffer): void;
}

/** Writes `data` into the chain `frames` (chainFrames(data.length) of them), a frame at a time with `write`. */
export function writeChain(write: (frame: number, bytes: Buffer) => void, data: Buffer, frames: readonly number[]): void {
  drain(writeChainSteps(write, data, frames));
}

/** Frames of a chain written per step of writeChainSteps (into fresh page-cache pages: ≈ 0.1 ms a frame here). */
const CHAIN_STEP_FRAMES = 16;

/** writeChain in steps of CHAIN_STEP_FRAMES frames (a snapshot record of 78 frames: one engine step of 9–11 ms, pinned beside redis-server). */
export function* writeChainSteps(write: (frame: number, bytes: Buffer) => void, data: Buffer, frames: readonly number[]): Generator<void, void> {
  if (frames.length !== chainFrames(data.length)) {
    throw new RangeError(`writeChain: ${frames.length} frames for ${data.length} bytes`);
  }
  const frame = Buffer.alloc(FRAME_SIZE);
  for (let i = 0; i < frames.length; i++) {
    if (i > 0 && i % CHAIN_STEP_FRAMES === 0) yield;
    frame.writeUInt32LE(i + 1 < frames.length ? frames[i + 1] + 1 : 0, 0);
    const n = data.copy(frame, 4, i * CHAIN_PAYLOAD, (i + 1) * CHAIN_PAYLOAD);
    frame.fill(0, 4 + n);
    write(frames[i], frame);
  }
}

/** A blob read back: its bytes and the frames of its chain. */
export interface ChainBlob {
  data: Buffer;
  frames: number[];
}

/**
 * Reads the blob of `length` bytes whose chain starts at `first`. `taken` holds the
 * frames of the chains read so far: a frame in two chains (or twice in one: a loop) is
 * corruption. `lengthOf`, when given, gives the length from the first ROOT_HEADER bytes.
 */
export function readChain(reader: FrameReader, first: number, length: number | ((head: Buffer) => number),
  taken: Set<number>): ChainBlob {
  const frame = Buffer.alloc(FRAME_SIZE);
  const frames: number[] = [];
  let data = Buffer.alloc(0);
  let count = 1; // frames in the chain, known once the length is
  let next = first;
  for (let i = 0; i < count; i++) {
    if (!(Number.isInteger(next) && next >= 0 && next < reader.frameCount)) {
      throw new CatalogFormatError(`frame ${next} of its chain is outside the backing (${reader.frameCount} frames)`);
    }
    if (taken.has(next)) throw new CatalogFormatError(`frame ${next} is linked twice`);
    taken.add(next);
    frames.push(next);
    reader.readFrame(next, frame);
    if (i === 0) {
      const total = typeof length === 'number' ? length : length(frame.subarray(4, 4 + ROOT_HEADER));
      count = chainFrames(total);
      if (count > reader.frameCount) throw new CatalogFormatError(`${total} bytes do not fit the backing`);
      data = Buffer.alloc(total);
    }
    const done = i * CHAIN_PAYLOAD;
    frame.copy(data, done, 4, 4 + Math.min(CHAIN_PAYLOAD, data.length - done));
    const link = frame.readUInt32LE(0);
    if (i + 1 === count && link !== 0) throw new CatalogFormatError(`chain goes on after its ${data.length} bytes (frame ${next})`);
    if (i + 1 < count && link === 0) throw new CatalogFormatError(`chain ends at frame ${next} before its ${data.length} bytes`);
    next = link - 1;
  }
  return { data, frames };
}

/**
 * A record the root lists that cannot be read (its chain broken, its checksum wrong, its
 * contents malformed): only that snapshot is lost. `frames`: its chain, when it could be
 * followed (kept allocated until `numactlx repair` drops the record).
 */
export interface DamagedRecord {
  entry: RootEntry;
  frames: number[];
  /** "snapshot 3 (record at frame 17): checksum mismatch (…)" */
  reason: string;
}

/** What to do about a damaged record, as every message about one ends. */
export function repairHint(path: string): string {
  return `numactlx repair ${path} drops it`;
}

/** A committed catalog read back and verified, records still encoded. */
export interface CatalogImage {
  root: Root;
  rootFrames: number[];
  records: Array<{ entry: RootEntry; frames: number[]; data: Buffer }>;
  /** Records that failed their checks (decodeImage adds those that fail to decode). */
  damaged: DamagedRecord[];
}

/** CatalogFormatError with where it was found, for the loader's message. */
export class CatalogCorruption extends Error {
  readonly where: string;

  constructor(where: string, cause: CatalogFormatError) {
    super(`${where}: ${cause.message}`, { cause });
    this.name = 'CatalogCorruption';
    this.where = where;
  }
}

/** The catalog's corruption as the backing's error (a damaged root: with what rebuilds it). */
export function corruptCatalog(path: string, err: CatalogCorruption): BackingError {
  const hint = err.where.startsWith('root') ? `; numactlx repair ${path} rebuilds it from the records that still read` : '';
  return new BackingError(path, 'corrupt', `catalog of ${path} is corrupt: ${err.message}${hint}`, { cause: err });
}

function at<T>(where: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof CatalogFormatError) throw new CatalogCorruption(where, err);
    throw err;
  }
}

function crcCheck(data: Buffer, crc: number): void {
  const found = zlib.crc32(data);
  if (found !== crc) {
    throw new CatalogFormatError(`checksum mismatch (CRC32 ${found.toString(16)}, recorded ${crc.toString(16)})`);
  }
}

/**
 * Reads the catalog the superblock field `pointer` commits: the root (checked against
 * the CRC in the pointer), then every record (checked against the CRC in the root).
 * Undefined when there is no catalog. Throws CatalogCorruption.
 */
export function readImage(reader: FrameReader, pointer: bigint): CatalogImage | undefined {
  const at0 = at('catalog field', () => parsePointer(pointer));
  if (at0 === undefined) return undefined;
  const taken = new Set<number>();
  const { root, rootFrames } = at(`root (frame ${at0.frame})`, () => readRootChain(reader, at0, taken));
  // A damaged record costs that snapshot only: the others are read on.
  const records: CatalogImage['records'] = [];
  const damaged: DamagedRecord[] = [];
  for (const entry of root.entries) {
    const where = `snapshot ${entry.id} (record at frame ${entry.frame})`;
    const chain: number[] = [];
    try {
      const blob = readRecordChain(reader, entry, taken, chain);
      records.push({ entry, frames: blob.frames, data: blob.data });
    } catch (err) {
      if (!(err instanceof CatalogFormatError)) throw err;
      damaged.push({ entry, frames: chain, reason: `${where}: ${err.message}` });
    }
  }
  return { root, rootFrames, records, damaged };
}

/** The root at `pointer` (the catalog field, parsed), checked against the CRC it holds. Throws CatalogFormatError. */
export function readRootChain(reader: FrameReader, pointer: { frame: number; crc: number }, taken: Set<number>): { root: Root; rootFrames: number[] } {
  const blob = readChain(reader, pointer.frame, rootLengthOf, taken);
  crcCheck(blob.data, pointer.crc);
  return { root: decodeRoot(blob.data), rootFrames: blob.frames };
}

/**
 * A record's chain, checked against the CRC its root entry holds. Throws
 * CatalogFormatError; `chain` gets the frames of a chain that could be followed even then.
 */
export function readRecordChain(reader: FrameReader, entry: RootEntry, taken: Set<number>, chain: number[] = []): ChainBlob {
  const blob = readChain(reader, entry.frame, entry.length, taken);
  chain.push(...blob.frames);
  crcCheck(blob.data, entry.crc);
  return blob;
}

/**
 * Decodes the records of an image, checking each against its entry, and that no page
 * uses a frame of the catalog itself. Throws CatalogCorruption.
 */
export function decodeImage(image: CatalogImage, frameCount: number): SnapshotRecord[] {
  const meta = new Set<number>(image.rootFrames);
  for (const r of image.records) for (const f of r.frames) meta.add(f);
  for (const d of image.damaged) for (const f of d.frames) meta.add(f);
  const out: SnapshotRecord[] = [];
  for (const r of image.records.splice(0)) {
    try {
      out.push(decodeOne(r, meta, frameCount));
      image.records.push(r);
    } catch (err) {
      // Moved to the damaged: a record that does not decode is lost alone.
      if (!(err instanceof CatalogCorruption)) throw err;
      image.damaged.push({ entry: r.entry, frames: r.frames, reason: err.message });
    }
  }
  image.damaged.sort((a, b) => a.entry.id - b.entry.id);
  return out;
}

function decodeOne({ entry, data }: CatalogImage['records'][number], meta: Set<number>, frameCount: number): SnapshotRecord {
  return at(`snapshot ${entry.id} (record at frame ${entry.frame})`, () => {
    const rec = decodeRecord(data, frameCount);
    if (rec.id !== entry.id) throw new CatalogFormatError(`the record is snapshot ${rec.id}'s`);
    for (const p of rec.processes) {
      for (const page of p.pages) {
        if (meta.has(page.frame)) {
          throw new CatalogFormatError(`page 0x${page.addr.toString(16)} of pid ${p.pid} is in frame ${page.frame}, ` +
            'which holds the catalog');
        }
      }
    }
    return rec;
  });
}

/** Reads one record back from its chain (a record of a loaded catalog, before deleting it). */
export function readRecord(reader: FrameReader, entry: RootEntry): SnapshotRecord {
  return at(`snapshot ${entry.id} (record at frame ${entry.frame})`, () => {
    const blob = readChain(reader, entry.frame, entry.length, new Set());
    crcCheck(blob.data, entry.crc);
    const rec = decodeRecord(blob.data, reader.frameCount);
    if (rec.id !== entry.id) throw new CatalogFormatError(`the record is snapshot ${rec.id}'s`);
    return rec;
  });
}
