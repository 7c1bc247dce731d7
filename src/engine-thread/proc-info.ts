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

/**
 * Thread tid is past its exit (gone, a zombie or dead): the kernel's writes at its exit
 * (clear_child_tid, in mm_release) are done — they come before exit_notify makes it a zombie.
 */
export function threadEnded(tid: number): boolean {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${tid}/stat`, 'utf8');
  } catch {
    return true;
  }
  const state = stat.charAt(stat.lastIndexOf(')') + 2);
  return state === 'Z' || state === 'X';
}
