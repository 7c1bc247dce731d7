// The seccomp filter installed in the program: SECCOMP_RET_TRACE (a ptrace stop in
// the tracer) for exactly the calls that place memory — anonymous private mmap without
// MAP_HUGETLB, brk (but brk(0), which only asks where the break is: every process does at
// its start, and malloc again), mbind, set_mempolicy, get_mempolicy —, the calls that discard a
// process's memory without an exit stop (execve, execveat), the program's own userfaultfd
// (own-userfaultfd.ts: let run, with a line on why its ranges may be refused), and the ptrace requests
// that make the caller or another task a tracee (PTRACE_TRACEME, _ATTACH, _SEIZE: a
// task of the program is numactlx's tracee already, and Linux allows one tracer) — and
// ALLOW for everything else, so untrapped calls run at full speed (≈ 10 ns of filter).
// A call from another architecture (x32, i386) is allowed untouched.
import { AUDIT_ARCH, SYS } from '../sys/arch/index.js';
import {
  BPF_ABS, BPF_ALU, BPF_AND, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W, SECCOMP_DATA,
  SECCOMP_RET, bpfJump, bpfStmt, encodeFilter,
} from '../sys/seccomp.js';
import { MAP_ANONYMOUS, MAP_HUGETLB, MAP_PRIVATE, MAP_SHARED } from '../sys/mman.js';
import { PTRACE } from '../sys/ptrace.js';

const MAP_TYPE = MAP_SHARED | MAP_PRIVATE; // 0x03 (also covers MAP_SHARED_VALIDATE)

/** The filter program (struct sock_filter[]). */
export function memoryTrapFilter(): Buffer {
  const BRK = 19;
  const ALLOW = 23;
  const TRACE = 24;
  const j = (at: number, target: number): number => target - at - 1;
  return encodeFilter([
    /* 0 */ bpfStmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA.arch),
    /* 1 */ bpfJump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH, 0, j(1, ALLOW)),
    /* 2 */ bpfStmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA.nr),
    /* 3 */ bpfJump(BPF_JMP | BPF_JEQ | BPF_K, SYS.mmap, 0, j(3, 7)),
    /* 4 */ bpfStmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA.arg(3)), // flags, low 32 bits
    /* 5 */ bpfStmt(BPF_ALU | BPF_AND | BPF_K, MAP_TYPE | MAP_ANONYMOUS | MAP_HUGETLB),
    /* 6 */ bpfJump(BPF_JMP | BPF_JEQ | BPF_K, MAP_PRIVATE | MAP_ANONYMOUS, j(6, TRACE), j(6, ALLOW)),
    /* 7 */ bpfJump(BPF_JMP | BPF_JEQ | BPF_K, SYS.brk, j(7, BRK), 0),
    /* 8 */ bpfJump(BPF_JMP | BPF_JEQ | BPF_K, SYS.mbind, j(8, TRACE), 0),
    /* 9 */ bpfJump(BPF_JMP | BPF_JEQ | BPF_K, SYS.set_mempolicy, j(9, TRACE), 0),
    /* 10 */ bpfJump(BPF_JMP | BPF_JEQ | BPF_K, SYS.get_mempolicy, j(10, TRACE), 0),
    /* 11 */ bpfJump(BPF_JMP | BPF_JEQ | BPF_K, SYS.execve, j(11, TRACE), 0),
    /* 12 */ bpfJump(BPF_JMP | BPF_JEQ | BPF_K, SYS.execveat, j(12, TRACE), 0),
    /* 13 */ bpfJump(BPF_JMP | BPF_JEQ | BPF_K, SYS.userfaultfd, j(13, TRACE), 0),
    /* 14 */ bpfJump(BPF_JMP | BPF_JEQ | BPF_K, SYS.ptrace, 0, j(14, ALLOW)),
    /* 15 */ bpfStmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA.arg(0)), // request, low 32 bits
    /* 16 */ bpfJump(BPF_JMP | BPF_JEQ | BPF_K, PTRACE.TRACEME, j(16, TRACE), 0),
    /* 17 */ bpfJump(BPF_JMP | BPF_JEQ | BPF_K, PTRACE.ATTACH, j(17, TRACE), 0),
    /* 18 */ bpfJump(BPF_JMP | BPF_JEQ | BPF_K, PTRACE.SEIZE, j(18, TRACE), j(18, ALLOW)),
    /* 19 */ bpfStmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA.arg(0)), // brk's address, low 32 bits
    /* 20 */ bpfJump(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, j(20, TRACE)),
    /* 21 */ bpfStmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA.arg(0) + 4), // high 32 bits
    /* 22 */ bpfJump(BPF_JMP | BPF_JEQ | BPF_K, 0, j(22, ALLOW), j(22, TRACE)),
    /* 23 */ bpfStmt(BPF_RET | BPF_K, SECCOMP_RET.ALLOW),
    /* 24 */ bpfStmt(BPF_RET | BPF_K, SECCOMP_RET.TRACE),
  ]);
}
