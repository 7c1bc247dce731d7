// How far a backing's writes are carried when it is synced, per medium, and the sync
// itself (syncFrames), which the session's store and the checksum worker both call.
//
// Durability (what sync() can promise):
// - file: fsync, after msync of the frame mapping: frames and superblock reach the disk.
// - tmpfs, hugetlbfs: the pages are RAM. They outlive numactlx (a crash or kill -9 loses
//   nothing) but not a reboot; fsync has nothing to do.
// - /dev/dax ('pmem'): device dax has no msync (EINVAL, DESIGN.md §4): every write is
//   flushed from the CPU caches through libpmem (persist.ts) — page frames after their
//   CRC (src/channels/checksum-ring.ts), catalog frames at store.sync(), the header at
//   each write — before the superblock that makes them visible is written: durable
//   against power loss on ADR and eADR platforms alike. Without libpmem ('platform'):
//   durable against a crash or kill -9 of numactlx (the caches are written back), against
//   power loss only where the persistence domain includes the CPU caches (eADR:
//   /sys/bus/nd/devices/regionN/persistence_domain reads "cpu_cache"); on ADR platforms
//   ("memory_controller") lines still in cache at a power failure are lost.
import type { BackingKind } from './inspect.js';
import { fail } from './errors.js';
import { fsync } from '../src/sys/fcntl.js';
import { msync, MS_SYNC } from '../src/sys/mman.js';

/**
 * How a catalog commit makes what it wrote durable (backing/catalog-commit.ts): store.sync()
 * on the calling thread, or — the engine, which must not spend an fsync away from faults —
 * on another thread while the caller yields (src/engine-thread/snapshot-commit.ts).
 */
export type MakeDurable = () => Generator<void, void>;

/** How far sync() carries the data; see the header comment. */
export type Durability = 'fsync' | 'ram' | 'pmem' | 'platform';

/** A store's mapping and descriptor, as plain numbers (they cross to the checksum worker). */
export interface SyncTarget {
  path: string;
  kind: BackingKind;
  frameBase: number;
  mapLength: number;
  fd: number;
}

/**
 * Makes the frames durable as far as the medium allows (header comment, "Durability"):
 * msync, then fsync for a file; nothing on device dax. Throws BackingError.
 */
export function syncFrames(t: SyncTarget): void {
  // No msync on device dax: each page frame was flushed when its CRC was computed.
  if (t.kind === 'dax') return;
  try {
    msync(BigInt(t.frameBase), BigInt(t.mapLength), MS_SYNC);
    if (t.kind === 'file') fsync(t.fd);
  } catch (err) {
    throw fail(t.path, err, 'syncing it');
  }
}
