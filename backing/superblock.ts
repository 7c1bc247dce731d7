// The superblock of an opened, locked backing, through its Header: written on a new
// medium, picked from the two copies of an existing one (or written on a dax device by
// `numactlx format`), grown, and advanced one generation at a time. The layout is drawn in
// format.ts; which media may be formatted at all is in store-open.ts.
import type { BackingTarget } from './inspect.js';
import { BackingError } from './errors.js';
import { examineSuperblocks } from './superblock-copies.js';
import {
  FormatError, HEADER_SIZE, SLOT_OFFSETS, SLOT_SIZE, FRAME_SIZE, encodeSuperblock, newSuperblock,
  slotOf, type Superblock,
} from './format.js';
import { checkFrameCount } from './frames.js';
import type { Header } from './medium.js';
import { fallocate, ftruncate } from '../src/sys/fcntl.js';

/** Writes a new backing's two superblock copies (the file is already sized). */
function writeFormat(header: Header, sb: Superblock): void {
  header.write(SLOT_OFFSETS[0], encodeSuperblock({ ...sb, generation: 0n }));
  header.write(SLOT_OFFSETS[1], encodeSuperblock({ ...sb, generation: 1n }));
  header.flush();
}

/**
 * Formats an empty file (or one this call created) as `sb`: sizes it, then writes the
 * superblocks. The header's space is fallocated first: on hugetlbfs the header is
 * written through a mapping, and a missing huge page with none free is a SIGBUS there.
 */
export function formatFile(fd: number, header: Header, sb: Superblock): Superblock {
  ftruncate(fd, sb.size);
  fallocate(fd, 0, 0n, HEADER_SIZE);
  writeFormat(header, sb);
  return { ...sb, generation: 1n };
}

function isZero(buf: Buffer): boolean {
  for (let i = 0; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

/** What `numactlx format` asked for: write a new superblock; `force`: even over a numactlx backing. */
export interface FormatRequest {
  force: boolean;
}

/**
 * Picks the superblock of an existing backing. A /dev/dax device is written only when
 * the user said so (`format`: numactlx format PATH): a device without a numactlx
 * superblock — zeroed or not — is refused otherwise, and a numactlx backing is
 * formatted again only with `force`.
 */
export function adopt(target: BackingTarget, header: Header, mediumSize: bigint, format?: FormatRequest): { sb: Superblock; formatted: boolean; damage?: string } {
  const { path } = target;
  const slots = header.read(0n, 2 * SLOT_SIZE);
  if (format) return formatDevice(target, header, slots, format);
  let sb: Superblock;
  let damage: string | undefined;
  try {
    // A file's catalog can be read through the header's pread; a dax device's header
    // maps only the header: there a damaged copy is reported, not recovered.
    const examined = examineSuperblocks(slots, target.kind === 'dax' ? undefined : (candidate) => ({
      frameCount: Number(candidate.frameCount),
      readFrame: (f, out) => header.read(candidate.dataOffset + BigInt(f) * BigInt(FRAME_SIZE), FRAME_SIZE).copy(out),
    }));
    sb = examined.sb;
    damage = examined.damage;
    if (examined.recovered) {
      // The same superblock, its checksum made whole: the damage is repaired for good.
      header.write(SLOT_OFFSETS[examined.slot], encodeSuperblock(sb));
      header.flush();
    }
  } catch (err) {
    if (!(err instanceof FormatError) || target.kind !== 'dax') throw err;
    const what = isZero(slots) ? 'has no numactlx superblock (its first 8 KiB are zero)'
      : err.reason === 'bad-magic' ? 'is not a numactlx backing (bad magic)' : `has a damaged superblock (${err.message})`;
    throw new BackingError(path, err.reason === 'bad-magic' ? 'foreign' : 'corrupt',
      `${path} ${what}; numactlx writes a /dev/dax device only once told to: numactlx format ${path}`, { cause: err });
  }
  if (sb.size > mediumSize) {
    throw new BackingError(path, 'too-small',
      `${path}: too small: its superblock records ${sb.size} bytes, the ${target.kind === 'dax' ? 'device' : 'file'} has ${mediumSize}`);
  }
  return { sb, formatted: false, damage };
}

/** `numactlx format` on a device: a new superblock (both copies), over a numactlx backing only with force. */
function formatDevice(target: BackingTarget, header: Header, slots: Buffer, { force }: FormatRequest): { sb: Superblock; formatted: boolean } {
  let existing: Superblock | undefined;
  try {
    existing = examineSuperblocks(slots).sb;
  } catch {
    existing = undefined; // zeroed, foreign or damaged: the user asked for a format
  }
  if (existing && !force) {
    throw new BackingError(target.path, 'in-use', `${target.path} is a numactlx backing already (superblock generation ` +
      `${existing.generation}${existing.catalog !== 0n ? ', with snapshots' : ''}); numactlx format --force erases it`);
  }
  const sb = newSuperblock(target.size, target.align);
  checkFrameCount(target.path, sb);
  writeFormat(header, sb);
  return { sb: { ...sb, generation: 1n }, formatted: true };
}

/** Grows a backing to target.size: the medium first, then a new superblock. */
export function grow(target: BackingTarget, fd: number, header: Header, sb: Superblock, mediumSize: bigint): Superblock {
  if (target.kind !== 'dax' && mediumSize < target.size) {
    ftruncate(fd, target.size);
    header.flush(); // the new size is durable before a superblock relies on it
  }
  const grown = { ...sb, size: target.size, frameCount: (target.size - sb.dataOffset) / BigInt(FRAME_SIZE) };
  checkFrameCount(target.path, grown);
  return writeNext(header, sb, grown);
}

/**
 * Writes `next` as generation sb.generation + 1 into the slot that selects; flushed
 * unless `flush` is false (the caller makes it durable: BackingStore.commitCatalogSteps).
 */
export function writeNext(header: Header, sb: Superblock, next: Superblock, flush = true): Superblock {
  const written = { ...next, generation: sb.generation + 1n };
  header.write(SLOT_OFFSETS[slotOf(written.generation)], encodeSuperblock(written));
  if (flush) header.flush();
  return written;
}
