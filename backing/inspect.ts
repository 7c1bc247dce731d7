// What a --remap path is before numactlx opens it: a file to create, an existing
// file, a tmpfs/hugetlbfs file or a /dev/dax device; its size, the alignment a node
// size must respect, and the space the filesystem has left. Nothing is created or
// opened for writing here.
import fs from 'node:fs';
import path from 'node:path';
import { daxInfo } from './dax.js';
import { InspectError } from './errors.js';
import { FRAME_SIZE, MAGIC, MAX_FRAMES, dataOffsetFor } from './format.js';

/** The frame size of every backing (DESIGN.md §3.2), for bigint sizes. */
const PAGE_SIZE = BigInt(FRAME_SIZE);

const TMPFS_MAGIC = 0x01021994;
const HUGETLBFS_MAGIC = 0x958458f6;
/**
 * Kernel pseudo-filesystems (<linux/magic.h>): their files look regular (size 0) but are
 * windows on kernel state — /proc/self/mem is another process's memory — never storage.
 */
const PSEUDO_FS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, 'proc'], [0x62656572, 'sysfs'], [0x64626720, 'debugfs'], [0x74726163, 'tracefs'],
  [0x27e0eb, 'cgroup'], [0x63677270, 'cgroup2'], [0x73636673, 'securityfs'], [0x62656570, 'configfs'],
  [0xcafe4a11, 'bpf'], [0x6e736673, 'nsfs'], [0x50495045, 'pipefs'], [0x42494e4d, 'binfmt_misc'],
  [0xde5e81e4, 'efivarfs'], [0x1cd1, 'devpts'],
]);

export type BackingKind = 'file' | 'tmpfs' | 'hugetlbfs' | 'dax';

export interface BackingTarget {
  path: string;
  kind: BackingKind;
  exists: boolean;
  /** The node's size: size= when given, otherwise the file's or device's size. */
  size: bigint;
  /** What sizes must be multiples of: the page size, dax align or huge page size. */
  align: bigint;
  /** Bytes the node can still take without running out of space. */
  free: bigint;
}

/**
 * The node's capacity: the backing's size less its metadata area (superblocks and,
 * later, the catalog) — what --hardware reports as the node's size.
 */
export function nodeCapacity(target: BackingTarget): bigint {
  const data = dataOffsetFor(target.align > PAGE_SIZE ? target.align : PAGE_SIZE);
  return target.size > data ? target.size - data : 0n;
}

function errnoCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? 'EIO';
}

function fsKind(dir: string): { kind: BackingKind; align: bigint; avail: bigint } {
  const st = fs.statfsSync(dir, { bigint: true });
  const avail = st.bavail * st.bsize;
  if (Number(st.type) === HUGETLBFS_MAGIC) return { kind: 'hugetlbfs', align: st.bsize, avail };
  if (Number(st.type) === TMPFS_MAGIC) return { kind: 'tmpfs', align: PAGE_SIZE, avail };
  return { kind: 'file', align: PAGE_SIZE, avail };
}

function hasMagic(file: string): boolean {
  const head = Buffer.alloc(MAGIC.length);
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    return fs.readSync(fd, head, 0, head.length, 0) === head.length && head.equals(MAGIC);
  } catch {
    return false;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** `subject` names where the size came from: size= ("size") or an existing file ("the file's size"). */
function checkAligned(size: bigint, align: bigint, what: string, subject = 'size'): void {
  if (size === 0n) throw new InspectError(`size must not be zero`);
  if (size % align !== 0n) {
    throw new InspectError(`${subject} ${size} is not a multiple of the ${what} (${align} bytes)`);
  }
  const least = dataOffsetFor(align > PAGE_SIZE ? align : PAGE_SIZE) + PAGE_SIZE;
  if (size < least) {
    throw new InspectError(`${subject} ${size} is too small: a backing needs at least ${least} bytes (its metadata area and one 4 KiB frame)`);
  }
  // Said here, before anything is created: the allocator's limit (backing/frames.ts).
  const most = least - PAGE_SIZE + BigInt(MAX_FRAMES) * PAGE_SIZE;
  if (size > most) {
    throw new InspectError(`${subject} ${size} is too large: a backing holds at most ${most} bytes (${MAX_FRAMES} frames of 4 KiB, 16 TiB)`);
  }
}

/** Inspects a backing path; throws InspectError with the reason it cannot be one. */
export function inspectBacking(backingPath: string, requestedSize?: bigint): BackingTarget {
  // A backing is never reached through a symbolic link (medium.ts opens with O_NOFOLLOW):
  // said first, so a link to a backing or a dangling link is not judged by its target.
  // /dev/dax names may be udev links, which are followed.
  let link: fs.Stats | undefined;
  try {
    link = fs.lstatSync(backingPath);
  } catch { /* judged by stat below */ }
  if (link?.isSymbolicLink()) {
    let target: fs.Stats | undefined;
    try {
      target = fs.statSync(backingPath);
    } catch { /* dangling */ }
    if (!target?.isCharacterDevice()) throw new InspectError('is a symbolic link; numactlx does not follow links to a backing file');
  }
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(backingPath);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw new InspectError(`cannot stat: ${errnoCode(err)}`, { cause: err });
  }

  if (stat === undefined) {
    const dir = path.dirname(path.resolve(backingPath));
    let dirStat: fs.Stats;
    try {
      dirStat = fs.statSync(dir);
    } catch (err) {
      throw new InspectError(`directory ${dir} does not exist: ${errnoCode(err)}`, { cause: err });
    }
    if (!dirStat.isDirectory()) throw new InspectError(`${dir} is not a directory: ENOTDIR`);
    if (requestedSize === undefined) {
      throw new InspectError('the file does not exist and no size was given (add ,size=SIZE)');
    }
    const { kind, align, avail } = fsKind(dir);
    checkAligned(requestedSize, align, kind === 'hugetlbfs' ? 'huge page size' : 'page size');
    return { path: backingPath, kind, exists: false, size: requestedSize, align,
      free: requestedSize < avail ? requestedSize : avail };
  }

  if (stat.isCharacterDevice()) {
    const dax = daxInfo(backingPath, stat);
    if (dax === undefined) {
      throw new InspectError('a character device that is not a /dev/dax device (no dax entry in sysfs)');
    }
    const size = requestedSize ?? dax.size;
    checkAligned(size, dax.align > PAGE_SIZE ? dax.align : PAGE_SIZE, 'device alignment');
    if (size > dax.size) throw new InspectError(`size ${size} is larger than the device (${dax.size} bytes)`);
    return { path: backingPath, kind: 'dax', exists: true, size, align: dax.align, free: size };
  }
  if (stat.isDirectory()) throw new InspectError('is a directory: EISDIR');
  if (!stat.isFile()) throw new InspectError('not a regular file or a /dev/dax device');
  const pseudo = PSEUDO_FS.get(Number(fs.statfsSync(backingPath).type));
  if (pseudo) throw new InspectError(`a file of the ${pseudo} pseudo-filesystem, not storage: not a regular file or a /dev/dax device`);

  const existing = BigInt(stat.size);
  if (existing > 0n && !hasMagic(backingPath)) {
    throw new InspectError('not a numactlx backing (bad magic); numactlx never overwrites a file it did not create',
      { foreign: true });
  }
  const { kind, align, avail } = fsKind(path.dirname(path.resolve(backingPath)));
  const size = requestedSize ?? existing;
  if (size === 0n) throw new InspectError('the file is empty and no size was given (add ,size=SIZE)');
  if (size < existing) {
    throw new InspectError(`size ${size} is smaller than the existing file (${existing} bytes); ` +
      'numactlx never shrinks a backing');
  }
  // No size= given: the size judged is the file's own (a truncated backing, say), so say so.
  checkAligned(size, align, kind === 'hugetlbfs' ? 'huge page size' : 'page size',
    requestedSize === undefined ? "the file's size" : 'size');
  const allocated = BigInt(stat.blocks) * 512n;
  const room = avail + allocated;
  return { path: backingPath, kind, exists: true, size, align, free: size < room ? size : room };
}
