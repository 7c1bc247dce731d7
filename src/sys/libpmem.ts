// libpmem, PMDK's low-level persistent-memory library (<libpmem.h>, PMDK 1.12; Debian's
// libpmem1 package): the CPU cache flushes that make stores to a /dev/dax mapping
// durable. Device dax has no msync (EINVAL): a store reaches the persistence domain only
// once its cache line is written back (clwb / clflushopt / clflush, whichever the CPU
// has, chosen by libpmem at load) and an sfence has ordered those write-backs
// (pmem_drain). On an eADR platform (the caches are in the persistence domain) libpmem
// detects it and its flushes do nothing.
//
// Loaded on demand, once per thread that asks (each worker loads its own handle); absent
// when the shared library is not installed.
//
// SAFETY: every address handed to these functions is inside a mapping the caller owns
// and keeps mapped for the duration of the call; libpmem keeps none of them.
import { koffi } from './libc.js';

export const LIBPMEM_SONAME = 'libpmem.so.1';

export interface Libpmem {
  /** pmem_flush: write back the cache lines of [addr, addr+len) (not yet ordered). */
  flush(addr: number, len: number): void;
  /** pmem_drain: waits until every flush this thread issued has reached the persistence domain. */
  drain(): void;
  /** pmem_persist: flush + drain. */
  persist(addr: number, len: number): void;
  /** pmem_has_auto_flush: 1 on an eADR platform, 0 when flushes are needed, -1 on error. */
  hasAutoFlush(): number;
}

let loaded: Libpmem | null | undefined;
let loadError = '';

/** The library, or undefined when it cannot be loaded (loadLibpmemError says why). */
export function loadLibpmem(): Libpmem | undefined {
  if (loaded === undefined) {
    try {
      const lib = koffi.load(LIBPMEM_SONAME);
      const flush = lib.func('void pmem_flush(uintptr_t addr, size_t len)');
      const drain = lib.func('void pmem_drain(void)');
      const persist = lib.func('void pmem_persist(uintptr_t addr, size_t len)');
      const hasAutoFlush = lib.func('int pmem_has_auto_flush(void)');
      loaded = {
        flush: (addr, len) => { flush(addr, len); },
        drain: () => { drain(); },
        persist: (addr, len) => { persist(addr, len); },
        hasAutoFlush: () => hasAutoFlush() as number,
      };
    } catch (err) {
      loaded = null;
      loadError = (err as Error).message.split('\n')[0];
    }
  }
  return loaded ?? undefined;
}

/** Why loadLibpmem() found no library (koffi's message), '' when it did. */
export function loadLibpmemError(): string {
  return loadError;
}
