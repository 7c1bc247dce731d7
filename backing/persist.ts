// Making stores to a /dev/dax mapping durable. Device dax has no msync and no write(2)
// (both EINVAL): a store is in the persistence domain only once its cache lines are
// written back and the write-backs ordered (clwb/clflushopt + sfence), which numactlx
// asks of libpmem (src/sys/libpmem.ts, Debian's libpmem1). Every place that writes the
// medium persists what it wrote before the write counts:
//   - the superblock copies and the owner record (medium.ts Header.write);
//   - a snapshot's page frames, after their CRC32 is computed (src/channels/checksum-ring.ts,
//     on whichever thread computes it);
//   - catalog frames, at store.sync() before the superblock that names them is written
//     (store.ts frameForWrite).
// What this buys depends on the platform: with ADR only the memory controller's queues
// are in the persistence domain, and a line still in a CPU cache at a power failure is
// lost unless flushed; with eADR the caches are in it too, and libpmem skips the flushes.
// Without libpmem (not installed, or NUMACTLX_DISABLE_FEATURES=LIBPMEM) nothing is
// flushed: a crash of numactlx loses nothing (the caches are written back), power loss
// on an ADR platform can lose the last writes — said in one line when a session opens
// such a device.
import { loadLibpmem, LIBPMEM_SONAME } from '../src/sys/libpmem.js';
import { DISABLE_ENV, disabledFeatures } from '../src/kerndat/features.js';
import type { BackingKind } from './inspect.js';

/** Writes back (and orders) the CPU cache lines of [addr, addr+len) of a mapping. */
export interface CacheFlush {
  persist(addr: number, len: number): void;
}

function libpmemDisabled(): boolean {
  try {
    return disabledFeatures(process.env[DISABLE_ENV]).has('LIBPMEM');
  } catch {
    return false; // an unknown name is reported where the session starts
  }
}

/** How stores to a `kind` medium's mapping are made durable: undefined when nothing (or msync) does it. */
export function cacheFlush(kind: BackingKind): CacheFlush | undefined {
  if (kind !== 'dax' || libpmemDisabled()) return undefined;
  const lib = loadLibpmem();
  return lib ? { persist: (addr, len) => lib.persist(addr, len) } : undefined;
}

/** Why a /dev/dax backing has no cache flush, as the end of the warning line; undefined when it has one. */
export function missingFlush(kind: BackingKind): string | undefined {
  if (kind !== 'dax' || cacheFlush(kind)) return undefined;
  const why = libpmemDisabled() ? `disabled by ${DISABLE_ENV}` : `${LIBPMEM_SONAME} cannot be loaded: apt-get install libpmem1`;
  return `no CPU cache flush (libpmem ${why}): its snapshots survive a crash of numactlx, ` +
    'but power loss only on an eADR platform';
}
