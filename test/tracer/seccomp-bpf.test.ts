// The classic-BPF run of a program's seccomp filters on the calls numactlx injects
// (src/tracer-thread/seccomp-bpf.ts). Pure logic: the kernel's own verdicts on real
// filters are in sandboxed.test.ts (a libseccomp deny-list) and seccomp-filter.test.ts
// (numactlx's filter, whose kernel verdicts the first test here repeats).
import { runFilter, seccompData, type FilteredCall } from '../../src/tracer-thread/seccomp-bpf.js';
import { memoryTrapFilter } from '../../src/tracer-thread/seccomp-filter.js';
import { SYS } from '../../src/sys/arch/index.js';
import {
  BPF_A, BPF_ABS, BPF_ADD, BPF_ALU, BPF_AND, BPF_DIV, BPF_IMM, BPF_JEQ, BPF_JGT, BPF_JMP, BPF_JSET, BPF_K, BPF_LD, BPF_LDX,
  BPF_LSH, BPF_MEM, BPF_MISC, BPF_MUL, BPF_NEG, BPF_RET, BPF_ST, BPF_SUB, BPF_TAX, BPF_TXA, BPF_W, BPF_X, SECCOMP_DATA,
  SECCOMP_RET, bpfJump, bpfStmt, encodeFilter,
} from '../../src/sys/seccomp.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED } from '../../src/sys/mman.js';
import { PTRACE } from '../../src/sys/ptrace.js';

const run = (program: Buffer, call: FilteredCall, ip = 0x401000n): number => runFilter(program, seccompData(call, ip));

test('numactlx\'s own filter gives the verdicts the kernel gives it (seccomp-filter.test.ts): brk(0), shared mmap and getpid run, the rest is traced', () => {
  const f = memoryTrapFilter();
  const verdicts = [
    run(f, { nr: SYS.brk, args: [0n] }),
    run(f, { nr: SYS.brk, args: [0x55550000_1000n] }),
    run(f, { nr: SYS.brk, args: [1n << 32n] }),
    run(f, { nr: SYS.mmap, args: [0n, 4096n, 3n, BigInt(MAP_PRIVATE | MAP_ANONYMOUS), -1n, 0n] }),
    run(f, { nr: SYS.mmap, args: [0n, 4096n, 3n, BigInt(MAP_SHARED | MAP_ANONYMOUS), -1n, 0n] }),
    run(f, { nr: SYS.getpid, args: [] }),
    run(f, { nr: SYS.set_mempolicy, args: [0n, 0n, 0n] }),
    run(f, { nr: SYS.userfaultfd, args: [0n] }),
    run(f, { nr: SYS.ptrace, args: [BigInt(PTRACE.TRACEME)] }),
  ];
  const { ALLOW, TRACE } = SECCOMP_RET;
  expect(verdicts).toEqual([ALLOW, TRACE, TRACE, TRACE, ALLOW, ALLOW, TRACE, TRACE, TRACE]);
});

test('a 64-bit argument compared a 32-bit half at a time (libseccomp\'s way): only the exact value matches', () => {
  const KILL = SECCOMP_RET.KILL_PROCESS;
  const f = encodeFilter([
    bpfStmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA.nr),
    bpfJump(BPF_JMP | BPF_JEQ | BPF_K, SYS.madvise, 0, 4),
    bpfStmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA.arg(2) + 4), // high half
    bpfJump(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 2),
    bpfStmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA.arg(2)), // low half
    bpfJump(BPF_JMP | BPF_JEQ | BPF_K, 4, 1, 0),
    bpfStmt(BPF_RET | BPF_K, SECCOMP_RET.ALLOW),
    bpfStmt(BPF_RET | BPF_K, KILL),
  ]);
  const madvise = (advice: bigint): number => run(f, { nr: SYS.madvise, args: [0x7f00_0000_0000n, 4096n, advice] });
  expect([madvise(4n), madvise(0x1_0000_0004n), madvise(5n), run(f, { nr: SYS.getpid, args: [] })])
    .toEqual([KILL, SECCOMP_RET.ALLOW, SECCOMP_RET.ALLOW, SECCOMP_RET.ALLOW]);
});

test('arithmetic, the scratch memory, X and the instruction pointer: the values classic BPF computes', () => {
  // A = ((nr + 5) * 3) & 0xff, kept in M[3] and X; 1000 - X + M[3] = 1000; << 4; / 7.
  const f = encodeFilter([
    bpfStmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA.nr),
    bpfStmt(BPF_ALU | BPF_ADD | BPF_K, 5),
    bpfStmt(BPF_ALU | BPF_MUL | BPF_K, 3),
    bpfStmt(BPF_ALU | BPF_AND | BPF_K, 0xff),
    bpfStmt(BPF_ST, 3),
    bpfStmt(BPF_MISC | BPF_TAX, 0),
    bpfStmt(BPF_LD | BPF_IMM, 1000),
    bpfStmt(BPF_ALU | BPF_SUB | BPF_X, 0), // 1000 - X
    bpfStmt(BPF_LDX | BPF_MEM, 3), // X = M[3]
    bpfStmt(BPF_ALU | BPF_ADD | BPF_X, 0), // back to 1000
    bpfStmt(BPF_ALU | BPF_LSH | BPF_K, 4), // 16000
    bpfStmt(BPF_ALU | BPF_DIV | BPF_K, 7), // 2285
    bpfStmt(BPF_RET | BPF_A, 0),
  ]);
  expect(run(f, { nr: 39, args: [] })).toBe(2285);
  const neg = encodeFilter([bpfStmt(BPF_LD | BPF_IMM, 1), bpfStmt(BPF_ALU | BPF_NEG, 0), bpfStmt(BPF_RET | BPF_A, 0)]);
  expect(run(neg, { nr: 0, args: [] })).toBe(0xffffffff);
  // The instruction pointer's high half, X compared, JSET on a flag bit.
  const ip = encodeFilter([
    bpfStmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA.instructionPointer + 4),
    bpfStmt(BPF_MISC | BPF_TAX, 0),
    bpfStmt(BPF_LD | BPF_IMM, 0x1000),
    bpfJump(BPF_JMP | BPF_JGT | BPF_X, 0, 0, 1), // 0x1000 > X: an ip below 2^44
    bpfStmt(BPF_RET | BPF_K, 1),
    bpfStmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA.arg(0)),
    bpfJump(BPF_JMP | BPF_JSET | BPF_K, 0x10, 0, 1),
    bpfStmt(BPF_RET | BPF_K, 2),
    bpfStmt(BPF_MISC | BPF_TXA, 0),
    bpfStmt(BPF_RET | BPF_A, 0),
  ]);
  expect([run(ip, { nr: 0, args: [0n] }, 0x401000n), run(ip, { nr: 0, args: [0x10n] }, 0x7ffd_0000_1000n),
    run(ip, { nr: 0, args: [0x20n] }, 0x7ffd_0000_1000n)]).toEqual([1, 2, 0x7ffd]);
});

test('what seccomp would not have loaded is refused, not guessed: a load past seccomp_data, an unknown opcode, no return', () => {
  const call = { nr: 0, args: [] };
  expect(() => run(encodeFilter([bpfStmt(BPF_LD | BPF_W | BPF_ABS, 64), bpfStmt(BPF_RET | BPF_A, 0)]), call)).toThrow(RangeError);
  expect(() => run(encodeFilter([bpfStmt(BPF_LD | BPF_W | BPF_ABS, 2), bpfStmt(BPF_RET | BPF_A, 0)]), call)).toThrow(RangeError);
  expect(() => run(encodeFilter([bpfStmt(0x28 /* LD H ABS */, 0), bpfStmt(BPF_RET | BPF_A, 0)]), call)).toThrow(RangeError);
  expect(() => run(encodeFilter([bpfStmt(BPF_LD | BPF_IMM, 0)]), call)).toThrow(RangeError);
});
