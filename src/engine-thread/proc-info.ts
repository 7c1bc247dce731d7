// What /proc says of a process the engine serves (statistics, status, ps): a vanished
// process reads as nothing.
import fs from 'node:fs';

/** The program pid runs (its /proc/PID/exe), or '' when it is gone. */
export function exeOf(pid: number): string {
  try {
    return fs.readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return '';
  }
}

/** pid's argv as /proc/PID/cmdline has it, or [] when it is gone. */
export function commandOf(pid: number): string[] {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
  } catch {
    return [];
  }
}
