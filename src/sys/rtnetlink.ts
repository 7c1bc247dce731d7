// rtnetlink(7): one RTM_GETROUTE request, "which interface does the route to this address
// leave by?" — the lookup numactl makes for its `ip:HOST` node specifier. Layouts from
// <linux/netlink.h> and <linux/rtnetlink.h> of Linux 6.1: struct nlmsghdr (16 bytes),
// struct rtmsg (12 bytes), struct rtattr (4 bytes, then the payload, 4-byte aligned).
import { libc, check, SysError } from './libc.js';
import { close } from './fcntl.js';

export const AF_NETLINK = 16;
export const SOCK_RAW = 3;
export const SOCK_CLOEXEC = 0o2000000;
export const NETLINK_ROUTE = 0;
export const RTM_GETROUTE = 26;
export const NLM_F_REQUEST = 1;
export const NLMSG_ERROR = 2;
export const RTA_DST = 1;
export const RTA_OIF = 4;
/** sizeof(struct nlmsghdr), sizeof(struct rtmsg), sizeof(struct sockaddr_nl). */
export const NLMSG_HDRLEN = 16;
export const RTMSG_LEN = 12;
export const SOCKADDR_NL_LEN = 12;

const socketRaw = libc.func('int socket(int domain, int type, int protocol)');
const sendtoRaw = libc.func('intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)');
const recvRaw = libc.func('intptr_t recv(int fd, _Out_ void *buf, size_t len, int flags)');

const align4 = (n: number): number => (n + 3) & ~3;

/**
 * The index of the interface the kernel's route to `address` (family AF_INET or
 * AF_INET6, raw bytes) goes out of; undefined when the answer names none. Throws SysError
 * for a failed call or a refused request (the kernel's error, e.g. ENETUNREACH).
 */
export function routeInterface(family: number, address: Buffer): number | undefined {
  const attrLen = 4 + address.length;
  const req = Buffer.alloc(NLMSG_HDRLEN + RTMSG_LEN + align4(attrLen));
  req.writeUInt32LE(req.length, 0);           // nlmsg_len
  req.writeUInt16LE(RTM_GETROUTE, 4);         // nlmsg_type
  req.writeUInt16LE(NLM_F_REQUEST, 6);        // nlmsg_flags
  req.writeUInt8(family, NLMSG_HDRLEN);       // rtm_family; the rest of rtmsg 0, as numactl
  req.writeUInt16LE(attrLen, NLMSG_HDRLEN + RTMSG_LEN);
  req.writeUInt16LE(RTA_DST, NLMSG_HDRLEN + RTMSG_LEN + 2);
  address.copy(req, NLMSG_HDRLEN + RTMSG_LEN + 4);
  const kernel = Buffer.alloc(SOCKADDR_NL_LEN);            // struct sockaddr_nl: AF_NETLINK, pid 0 (the kernel)
  kernel.writeUInt16LE(AF_NETLINK, 0);

  // The socket is ours and closed before returning.
  const fd = check('socket(AF_NETLINK)', socketRaw(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE) as number);
  try {
    check('sendto(RTM_GETROUTE)', Number(sendtoRaw(fd, req, req.length, 0, kernel, kernel.length)));
    const answer = Buffer.alloc(8192);
    const n = check('recv(RTM_GETROUTE)', Number(recvRaw(fd, answer, answer.length, 0)));
    if (n < NLMSG_HDRLEN) return undefined;
    if (answer.readUInt16LE(4) === NLMSG_ERROR) {
      const err = -answer.readInt32LE(NLMSG_HDRLEN);
      if (err !== 0) throw new SysError('rtnetlink RTM_GETROUTE', err);
      return undefined;
    }
    const end = Math.min(n, answer.readUInt32LE(0));
    for (let at = NLMSG_HDRLEN + RTMSG_LEN; at + 4 <= end;) {
      const len = answer.readUInt16LE(at);
      if (len < 4) break;
      if (answer.readUInt16LE(at + 2) === RTA_OIF && len >= 8) return answer.readUInt32LE(at + 4);
      at += align4(len);
    }
    return undefined;
  } finally {
    close(fd);
  }
}
