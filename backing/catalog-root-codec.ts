// The snapshot catalog's root as bytes, and the superblock's catalog field that points at
// it: pure functions over Buffers. The layout (byte by byte) and why it is shaped so are
// drawn in catalog.ts; chains of frames and checksums are catalog-image.ts's, the
// snapshot records catalog-record-codec.ts's.
//
// Decoding checks the magic, the version, the count (at most MAX_ENTRIES) and that ids
// ascend and stay below the next id; every failure is a CatalogFormatError.
import { ByteReader, ByteWriter, CatalogFormatError, check } from './catalog-bytes.js';

const ROOT_MAGIC = 'NXCATLG\0';
/** The root's format version (a record has its own: catalog-record-codec.ts). */
const VERSION = 1;
/** The root's fixed part and one entry. */
export const ROOT_HEADER = 24;
export const ROOT_ENTRY = 24;
/** At most this many snapshots per catalog: keeps a corrupt count from asking for gigabytes. */
export const MAX_ENTRIES = 1 << 20;

/** Where one snapshot's record is: its chain's first frame, its length and CRC32. */
export interface RootEntry {
  id: number;
  frame: number;
  length: number;
  crc: number;
}

export interface Root {
  /** The id the next snapshot gets at the least (ids are never reused on a backing). */
  nextId: number;
  /** Ascending id. */
  entries: RootEntry[];
}

/** The superblock's catalog field: 0 = none, else root frame + 1 (low 32) and root CRC32 (high 32). */
export function catalogPointer(frame: number, crc: number): bigint {
  return (BigInt(crc >>> 0) << 32n) | BigInt(frame + 1);
}

/** The root a catalog field points at, or undefined for none. */
export function parsePointer(pointer: bigint): { frame: number; crc: number } | undefined {
  const low = Number(pointer & 0xffff_ffffn);
  if (low === 0) {
    if (pointer !== 0n) throw new CatalogFormatError(`catalog field 0x${pointer.toString(16)} names no frame`);
    return undefined;
  }
  return { frame: low - 1, crc: Number(pointer >> 32n) };
}

export function rootLength(entries: number): number {
  return ROOT_HEADER + entries * ROOT_ENTRY;
}

export function encodeRoot(root: Root): Buffer {
  const w = new ByteWriter(rootLength(root.entries.length));
  w.ascii(ROOT_MAGIC);
  w.u32(VERSION);
  w.u32(root.entries.length);
  w.u32(root.nextId);
  w.u32(0);
  for (const e of root.entries) {
    w.u32(e.id);
    w.u32(e.frame);
    w.u64(e.length);
    w.u32(e.crc);
    w.u32(0);
  }
  return w.done();
}

/** The root's length from its first ROOT_HEADER bytes (magic, version and count checked). */
export function rootLengthOf(head: Buffer): number {
  const r = new ByteReader(head, 'root');
  r.magic(ROOT_MAGIC);
  r.version(VERSION);
  const n = r.u32();
  check(n <= MAX_ENTRIES, `root: ${n} entries (at most ${MAX_ENTRIES})`);
  return rootLength(n);
}

export function decodeRoot(buf: Buffer): Root {
  const length = rootLengthOf(buf);
  check(buf.length === length, `root: ${buf.length} bytes, its count needs ${length}`);
  const r = new ByteReader(buf, 'root');
  r.skip(12);
  const n = r.u32();
  const nextId = r.u32();
  r.skip(4);
  const entries: RootEntry[] = [];
  for (let i = 0; i < n; i++) {
    const e = { id: r.u32(), frame: r.u32(), length: r.u64(), crc: r.u32() };
    r.skip(4);
    if (i > 0 && e.id <= entries[i - 1].id) throw new CatalogFormatError(`root: snapshot ${e.id} after ${entries[i - 1].id}`);
    if (e.id >= nextId) throw new CatalogFormatError(`root: snapshot ${e.id} is not below the next id ${nextId}`);
    entries.push(e);
  }
  return { nextId, entries };
}
