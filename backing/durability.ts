// How far a backing's writes are carried when it is synced, per medium, and the sync
// itself (syncFrames), which the session's store and the checksum worker both call.
//
// Durability (what sync() can promise):
// - file: fsync, after msync of the frame mapping: frames and superblock reach the disk.
// - tmpfs, hugetlbfs: the pages are RAM. They outlive numactlx (a crash or kill -9 loses
//   nothing) but not a reboot; fsync has nothing to do.
// - /dev/dax: stores through the mapping go to the CPU caches. Device dax has no msync
//   (it fails with EINVAL, DESIGN.md §4) and the flushes that make a store durable
//   (clwb or clflushopt, then sfence) cannot be issued from JavaScript. numactlx issues
//   none: sync() returns without error and `durability` says 'platform'. The data is
//   durable against power loss only where the platform's persistence domain includes the
//   CPU caches (eADR: /sys/bus/nd/devices/regionN/persistence_domain reads "cpu_cache");
//   on ADR platforms ("memory_controller") lines still in cache at a power failure are
//   lost. A crash or kill -9 of numactlx loses nothing: the caches are written back.
import type { BackingKind } from './inspect.js';
import { fail } from './errors.js';
import { fsync } from '../src/sys/fcntl.js';
import { msync, MS_SYNC } from '../src/sys/mman.js';

/** How far sync() carries the data; see the header comment. */
export type Durability = 'fsync' | 'ram' | 'platform';

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
  if (t.kind === 'dax') return; // no msync on device dax: see the header comment
  try {
    msync(BigInt(t.frameBase), BigInt(t.mapLength), MS_SYNC);
    if (t.kind === 'file') fsync(t.fd);
  } catch (err) {
    throw fail(t.path, err, 'syncing it');
  }
}
