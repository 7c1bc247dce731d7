// A snapshot's process as an ELF core file that gdb opens (`gdb PROGRAM CORE`), laid out
// the way Linux's fs/binfmt_elf.c writes one (elf_core_dump), for x86_64 only:
//
//   0       64        Elf64_Ehdr   ET_CORE, EM_X86_64, ELFOSABI_NONE, e_phoff = 64
//   64      56 × n    Elf64_Phdr   PT_NOTE, then one PT_LOAD per run of snapshot pages
//  [..      64        Elf64_Shdr   only when n ≥ PN_XNUM (0xffff): holds the real count]
//   ..                notes        4-byte aligned Elf64_Nhdr + "CORE\0" + desc, in the order
//                                  Linux writes them: NT_PRSTATUS (main thread), NT_PRPSINFO,
//                                  NT_AUXV, NT_FILE, then NT_PRSTATUS of the other threads
//   4096·k            page data    each PT_LOAD's bytes, page aligned, back to back
//
// The snapshot holds only the pages of the virtual node. Pages of file-backed mappings
// that are not in it are simply absent: gdb reads them from the files NT_FILE names.
// Anonymous memory that is not in the snapshot is absent too, and gdb says it cannot
// access it — never zeros pretending to be the program's data.
//
// The snapshot records no auxiliary vector; gdb needs AT_ENTRY to find where a PIE
// program was loaded and AT_BASE to find the dynamic loader. They are rebuilt from the
// executable's ELF headers on disk and the VMAs (synthesizeAuxv). gdb finds the shared
// libraries through the loader's r_debug, in the loader's .data/.bss: a private file
// mapping, whose copied-on-write pages a virtual node does not hold (userfaultfd cannot
// register file mappings). Without them in the snapshot, gdb shows the program's own
// frames and data but no shared library (and so no backtrace through libc).
import fs from 'node:fs';
import path from 'node:path';
import { USER_REGS_SIZE } from '../sys/arch/index.js';
import { chooseProcess, copyRuns, createOutput, ExportError, pageRuns, type ExportSummary, type PageRun } from './export.js';
import { PAGE_SIZE } from '../sys/page.js';
import { NO_PROGRESS, type Progress } from './progress.js';
import type { SnapshotSource } from './source.js';
import type { SnapshotProcess, SnapshotRecord, ThreadRegs, Vma } from './types.js';

export const EHDR_SIZE = 64;
export const PHDR_SIZE = 56;
export const SHDR_SIZE = 64;
const ET_CORE = 4;
const EM_X86_64 = 62;
const PT_LOAD = 1;
const PT_NOTE = 4;
const PF_X = 1;
const PF_W = 2;
const PF_R = 4;
/** e_phnum's escape: the count is in the first section header's sh_info. */
const PN_XNUM = 0xffff;

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

const u64 = (buf: Buffer, value: number | bigint, offset: number): void => {
  buf.writeBigUInt64LE(BigInt(value), offset);
};

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

const flagsOf = (vma: Vma | undefined): number => (vma === undefined ? PF_R | PF_W
  : (vma.perms[0] === 'r' ? PF_R : 0) | (vma.perms[1] === 'w' ? PF_W : 0) | (vma.perms[2] === 'x' ? PF_X : 0));

/** The main thread (tid = pid) first: gdb makes the first NT_PRSTATUS the current thread. */
function threadsInOrder(proc: SnapshotProcess): ThreadRegs[] {
  return [...proc.threads].sort((a, b) => Number(b.tid === proc.pid) - Number(a.tid === proc.pid));
}

const AT = { NULL: 0, PHDR: 3, PHENT: 4, PHNUM: 5, PAGESZ: 6, BASE: 7, ENTRY: 9 } as const;

interface ElfImage {
  entry: number;
  phoff: number;
  phentsize: number;
  phnum: number;
  loads: Array<{ offset: number; vaddr: number; filesz: number }>;
  /** PT_PHDR's p_vaddr, when there is one. */
  phdrVaddr?: number;
  interp?: string;
}

/** The ELF header and program headers of an x86_64 executable or shared object on disk. */
export function readElfImage(file: string): ElfImage | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const eh = Buffer.alloc(EHDR_SIZE);
    if (fs.readSync(fd, eh, 0, EHDR_SIZE, 0) !== EHDR_SIZE || eh.readUInt32BE(0) !== 0x7f454c46 || eh[4] !== 2
      || eh[5] !== 1 || eh.readUInt16LE(18) !== EM_X86_64) return undefined;
    const image: ElfImage = {
      entry: Number(eh.readBigUInt64LE(24)), phoff: Number(eh.readBigUInt64LE(32)),
      phentsize: eh.readUInt16LE(54), phnum: eh.readUInt16LE(56), loads: [],
    };
    if (image.phentsize !== PHDR_SIZE || image.phnum === 0 || image.phnum === PN_XNUM) return undefined;
    const ph = Buffer.alloc(image.phnum * PHDR_SIZE);
    if (fs.readSync(fd, ph, 0, ph.length, image.phoff) !== ph.length) return undefined;
    for (let at = 0; at < ph.length; at += PHDR_SIZE) {
      const type = ph.readUInt32LE(at);
      const offset = Number(ph.readBigUInt64LE(at + 8));
      const vaddr = Number(ph.readBigUInt64LE(at + 16));
      const filesz = Number(ph.readBigUInt64LE(at + 32));
      if (type === PT_LOAD) image.loads.push({ offset, vaddr, filesz });
      if (type === 6 /* PT_PHDR */) image.phdrVaddr = vaddr;
      if (type === 3 /* PT_INTERP */) {
        const name = Buffer.alloc(Math.min(filesz, 4096));
        fs.readSync(fd, name, 0, name.length, offset);
        image.interp = name.toString('utf8').replace(/\0[\s\S]*$/, '');
      }
    }
    return image;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Where `image` was loaded (the load bias: 0 for a non-PIE executable), from the VMA
 * that maps the lowest file offset of `file`: a PT_LOAD maps file offset o at
 * bias + p_vaddr + (o - p_offset).
 */
function loadBias(image: ElfImage, file: string, vmas: readonly Vma[]): number | undefined {
  const mapped = vmas.filter((v) => v.path === file).sort((a, b) => a.offset - b.offset || a.start - b.start);
  if (mapped.length === 0) return undefined;
  const vma = mapped[0];
  const load = image.loads.find((l) => vma.offset >= l.offset - (l.offset % PAGE_SIZE) && vma.offset < l.offset + Math.max(l.filesz, 1));
  return load === undefined ? undefined : vma.start - (load.vaddr - load.offset) - vma.offset;
}

/** The interpreter's path as the VMAs name it (PT_INTERP is often a symlink: /lib64/ld-linux-x86-64.so.2). */
function interpreterPath(interp: string, vmas: readonly Vma[]): string | undefined {
  const paths = new Set(vmas.map((v) => v.path));
  if (paths.has(interp)) return interp;
  try {
    const real = fs.realpathSync(interp);
    if (paths.has(real)) return real;
  } catch {
    // not on this machine: match by name
  }
  return [...paths].find((p) => path.basename(p) === path.basename(interp));
}

/**
 * NT_AUXV rebuilt from the executable's headers on disk and the snapshot's VMAs: AT_PHDR,
 * AT_PHENT, AT_PHNUM, AT_PAGESZ, AT_BASE, AT_ENTRY — what gdb reads to relocate a PIE
 * program and find the dynamic loader. Undefined when the executable cannot be read
 * (gdb then handles a non-PIE program still). The files must be the ones the program ran.
 */
export function synthesizeAuxv(proc: SnapshotProcess): Buffer | undefined {
  const exe = proc.exe.replace(/ \(deleted\)$/, '');
  const image = exe ? readElfImage(exe) : undefined;
  if (!image) return undefined;
  const bias = loadBias(image, proc.exe, proc.vmas);
  if (bias === undefined) return undefined;
  const entries: Array<[number, number]> = [];
  const phdrLoad = image.loads.find((l) => image.phoff >= l.offset && image.phoff < l.offset + l.filesz);
  const phdr = image.phdrVaddr ?? (phdrLoad ? phdrLoad.vaddr + (image.phoff - phdrLoad.offset) : undefined);
  if (phdr !== undefined) entries.push([AT.PHDR, bias + phdr]);
  entries.push([AT.PHENT, image.phentsize], [AT.PHNUM, image.phnum], [AT.PAGESZ, PAGE_SIZE]);
  const interp = image.interp === undefined ? undefined : interpreterPath(image.interp, proc.vmas);
  const interpImage = interp === undefined ? undefined : readElfImage(interp);
  const base = interpImage && interp ? loadBias(interpImage, interp, proc.vmas) : undefined;
  if (base !== undefined) entries.push([AT.BASE, base]);
  entries.push([AT.ENTRY, bias + image.entry], [AT.NULL, 0]);
  const buf = Buffer.alloc(entries.length * 16);
  entries.forEach(([type, value], i) => {
    u64(buf, type, i * 16);
    u64(buf, value, i * 16 + 8);
  });
  return buf;
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

/** Everything before the page data: ELF header, program headers, notes, zero padding. */
export function buildHeaders(notes: Buffer, runs: readonly PageRun[]): { head: Buffer; dataOffset: number } {
  const segs = 1 + runs.length;
  const xnum = segs >= PN_XNUM;
  const phoff = EHDR_SIZE;
  const shoff = phoff + segs * PHDR_SIZE;
  const notesOffset = shoff + (xnum ? SHDR_SIZE : 0);
  const dataOffset = Math.ceil((notesOffset + notes.length) / PAGE_SIZE) * PAGE_SIZE;
  const head = Buffer.alloc(dataOffset);

  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2 /* ELFCLASS64 */, 1 /* ELFDATA2LSB */, 1 /* EV_CURRENT */, 0 /* ELFOSABI_NONE */])
    .copy(head, 0);
  head.writeUInt16LE(ET_CORE, 16);
  head.writeUInt16LE(EM_X86_64, 18);
  head.writeUInt32LE(1, 20); // e_version
  u64(head, phoff, 32);
  u64(head, xnum ? shoff : 0, 40);
  head.writeUInt16LE(EHDR_SIZE, 52);
  head.writeUInt16LE(PHDR_SIZE, 54);
  head.writeUInt16LE(xnum ? PN_XNUM : segs, 56);
  if (xnum) {
    head.writeUInt16LE(SHDR_SIZE, 58);
    head.writeUInt16LE(1, 60); // e_shnum; e_shstrndx = SHN_UNDEF
    // The one SHT_NULL section header: sh_size = e_shnum, sh_info = the segment count.
    u64(head, 1, shoff + 32);
    head.writeUInt32LE(segs, shoff + 44);
  }

  const phdr = (i: number, type: number, flags: number, offset: number, vaddr: number, size: number, align: number): void => {
    const at = phoff + i * PHDR_SIZE;
    head.writeUInt32LE(type, at);
    head.writeUInt32LE(flags, at + 4);
    u64(head, offset, at + 8);
    u64(head, vaddr, at + 16);
    u64(head, 0, at + 24); // p_paddr
    u64(head, size, at + 32); // p_filesz
    u64(head, type === PT_NOTE ? 0 : size, at + 40); // p_memsz
    u64(head, align, at + 48);
  };
  phdr(0, PT_NOTE, 0, notesOffset, 0, notes.length, 4);
  let offset = dataOffset;
  runs.forEach((run, i) => {
    const bytes = run.count * PAGE_SIZE;
    phdr(i + 1, PT_LOAD, flagsOf(run.vma), offset, run.addr, bytes, PAGE_SIZE);
    offset += bytes;
  });
  notes.copy(head, notesOffset);
  return { head, dataOffset };
}

/**
 * Writes process `pid` (default: the first, the program) of snapshot `record` as an ELF
 * core file at `outPath` (mode 0600, never through a symlink; replaces a file only with
 * `force`). Frames are checked against their CRC32 on the way; bad ones are written as
 * found and listed in the summary.
 */
export function writeCore(source: SnapshotSource, record: SnapshotRecord, pid: number | undefined, outPath: string,
  progress: Progress = NO_PROGRESS, force = false): ExportSummary {
  const proc = chooseProcess(record, pid);
  const runs = pageRuns(record, proc);
  const { head, dataOffset } = buildHeaders(buildNotes(record, proc), runs);
  const out = createOutput(path.dirname(outPath), path.basename(outPath), outPath, force);
  try {
    fs.writeSync(out.fd, head, 0, head.length, 0);
    const copied = copyRuns(source, proc, runs, out.fd, dataOffset, progress);
    out.commit();
    return {
      path: outPath, pids: [proc.pid], threads: proc.threads.length, pages: copied.pages,
      bytes: dataOffset + copied.bytes, runs: runs.length, badPages: copied.badPages,
    };
  } catch (err) {
    try {
      out.abort();
    } catch {
      // the write's own error is the one to report
    }
    const code = (err as NodeJS.ErrnoException).code;
    throw err instanceof ExportError || typeof code !== 'string' ? err
      : new ExportError(`writing ${outPath}: ${code}`, { cause: err });
  } finally {
    progress.done();
  }
}
