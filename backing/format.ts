// The on-media format of a backing: two superblock copies, an owner record, frames.
// Pure functions over Buffers; medium.ts and superblock.ts do the I/O.
//
//   offset        size          content
//   0             4096          superblock slot A  (written when generation % 2 == 0)
//   4096          4096          superblock slot B  (written when generation % 2 == 1)
//   8192          4096          owner record       (advisory: who holds the lock, see lock.ts)
//   12288         ..dataOffset  reserved, zero
//   dataOffset    frameCount×4096  frames 0 … frameCount-1
//
//   dataOffset = max(1 MiB, align) rounded up to align (align: 4 KiB for files and tmpfs,
//   the huge page size on hugetlbfs, the device alignment on /dev/dax — 2 MiB by default),
//   so the frame area can be mapped on its own with the granularity the medium demands.
//
// A superblock slot, all integers little-endian:
//
//   0     8  magic "NUMACTLX"
//   8     4  format version (1)
//   12    4  page size (4096)
//   16    8  backing size in bytes (the part of the file or device numactlx uses)
//   24    8  data offset (where frame 0 starts)
//   32    8  frame count = (size - dataOffset) / pageSize
//   40    8  generation (incremented by every superblock write)
//   48    8  catalog (0 = no catalog yet; the snapshot catalog's location later)
//   56       zero up to 4092 (room for later fields without moving the checksum)
//   4092  4  CRC32 (zlib) of bytes 0 … 4091
//
// A write goes to the slot the new generation selects, so the previous superblock stays
// intact until the new one is complete; opening takes the valid copy with the highest
// generation. A format writes both copies (generations 0 and 1).
//
// The owner record: 0 8 magic "NXOWNER\0", 8 4 pid, 12 4 zero, 16 8 time locked (ms since
// the epoch), 24 4 CRC32 of bytes 0 … 23. A pid of 0 (or no valid record) means unknown.
import zlib from 'node:zlib';
import { PAGE_SIZE } from '../src/sys/page.js';

export const MAGIC = Buffer.from('NUMACTLX', 'latin1');
export const FORMAT_VERSION = 1;
/** Versions above this are read as damage, not as a newer format. */
const MAX_PLAUSIBLE_VERSION = 0xffff;
/** A frame holds one page. */
export const FRAME_SIZE = PAGE_SIZE;
export const SLOT_SIZE = 4096;
export const SLOT_OFFSETS: readonly [bigint, bigint] = [0n, 4096n];
export const OWNER_OFFSET = 8192n;
export const OWNER_SIZE = 4096;
/** Bytes from offset 0 holding the two slots and the owner record. */
export const HEADER_SIZE = 12288n;
/** The smallest data offset: frames start at 1 MiB or later. */
export const MIN_DATA_OFFSET = 1n << 20n;
/** Frames the allocator can index: they are Numbers in a Uint32Array (16 TiB of 4 KiB). */
export const MAX_FRAMES = 0xffff_ffff;

const OWNER_MAGIC = Buffer.from('NXOWNER\0', 'latin1');
const CRC_OFFSET = SLOT_SIZE - 4;
const OWNER_CRC_OFFSET = 24;

export interface Superblock {
  version: number;
  pageSize: number;
  /** Bytes of the file or device the backing uses. */
  size: bigint;
  dataOffset: bigint;
  frameCount: bigint;
  generation: bigint;
  /** Location of the snapshot catalog; 0n = none yet. */
  catalog: bigint;
}

export type FormatErrorReason = 'bad-magic' | 'bad-version' | 'bad-page-size' | 'checksum' | 'too-small' |
  'inconsistent';

/** A superblock that cannot be used; `reason` tells which check failed. */
export class FormatError extends Error {
  readonly reason: FormatErrorReason;
  /** The version found, for 'bad-version'. */
  readonly version?: number;

  constructor(reason: FormatErrorReason, message: string, version?: number) {
    super(message);
    this.name = 'FormatError';
    this.reason = reason;
    if (version !== undefined) this.version = version;
  }
}

function roundUp(n: bigint, align: bigint): bigint {
  return ((n + align - 1n) / align) * align;
}

/** Where frames start on a medium with this alignment. */
export function dataOffsetFor(align: bigint): bigint {
  if (align <= 0n || align % BigInt(FRAME_SIZE) !== 0n) {
    throw new RangeError(`alignment ${align} is not a positive multiple of ${FRAME_SIZE}`);
  }
  return roundUp(align > MIN_DATA_OFFSET ? align : MIN_DATA_OFFSET, align);
}

/** The superblock of a new backing of `size` bytes on a medium with `align`. */
export function newSuperblock(size: bigint, align: bigint): Superblock {
  const dataOffset = dataOffsetFor(align);
  const min = dataOffset + BigInt(FRAME_SIZE);
  if (size < min) {
    throw new FormatError('too-small',
      `too small: ${size} bytes, a backing needs at least ${min} (a ${dataOffset}-byte header and one frame)`);
  }
  return {
    version: FORMAT_VERSION, pageSize: FRAME_SIZE, size, dataOffset,
    frameCount: (size - dataOffset) / BigInt(FRAME_SIZE), generation: 0n, catalog: 0n,
  };
}

/** The slot (0 = A, 1 = B) a superblock of this generation is written to. */
export function slotOf(generation: bigint): 0 | 1 {
  return generation % 2n === 0n ? 0 : 1;
}

/** The 4096 bytes of a superblock slot. */
export function encodeSuperblock(sb: Superblock): Buffer {
  const buf = Buffer.alloc(SLOT_SIZE);
  MAGIC.copy(buf, 0);
  buf.writeUInt32LE(sb.version, 8);
  buf.writeUInt32LE(sb.pageSize, 12);
  buf.writeBigUInt64LE(sb.size, 16);
  buf.writeBigUInt64LE(sb.dataOffset, 24);
  buf.writeBigUInt64LE(sb.frameCount, 32);
  buf.writeBigUInt64LE(sb.generation, 40);
  buf.writeBigUInt64LE(sb.catalog, 48);
  buf.writeUInt32LE(zlib.crc32(buf.subarray(0, CRC_OFFSET)), CRC_OFFSET);
  return buf;
}

/**
 * Reads a superblock slot. The checks run in the order that names the problem best:
 * magic (a foreign file), version (a newer numactlx: its layout may differ, so its
 * checksum is not ours to check), checksum (corrupt), then the fields.
 */
export function decodeSuperblock(buf: Uint8Array): Superblock {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < SLOT_SIZE || !b.subarray(0, 8).equals(MAGIC)) {
    throw new FormatError('bad-magic', 'bad magic');
  }
  const version = b.readUInt32LE(8);
  // A version no numactlx could have written (the field holds text, say) is damage or a
  // file that merely starts with our magic, not a newer numactlx.
  if (version > MAX_PLAUSIBLE_VERSION) throw new FormatError('checksum', `damaged superblock (version field ${version} is not a numactlx version)`);
  if (version !== FORMAT_VERSION) throw new FormatError('bad-version', `unsupported version ${version} (written by a newer numactlx)`, version);
  if (zlib.crc32(b.subarray(0, CRC_OFFSET)) !== b.readUInt32LE(CRC_OFFSET)) {
    throw new FormatError('checksum', 'corrupt superblock (checksum mismatch)');
  }
  const sb: Superblock = {
    version,
    pageSize: b.readUInt32LE(12),
    size: b.readBigUInt64LE(16),
    dataOffset: b.readBigUInt64LE(24),
    frameCount: b.readBigUInt64LE(32),
    generation: b.readBigUInt64LE(40),
    catalog: b.readBigUInt64LE(48),
  };
  if (sb.pageSize !== FRAME_SIZE) {
    throw new FormatError('bad-page-size', `unsupported page size ${sb.pageSize} (numactlx uses ${FRAME_SIZE})`);
  }
  const page = BigInt(FRAME_SIZE);
  if (sb.dataOffset < HEADER_SIZE || sb.dataOffset % page !== 0n) {
    throw new FormatError('inconsistent', `corrupt superblock (data offset ${sb.dataOffset})`);
  }
  if (sb.size < sb.dataOffset + page) {
    throw new FormatError('too-small',
      `too small: ${sb.size} bytes, a backing needs at least ${sb.dataOffset + page}`);
  }
  if (sb.size % page !== 0n || sb.frameCount !== (sb.size - sb.dataOffset) / page) {
    throw new FormatError('inconsistent',
      `corrupt superblock (${sb.frameCount} frames do not match a size of ${sb.size} bytes)`);
  }
  return sb;
}

/**
 * What a slot that failed its checks still says: the fields as written, unchecked, when
 * it carries our magic and version (else undefined). Only for recovery, which must
 * confirm it independently (superblock-copies.ts reads the catalog it names, whose
 * checksums chain down from the pointer).
 */
export function decodeSuperblockUnchecked(buf: Uint8Array): Superblock | undefined {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < SLOT_SIZE || !b.subarray(0, 8).equals(MAGIC) || b.readUInt32LE(8) !== FORMAT_VERSION) return undefined;
  return {
    version: FORMAT_VERSION, pageSize: b.readUInt32LE(12), size: b.readBigUInt64LE(16), dataOffset: b.readBigUInt64LE(24),
    frameCount: b.readBigUInt64LE(32), generation: b.readBigUInt64LE(40), catalog: b.readBigUInt64LE(48),
  };
}

export interface PickedSuperblock {
  superblock: Superblock;
  slot: 0 | 1;
  /** Why the other slot was not used, when it was invalid. */
  otherError?: FormatError;
}

function attempt(buf: Uint8Array): Superblock | FormatError {
  try {
    return decodeSuperblock(buf);
  } catch (err) {
    if (err instanceof FormatError) return err;
    throw err;
  }
}

/**
 * The superblock to use from the two slots: the valid one with the higher generation.
 * Throws the FormatError that says most about the backing when neither is usable: a
 * newer version first (never fall back under a newer numactlx's feet — also when the
 * other copy is valid), then a damaged copy of ours, and bad magic only when neither slot
 * carries the magic.
 */
export function pickSuperblock(slotA: Uint8Array, slotB: Uint8Array): PickedSuperblock {
  const results = [attempt(slotA), attempt(slotB)] as const;
  const newer = results.find((r): r is FormatError => r instanceof FormatError && r.reason === 'bad-version');
  if (newer) throw newer;
  const [a, b] = results;
  if (!(a instanceof FormatError) && !(b instanceof FormatError)) {
    return b.generation > a.generation ? { superblock: b, slot: 1 } : { superblock: a, slot: 0 };
  }
  if (!(a instanceof FormatError)) return { superblock: a, slot: 0, otherError: b as FormatError };
  if (!(b instanceof FormatError)) return { superblock: b, slot: 1, otherError: a };
  if (a.reason !== 'bad-magic') throw a;
  if (b.reason !== 'bad-magic') throw b;
  throw a;
}

/** The owner record naming `pid` as the holder of the lock. */
export function encodeOwner(pid: number, lockedAtMs: number = Date.now()): Buffer {
  const buf = Buffer.alloc(OWNER_SIZE);
  OWNER_MAGIC.copy(buf, 0);
  buf.writeUInt32LE(pid, 8);
  buf.writeBigUInt64LE(BigInt(Math.trunc(lockedAtMs)), 16);
  buf.writeUInt32LE(zlib.crc32(buf.subarray(0, OWNER_CRC_OFFSET)), OWNER_CRC_OFFSET);
  return buf;
}

/** The pid in an owner record, or undefined when there is no valid record (or pid 0). */
export function decodeOwner(buf: Uint8Array): number | undefined {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < OWNER_CRC_OFFSET + 4 || !b.subarray(0, 8).equals(OWNER_MAGIC)) return undefined;
  if (zlib.crc32(b.subarray(0, OWNER_CRC_OFFSET)) !== b.readUInt32LE(OWNER_CRC_OFFSET)) return undefined;
  const pid = b.readUInt32LE(8);
  return pid === 0 ? undefined : pid;
}
