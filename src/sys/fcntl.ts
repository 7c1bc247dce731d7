// Files by descriptor: open(2) flags, flock(2), fallocate(2), ftruncate(2), fsync(2),
// pread(2)/pwrite(2), following <asm-generic/fcntl.h> (x86_64 uses the generic values),
// <linux/falloc.h> and <sys/file.h> of Linux 6.1 / glibc 2.36.
//
// Why raw bindings when node:fs has open/ftruncate/fsync: flock and fallocate are not in
// node:fs, O_NOFOLLOW|O_EXCL creation must be one call whose errno we name ourselves, and
// the engine worker calls these on fds it owns without node:fs bookkeeping. A descriptor
// returned by `open` belongs to the caller until it passes it to `close`; node:fs calls
// taking an fd (fstatSync) work on it too.
import os from 'node:os';
import { libc, check, lastErrno, SysError } from './libc.js';

export const O_RDONLY = 0o0;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_NOCTTY = 0o400;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;
export const O_NONBLOCK = 0o4000;
export const O_DIRECTORY = 0o200000;
export const O_NOFOLLOW = 0o400000;
export const O_CLOEXEC = 0o2000000;

/** fcntl(2) commands and the descriptor flag (<asm-generic/fcntl.h>). */
export const F_GETFD = 1;
export const F_SETFD = 2;
export const F_DUPFD_CLOEXEC = 1030;
export const FD_CLOEXEC = 1;

/** flock(2) operations (<sys/file.h>). */
export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

/** fallocate(2) modes (<linux/falloc.h>); 0 allocates and may extend the file. */
export const FALLOC_FL_KEEP_SIZE = 0x01;
export const FALLOC_FL_PUNCH_HOLE = 0x02;
export const FALLOC_FL_COLLAPSE_RANGE = 0x08;
export const FALLOC_FL_ZERO_RANGE = 0x10;
export const FALLOC_FL_INSERT_RANGE = 0x20;
export const FALLOC_FL_UNSHARE_RANGE = 0x40;

// open(2) is variadic in C; it is bound with the mode as a fixed third argument, which
// is the same register in the x86_64 ABI (glibc reads it only with O_CREAT/O_TMPFILE).
const openRaw = libc.func('open', 'int', ['const char *', 'int', 'uint32_t']);
const closeRaw = libc.func('close', 'int', ['int']);
// fcntl(2) is variadic; F_GETFD/F_SETFD take an int (or nothing) as the third argument.
const fcntlIntRaw = libc.func('fcntl', 'int', ['int', 'int', 'int']);
const flockRaw = libc.func('flock', 'int', ['int', 'int']);
const fallocateRaw = libc.func('fallocate', 'int', ['int', 'int', 'int64_t', 'int64_t']);
const ftruncateRaw = libc.func('ftruncate', 'int', ['int', 'int64_t']);
const fsyncRaw = libc.func('fsync', 'int', ['int']);
const fdatasyncRaw = libc.func('fdatasync', 'int', ['int']);
const preadRaw = libc.func('pread', 'int64_t', ['int', 'void *', 'size_t', 'int64_t']);
const pwriteRaw = libc.func('pwrite', 'int64_t', ['int', 'const void *', 'size_t', 'int64_t']);
const posixFadviseRaw = libc.func('posix_fadvise', 'int', ['int', 'int64_t', 'int64_t', 'int']);

/** posix_fadvise(2) advice: no readahead on this open file (and reads fill single pages). */
export const POSIX_FADV_RANDOM = 1;

/** posix_fadvise(2) on [offset, offset + len) of `fd` (len 0: to the end); returns 0 or the errno (it does not set errno). */
export function posixFadvise(fd: number, offset: number, len: number, advice: number): number {
  return posixFadviseRaw(fd, offset, len, advice) as number;
}

/** open(2); returns the new descriptor (O_CLOEXEC is the caller's to pass). */
export function open(path: string, flags: number, mode = 0): number {
  return check('open', openRaw(path, flags, mode) as number);
}

export function close(fd: number): void {
  check('close', closeRaw(fd) as number);
}

/** Sets or clears FD_CLOEXEC on `fd` (a per-descriptor flag, not the open file's). */
export function setCloseOnExec(fd: number, on: boolean): void {
  const flags = check('fcntl(F_GETFD)', fcntlIntRaw(fd, F_GETFD, 0) as number);
  check('fcntl(F_SETFD)', fcntlIntRaw(fd, F_SETFD, on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC) as number);
}

/** A new descriptor (3 or above, close-on-exec) for the open file of `fd`; the caller owns it. -errno on failure. */
export function dupCloexec(fd: number): number {
  const r = fcntlIntRaw(fd, F_DUPFD_CLOEXEC, 3) as number;
  return r < 0 ? -lastErrno() : r;
}

/** flock(2); with LOCK_NB a held lock fails with EWOULDBLOCK (EAGAIN on Linux). */
export function flock(fd: number, operation: number): void {
  check('flock', flockRaw(fd, operation) as number);
}

/** fallocate(2) of [offset, offset+len). */
export function fallocate(fd: number, mode: number, offset: bigint, len: bigint): void {
  check('fallocate', fallocateRaw(fd, mode, offset, len) as number);
}

/**
 * fallocate(2) without an exception, for the frame allocator's hot path: returns 0, or
 * the errno (ENOSPC when the filesystem is full).
 */
export function fallocateErrno(fd: number, mode: number, offset: number, len: number): number {
  if ((fallocateRaw(fd, mode, offset, len) as number) === 0) return 0;
  return lastErrno();
}

export function ftruncate(fd: number, length: bigint): void {
  check('ftruncate', ftruncateRaw(fd, length) as number);
}

export function fsync(fd: number): void {
  check('fsync', fsyncRaw(fd) as number);
}

export function fdatasync(fd: number): void {
  check('fdatasync', fdatasyncRaw(fd) as number);
}

/** pread(2) into `buf`; returns the bytes read (short at end of file). */
export function pread(fd: number, buf: Uint8Array, offset: bigint): number {
  return check('pread', preadRaw(fd, buf, buf.byteLength, offset) as number | bigint);
}

/** pwrite(2) of all of `buf`; a short write is retried, so it returns only when done. */
export function pwrite(fd: number, buf: Uint8Array, offset: bigint): void {
  let done = 0;
  while (done < buf.byteLength) {
    const part = buf.subarray(done);
    const n = check('pwrite', pwriteRaw(fd, part, part.byteLength, offset + BigInt(done)) as number | bigint);
    // 0 for a non-empty write only happens on a full device that reports no error.
    if (n === 0) throw new SysError('pwrite', os.constants.errno.ENOSPC);
    done += n;
  }
}

const pipe2Raw = libc.func('int pipe2(_Out_ int *fds, int flags)');

/** pipe2(2) with O_CLOEXEC: [read end, write end]. */
export function pipeCloexec(): [number, number] {
  const fds = new Int32Array(2);
  check('pipe2', pipe2Raw(fds, O_CLOEXEC) as number);
  return [fds[0], fds[1]];
}
