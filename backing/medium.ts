// The medium under a backing: opening it (without following a link to a file; a device
// is never created) and reading and writing its header, the bytes before the frames.
//
// Bytes per medium: regular and tmpfs files are read and written with pread/pwrite;
// hugetlbfs files have no write(2), so their header is written through a mapping (after
// fallocate made its huge page exist: touching a missing huge page with none free is a
// SIGBUS); /dev/dax has neither read nor write, only MAP_SHARED mappings whose offset and
// length are multiples of the device alignment (DESIGN.md §4), so everything goes
// through mappings there.
import fs from 'node:fs';
import os from 'node:os';
import type { BackingKind, BackingTarget } from './inspect.js';
import { BackingError, fail } from './errors.js';
import { HEADER_SIZE } from './format.js';
import type { HeaderAccess } from './lock.js';
import { cacheFlush, type CacheFlush } from './persist.js';
import { SysError } from '../src/sys/libc.js';
import { fsync, open, pread, pwrite, O_CLOEXEC, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDWR } from '../src/sys/fcntl.js';
import { copyFromAddress, copyToAddress, mmap, munmap, MAP_NORESERVE, MAP_SHARED, PROT_READ, PROT_WRITE } from '../src/sys/mman.js';
import { FrameCopy } from './frame-copy.js';

const { EFAULT } = os.constants.errno;

function roundUp(n: bigint, align: bigint): bigint {
  return ((n + align - 1n) / align) * align;
}

/** How much of the medium a Header maps: the header, in the medium's alignment. */
export function headerMapLength(target: BackingTarget): bigint {
  return target.kind === 'file' || target.kind === 'tmpfs' ? HEADER_SIZE : roundUp(HEADER_SIZE, target.align);
}

/** The header's bytes on one medium (see the header comment for why they differ). */
export class Header implements HeaderAccess {
  private addr = 0n;
  private mapped = 0n;
  /** /dev/dax: every write is flushed from the CPU caches before write() returns (persist.ts). */
  private readonly cache: CacheFlush | undefined;

  constructor(private readonly fd: number, private readonly kind: BackingKind, private readonly mapLength: bigint) {
    this.cache = cacheFlush(kind);
  }

  read(offset: bigint, length: number): Buffer {
    if (this.kind === 'dax') return copyFromAddress(this.map() + offset, length);
    const buf = Buffer.alloc(length); // a short read at end of file leaves zeros
    pread(this.fd, buf, offset);
    return buf;
  }

  write(offset: bigint, data: Buffer): void {
    if (this.kind === 'file' || this.kind === 'tmpfs') pwrite(this.fd, data, offset);
    else if (this.kind === 'dax') {
      const at = this.map() + offset;
      copyToAddress(at, data);
      this.cache?.persist(Number(at), data.length);
    // A hugetlbfs file can be truncated under the session: a kernel copy (frame-copy.ts)
    // makes that EFAULT, where a store through the mapping would be a SIGBUS.
    } else if (!new FrameCopy().write(Number(this.map() + offset), data)) throw new SysError('write to the header mapping', EFAULT);
  }

  /** Makes header writes durable as far as the medium allows (files: fsync; dax: done by write). */
  flush(): void {
    if (this.kind === 'file') fsync(this.fd);
  }

  close(): void {
    if (this.mapped !== 0n) munmap(this.addr, this.mapped);
    this.mapped = 0n;
  }

  // SAFETY: the mapping is this object's, [0, mapLength) of the fd, which the medium
  // has (a hugetlbfs or dax backing is at least dataOffset ≥ mapLength long); it lives
  // until close().
  private map(): bigint {
    if (this.mapped === 0n) {
      const flags = MAP_SHARED | (this.kind === 'hugetlbfs' ? MAP_NORESERVE : 0);
      this.addr = mmap(0n, this.mapLength, PROT_READ | PROT_WRITE, flags, this.fd, 0n);
      this.mapped = this.mapLength;
    }
    return this.addr;
  }
}

export interface Opened {
  fd: number;
  /** This call created the file (it was missing). */
  created: boolean;
}

/** Opens the medium `target` names read-write, creating a missing file. Throws BackingError. */
export function openMedium(target: BackingTarget): Opened {
  if (target.kind !== 'dax') return openFile(target);
  // A device node is never created here, so there is no O_CREAT to guard; /dev/dax
  // names may be udev links, which are followed.
  try {
    return { fd: open(target.path, O_RDWR | O_CLOEXEC), created: false };
  } catch (err) {
    throw fail(target.path, err, 'opening it');
  }
}

function isSymlink(path: string): boolean {
  try {
    return fs.lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

function symlinkError(path: string, cause: unknown): BackingError {
  return new BackingError(path, 'symlink',
    `${path} is a symbolic link; numactlx does not follow links to a backing file`, { cause });
}

/** Opens (or creates) the path without following a symbolic link. */
function openFile(target: BackingTarget): Opened {
  const { path } = target;
  const flags = O_RDWR | O_NOFOLLOW | O_CLOEXEC;
  try {
    if (!target.exists) return { fd: open(path, flags | O_CREAT | O_EXCL, 0o600), created: true };
    return { fd: open(path, flags), created: false };
  } catch (err) {
    const code = err instanceof SysError ? err.code : '';
    if ((code === 'ELOOP' || code === 'EEXIST') && isSymlink(path)) throw symlinkError(path, err);
    if (code === 'EEXIST') {
      // Another numactlx created it between our look and our create (two sessions naming
      // one new backing): open it as an existing one. The lock then decides, and the
      // loser is told who holds it — not a bare EEXIST.
      try {
        return { fd: open(path, flags), created: false };
      } catch (again) {
        throw fail(path, again, 'opening it');
      }
    }
    throw fail(path, err, target.exists ? 'opening it' : 'creating it');
  }
}

/**
 * An existing file becomes a backing — which will hold the program's memory — only when
 * no one else can read it: owned by this user, no group or other access. Checked on the
 * descriptor numactlx opened (fstat), so the file judged is the file used. Otherwise
 * another user could pre-create the path (in /tmp anyone can) and read every snapshot.
 */
export function checkPrivate(path: string, stat: fs.Stats): void {
  const euid = process.geteuid?.() ?? 0;
  if (stat.uid !== euid) {
    throw new BackingError(path, 'foreign', `${path} is owned by uid ${stat.uid}, not by you (uid ${euid}); ` +
      'numactlx keeps program memory only in files no other user controls');
  }
  if ((stat.mode & 0o077) !== 0) {
    const mode = (stat.mode & 0o7777).toString(8).padStart(4, '0');
    throw new BackingError(path, 'foreign', `${path} has mode ${mode}: group or others could read the program's ` +
      `memory; numactlx adopts only a file with no group or other access (chmod 600 ${path})`);
  }
}

/** Removes a file this call created, if the path still names it. */
export function removeCreated(path: string, fd: number): void {
  try {
    const ours = fs.fstatSync(fd);
    const now = fs.lstatSync(path);
    if (now.ino === ours.ino && now.dev === ours.dev) fs.unlinkSync(path);
  } catch {
    // already gone
  }
}
