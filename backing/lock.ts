// One numactlx at a time per backing.
//
// The lock is flock(LOCK_EX|LOCK_NB) on the descriptor the store opened. flock locks
// belong to the open file description: a second open() of the same file — in this
// process or another — conflicts, and the lock goes away when the description is
// closed, including when numactlx is killed (no stale lock file to clean up). The fd is
// O_CLOEXEC, so the program numactlx launches never inherits it.
//
// flock cannot say who holds it, so the holder also writes its pid into the backing's
// owner record (format.ts, offset 8192) once the backing is known to be ours, and clears
// it at close. The record is advisory: only the flock decides. It is never written into
// a file that failed the superblock checks, and a record left by a killed numactlx is
// harmless because nobody reads it unless the flock is actually held.
import os from 'node:os';
import { flock, LOCK_EX, LOCK_NB, LOCK_UN } from '../src/sys/fcntl.js';
import { SysError } from '../src/sys/libc.js';
import { BackingError } from './errors.js';
import { decodeOwner, encodeOwner, OWNER_OFFSET, OWNER_SIZE } from './format.js';

/** Reads and writes bytes of the backing's header (medium.ts chooses how per medium). */
export interface HeaderAccess {
  read(offset: bigint, length: number): Buffer;
  write(offset: bigint, data: Buffer): void;
}

/** Takes the lock; false when another open file description holds it. */
export function tryLock(fd: number): boolean {
  try {
    flock(fd, LOCK_EX | LOCK_NB);
    return true;
  } catch (err) {
    if (err instanceof SysError && err.errno === os.constants.errno.EWOULDBLOCK) return false;
    throw err;
  }
}

export function unlock(fd: number): void {
  flock(fd, LOCK_UN);
}

/** The pid recorded by the holder, or undefined when none is recorded. */
export function readOwner(header: HeaderAccess): number | undefined {
  return decodeOwner(header.read(OWNER_OFFSET, OWNER_SIZE));
}

/** Records this process as the holder (call with the lock held, on a backing of ours). */
export function writeOwner(header: HeaderAccess, pid: number = process.pid): void {
  header.write(OWNER_OFFSET, encodeOwner(pid));
}

/** Clears the record before the lock is released. */
export function clearOwner(header: HeaderAccess): void {
  header.write(OWNER_OFFSET, Buffer.alloc(OWNER_SIZE));
}

/**
 * Takes the lock, or throws BackingError 'in-use' naming the holder's pid when its owner
 * record has one.
 */
export function lockOrExplain(path: string, fd: number, header: HeaderAccess): void {
  if (tryLock(fd)) return;
  let pid: number | undefined;
  try {
    pid = readOwner(header);
  } catch {
    pid = undefined;
  }
  throw new BackingError(path, 'in-use', pid === undefined
    ? `${path} is in use: another process holds its lock (flock)`
    : `${path} is in use by another numactlx (pid ${pid})`);
}
