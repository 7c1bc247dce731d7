// /proc/PID/maps: the anonymous private ranges a program already has when it execs
// (stack, bss, heap) and that must be registered before it runs.
import fs from 'node:fs';

export interface MapsEntry {
  start: bigint;
  end: bigint;
  perms: string;
  inode: number;
  path: string;
}

export function readMaps(pid: number): MapsEntry[] {
  return fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').filter(Boolean).map((line) => {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (!m) throw new Error(`unexpected line in /proc/${pid}/maps: ${line}`);
    return { start: BigInt(`0x${m[1]}`), end: BigInt(`0x${m[2]}`), perms: m[3], inode: Number(m[4]), path: m[5] };
  });
}

/** Kernel-provided special mappings: never anonymous program memory. */
const SPECIAL = /^\[(vvar|vvar_vclock|vdso|vsyscall|uprobes)\]$/;

/** Anonymous private mappings: what the seccomp filter would have trapped. */
export function anonymousPrivate(entries: MapsEntry[]): MapsEntry[] {
  return entries.filter((e) => e.perms[3] === 'p' && e.inode === 0 && !SPECIAL.test(e.path)
    && (e.path === '' || e.path === '[heap]' || e.path === '[stack]' || e.path.startsWith('[anon:')));
}
