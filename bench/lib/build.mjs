// Compiles bench/*.c into bench/bin/ (cc -O2 -pthread) when a binary is missing or
// older than its source.
import fs from 'node:fs';
import path from 'node:path';
import { runSync } from './proc.mjs';

export const PROGRAMS = ['touch', 'uffd_baseline', 'mmap_munmap', 'trapped_syscalls', 'trapped_floor'];

export function buildPrograms(benchDir) {
  const binDir = path.join(benchDir, 'bin');
  fs.mkdirSync(binDir, { recursive: true });
  const bins = {};
  for (const name of PROGRAMS) {
    const src = path.join(benchDir, `${name}.c`);
    const bin = path.join(binDir, name);
    const stale = !fs.existsSync(bin) || fs.statSync(bin).mtimeMs < fs.statSync(src).mtimeMs;
    if (stale) runSync([process.env.CC ?? 'cc', '-O2', '-pthread', '-o', bin, src]);
    bins[name] = bin;
  }
  return bins;
}
