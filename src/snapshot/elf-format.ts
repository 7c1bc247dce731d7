// ELF64 for core files as <linux/elf.h> (and <linux/elf-em.h> for EM_X86_64) define it,
// x86_64 only: the header sizes, the values elf-core.ts writes into them, and a
// little-endian u64 writer shared by the core's headers, notes and auxiliary vector. The
// layout of a core file is drawn in elf-core.ts.

export const EHDR_SIZE = 64;
export const PHDR_SIZE = 56;
export const SHDR_SIZE = 64;
export const ET_CORE = 4;
export const EM_X86_64 = 62;
export const PT_LOAD = 1;
export const PT_NOTE = 4;
export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;
/** e_phnum's escape: the count is in the first section header's sh_info. */
export const PN_XNUM = 0xffff;

/** Writes `value` as a little-endian u64 at `offset`. */
export const u64 = (buf: Buffer, value: number | bigint, offset: number): void => {
  buf.writeBigUInt64LE(BigInt(value), offset);
};
