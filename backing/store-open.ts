// Opening a backing for BackingStore.open (store.ts): the medium opened (medium.ts) and
// locked (lock.ts), its superblock checked, or a new one formatted (superblock.ts), grown
// to the size asked for, the owner recorded and the frame area mapped MAP_SHARED.
//
// Never overwriting a foreign file: a non-empty file is written only after one of its
// superblock copies passed every check; an empty file or one this call created is
// formatted; a /dev/dax device only when the user asked (`numactlx format`: `format`),
// and a numactlx backing on it only with --force.
//
// All or nothing: when a step fails, each step of what this call did is undone on its
// own, and the failure is thrown as a BackingError naming what was being done.
import fs from 'node:fs';
import type { BackingTarget } from './inspect.js';
import { daxInfo } from './dax.js';
import { BackingError, fail } from './errors.js';
import { SLOT_SIZE, FRAME_SIZE, newSuperblock, type Superblock } from './format.js';
import { checkFrameCount } from './frames.js';
import { lockOrExplain, writeOwner } from './lock.js';
import { checkPrivate, Header, headerMapLength, openMedium, removeCreated } from './medium.js';
import { adopt, formatFile, grow, type FormatRequest } from './superblock.js';
import { close, ftruncate } from '../src/sys/fcntl.js';
import { mmap, MAP_NORESERVE, MAP_SHARED, PROT_READ, PROT_WRITE } from '../src/sys/mman.js';

/**
 * Builds the store over an opened backing, still inside the undo's reach (a throw undoes
 * the open). The descriptor, header and mapping are the store's from then on.
 */
export type MakeStore<T> = (fd: number, header: Header, sb: Superblock, frameBase: bigint, damage: string | undefined) => T;

/** BackingStore.open's work (see there); `make` builds the store. Throws BackingError. */
export function openStoreMedium<T>(target: BackingTarget, format: FormatRequest | undefined, make: MakeStore<T>): T {
  const { path } = target;
  if (format && target.kind !== 'dax') {
    throw new BackingError(path, 'unsupported', `${path}: numactlx format is for /dev/dax devices; a backing file is ` +
      'created and formatted by --remap=NODE,PATH,size=SIZE');
  }
  const page = BigInt(FRAME_SIZE);
  const mapLength = headerMapLength(target);
  let fresh: Superblock | undefined;
  if (!target.exists) {
    try {
      fresh = newSuperblock(target.size, target.align);
    } catch (err) {
      throw fail(path, err, 'creating it');
    }
    checkFrameCount(path, fresh);
  }

  const { fd, created } = openMedium(target);
  const header = new Header(fd, target.kind, mapLength);
  let doing = created ? 'creating it' : 'opening it';
  let formattedEmpty = false;
  let damage: string | undefined;
  let formattedDevice = false;
  let locked = false;
  try {
    lockOrExplain(path, fd, header);
    locked = true;
    const stat = fs.fstatSync(fd);
    if (target.kind === 'dax' ? !stat.isCharacterDevice() : !stat.isFile()) {
      throw new BackingError(path, 'unsupported', `${path} changed type while it was being opened`);
    }
    const mediumSize = target.kind === 'dax' ? daxInfo(path, stat)?.size ?? target.size : BigInt(stat.size);

    let sb: Superblock;
    if (created || (target.kind !== 'dax' && mediumSize === 0n)) {
      if (!created) {
        checkPrivate(path, stat); // before a byte is written into it
        doing = 'formatting it';
      }
      formattedEmpty = !created;
      sb = fresh ?? newSuperblock(target.size, target.align);
      checkFrameCount(path, sb);
      sb = formatFile(fd, header, sb);
    } else {
      doing = format ? 'formatting it' : 'reading its superblock';
      ({ sb, formatted: formattedDevice, damage } = adopt(target, header, mediumSize, format));
      // Read-only so far (a file is never formatted by adopt): a file that is not a
      // backing is named as such first; a backing others could read is refused here.
      if (target.kind !== 'dax') checkPrivate(path, stat);
    }
    checkFrameCount(path, sb);
    if (sb.dataOffset % target.align !== 0n || (target.kind === 'dax' && sb.size % target.align !== 0n)) {
      throw new BackingError(path, 'unsupported',
        `${path}: its layout (data offset ${sb.dataOffset}, size ${sb.size}) does not fit this medium's ` +
        `alignment of ${target.align} bytes`);
    }
    if (sb.size < target.size) {
      doing = 'growing it';
      sb = grow(target, fd, header, sb, mediumSize);
    }

    doing = 'recording its owner';
    writeOwner(header);
    doing = 'mapping it';
    // SAFETY: the frame mapping belongs to the store and lives until close(); the
    // medium holds [dataOffset, size) (checked above). MAP_NORESERVE on hugetlbfs: huge
    // pages are reserved chunk by chunk by fallocate, not all at mmap.
    const flags = MAP_SHARED | (target.kind === 'hugetlbfs' ? MAP_NORESERVE : 0);
    const base = mmap(0n, sb.frameCount * page, PROT_READ | PROT_WRITE, flags, fd, sb.dataOffset);
    return make(fd, header, sb, base, damage);
  } catch (err) {
    // Undo what this call did, each step on its own: remove the file it created (an
    // ENOSPC must not leave a half-made file), empty again the file it formatted, zero
    // again the superblocks a format wrote on a device (it held no data numactlx keeps).
    // Only under the lock: a file this call created but another session locked first (it
    // opened the path between the O_EXCL create and the flock) is that session's backing
    // now — removing it ended that session with "deleted during the session" (backings.test.ts).
    const undo = [
      (): void => (formattedDevice ? header.write(0n, Buffer.alloc(2 * SLOT_SIZE)) : undefined),
      (): void => header.close(),
      (): void => (!locked ? undefined : created ? removeCreated(path, fd) : formattedEmpty ? ftruncate(fd, 0n) : undefined),
      (): void => close(fd),
    ];
    for (const step of undo) {
      try {
        step();
      } catch {
        // the original error is the one to report
      }
    }
    throw fail(path, err, doing);
  }
}
