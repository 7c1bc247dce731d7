// The base page size, PAGE_SIZE of <asm/page.h> (x86_64: PAGE_SHIFT 12), the only
// architecture numactlx runs on (src/sys/arch/index.ts refuses the others). A constant,
// not sysconf(_SC_PAGESIZE): the backing format, the engine's page tables and the snapshot
// records all count in these pages. Nothing else here, so any module may import it
// without loading libc.

export const PAGE_SIZE = 4096;
