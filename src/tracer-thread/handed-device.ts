// /dev/userfaultfd handed to a process that may not open it: one that dropped root while
// numactlx runs as root (`su`, `setpriv --reuid`, a daemon that drops privileges before
// it execs). userfaultfd(2) asks it for CAP_SYS_PTRACE and the device for access to the
// device file, and it has neither; numactlx has access, so it opens the device and hands
// the open file over. The process then makes its userfaultfd from it itself
// (USERFAULTFD_IOC_NEW binds the new userfaultfd to the mm of its caller, so that call
// must be the process's own: exec-setup.ts injects it).
//
// The hand-over, in one ptrace stop of the process, which runs none of its own code
// meanwhile: it makes a socketpair (injected); numactlx takes one end with pidfd_getfd
// and sends the device down it (SCM_RIGHTS); the process receives it (recvmsg injected,
// MSG_CMSG_CLOEXEC); both of its ends are closed. The message's bytes go below its stack,
// past the red zone, as the seccomp filter's do. Nothing it did not have is left with it
// but the device's descriptor, which the caller closes in it once the ioctl is made.
import { SYS } from '../sys/arch/index.js';
import { closeFd } from '../sys/eventfd.js';
import { SysError } from '../sys/libc.js';
import { pidfdGetfd, pidfdOpen } from '../sys/pidfd.js';
import {
  AF_UNIX, FD_MESSAGE, fdMessage, MSG_CMSG_CLOEXEC, receivedFd, sendFd, SOCK_CLOEXEC, SOCK_DGRAM,
} from '../sys/socket.js';
import { openUserfaultfdDevice } from '../sys/userfaultfd-calls.js';
import { injectSyscall } from './inject.js';
import { belowStack, readRemote, writeRemote } from './remote.js';
import type { FilteredCall } from './seccomp-bpf.js';

/** The socketpair's two ints, after the message. */
const PAIR_SIZE = 8;

/** The calls handDevice injects, as a filter sees them (descriptors and addresses unknown yet: 0). */
export const HAND_OVER_CALLS: readonly FilteredCall[] = [
  { nr: SYS.socketpair, args: [BigInt(AF_UNIX), BigInt(SOCK_DGRAM | SOCK_CLOEXEC), 0n, 0n] },
  { nr: SYS.recvmsg, args: [0n, 0n, BigInt(MSG_CMSG_CLOEXEC)] },
  { nr: SYS.close, args: [0n] },
];

/** A call injected into `pid` that failed: SysError with its errno. */
function injected(pid: number, what: string, nr: number, args: bigint[]): bigint {
  const ret = injectSyscall(pid, nr, args);
  if (ret < 0n && ret > -4096n) throw new SysError(`${what} in the program`, Number(-ret));
  return ret;
}

/**
 * Opens /dev/userfaultfd here and gives `pid` (stopped) a descriptor of it: returns that
 * descriptor's number in `pid`, which the caller closes there. Throws SysError for the
 * step that failed (numactlx's own open: 'open(/dev/userfaultfd)'; a call in the program:
 * '… in the program'), with nothing of the hand-over left open on either side.
 */
export function handDevice(pid: number): bigint {
  const device = openUserfaultfdDevice();
  try {
    const base = belowStack(pid, FD_MESSAGE.size + PAIR_SIZE);
    const pairAddr = base + BigInt(FD_MESSAGE.size);
    writeRemote(pid, base, Buffer.concat([fdMessage(base), Buffer.alloc(PAIR_SIZE)]));
    injected(pid, 'socketpair', SYS.socketpair, [BigInt(AF_UNIX), BigInt(SOCK_DGRAM | SOCK_CLOEXEC), 0n, pairAddr]);
    const pair = readRemote(pid, pairAddr, PAIR_SIZE);
    const ends = [BigInt(pair.readInt32LE(0)), BigInt(pair.readInt32LE(4))];
    try {
      sendOver(pid, Number(ends[0]), device);
      injected(pid, 'recvmsg(SCM_RIGHTS)', SYS.recvmsg, [ends[1], base, BigInt(MSG_CMSG_CLOEXEC)]);
    } finally {
      for (const end of ends) injectSyscall(pid, SYS.close, [end]);
    }
    const fd = receivedFd(readRemote(pid, base, FD_MESSAGE.size));
    // A datagram of ours with its descriptor was queued on the pair, and no one else holds
    // it: anything else is a bug here, not the program's doing.
    if (fd === undefined) throw new Error(`the descriptor of /dev/userfaultfd sent to pid ${pid} did not arrive`);
    return BigInt(fd);
  } finally {
    closeFd(device);
  }
}

/** Sends `device` down the end `end` of `pid`'s socketpair, taken here and closed again. */
function sendOver(pid: number, end: number, device: number): void {
  const pidfd = pidfdOpen(pid);
  let local = -1;
  try {
    local = pidfdGetfd(pidfd, end);
    sendFd(local, device);
  } finally {
    if (local >= 0) closeFd(local);
    closeFd(pidfd);
  }
}
