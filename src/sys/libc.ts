// The C library handle, errno, and the error every binding throws.
//
// koffi facts this layer relies on (measured, koffi 3.3.4 on Node 20):
// - a Buffer or TypedArray passed as `void *` is a pointer to its bytes, no copy; the
//   caller keeps the buffer alive for the duration of the call (and longer if the
//   kernel keeps the address, which no binding here allows);
// - 64-bit integer results come back as a Number when small and a BigInt when large:
//   `toU64`/`toI64` normalise them;
// - variadic C functions (syscall, ioctl, ptrace) are bound with fixed prototypes, one
//   per call shape; that is also the fast path (~0.2 µs a call).
import koffi from 'koffi';
import os from 'node:os';
import util from 'node:util';

export { koffi };

/** glibc, loaded once per thread that imports this module (workers load their own). */
export const libc = koffi.load('libc.so.6');

/** Errno names by value, from os.constants.errno (libuv's own table lacks ECHILD, ESRCH's kin…). */
const ERRNO_NAMES = new Map<number, string>(Object.entries(os.constants.errno).map(([name, value]) => [value, name]));

/** The errno name for a positive errno value ("EEXIST"). */
export function errnoName(errno: number): string {
  const known = ERRNO_NAMES.get(errno);
  if (known) return known;
  const name = util.getSystemErrorName(-errno);
  return name.startsWith('Unknown') ? `errno ${errno}` : name;
}

/** A failed system call: the call, the errno value and its name. */
export class SysError extends Error {
  readonly syscall: string;
  readonly errno: number;
  readonly code: string;

  constructor(syscall: string, errno: number, options?: { cause?: unknown }) {
    const code = errnoName(errno);
    super(`${syscall} failed: ${code}`, options);
    this.name = 'SysError';
    this.syscall = syscall;
    this.errno = errno;
    this.code = code;
  }
}

/** errno of the last failed call on this thread (read it right after the call). */
export function lastErrno(): number {
  return koffi.errno();
}

/** Clears errno, for calls whose only failure signal is errno (PTRACE_PEEKDATA). */
export function clearErrno(): void {
  koffi.errno(0);
}

/** Throws a SysError naming `what` when a libc-style call returned -1. */
export function check(what: string, ret: number | bigint): number {
  const n = typeof ret === 'bigint' ? Number(BigInt.asIntN(64, ret)) : ret;
  if (n === -1) throw new SysError(what, koffi.errno());
  return n;
}

/** Throws when a call that returns an errno value (posix_spawn) did not return 0. */
export function checkErrnoResult(what: string, ret: number): void {
  if (ret !== 0) throw new SysError(what, ret);
}

/** A koffi 64-bit result as an unsigned bigint (addresses, lengths). */
export function toU64(v: number | bigint): bigint {
  return BigInt.asUintN(64, BigInt(v));
}

/** A koffi 64-bit result as a signed bigint. */
export function toI64(v: number | bigint): bigint {
  return BigInt.asIntN(64, BigInt(v));
}

/**
 * Binds the raw `syscall(2)` entry with a fixed argument list. Each call shape gets its
 * own prototype (see the header comment). Returns the raw result: -1 and errno on error.
 */
export function bindSyscall(argTypes: string[]): (...args: unknown[]) => number | bigint {
  const fn = libc.func('syscall', 'long', ['long', ...argTypes]);
  return fn as (...args: unknown[]) => number | bigint;
}

const strerrorRaw = libc.func('const char *strerror(int errnum)');

/** The C library's text for an errno value ("No such file or directory"). */
export function errnoText(errno: number): string {
  return strerrorRaw(errno) as string;
}
