// Socket options: getsockopt(2) with SO_PEERCRED (socket(7), unix(7)), and a descriptor
// passed with sendmsg(2) (SCM_RIGHTS), following
// <asm-generic/socket.h> of Linux 6.1 and glibc 2.36's <bits/socket.h> (struct ucred).
// SO_PEERCRED is 17 in asm-generic, which x86_64 uses (powerpc, mips, sparc, parisc and
// alpha number it differently; numactlx runs on x86_64 only, see ./arch).
import { koffi, libc, check } from './libc.js';
import { bufferAddress } from './mman.js';

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

// Passing a descriptor (unix(7) SCM_RIGHTS). struct msghdr, iovec and cmsghdr as glibc
// 2.36 lays them out on x86_64 (the layout test checks each offset against the compiler).
export const AF_UNIX = 1;
export const SOCK_DGRAM = 2;
export const SOCK_CLOEXEC = 0o2000000;
export const SCM_RIGHTS = 1;
/** recvmsg flag: a descriptor received is close-on-exec. */
export const MSG_CMSG_CLOEXEC = 0x40000000;
/** msg_flags bit: the control data did not fit (a descriptor received was closed). */
export const MSG_CTRUNC = 0x8;

/** Offsets in one descriptor-carrying message as `fdMessage` lays it out. */
export const FD_MESSAGE = {
  /** struct msghdr: msg_name, msg_namelen, msg_iov, msg_iovlen, msg_control, msg_controllen, msg_flags. */
  msghdr: { at: 0, name: 0, namelen: 8, iov: 16, iovlen: 24, control: 32, controllen: 40, flags: 48, size: 56 },
  /** One struct iovec over the one data byte (a datagram of none would carry no descriptor on some kernels). */
  iovec: { at: 56, base: 0, len: 8, size: 16 },
  data: 72,
  /** struct cmsghdr (cmsg_len, cmsg_level, cmsg_type) and one int: CMSG_SPACE(sizeof(int)) = 24. */
  cmsg: { at: 80, len: 0, level: 8, type: 12, fd: 16, space: 24, lenOfOne: 20 },
  size: 104,
} as const;

/**
 * One message carrying descriptor `fd` (-1: room to receive one), laid out as if it
 * lived at address `base` — this process's (sendFd) or another's (a call injected into
 * it with the bytes written there): its pointers point into itself.
 */
export function fdMessage(base: bigint, fd = -1): Buffer {
  const L = FD_MESSAGE;
  const b = Buffer.alloc(L.size);
  b.writeBigUInt64LE(base + BigInt(L.iovec.at), L.msghdr.iov);
  b.writeBigUInt64LE(1n, L.msghdr.iovlen);
  b.writeBigUInt64LE(base + BigInt(L.cmsg.at), L.msghdr.control);
  b.writeBigUInt64LE(BigInt(L.cmsg.space), L.msghdr.controllen);
  b.writeBigUInt64LE(base + BigInt(L.data), L.iovec.at + L.iovec.base);
  b.writeBigUInt64LE(1n, L.iovec.at + L.iovec.len);
  if (fd >= 0) {
    b.writeBigUInt64LE(BigInt(L.cmsg.lenOfOne), L.cmsg.at + L.cmsg.len);
    b.writeInt32LE(SOL_SOCKET, L.cmsg.at + L.cmsg.level);
    b.writeInt32LE(SCM_RIGHTS, L.cmsg.at + L.cmsg.type);
    b.writeInt32LE(fd, L.cmsg.at + L.cmsg.fd);
  }
  return b;
}

/** The descriptor a received `fdMessage` carries, or undefined (none, or truncated: MSG_CTRUNC). */
export function receivedFd(message: Buffer): number | undefined {
  const L = FD_MESSAGE;
  if ((message.readInt32LE(L.msghdr.flags) & MSG_CTRUNC) !== 0) return undefined;
  if (message.readBigUInt64LE(L.msghdr.controllen) < BigInt(L.cmsg.lenOfOne)) return undefined;
  if (message.readBigUInt64LE(L.cmsg.at + L.cmsg.len) !== BigInt(L.cmsg.lenOfOne)) return undefined;
  if (message.readInt32LE(L.cmsg.at + L.cmsg.level) !== SOL_SOCKET || message.readInt32LE(L.cmsg.at + L.cmsg.type) !== SCM_RIGHTS) return undefined;
  return message.readInt32LE(L.cmsg.at + L.cmsg.fd);
}

const sendmsgRaw = libc.func('sendmsg', 'long', ['int', 'void *', 'int']);

/**
 * sendmsg(2) of `fd` over unix socket `sock` (SCM_RIGHTS, one data byte). The receiver
 * gets its own descriptor of the same open file; ours stays the caller's.
 */
export function sendFd(sock: number, fd: number): void {
  // The message's pointers are into the Buffer itself: its address first, then its bytes.
  const msg = Buffer.alloc(FD_MESSAGE.size);
  fdMessage(bufferAddress(msg), fd).copy(msg);
  check('sendmsg(SCM_RIGHTS)', sendmsgRaw(sock, msg, 0) as number);
}
