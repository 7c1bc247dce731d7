// Sizes with numactl's suffixes: k, m, g (KiB, MiB, GiB; numactl's memsize() also
// takes upper case) and t for TiB. A bare number is bytes. Also how sizes print: every
// size numactlx reads or prints goes through this module.
import { PolicyError } from './errors.js';

const SHIFT: Record<string, bigint> = { '': 0n, k: 10n, m: 20n, g: 30n, t: 40n };

/** Parses "64k", "1G", "4096", "0x1000" into bytes. */
export function parseSize(text: string): bigint {
  const m = /^(0x[0-9a-f]+|\d+)([kmgt]?)(i?b)?$/i.exec(text.trim());
  if (!m || (m[3] !== undefined && m[2] === '' && m[3].toLowerCase() !== 'b')) {
    throw new PolicyError(`invalid size '${text}' (a number with an optional k, m, g or t suffix)`);
  }
  return BigInt(m[1]) << SHIFT[m[2].toLowerCase()];
}

/** "1024 MB" style, as numactl --hardware prints sizes (bytes >> 20). */
export function formatMB(bytes: bigint): string {
  return `${bytes >> 20n} MB`;
}

/** Bytes the way `ls -h` prints them: 0, 512, 4.0K, 1.5M, 2.0G (powers of 1024). */
export function formatBytes(bytes: number): string {
  const units = ['K', 'M', 'G', 'T', 'P'];
  if (bytes < 1024) return String(bytes);
  let value = bytes;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)}${units[unit]}`;
}
