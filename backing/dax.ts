// /dev/dax character devices: recognised through sysfs, sized and aligned from it.
//
// A device dax instance has /sys/dev/char/MAJ:MIN -> …/dax/…/daxX.Y holding `size`
// (bytes) and `align` (the only mapping granularity the device accepts: mmap offsets
// and lengths must be multiples of it, 2 MiB by default). The sysfs root is
// configurable (NUMACTLX_SYSFS_ROOT) so tests can describe a device with a fixture
// directory and a node made with mknod.
import fs from 'node:fs';
import path from 'node:path';

export interface DaxInfo {
  /** The sysfs directory describing the device. */
  sysfsDir: string;
  size: bigint;
  align: bigint;
}

export function sysfsRoot(): string {
  return process.env.NUMACTLX_SYSFS_ROOT ?? '/sys';
}

function readNumber(file: string): bigint | undefined {
  try {
    const text = fs.readFileSync(file, 'utf8').trim();
    return /^(0x[0-9a-f]+|\d+)$/i.test(text) ? BigInt(text) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The dax description of a character device, or undefined when the device is not a
 * dax device (no sysfs entry with size and align).
 */
export function daxInfo(devicePath: string, stat: fs.Stats, root = sysfsRoot()): DaxInfo | undefined {
  const major = Number((BigInt(stat.rdev) >> 8n) & 0xfffn);
  const minor = Number((BigInt(stat.rdev) & 0xffn) | ((BigInt(stat.rdev) >> 12n) & 0xfff00n));
  const candidates = [
    path.join(root, 'dev/char', `${major}:${minor}`),
    path.join(root, 'bus/dax/devices', path.basename(devicePath)),
  ];
  for (const dir of candidates) {
    const size = readNumber(path.join(dir, 'size'));
    const align = readNumber(path.join(dir, 'align'));
    if (size !== undefined && align !== undefined) return { sysfsDir: dir, size, align };
  }
  return undefined;
}
