// How busy the rest of the machine was during a run. The VM is shared (other work runs
// on its 2 vCPUs at the same time), so every measured run records:
//   busy     CPU seconds the whole machine spent not idle (/proc/stat: user, nice,
//            system, irq, softirq — guest time is inside user);
//   steal    CPU seconds the hypervisor gave to someone else (/proc/stat steal);
//   own      CPU seconds of the measured command and everything it waited for
//            (user + system from /usr/bin/time, i.e. wait4's rusage);
//   foreign  busy − own: CPU seconds other processes took while the run lasted, as a
//            fraction of one CPU over the run's wall time.
// A pinned run counts only its CPU: other work on the other CPU takes none of its time.
// /proc/stat counts in USER_HZ ticks (10 ms), /usr/bin/time in 10 ms too: for runs of
// half a second or more the fraction is good to a few percent.
import fs from 'node:fs';

const USER_HZ = 100; // sysconf(_SC_CLK_TCK) on Linux x86_64, fixed by the ABI

/**
 * { busy, steal } so far, in seconds: of the whole machine, or of CPU `cpu` only (a
 * pinned run: what the other CPU does takes nothing from it).
 */
export function machineCpu(cpu) {
  const name = cpu === undefined ? 'cpu' : `cpu${cpu}`;
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`${name} `));
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return { busy: (user + nice + system + irq + softirq) / USER_HZ, steal: steal / USER_HZ };
}

/** CPU seconds (user + system) of a process so far, all its threads, from /proc/PID/stat. */
export function processCpu(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / USER_HZ; // utime, stime (fields 14, 15)
  } catch {
    return 0;
  }
}

/** The record of one run: what the machine (or CPU `cpu`) did between `before` and now. */
export function cpuRecord(before, ownS, wallMs, cpu) {
  const after = machineCpu(cpu);
  const wallS = wallMs / 1000;
  const busyS = after.busy - before.busy;
  const foreignS = Math.max(0, busyS - ownS);
  return { ownS, busyS, stealS: after.steal - before.steal, foreign: wallS > 0 ? foreignS / wallS : 0 };
}
