// eventfd(2) and poll(2) (glibc 2.36, <sys/eventfd.h>, <poll.h>), and raw read/write/
// close on fds the caller owns. The engine thread polls its userfaultfds and one
// eventfd that other threads write to when they leave it a command.
import os from 'node:os';
import { libc, check, SysError, lastErrno } from './libc.js';

export const EFD_CLOEXEC = 0o2000000;
export const EFD_NONBLOCK = 0o4000;

export const POLLIN = 0x001;
export const POLLOUT = 0x004;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;
export const POLLNVAL = 0x020;
/** sizeof(struct pollfd): int fd; short events; short revents. */
export const POLLFD_SIZE = 8;

const eventfdRaw = libc.func('int eventfd(unsigned int initval, int flags)');
const pollRaw = libc.func('int poll(void *fds, unsigned long nfds, int timeout)');
const readRaw = libc.func('long read(int fd, void *buf, unsigned long count)');
const writeRaw = libc.func('long write(int fd, const void *buf, unsigned long count)');
const closeRaw = libc.func('int close(int fd)');

const { EAGAIN, EINTR } = os.constants.errno;

export function eventfd(initval: number, flags: number): number {
  return check('eventfd', eventfdRaw(initval, flags) as number);
}

const ONE = new BigUint64Array([1n]);

/** Adds 1 to an eventfd counter (wakes a poller). */
export function eventfdSignal(fd: number): void {
  if ((writeRaw(fd, ONE, 8) as number) !== 8) throw new SysError('write(eventfd)', lastErrno());
}

const drain = new BigUint64Array(1);

/** Resets a non-blocking eventfd's counter; returns the value it had (0 if none). */
export function eventfdDrain(fd: number): number {
  const n = readRaw(fd, drain, 8) as number;
  if (n === 8) return Number(drain[0]);
  const errno = lastErrno();
  if (errno === EAGAIN) return 0;
  throw new SysError('read(eventfd)', errno);
}

/**
 * poll(2) over a pollfd array the caller fills (fd at i*8, events at i*8+4); revents at
 * i*8+6 on return. EINTR counts as "nothing ready" (returns 0).
 */
export function poll(fds: Buffer, nfds: number, timeoutMs: number): number {
  const n = pollRaw(fds, nfds, timeoutMs) as number;
  if (n >= 0) return n;
  const errno = lastErrno();
  if (errno === EINTR) return 0;
  throw new SysError('poll', errno);
}

/** read(2) into `buf`; returns bytes read, or -errno (no throw: hot path). */
export function readFd(fd: number, buf: Uint8Array, count: number): number {
  const n = readRaw(fd, buf, count) as number;
  return n >= 0 ? n : -lastErrno();
}

export function closeFd(fd: number): void {
  closeRaw(fd);
}
