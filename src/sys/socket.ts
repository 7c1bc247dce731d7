// Socket options: getsockopt(2) with SO_PEERCRED (socket(7), unix(7)), following
// <asm-generic/socket.h> of Linux 6.1 and glibc 2.36's <bits/socket.h> (struct ucred).
// SO_PEERCRED is 17 in asm-generic, which x86_64 uses (powerpc, mips, sparc, parisc and
// alpha number it differently; numactlx runs on x86_64 only, see ./arch).
import { koffi, libc, check } from './libc.js';

export const SOL_SOCKET = 1;
export const SO_PEERCRED = 17;

/** struct ucred { pid_t pid; uid_t uid; gid_t gid; } — 12 bytes. */
export const Ucred = koffi.struct({ pid: 'int32_t', uid: 'uint32_t', gid: 'uint32_t' });

export interface UcredValue {
  pid: number;
  uid: number;
  gid: number;
}

// optlen is a socklen_t (u32) the kernel reads and rewrites: passed as a Uint32Array.
const getsockoptRaw = libc.func('int getsockopt(int sockfd, int level, int optname, void *optval, void *optlen)');

/**
 * getsockopt(fd, SOL_SOCKET, SO_PEERCRED): the credentials the peer of a connected unix
 * socket had when it called connect(2) (or socketpair(2)). The caller owns `fd` and keeps
 * it open for the duration of this synchronous call; nothing here keeps it.
 */
export function getPeerCred(fd: number): UcredValue {
  const buf = Buffer.alloc(koffi.sizeof(Ucred));
  const len = new Uint32Array([buf.length]);
  check('getsockopt(SO_PEERCRED)', getsockoptRaw(fd, SOL_SOCKET, SO_PEERCRED, buf, len) as number);
  return koffi.decode(buf, Ucred) as UcredValue;
}
