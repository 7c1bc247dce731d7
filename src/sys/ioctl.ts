// ioctl(2) request numbers and bindings, following <asm-generic/ioctl.h> (Linux 6.1 uapi;
// the encoding has not changed since 2.6 and x86_64 uses the generic one):
//
//   bits 31..30 dir (NONE 0, WRITE 1, READ 2)  29..16 size  15..8 type  7..0 nr
//
// "READ" means userland reads (the kernel writes the argument), as the uapi headers say.
import { libc, koffi, SysError } from './libc.js';

export const IOC_NONE = 0;
export const IOC_WRITE = 1;
export const IOC_READ = 2;

const IOC_SIZEBITS = 14;

/** `_IOC(dir, type, nr, size)`: a request number as an unsigned 32-bit Number. */
export function IOC(dir: number, type: number, nr: number, size: number): number {
  if (size < 0 || size >= 1 << IOC_SIZEBITS) throw new RangeError(`ioctl argument size ${size} does not fit 14 bits`);
  return ((dir << 30) | (size << 16) | ((type & 0xff) << 8) | (nr & 0xff)) >>> 0;
}

/** `_IO(type, nr)`: no argument (or an integer argument passed by value). */
export const IO = (type: number, nr: number): number => IOC(IOC_NONE, type, nr, 0);
/** `_IOR(type, nr, size)`: the kernel writes `size` bytes. */
export const IOR = (type: number, nr: number, size: number): number => IOC(IOC_READ, type, nr, size);
/** `_IOW(type, nr, size)`: the kernel reads `size` bytes. */
export const IOW = (type: number, nr: number, size: number): number => IOC(IOC_WRITE, type, nr, size);
/** `_IOWR(type, nr, size)`: both. */
export const IOWR = (type: number, nr: number, size: number): number =>
  IOC(IOC_READ | IOC_WRITE, type, nr, size);

// ioctl is variadic in C; two fixed prototypes cover every call here. The pointer form
// passes a Buffer's bytes in place: the kernel reads and writes them during the call only.
const ioctlPtrRaw = libc.func('ioctl', 'int', ['int', 'unsigned long', 'void *']);
const ioctlIntRaw = libc.func('ioctl', 'int', ['int', 'unsigned long', 'unsigned long']);

/** ioctl(fd, request, buf); returns the result, or throws SysError('ioctl(NAME)', errno). */
export function ioctlBuffer(name: string, fd: number, request: number, buf: Uint8Array): number {
  const ret = ioctlPtrRaw(fd, request, buf) as number;
  if (ret === -1) throw new SysError(`ioctl(${name})`, koffi.errno());
  return ret;
}

/** ioctl(fd, request, value) with an integer argument; throws like ioctlBuffer. */
export function ioctlValue(name: string, fd: number, request: number, value: number | bigint): number {
  const ret = ioctlIntRaw(fd, request, value) as number;
  if (ret === -1) throw new SysError(`ioctl(${name})`, koffi.errno());
  return ret;
}

/**
 * The raw pointer-form call for hot loops that want the errno without an exception:
 * returns the result; on -1 read koffi.errno() (lastErrno) before any other call.
 */
export function ioctlBufferRaw(fd: number, request: number, buf: Uint8Array): number {
  return ioctlPtrRaw(fd, request, buf) as number;
}
