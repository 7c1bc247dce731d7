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
//
// The ELF64 values are in elf-format.ts, the notes in elf-core-notes.ts, the rebuilt
// auxiliary vector in elf-auxv.ts; pages are cut and copied by export-pages.ts.
import fs from 'node:fs';
import path from 'node:path';
import { chooseProcess, copyRuns, ExportError, pageRuns, type ExportSummary, type PageRun } from './export-pages.js';
import { createOutput } from './export-output.js';
import { PAGE_SIZE } from '../sys/page.js';
import { NO_PROGRESS, type Progress } from './progress.js';
import type { SnapshotSource } from './source.js';
import type { SnapshotRecord, Vma } from './types.js';
import {
  EHDR_SIZE, EM_X86_64, ET_CORE, PF_R, PF_W, PF_X, PHDR_SIZE, PN_XNUM, PT_LOAD, PT_NOTE, SHDR_SIZE, u64,
} from './elf-format.js';
import { buildNotes } from './elf-core-notes.js';

const flagsOf = (vma: Vma | undefined): number => (vma === undefined ? PF_R | PF_W
  : (vma.perms[0] === 'r' ? PF_R : 0) | (vma.perms[1] === 'w' ? PF_W : 0) | (vma.perms[2] === 'x' ? PF_X : 0));

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
