// Reading a backing's committed snapshots without owning it, for the offline verbs
// (snapshots, verify, export, diff), also while a session runs on it.
//
// No lock is taken and nothing is written: the medium is opened O_RDONLY (a /dev/dax
// device, which has no read(2), is mapped PROT_READ). The superblock is read once, and
// only what it committed is followed, down the checksum chain drawn in catalog.ts, and
// read completely at open: the root and every record.
//
// Why that is a consistent view: a session never writes a frame its newest committed
// superblock references, but once it commits again it may reuse the frames of the
// commit before (the old root becomes the next root's spare; a deleted record's frames
// are freed). A reader that picked a superblock just before such a commit can so find
// a root or record overwritten under it — which its CRC32 (held by the level above)
// then fails. On a mismatch the superblock is read again: a newer generation means a
// commit raced the read, and the whole catalog is read again from it (up to
// MAX_ATTEMPTS times); the same generation means the catalog really is corrupt. The
// result is always exactly one commit's catalog, the old or the new one, never a mix.
//
// Page frames are read when asked (readFrame), not at open: a snapshot a session deletes
// after the source opened can have its frames reused, which only the page CRCs in its
// record reveal (verify checks them).
import fs from 'node:fs';
import { daxInfo } from './dax.js';
import { BackingError, fail, InspectError } from './errors.js';
import { FRAME_SIZE, SLOT_SIZE, FormatError, type Superblock } from './format.js';
import { examineSuperblocks, type ExaminedSuperblocks, type SuperblockCopy } from './superblock-copies.js';
import { inspectBacking, type BackingTarget } from './inspect.js';
import { CatalogCorruption, corruptCatalog, decodeImage, readImage, type DamagedRecord, type FrameReader } from './catalog-image.js';
import { SysError } from '../src/sys/libc.js';
import { close, open, pread, O_CLOEXEC, O_NOFOLLOW, O_RDONLY } from '../src/sys/fcntl.js';
import { addressView, mmap, munmap, MAP_SHARED, PROT_READ } from '../src/sys/mman.js';
import type { SnapshotRecord, SnapshotSource } from './record-types.js';

/** Reads of the catalog before giving up on a backing whose sessions keep committing. */
const MAX_ATTEMPTS = 20;

interface ReadOnlyMedium {
  /** Bytes the medium has. */
  readonly size: bigint;
  /** Fills `out` from `offset` (zeros past the end of a file). */
  read(offset: bigint, out: Buffer): void;
  close(): void;
}

function symlinkError(path: string, cause: unknown): BackingError {
  return new BackingError(path, 'symlink', `${path} is a symbolic link; numactlx does not follow links to a backing file`,
    { cause });
}

function openMedium(path: string): ReadOnlyMedium {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new BackingError(path, 'io', `backing ${path}: ${code} while opening it`, { cause: err });
  }
  if (stat.isCharacterDevice()) {
    const dax = daxInfo(path, stat);
    if (dax === undefined) throw new BackingError(path, 'unsupported', `${path} is a character device that is not /dev/dax`);
    let addr: bigint;
    try {
      const fd = open(path, O_RDONLY | O_CLOEXEC);
      try {
        // SAFETY: a read-only mapping of the whole device (its size is a multiple of its
        // alignment), this medium's own; it lives until close(), and read() stays inside it.
        addr = mmap(0n, dax.size, PROT_READ, MAP_SHARED, fd, 0n);
      } finally {
        close(fd); // the mapping keeps the device open
      }
    } catch (err) {
      throw fail(path, err, 'opening it');
    }
    return {
      size: dax.size,
      read(offset, out): void {
        if (offset < 0n || offset + BigInt(out.length) > dax.size) throw new RangeError(`read past the end of ${path}`);
        out.set(new Uint8Array(addressView(addr + offset, out.length)));
      },
      close: () => munmap(addr, dax.size),
    };
  }
  if (!stat.isFile()) throw new BackingError(path, 'unsupported', `${path} is not a regular file or a /dev/dax device`);
  let fd: number;
  try {
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  } catch (err) {
    if (err instanceof SysError && err.code === 'ELOOP') throw symlinkError(path, err);
    throw fail(path, err, 'opening it');
  }
  // Files (also on tmpfs and hugetlbfs, which has read(2) but not write(2)) by pread: it
  // sees the session's stores through its shared mapping, and a hole reads as zeros
  // without allocating a huge page.
  return {
    size: BigInt(fs.fstatSync(fd).size),
    read(offset, out): void {
      const n = pread(fd, out, offset);
      out.fill(0, n);
    },
    close: () => close(fd),
  };
}

function readSuperblock(path: string, medium: ReadOnlyMedium): Superblock {
  return examine(path, medium).sb;
}

/** Both superblock copies judged (superblock-copies.ts); the one to read is `sb`. */
function examine(path: string, medium: ReadOnlyMedium): ExaminedSuperblocks {
  const slots = Buffer.alloc(2 * SLOT_SIZE);
  try {
    medium.read(0n, slots);
    const examined = examineSuperblocks(slots, (candidate) => frameReader(medium, candidate));
    const sb = examined.sb;
    if (sb.size > medium.size) {
      throw new BackingError(path, 'too-small', `${path}: too small: its superblock records ${sb.size} bytes, ` +
        `the medium has ${medium.size}`);
    }
    return examined;
  } catch (err) {
    throw err instanceof FormatError || err instanceof SysError ? fail(path, err, 'reading its superblock') : err;
  }
}

function frameReader(medium: ReadOnlyMedium, sb: Superblock): FrameReader {
  return {
    frameCount: Number(sb.frameCount),
    readFrame: (f, out) => medium.read(sb.dataOffset + BigInt(f) * BigInt(FRAME_SIZE), out.subarray(0, FRAME_SIZE)),
  };
}

function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** The superblock and the snapshots of one commit (see the header comment). */
interface Consistent { sb: Superblock; records: SnapshotRecord[]; examined: ExaminedSuperblocks; damaged: DamagedRecord[] }

function readConsistent(path: string, medium: ReadOnlyMedium): Consistent {
  for (let attempt = 1; ; attempt++) {
    const examined = examine(path, medium);
    const { sb } = examined;
    try {
      const image = readImage(frameReader(medium, sb), sb.catalog);
      const records = image ? decodeImage(image, Number(sb.frameCount)) : [];
      const damaged = image ? image.damaged : [];
      // A record that fails its checks while a session commits may only have had its
      // frames reused after a newer commit: damage counts only if the commit read is
      // still the one in force.
      if (damaged.length > 0 && readSuperblock(path, medium).generation !== sb.generation && attempt < MAX_ATTEMPTS) {
        pause(Math.min(50, attempt * 2));
        continue;
      }
      return { sb, examined, records, damaged };
    } catch (err) {
      if (!(err instanceof CatalogCorruption)) throw err;
      if (readSuperblock(path, medium).generation === sb.generation) throw corruptCatalog(path, err);
      if (attempt === MAX_ATTEMPTS) {
        throw new BackingError(path, 'io', `${path}: its catalog changed ${MAX_ATTEMPTS} times while it was read`,
          { cause: err });
      }
      pause(Math.min(50, attempt * 2));
    }
  }
}

class CatalogSource implements SnapshotSource {
  private closed = false;

  readonly superblocks: { copies: SuperblockCopy[]; damage?: string };

  readonly damaged: ReadonlyArray<{ id: number; reason: string }>;

  constructor(readonly path: string, private readonly medium: ReadOnlyMedium, private readonly sb: Superblock,
    private readonly records: SnapshotRecord[], examined: ExaminedSuperblocks, damaged: DamagedRecord[]) {
    this.superblocks = { copies: examined.copies, damage: examined.damage };
    this.damaged = damaged.map((d) => ({ id: d.entry.id, reason: d.reason }));
  }

  snapshots(): SnapshotRecord[] {
    return this.records.slice();
  }

  readFrame(frame: number, out?: Buffer): Buffer {
    if (this.closed) throw new BackingError(this.path, 'io', `backing ${this.path} is closed`);
    const count = Number(this.sb.frameCount);
    if (!Number.isInteger(frame) || frame < 0 || frame >= count) {
      throw new RangeError(`frame ${frame} is outside the backing (0 … ${count - 1})`);
    }
    if (out !== undefined && out.length < FRAME_SIZE) throw new RangeError(`readFrame: a ${out.length}-byte buffer`);
    const buf = out ?? Buffer.alloc(FRAME_SIZE);
    frameReader(this.medium, this.sb).readFrame(frame, buf);
    return buf;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.medium.close();
  }
}

/**
 * The committed snapshots of the backing at `path`, read without its lock (a session
 * may own it). Throws BackingError: not a backing, corrupt superblock or catalog, …
 */
export function openSnapshotSource(path: string): SnapshotSource {
  const medium = openMedium(path);
  try {
    const { sb, records, examined, damaged } = readConsistent(path, medium);
    return new CatalogSource(path, medium, sb, records, examined, damaged);
  } catch (err) {
    medium.close();
    throw err;
  }
}

/**
 * The target to open an existing backing with as it is: never one to create (a missing
 * or empty file is refused, not formatted), nor to grow (its recorded size, which on a
 * /dev/dax device can be less than the device's). Throws BackingError.
 */
export function openBackingTarget(path: string): BackingTarget {
  const target = inspectTarget(path);
  const medium = openMedium(path);
  try {
    const recorded = readSuperblock(path, medium).size;
    return recorded < target.size ? { ...target, size: recorded } : target;
  } finally {
    medium.close();
  }
}

function inspectTarget(path: string): BackingTarget {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new BackingError(path, 'io', `backing ${path}: ${code} while opening it`, { cause: err });
  }
  if (stat.isFile() && stat.size === 0) throw new BackingError(path, 'foreign', `${path} is not a numactlx backing (empty)`);
  try {
    return inspectBacking(path);
  } catch (err) {
    if (!(err instanceof InspectError)) throw err;
    const foreign = err.foreign;
    throw new BackingError(path, foreign ? 'foreign' : 'unsupported',
      foreign ? `${path} is not a numactlx backing (bad magic)` : `${path}: ${err.message}`, { cause: err });
  }
}
