// The src/sys modules against the C compiler and the running kernel.
//
// Layout: a C program built from the rows below prints the C value of every struct size,
// field offset, ioctl number and constant the modules define that the local headers
// (Linux 6.1 uapi, glibc 2.36) know; each row asserts the TypeScript value equals it.
// Values only newer headers have are asserted against the numbers read from those
// headers (torvalds/linux include/uapi/linux/userfaultfd.h as of 6.8, fs.h as of 6.7);
// where a struct is new, a C copy of it lets the compiler lay it out and the kernel's
// _IOWR macro derive its request number.
//
// Behaviour: each module makes real calls. A missing kernel feature fails the test with
// the feature's name; nothing is skipped.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TypeObject } from 'koffi';
import { koffi } from '../../src/sys/libc.js';
import { arch, SYS, USER_REGS_FIELDS } from '../../src/sys/arch/index.js';
import * as uffd from '../../src/sys/userfaultfd-calls.js';
import * as uapi from '../../src/sys/userfaultfd-uapi.js';
import * as ptrace from '../../src/sys/ptrace.js';
import * as seccomp from '../../src/sys/seccomp.js';
import * as mman from '../../src/sys/mman.js';
import * as pidfd from '../../src/sys/pidfd.js';
import * as pagemap from '../../src/sys/pagemap.js';
import { spawnProgram } from '../../src/sys/spawn.js';
import { waitpid, __WALL, WIFSTOPPED, WPTRACEEVENT, WIFSIGNALED, WTERMSIG } from '../../src/sys/wait.js';
import { kill } from '../../src/sys/signal.js';
import * as fcntl from '../../src/sys/fcntl.js';
import * as netdb from '../../src/sys/netdb.js';
import * as rtnetlink from '../../src/sys/rtnetlink.js';
import * as processSys from '../../src/sys/process.js';
import * as socket from '../../src/sys/socket.js';
import { patternPage } from '../helpers/pattern.js';

type Value = number | bigint;
/** [name, C expression, TypeScript value] */
const rows: [string, string, Value][] = [];
/** [name, value in the newer header, TypeScript value] */
const newer: [string, Value, Value][] = [];
const c = (name: string, expr: string, ts: Value): void => { rows.push([name, expr, ts]); };
const size = (cType: string, t: TypeObject | string): void => c(`sizeof(${cType})`, `sizeof(${cType})`, koffi.sizeof(t));
const off = (cType: string, field: string, ts: number): void => c(`offsetof(${cType}, ${field})`, `offsetof(${cType}, ${field})`, ts);
const fields = (cType: string, t: TypeObject, names: string[]): void => {
  size(cType, t);
  for (const f of names) off(cType, f, koffi.offsetof(t, f));
};

// ---- userfaultfd ----
fields('struct uffdio_api', uapi.UffdioApi, ['api', 'features', 'ioctls']);
fields('struct uffdio_range', uapi.UffdioRange, ['start', 'len']);
fields('struct uffdio_register', uapi.UffdioRegister, ['range', 'mode', 'ioctls']);
fields('struct uffdio_copy', uapi.UffdioCopy, ['dst', 'src', 'len', 'mode', 'copy']);
fields('struct uffdio_zeropage', uapi.UffdioZeropage, ['range', 'mode', 'zeropage']);
fields('struct uffdio_writeprotect', uapi.UffdioWriteprotect, ['range', 'mode']);
fields('struct uffdio_continue', uapi.UffdioContinue, ['range', 'mode', 'mapped']);
fields('struct uffdio_move_v68', uapi.UffdioMove, ['dst', 'src', 'len', 'mode', 'move']);
fields('struct uffdio_poison_v66', uapi.UffdioPoison, ['range', 'mode', 'updated']);
size('struct uffd_msg', uapi.UffdMsg);
const M = uapi.UFFD_MSG_OFFSET;
off('struct uffd_msg', 'event', M.event);
off('struct uffd_msg', 'arg', koffi.offsetof(uapi.UffdMsg, 'arg'));
off('struct uffd_msg', 'arg.pagefault.flags', M.pagefaultFlags);
off('struct uffd_msg', 'arg.pagefault.address', M.pagefaultAddress);
off('struct uffd_msg', 'arg.pagefault.feat.ptid', M.pagefaultPtid);
off('struct uffd_msg', 'arg.fork.ufd', M.forkUfd);
off('struct uffd_msg', 'arg.remap.from', M.remapFrom);
off('struct uffd_msg', 'arg.remap.to', M.remapTo);
off('struct uffd_msg', 'arg.remap.len', M.remapLen);
off('struct uffd_msg', 'arg.remove.start', M.removeStart);
off('struct uffd_msg', 'arg.remove.end', M.removeEnd);
for (const k of ['API', 'REGISTER', 'UNREGISTER', 'WAKE', 'COPY', 'ZEROPAGE', 'WRITEPROTECT', 'CONTINUE'] as const) {
  c(`UFFDIO_${k}`, `UFFDIO_${k}`, uapi.UFFDIO[k]);
  c(`_UFFDIO_${k}`, `_UFFDIO_${k}`, uapi.UFFDIO_NR[k]);
}
c('UFFDIO_MOVE', '_IOWR(UFFDIO, 0x05, struct uffdio_move_v68)', uapi.UFFDIO.MOVE);
c('UFFDIO_POISON', '_IOWR(UFFDIO, 0x08, struct uffdio_poison_v66)', uapi.UFFDIO.POISON);
c('USERFAULTFD_IOC_NEW', 'USERFAULTFD_IOC_NEW', uapi.USERFAULTFD_IOC_NEW);
c('UFFDIO', 'UFFDIO', uapi.UFFDIO_TYPE);
c('UFFD_API', 'UFFD_API', uapi.UFFD_API);
c('UFFD_USER_MODE_ONLY', 'UFFD_USER_MODE_ONLY', uapi.UFFD_USER_MODE_ONLY);
c('O_CLOEXEC', 'O_CLOEXEC', uapi.O_CLOEXEC);
c('O_NONBLOCK', 'O_NONBLOCK', uapi.O_NONBLOCK);
c('O_RDWR', 'O_RDWR', uapi.O_RDWR);
const NEWER_FEATURES: Record<string, bigint> = { WP_UNPOPULATED: 1n << 13n, POISON: 1n << 14n, WP_ASYNC: 1n << 15n, MOVE: 1n << 16n };
for (const [k, v] of Object.entries(uapi.UFFD_FEATURE)) {
  if (k in NEWER_FEATURES) newer.push([`UFFD_FEATURE_${k}`, NEWER_FEATURES[k], v]);
  else c(`UFFD_FEATURE_${k}`, `UFFD_FEATURE_${k}`, v);
}
for (const [k, v] of Object.entries(uapi.UFFD_EVENT)) c(`UFFD_EVENT_${k}`, `UFFD_EVENT_${k}`, v);
for (const [k, v] of Object.entries(uapi.UFFD_PAGEFAULT_FLAG)) c(`UFFD_PAGEFAULT_FLAG_${k}`, `UFFD_PAGEFAULT_FLAG_${k}`, v);
for (const [k, v] of Object.entries(uapi.UFFDIO_REGISTER_MODE)) c(`UFFDIO_REGISTER_MODE_${k}`, `UFFDIO_REGISTER_MODE_${k}`, v);
for (const [k, v] of Object.entries(uapi.UFFDIO_COPY_MODE)) c(`UFFDIO_COPY_MODE_${k}`, `UFFDIO_COPY_MODE_${k}`, v);
for (const [k, v] of Object.entries(uapi.UFFDIO_ZEROPAGE_MODE)) c(`UFFDIO_ZEROPAGE_MODE_${k}`, `UFFDIO_ZEROPAGE_MODE_${k}`, v);
for (const [k, v] of Object.entries(uapi.UFFDIO_WRITEPROTECT_MODE)) c(`UFFDIO_WRITEPROTECT_MODE_${k}`, `UFFDIO_WRITEPROTECT_MODE_${k}`, v);
c('UFFDIO_CONTINUE_MODE_DONTWAKE', 'UFFDIO_CONTINUE_MODE_DONTWAKE', uapi.UFFDIO_CONTINUE_MODE.DONTWAKE);
newer.push(['UFFDIO_CONTINUE_MODE_WP', 1n << 1n, uapi.UFFDIO_CONTINUE_MODE.WP]);
newer.push(['UFFDIO_POISON_MODE_DONTWAKE', 1n << 0n, uapi.UFFDIO_POISON_MODE.DONTWAKE]);
newer.push(['UFFDIO_MOVE_MODE_DONTWAKE', 1n << 0n, uapi.UFFDIO_MOVE_MODE.DONTWAKE]);
newer.push(['UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES', 1n << 1n, uapi.UFFDIO_MOVE_MODE.ALLOW_SRC_HOLES]);
newer.push(['_UFFDIO_MOVE', 0x05, uapi.UFFDIO_NR.MOVE]);
newer.push(['_UFFDIO_POISON', 0x08, uapi.UFFDIO_NR.POISON]);

// ---- ptrace (glibc <sys/ptrace.h> spells PEEKUSER/POKEUSER like this module) ----
for (const [k, v] of Object.entries(ptrace.PTRACE)) c(`PTRACE_${k}`, `PTRACE_${k}`, v);
for (const [k, v] of Object.entries(ptrace.PTRACE_O)) c(`PTRACE_O_${k}`, `PTRACE_O_${k}`, v);
for (const [k, v] of Object.entries(ptrace.PTRACE_EVENT)) c(`PTRACE_EVENT_${k}`, `PTRACE_EVENT_${k}`, v);
c('sizeof(struct user_regs_struct)', 'sizeof(struct user_regs_struct)', ptrace.USER_REGS_SIZE);
for (const r of USER_REGS_FIELDS) off('struct user_regs_struct', r, arch.userRegOffset(r));
c('sizeof(siginfo_t)', 'sizeof(siginfo_t)', ptrace.SIGINFO_SIZE);
const SI: Record<keyof typeof ptrace.SIGINFO_OFFSET, string> = {
  signo: 'si_signo', errno: 'si_errno', code: 'si_code', pid: 'si_pid', uid: 'si_uid', status: 'si_status',
  addr: 'si_addr', addrLsb: 'si_addr_lsb', value: 'si_value', callAddr: 'si_call_addr', syscall: 'si_syscall', arch: 'si_arch',
};
for (const [k, f] of Object.entries(SI)) off('siginfo_t', f, ptrace.SIGINFO_OFFSET[k as keyof typeof SI]);

// ---- seccomp ----
for (const k of ['SET_MODE_STRICT', 'SET_MODE_FILTER', 'GET_ACTION_AVAIL', 'GET_NOTIF_SIZES'] as const) {
  c(`SECCOMP_${k}`, `SECCOMP_${k}`, seccomp[`SECCOMP_${k}`]);
}
for (const [k, v] of Object.entries(seccomp.SECCOMP_FILTER_FLAG)) c(`SECCOMP_FILTER_FLAG_${k}`, `SECCOMP_FILTER_FLAG_${k}`, v);
for (const [k, v] of Object.entries(seccomp.SECCOMP_RET)) c(`SECCOMP_RET_${k}`, `SECCOMP_RET_${k}`, v);
c('SECCOMP_RET_ACTION_FULL', 'SECCOMP_RET_ACTION_FULL', seccomp.SECCOMP_RET_ACTION_FULL);
c('SECCOMP_RET_DATA', 'SECCOMP_RET_DATA', seccomp.SECCOMP_RET_DATA);
fields('struct seccomp_data', seccomp.SeccompData, ['nr', 'arch', 'instruction_pointer', 'args']);
for (let i = 0; i < 6; i++) off('struct seccomp_data', `args[${i}]`, seccomp.SECCOMP_DATA.arg(i));
fields('struct sock_filter', seccomp.SockFilter, ['code', 'jt', 'jf', 'k']);
fields('struct sock_fprog', seccomp.SockFprog, ['len', 'filter']);
for (const [k, v] of Object.entries(seccomp)) if (/^BPF_[A-Z]+$/.test(k)) c(k, k, v as number);
c('AUDIT_ARCH_X86_64', 'AUDIT_ARCH_X86_64', arch.AUDIT_ARCH);
// One encoded instruction, read as a u64, against the C macros.
c('BPF_JUMP(JEQ|K, 9, 0, 1)', '({ struct sock_filter f = BPF_JUMP(BPF_JMP|BPF_JEQ|BPF_K, 9, 0, 1); unsigned long long u; memcpy(&u, &f, 8); u; })',
  seccomp.encodeFilter([seccomp.bpfJump(seccomp.BPF_JMP | seccomp.BPF_JEQ | seccomp.BPF_K, 9, 0, 1)]).readBigUInt64LE(0));

// ---- mman, pidfd, syscall numbers ----
for (const [k, v] of Object.entries(mman)) {
  if (/^(PROT|MAP|MADV|MS|MREMAP)_[A-Z_]+$/.test(k) && k !== 'MAP_FAILED') c(k, k, v as number);
}
c('MAP_FAILED', '(unsigned long)MAP_FAILED', mman.MAP_FAILED);
c('IOV_MAX', 'IOV_MAX', mman.IOV_MAX);
fields('struct iovec', mman.Iovec, ['iov_base', 'iov_len']);
c('PIDFD_NONBLOCK', 'PIDFD_NONBLOCK', pidfd.PIDFD_NONBLOCK);
for (const [k, v] of Object.entries(SYS)) c(`__NR_${k}`, `__NR_${k}`, v);

// ---- fcntl, resource limits, names and routes (exec-program, device node specifiers) ----
for (const k of ['F_GETFD', 'F_SETFD', 'FD_CLOEXEC'] as const) c(k, k, fcntl[k]);
c('RLIMIT_NOFILE', 'RLIMIT_NOFILE', processSys.RLIMIT_NOFILE);
c('RLIM_INFINITY', 'RLIM_INFINITY', processSys.RLIM_INFINITY);
fields('struct addrinfo', netdb.Addrinfo, ['ai_flags', 'ai_family', 'ai_socktype', 'ai_protocol', 'ai_addrlen', 'ai_addr', 'ai_canonname', 'ai_next']);
for (const k of ['AF_INET', 'AF_INET6', 'IF_NAMESIZE'] as const) c(k, k, netdb[k]);
for (const k of ['AF_NETLINK', 'SOCK_RAW', 'SOCK_CLOEXEC', 'NETLINK_ROUTE', 'RTM_GETROUTE', 'NLM_F_REQUEST', 'NLMSG_ERROR', 'RTA_DST', 'RTA_OIF', 'NLMSG_HDRLEN'] as const) {
  c(k, k, rtnetlink[k]);
}
c('sizeof(struct rtmsg)', 'sizeof(struct rtmsg)', rtnetlink.RTMSG_LEN);
c('sizeof(struct sockaddr_nl)', 'sizeof(struct sockaddr_nl)', rtnetlink.SOCKADDR_NL_LEN);
// The descriptor hand-over (socket.ts fdMessage, handed-device.ts).
for (const k of ['AF_UNIX', 'SOCK_DGRAM', 'SOCK_CLOEXEC', 'SCM_RIGHTS', 'MSG_CMSG_CLOEXEC', 'MSG_CTRUNC', 'SOL_SOCKET', 'SO_PEERCRED'] as const) c(k, k, socket[k]);
const FM = socket.FD_MESSAGE;
for (const f of ['name', 'namelen', 'iov', 'iovlen', 'control', 'controllen', 'flags'] as const) off('struct msghdr', `msg_${f}`, FM.msghdr[f]);
c('sizeof(struct msghdr)', 'sizeof(struct msghdr)', FM.msghdr.size);
c('sizeof(struct iovec) (fdMessage)', 'sizeof(struct iovec)', FM.iovec.size);
off('struct cmsghdr', 'cmsg_len', FM.cmsg.len);
off('struct cmsghdr', 'cmsg_level', FM.cmsg.level);
off('struct cmsghdr', 'cmsg_type', FM.cmsg.type);
c('CMSG_LEN(sizeof(int))', 'CMSG_LEN(sizeof(int))', FM.cmsg.lenOfOne);
c('CMSG_SPACE(sizeof(int))', 'CMSG_SPACE(sizeof(int))', FM.cmsg.space);
c('CMSG_DATA offset', '({ struct cmsghdr h; (unsigned long)((char *)CMSG_DATA(&h) - (char *)&h); })', FM.cmsg.fd);
off('struct sockaddr_in', 'sin_addr', netdb.SIN_ADDR_OFFSET);
off('struct sockaddr_in6', 'sin6_addr', netdb.SIN6_ADDR_OFFSET);

// ---- pagemap (Linux 6.7 <linux/fs.h>) ----
fields('struct page_region_v67', pagemap.PageRegion, ['start', 'end', 'categories']);
fields('struct pm_scan_arg_v67', pagemap.PmScanArg, ['size', 'flags', 'start', 'end', 'walk_end', 'vec', 'vec_len',
  'max_pages', 'category_inverted', 'category_mask', 'category_anyof_mask', 'return_mask']);
c('PAGEMAP_SCAN', "_IOWR('f', 16, struct pm_scan_arg_v67)", pagemap.PAGEMAP_SCAN);
const PAGE_IS_V67 = { WPALLOWED: 0, WRITTEN: 1, FILE: 2, PRESENT: 3, SWAPPED: 4, PFNZERO: 5, HUGE: 6, SOFT_DIRTY: 7 };
for (const [k, bit] of Object.entries(PAGE_IS_V67)) newer.push([`PAGE_IS_${k}`, 1 << bit, pagemap.PAGE_IS[k as keyof typeof PAGE_IS_V67]]);
newer.push(['PM_SCAN_WP_MATCHING', 1 << 0, pagemap.PM_SCAN_WP_MATCHING]);
newer.push(['PM_SCAN_CHECK_WPASYNC', 1 << 1, pagemap.PM_SCAN_CHECK_WPASYNC]);
newer.push(['sizeof(struct pm_scan_arg)', 96, pagemap.PM_SCAN_ARG_SIZE]);

const PRELUDE = `#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <stddef.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/mman.h>
#include <sys/uio.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/syscall.h>
#include <sys/pidfd.h>
#include <linux/userfaultfd.h>
#include <linux/seccomp.h>
#include <linux/filter.h>
#include <linux/audit.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netdb.h>
#include <net/if.h>
#include <netinet/in.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
/* Copies of structs the 6.1 headers lack, from the newer uapi headers. */
struct uffdio_move_v68 { __u64 dst, src, len, mode; __s64 move; };
struct uffdio_poison_v66 { struct uffdio_range range; __u64 mode; __s64 updated; };
struct page_region_v67 { __u64 start, end, categories; };
struct pm_scan_arg_v67 { __u64 size, flags, start, end, walk_end, vec, vec_len, max_pages,
  category_inverted, category_mask, category_anyof_mask, return_mask; };
#define P(name, v) printf("%s\\t%llu\\n", name, (unsigned long long)(v))
int main(void) {
`;

let cValues: Map<string, bigint>;

beforeAll(() => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'numactlx-layout-'));
  try {
    const body = rows.map(([name, expr]) => `  P(${JSON.stringify(name)}, ${expr});`).join('\n');
    fs.writeFileSync(path.join(dir, 'layout.c'), `${PRELUDE}${body}\n  return 0;\n}\n`);
    execFileSync('cc', ['-O0', '-o', path.join(dir, 'layout'), path.join(dir, 'layout.c')], { stdio: 'pipe' });
    const out = execFileSync(path.join(dir, 'layout'), { encoding: 'utf8' });
    cValues = new Map(out.trim().split('\n').map((l) => {
      const [name, v] = l.split('\t');
      return [name, BigInt(v)];
    }));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

describe('layouts and constants match the C headers', () => {
  test.each(rows)('%s', (name, _expr, ts) => {
    expect(`${name} = ${BigInt(ts)}`).toBe(`${name} = ${cValues.get(name)}`);
  });
});

describe('constants only newer uapi headers have', () => {
  test.each(newer)('%s', (name, header, ts) => {
    expect(`${name} = ${BigInt(ts)}`).toBe(`${name} = ${BigInt(header)}`);
  });
});

// ---- behaviour ------------------------------------------------------------------------
// Never touch a registered page that could fault synchronously: this thread is the only
// one that could answer, so the test would hang instead of failing.
const PAGE = BigInt(mman.PAGE_SIZE);
const anon = (pages: number): bigint =>
  mman.mmap(0n, PAGE * BigInt(pages), mman.PROT_READ | mman.PROT_WRITE, mman.MAP_PRIVATE | mman.MAP_ANONYMOUS, -1, 0n);
const pattern = (seed: number): Buffer => patternPage(seed); // ../helpers/pattern.ts
const NEEDED_FEATURES: uapi.UffdFeatureName[] = ['PAGEFAULT_FLAG_WP', 'WP_UNPOPULATED', 'WP_ASYNC', 'EVENT_FORK',
  'EVENT_REMAP', 'EVENT_REMOVE', 'EVENT_UNMAP', 'THREAD_ID', 'MOVE', 'POISON'];

describe('userfaultfd', () => {
  test('UFFD_USER_MODE_ONLY handshake reports every feature numactlx uses', () => {
    const fd = uffd.userfaultfd(uapi.UFFD_USER_MODE_ONLY | uapi.O_CLOEXEC | uapi.O_NONBLOCK);
    try {
      const api = uffd.uffdioApi(fd, uapi.UFFD_FEATURE.PAGEFAULT_FLAG_WP);
      expect(api.api).toBe(uapi.UFFD_API);
      for (const f of NEEDED_FEATURES) expect(uapi.featureNames(api.features)).toContain(f);
      for (const nr of [uapi.UFFDIO_NR.API, uapi.UFFDIO_NR.REGISTER, uapi.UFFDIO_NR.UNREGISTER]) {
        expect(uapi.hasIoctl(api.ioctls, nr)).toBe(true);
      }
      expect(() => uffd.uffdioApi(fd, 0n)).toThrow('ioctl(UFFDIO_API) failed: EINVAL');
    } finally {
      fs.closeSync(fd);
    }
  });

  test('kernel-mode userfaultfd: plain syscall and /dev/userfaultfd', () => {
    for (const fd of [uffd.userfaultfd(uapi.O_CLOEXEC), uffd.userfaultfdFromDevice(uapi.O_CLOEXEC)]) {
      try {
        expect(uffd.uffdioApi(fd, 0n).features & uapi.UFFD_FEATURE.EVENT_FORK).toBe(uapi.UFFD_FEATURE.EVENT_FORK);
      } finally {
        fs.closeSync(fd);
      }
    }
    expect(() => uffd.userfaultfdFromDevice(0, '/nonexistent')).toThrow('open(/nonexistent) failed: ENOENT');
  });

  test('REGISTER, COPY (WP), ZEROPAGE, WRITEPROTECT, MOVE, POISON, UNREGISTER on anonymous memory', () => {
    const fd = uffd.userfaultfd(uapi.UFFD_USER_MODE_ONLY | uapi.O_CLOEXEC | uapi.O_NONBLOCK);
    const area = anon(4);
    const src = anon(1);
    const pm = pagemap.openPagemap('self');
    try {
      const api = uffd.uffdioApi(fd, uapi.UFFD_FEATURE.PAGEFAULT_FLAG_WP | uapi.UFFD_FEATURE.MOVE | uapi.UFFD_FEATURE.POISON);
      expect(uapi.featureNames(api.features)).toContain('MOVE');
      const ioctls = uffd.register(fd, area, 4n * PAGE, uapi.UFFDIO_REGISTER_MODE.MISSING | uapi.UFFDIO_REGISTER_MODE.WP);
      for (const k of ['WAKE', 'COPY', 'ZEROPAGE', 'WRITEPROTECT', 'MOVE', 'POISON'] as const) {
        expect(`${k}: ${uapi.hasIoctl(ioctls, uapi.UFFDIO_NR[k])}`).toBe(`${k}: true`);
      }

      const data = pattern(1);
      expect(uffd.copy(fd, area, mman.bufferAddress(data), PAGE, uapi.UFFDIO_COPY_MODE.WP)).toBe(PAGE);
      expect(mman.copyFromAddress(area, mman.PAGE_SIZE).equals(data)).toBe(true);
      expect(pagemap.readPagemapEntry(pm, area) & pagemap.PM_ENTRY.UFFD_WP).toBe(pagemap.PM_ENTRY.UFFD_WP);
      uffd.writeprotect(fd, area, PAGE, 0n);
      expect(pagemap.readPagemapEntry(pm, area) & pagemap.PM_ENTRY.UFFD_WP).toBe(0n);
      let err: unknown;
      try { uffd.copy(fd, area, mman.bufferAddress(data), PAGE, 0n); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(uffd.UffdioError);
      expect((err as uffd.UffdioError).message).toBe('ioctl(UFFDIO_COPY) failed: EEXIST');
      expect((err as uffd.UffdioError).done).toBe(0n);

      expect(uffd.zeropage(fd, area + PAGE, PAGE, 0n)).toBe(PAGE);
      expect(mman.copyFromAddress(area + PAGE, mman.PAGE_SIZE).every((b) => b === 0)).toBe(true);

      const moved = pattern(2);
      mman.copyToAddress(src, moved);
      expect(uffd.move(fd, area + 2n * PAGE, src, PAGE, 0n)).toBe(PAGE);
      expect(mman.copyFromAddress(area + 2n * PAGE, mman.PAGE_SIZE).equals(moved)).toBe(true);

      expect(uffd.poison(fd, area + 3n * PAGE, PAGE, 0n)).toBe(PAGE);
      uffd.wake(fd, area, 4n * PAGE);
      expect(uffd.readMsgs(fd, Buffer.alloc(4 * uapi.UFFD_MSG_SIZE))).toBe(0);
      uffd.unregister(fd, area, 4n * PAGE);
    } finally {
      fs.closeSync(pm);
      mman.munmap(area, 4n * PAGE);
      mman.munmap(src, PAGE);
      fs.closeSync(fd);
    }
  });

  test('decodeMsg reads every event kind', () => {
    const buf = Buffer.alloc(5 * uapi.UFFD_MSG_SIZE);
    const at = (i: number, o: number): number => i * uapi.UFFD_MSG_SIZE + o;
    const M = uapi.UFFD_MSG_OFFSET;
    buf[at(0, 0)] = uapi.UFFD_EVENT.PAGEFAULT;
    buf.writeBigUInt64LE(3n, at(0, M.pagefaultFlags));
    buf.writeBigUInt64LE(0x7fff_1234_5000n, at(0, M.pagefaultAddress));
    buf.writeUInt32LE(4242, at(0, M.pagefaultPtid));
    buf[at(1, 0)] = uapi.UFFD_EVENT.FORK;
    buf.writeUInt32LE(9, at(1, M.forkUfd));
    buf[at(2, 0)] = uapi.UFFD_EVENT.REMAP;
    [1n, 2n, 3n].forEach((v, i) => buf.writeBigUInt64LE(v, at(2, M.remapFrom + 8 * i)));
    buf[at(3, 0)] = uapi.UFFD_EVENT.UNMAP;
    [4n, 5n].forEach((v, i) => buf.writeBigUInt64LE(v, at(3, M.removeStart + 8 * i)));
    buf[at(4, 0)] = 0x7f;
    expect([0, 1, 2, 3, 4].map((i) => uffd.decodeMsg(buf, i))).toEqual([
      { kind: 'pagefault', flags: 3, address: 0x7fff_1234_5000n, ptid: 4242 },
      { kind: 'fork', ufd: 9 },
      { kind: 'remap', from: 1n, to: 2n, len: 3n },
      { kind: 'unmap', start: 4n, end: 5n },
      { kind: 'unknown', event: 0x7f },
    ]);
  });
});

describe('ptrace', () => {
  test('SEIZE, INTERRUPT, GETREGS, PEEK/POKE, GETSIGINFO on a child, then kill and reap', () => {
    const pid = spawnProgram({ file: '/bin/sleep', argv: ['sleep', '10'] });
    let reaped = false;
    try {
      ptrace.seize(pid, ptrace.PTRACE_O.EXITKILL | ptrace.PTRACE_O.TRACESYSGOOD);
      ptrace.interrupt(pid);
      const { status } = waitpid(pid, __WALL);
      expect(WIFSTOPPED(status)).toBe(true);
      expect(WPTRACEEVENT(status)).toBe(ptrace.PTRACE_EVENT.STOP);
      const regs = ptrace.getRegs(pid);
      const rip = ptrace.readReg(regs, 'rip');
      expect(rip).toBeGreaterThan(0n);
      const word = ptrace.peekData(pid, rip);
      ptrace.pokeData(pid, rip, word);
      expect(ptrace.peekData(pid, rip)).toBe(word);
      ptrace.setRegs(pid, regs);
      expect(ptrace.siginfoHead(ptrace.getSiginfo(pid)).signo).toBe(os.constants.signals.SIGTRAP);
      expect(typeof ptrace.getEventMsg(pid)).toBe('bigint');
      expect(() => ptrace.peekData(pid, 8n)).toThrow('ptrace(PTRACE_PEEKDATA) failed: EIO');
      kill(pid, os.constants.signals.SIGKILL);
      const end = waitpid(pid, __WALL);
      reaped = true;
      expect(WIFSIGNALED(end.status) && WTERMSIG(end.status)).toBe(os.constants.signals.SIGKILL);
    } finally {
      if (!reaped) {
        try { kill(pid, os.constants.signals.SIGKILL); } catch { /* already gone */ }
        waitpid(pid, __WALL);
      }
    }
    expect(() => ptrace.seize(pid, 0)).toThrow('ptrace(PTRACE_SEIZE) failed: ESRCH');
  });
});

describe('seccomp', () => {
  test('SECCOMP_GET_ACTION_AVAIL knows RET_TRACE and rejects an unknown action', () => {
    expect(seccomp.seccompActionAvailable(seccomp.SECCOMP_RET.TRACE)).toBe(true);
    expect(seccomp.seccompActionAvailable(seccomp.SECCOMP_RET.ALLOW)).toBe(true);
    expect(seccomp.seccompActionAvailable(0x12340000)).toBe(false);
  });

  test('the kernel reads an encoded program (and rejects one without a return)', () => {
    const prog = seccomp.encodeFilter([seccomp.bpfStmt(seccomp.BPF_LD | seccomp.BPF_W | seccomp.BPF_ABS, seccomp.SECCOMP_DATA.nr)]);
    // EINVAL, not EFAULT: the sock_fprog and its instructions were read; nothing is installed.
    expect(() => seccomp.seccompSetModeFilter(0, prog)).toThrow('seccomp(SECCOMP_SET_MODE_FILTER) failed: EINVAL');
  });
});

describe('mman', () => {
  test('mmap, write, madvise(DONTNEED), process_vm_readv and process_madvise on an anonymous page', () => {
    const page = anon(1);
    const self = pidfd.pidfdOpen(process.pid);
    try {
      const data = pattern(3);
      mman.copyToAddress(page, data);
      const back = Buffer.alloc(mman.PAGE_SIZE);
      expect(mman.processVmReadv(process.pid, [{ base: mman.bufferAddress(back), len: PAGE }], [{ base: page, len: PAGE }])).toBe(PAGE);
      expect(back.equals(data)).toBe(true);
      mman.madvise(page, PAGE, mman.MADV_DONTNEED);
      expect(mman.copyFromAddress(page, mman.PAGE_SIZE).every((b) => b === 0)).toBe(true);
      mman.copyToAddress(page, data);
      expect(mman.processMadvise(self, [{ base: page, len: PAGE }], mman.MADV_DONTNEED)).toBe(PAGE);
      expect(mman.copyFromAddress(page, mman.PAGE_SIZE).every((b) => b === 0)).toBe(true);
    } finally {
      fs.closeSync(self);
      mman.munmap(page, PAGE);
    }
    expect(() => mman.mmap(1n, PAGE, mman.PROT_READ, mman.MAP_PRIVATE | mman.MAP_ANONYMOUS | mman.MAP_FIXED, -1, 0n))
      .toThrow('mmap failed: EINVAL');
  });
});

describe('pidfd', () => {
  test('pidfd_open(self), pidfd_getfd(fd 0), pidfd_send_signal(0)', () => {
    const self = pidfd.pidfdOpen(process.pid);
    try {
      const dup = pidfd.pidfdGetfd(self, 0);
      try {
        expect(fs.fstatSync(dup).ino).toBe(fs.fstatSync(0).ino);
      } finally {
        fs.closeSync(dup);
      }
      pidfd.pidfdSendSignal(self, 0);
    } finally {
      fs.closeSync(self);
    }
    expect(() => pidfd.pidfdOpen(0x3fffffff)).toThrow('pidfd_open failed: ESRCH');
  });
});

describe('pagemap', () => {
  test('PAGEMAP_SCAN finds the present pages', () => {
    const pm = pagemap.openPagemap('self');
    const area = anon(4);
    try {
      mman.copyToAddress(area, pattern(4));
      mman.copyToAddress(area + 2n * PAGE, pattern(5));
      const { regions, walkEnd } = pagemap.pagemapScan(pm, {
        start: area, end: area + 4n * PAGE, categoryMask: pagemap.PAGE_IS.PRESENT, returnMask: pagemap.PAGE_IS.PRESENT,
      });
      expect(regions).toEqual([
        { start: area, end: area + PAGE, categories: pagemap.PAGE_IS.PRESENT },
        { start: area + 2n * PAGE, end: area + 3n * PAGE, categories: pagemap.PAGE_IS.PRESENT },
      ]);
      expect(walkEnd).toBe(area + 4n * PAGE);
    } finally {
      mman.munmap(area, 4n * PAGE);
      fs.closeSync(pm);
    }
  });

  test('UFFD_FEATURE_WP_ASYNC + PAGEMAP_SCAN track the pages written since the last scan', () => {
    const fd = uffd.userfaultfd(uapi.UFFD_USER_MODE_ONLY | uapi.O_CLOEXEC | uapi.O_NONBLOCK);
    const pm = pagemap.openPagemap('self');
    const area = anon(4);
    const F = uapi.UFFD_FEATURE;
    try {
      mman.copyToAddress(area, pattern(6));
      const api = uffd.uffdioApi(fd, F.PAGEFAULT_FLAG_WP | F.WP_UNPOPULATED | F.WP_ASYNC);
      // Without WP_ASYNC the write below would block this thread forever: stop here instead.
      expect(uapi.featureNames(api.features)).toContain('WP_ASYNC');
      uffd.register(fd, area, 4n * PAGE, uapi.UFFDIO_REGISTER_MODE.WP);
      const scan = (flags: number): pagemap.PageRegionData[] => pagemap.pagemapScan(pm, {
        start: area, end: area + 4n * PAGE, flags,
        categoryMask: pagemap.PAGE_IS.WRITTEN, returnMask: pagemap.PAGE_IS.WRITTEN,
      }).regions;
      const WP = pagemap.PM_SCAN_WP_MATCHING | pagemap.PM_SCAN_CHECK_WPASYNC;
      scan(WP); // protect everything
      expect(scan(0)).toEqual([]);
      mman.copyToAddress(area + PAGE, pattern(7)); // resolved by the kernel, no message
      expect(scan(WP)).toEqual([{ start: area + PAGE, end: area + 2n * PAGE, categories: pagemap.PAGE_IS.WRITTEN }]);
      expect(scan(0)).toEqual([]);
      expect(uffd.readMsgs(fd, Buffer.alloc(uapi.UFFD_MSG_SIZE))).toBe(0);
      uffd.unregister(fd, area, 4n * PAGE);
    } finally {
      mman.munmap(area, 4n * PAGE);
      fs.closeSync(pm);
      fs.closeSync(fd);
    }
  });
  // The engine's dirty tracker (src/engine-thread/dirty-scan.ts) as the engine sets it up:
  // MISSING and WP registered, pages placed by UFFDIO_COPY without MODE_WP (as the fault
  // service does) in a range mostly never touched.
  test('WrittenPageScanner: pages UFFDIO_COPY placed count as written, empty ptes never, a VMA without async protection is EPERM', () => {
    const fd = uffd.userfaultfd(uapi.UFFD_USER_MODE_ONLY | uapi.O_CLOEXEC | uapi.O_NONBLOCK);
    const pm = pagemap.openPagemap('self');
    const N = 1024; // 4 MiB: two page tables' worth of empty ptes around the placed pages
    const area = anon(N);
    const other = anon(4); // mapped, never registered
    const src = Buffer.from(pattern(8));
    const F = uapi.UFFD_FEATURE;
    const scanner = new pagemap.WrittenPageScanner(8); // a small vector: the walk resumes from walk_end
    const a = Number(area);
    const pageRuns = (runs: number[]): number[] => runs.map((x) => (x - a) / Number(PAGE));
    try {
      uffd.uffdioApi(fd, F.PAGEFAULT_FLAG_WP | F.WP_ASYNC);
      uffd.register(fd, area, BigInt(N) * PAGE, uapi.UFFDIO_REGISTER_MODE.MISSING | uapi.UFFDIO_REGISTER_MODE.WP);
      const placedAt = [3, 5, 6, 7, 600, 1000];
      for (const p of placedAt) uffd.copy(fd, area + BigInt(p) * PAGE, mman.bufferAddress(src), PAGE, 0n);
      const runs: number[] = [];
      expect(scanner.scan(pm, a, a + N * Number(PAGE), runs)).toBe(0);
      expect(pageRuns(runs)).toEqual([3, 4, 5, 8, 600, 601, 1000, 1001]);
      runs.length = 0;
      expect(scanner.scan(pm, a, a + N * Number(PAGE), runs)).toBe(0);
      expect(runs).toEqual([]); // reset by the scan before
      mman.copyToAddress(area + 6n * PAGE, pattern(9)); // an asynchronous write fault: no message
      expect(scanner.scan(pm, a, a + N * Number(PAGE), runs)).toBe(0);
      expect(pageRuns(runs)).toEqual([6, 7]);
      expect(uffd.readMsgs(fd, Buffer.alloc(uapi.UFFD_MSG_SIZE))).toBe(0);
      // A span with a VMA that is not registered: EPERM with the check, skipped without.
      mman.copyToAddress(other, pattern(10));
      mman.copyToAddress(area + 7n * PAGE, pattern(11));
      const [lo, hi] = other < area ? [Number(other), a + N * Number(PAGE)] : [a, Number(other) + 4 * Number(PAGE)];
      runs.length = 0;
      const r = scanner.scan(pm, lo, hi, runs);
      expect(r).toBe(-os.constants.errno.EPERM);
      // Reset before the error (the region first) or by the call without the check: once.
      expect(scanner.scan(pm, lo, hi, runs, false)).toBe(0);
      expect(pageRuns(runs)).toEqual([7, 8]);
      uffd.unregister(fd, area, BigInt(N) * PAGE);
    } finally {
      mman.munmap(area, BigInt(N) * PAGE);
      mman.munmap(other, 4n * PAGE);
      fs.closeSync(pm);
      fs.closeSync(fd);
    }
  });
});
