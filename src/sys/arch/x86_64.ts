// x86_64 architecture facts: syscall numbers, the seccomp audit arch, and the
// layout of `struct user_regs_struct`.
// Syscall numbers from <asm/unistd_64.h> (Linux 6.1 uapi, Debian 12), generated with:
//   for n in read write close mmap ...; do grep -w "__NR_$n" /usr/include/x86_64-linux-gnu/asm/unistd_64.h; done
// (set_mempolicy_home_node and later calls are numbered identically on 6.18.)

export const ARCH_NAME = 'x86_64';

/** AUDIT_ARCH_X86_64 = EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE (<linux/audit.h>). */
export const AUDIT_ARCH = 0xc000003e;

export const SYS = {
  read: 0,
  write: 1,
  close: 3,
  rt_sigaction: 13,
  rt_sigprocmask: 14,
  openat: 257,
  mmap: 9,
  munmap: 11,
  brk: 12,
  mremap: 25,
  madvise: 28,
  ioctl: 16,
  sendmsg: 46,
  recvmsg: 47,
  socketpair: 53,
  getpid: 39,
  gettid: 186,
  kill: 62,
  tgkill: 234,
  rt_tgsigqueueinfo: 297,
  exit: 60,
  execve: 59,
  execveat: 322,
  exit_group: 231,
  wait4: 61,
  ptrace: 101,
  mbind: 237,
  set_mempolicy: 238,
  get_mempolicy: 239,
  sched_setaffinity: 203,
  sched_getaffinity: 204,
  userfaultfd: 323,
  pidfd_open: 434,
  pidfd_send_signal: 424,
  pidfd_getfd: 438,
  process_madvise: 440,
  process_vm_readv: 310,
  process_vm_writev: 311,
  seccomp: 317,
  memfd_create: 319,
  move_pages: 279,
  migrate_pages: 256,
  set_mempolicy_home_node: 450,
  prctl: 157,
  clone: 56,
  clone3: 435,
} as const;

export type SyscallName = keyof typeof SYS;

/**
 * `struct user_regs_struct` from <sys/user.h>: 27 unsigned 64-bit fields in this order
 * (PTRACE_GETREGS / PTRACE_SETREGS transfer exactly these 216 bytes).
 */
export const USER_REGS_FIELDS = [
  'r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8',
  'rax', 'rcx', 'rdx', 'rsi', 'rdi', 'orig_rax', 'rip', 'cs', 'eflags', 'rsp',
  'ss', 'fs_base', 'gs_base', 'ds', 'es', 'fs', 'gs',
] as const;

export type UserRegName = (typeof USER_REGS_FIELDS)[number];

/** Size in bytes of `struct user_regs_struct`. */
export const USER_REGS_SIZE = USER_REGS_FIELDS.length * 8;

/** Byte offset of a register in `struct user_regs_struct`. */
export function userRegOffset(name: UserRegName): number {
  return USER_REGS_FIELDS.indexOf(name) * 8;
}

/** The syscall instruction (`0f 05`), as injected at a stopped thread's rip. */
export const SYSCALL_INSN = Buffer.from([0x0f, 0x05]);

/** Registers carrying the syscall number, result and the six arguments. */
export const SYSCALL_REGS = {
  nr: 'orig_rax', ret: 'rax', args: ['rdi', 'rsi', 'rdx', 'r10', 'r8', 'r9'],
} as const;
