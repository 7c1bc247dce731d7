// NT_AUXV for a core file, rebuilt: the snapshot records no auxiliary vector, but gdb
// needs AT_ENTRY to find where a PIE program was loaded and AT_BASE to find the dynamic
// loader. Both are derived from the executable's (and its interpreter's) ELF headers on
// disk and the snapshot's VMAs, so the files must be the ones the program ran.
import fs from 'node:fs';
import path from 'node:path';
import { PAGE_SIZE } from '../sys/page.js';
import { EHDR_SIZE, EM_X86_64, PHDR_SIZE, PN_XNUM, PT_LOAD, u64 } from './elf-format.js';
import type { SnapshotProcess, Vma } from './types.js';

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
