// The notes of a core file's PT_NOTE segment (elf-core.ts draws the file): per thread
// NT_PRSTATUS (tid and registers; no signal, a snapshot is no crash), NT_PRPSINFO (name
// and command line), NT_AUXV (rebuilt: elf-auxv.ts) and NT_FILE (the file mappings gdb
// reads absent pages from), in the order Linux's binfmt_elf.c writes them, the main
// thread first.
import path from 'node:path';
import { USER_REGS_SIZE } from '../sys/arch/index.js';
import { PAGE_SIZE } from '../sys/page.js';
import { u64 } from './elf-format.js';
import { synthesizeAuxv } from './elf-auxv.js';
import type { SnapshotProcess, SnapshotRecord, ThreadRegs, Vma } from './types.js';

export const NT_PRSTATUS = 1;
export const NT_PRPSINFO = 3;
export const NT_AUXV = 6;
export const NT_FILE = 0x46494c45; // "FILE"

/**
 * struct elf_prstatus (<linux/elfcore.h>, <sys/procfs.h>) on x86_64: 336 bytes. The
 * offsets are checked against glibc's header by the tests.
 */
export const PRSTATUS = {
  size: 336,
  /** struct elf_siginfo { si_signo, si_code, si_errno } at 0; pr_cursig (short) at 12. */
  cursig: 12, sigpend: 16, sighold: 24,
  pid: 32, ppid: 36, pgrp: 40, sid: 44,
  /** pr_utime, pr_stime, pr_cutime, pr_cstime: struct timeval, 16 bytes each, from 48. */
  reg: 112, fpvalid: 328,
} as const;

/** struct elf_prpsinfo on x86_64: 136 bytes (pr_uid/pr_gid are 32-bit). */
export const PRPSINFO = {
  size: 136,
  state: 0, sname: 1, zomb: 2, nice: 3, flag: 8, uid: 16, gid: 20,
  pid: 24, ppid: 28, pgrp: 32, sid: 36, fname: 40, fnameSize: 16, psargs: 56, psargsSize: 80,
} as const;

const align4 = (n: number): number => (n + 3) & ~3;

/** One note: Elf64_Nhdr (namesz, descsz, type), "CORE\0" padded to 8, desc padded to 4. */
export function encodeNote(type: number, desc: Buffer): Buffer {
  const name = Buffer.from('CORE\0', 'latin1');
  const out = Buffer.alloc(12 + align4(name.length) + align4(desc.length));
  out.writeUInt32LE(name.length, 0);
  out.writeUInt32LE(desc.length, 4);
  out.writeUInt32LE(type, 8);
  name.copy(out, 12);
  desc.copy(out, 12 + align4(name.length));
  return out;
}

/** NT_PRSTATUS of one thread: its tid and registers; no signal (a snapshot is no crash). */
export function encodePrstatus(thread: ThreadRegs, pid: number): Buffer {
  const buf = Buffer.alloc(PRSTATUS.size);
  buf.writeInt32LE(thread.tid, PRSTATUS.pid);
  buf.writeInt32LE(pid, PRSTATUS.pgrp);
  thread.regs.copy(buf, PRSTATUS.reg, 0, Math.min(thread.regs.length, USER_REGS_SIZE));
  buf.writeInt32LE(0, PRSTATUS.fpvalid); // no NT_PRFPREG: the snapshot has no FPU state
  return buf;
}

function putString(buf: Buffer, text: string, offset: number, size: number): void {
  // Truncated so a NUL always ends it, as the kernel does for comm and psargs.
  Buffer.from(text, 'utf8').subarray(0, size - 1).copy(buf, offset);
}

/** NT_PRPSINFO: the process's name and command line. */
export function encodePrpsinfo(proc: SnapshotProcess, program: readonly string[]): Buffer {
  const buf = Buffer.alloc(PRPSINFO.size);
  const argv = proc.command.length > 0 ? proc.command : program;
  buf.write('R', PRPSINFO.sname, 'latin1');
  buf.writeInt32LE(proc.pid, PRPSINFO.pid);
  buf.writeInt32LE(proc.pid, PRPSINFO.pgrp);
  putString(buf, path.basename(proc.exe || argv[0] || ''), PRPSINFO.fname, PRPSINFO.fnameSize);
  putString(buf, argv.join(' '), PRPSINFO.psargs, PRPSINFO.psargsSize);
  return buf;
}

/** The VMAs mapping a file: a path that is not a pseudo-name such as [heap] or [stack]. */
export const fileBacked = (vma: Vma): boolean => vma.path.startsWith('/');

/**
 * NT_FILE: count, page size, then (start, end, offset in pages) per file mapping, then
 * their paths, NUL-terminated, in the same order (fill_files_note in binfmt_elf.c).
 */
export function encodeNtFile(vmas: readonly Vma[]): Buffer {
  const files = vmas.filter(fileBacked);
  const head = Buffer.alloc(16 + files.length * 24);
  u64(head, files.length, 0);
  u64(head, PAGE_SIZE, 8);
  files.forEach((v, i) => {
    u64(head, v.start, 16 + i * 24);
    u64(head, v.end, 24 + i * 24);
    u64(head, Math.floor(v.offset / PAGE_SIZE), 32 + i * 24);
  });
  return Buffer.concat([head, ...files.map((v) => Buffer.from(`${v.path}\0`, 'utf8'))]);
}

/** The main thread (tid = pid) first: gdb makes the first NT_PRSTATUS the current thread. */
function threadsInOrder(proc: SnapshotProcess): ThreadRegs[] {
  return [...proc.threads].sort((a, b) => Number(b.tid === proc.pid) - Number(a.tid === proc.pid));
}

/** The PT_NOTE segment's contents. */
export function buildNotes(record: SnapshotRecord, proc: SnapshotProcess): Buffer {
  const [first, ...others] = threadsInOrder(proc);
  const notes: Buffer[] = [];
  if (first) notes.push(encodeNote(NT_PRSTATUS, encodePrstatus(first, proc.pid)));
  notes.push(encodeNote(NT_PRPSINFO, encodePrpsinfo(proc, record.program)));
  const auxv = synthesizeAuxv(proc);
  if (auxv) notes.push(encodeNote(NT_AUXV, auxv));
  notes.push(encodeNote(NT_FILE, encodeNtFile(proc.vmas)));
  for (const t of others) notes.push(encodeNote(NT_PRSTATUS, encodePrstatus(t, proc.pid)));
  return Buffer.concat(notes);
}
