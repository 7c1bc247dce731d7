// What /proc says of a task: its executable and command line (the engine's statistics,
// status, ps — a vanished process reads as nothing), /proc/PID/stat, /proc/PID/status and
// /proc/PID/smaps, parsed here only. A process that numactlx may not read (non-dumpable) is said so.
import fs from 'node:fs';
import os from 'node:os';

const { EACCES, EPERM } = os.constants.errno;

/** /proc/PID/stat, parsed: its state (field 3) and any field by proc(5)'s number. */
export interface ProcStat {
  state: string;
  field(n: number): string | undefined;
}

/**
 * Reads /proc/PID/stat — or, `pid` a path below /proc, that task's: 'thread-self',
 * 'PID/task/TID'; throws what the read throws (ENOENT: the task is gone).
 */
export function readProcStat(pid: number | string): ProcStat {
  const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields from the 3rd on follow the command's last closing parenthesis: the command
  // (field 2) may hold spaces and parentheses itself.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0], field: (n) => rest[n - 3] };
}

/** /proc/PID/maps as text, or '' when the process is gone. */
export function mapsText(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
  } catch (err) {
    const denied = notReadableMessage(pid, -((err as NodeJS.ErrnoException).errno ?? 0));
    if (denied) throw new Error(denied);
    return '';
  }
}

/**
 * Why numactlx may not read process `pid`'s memory, when `errno` (positive) of a read of
 * it (maps, pagemap, process_vm_readv) is EACCES or EPERM; else undefined. The kernel's
 * check is ptrace's read access, which a tracer without CAP_SYS_PTRACE loses when its
 * tracee is not dumpable (being its tracer does not exempt it): it made itself so, or it
 * exec'd a program file its user may not read (the kernel's would_dump).
 */
export function notReadableMessage(pid: number, errno: number): string | undefined {
  const code = errno === EACCES ? 'EACCES' : errno === EPERM ? 'EPERM' : undefined;
  if (!code) return undefined;
  return `process ${pid} does not let numactlx read its memory (${code}): it is not dumpable (prctl PR_SET_DUMPABLE 0, ` +
    'or an exec of a program file the user may not read); run numactlx as root, or with CAP_SYS_PTRACE';
}

/** One VMA of /proc/PID/smaps: its [start, end), whether it holds memory (Rss or Swap), its VmFlags. */
export interface SmapsVma {
  start: number;
  end: number;
  holdsMemory: boolean;
  /** VmFlags' two-letter codes (proc(5)): 'dc' MADV_DONTFORK, 'wf' MADV_WIPEONFORK, … */
  flags: string[];
}

/** pid's VMAs from /proc/PID/smaps, ascending; throws what the read throws (ENOENT: gone). */
export function readSmaps(pid: number): SmapsVma[] {
  const out: SmapsVma[] = [];
  let current: SmapsVma | undefined;
  for (const line of fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (m) {
      current = { start: Number.parseInt(m[1], 16), end: Number.parseInt(m[2], 16), holdsMemory: false, flags: [] };
      out.push(current);
    } else if (!current) {
      continue;
    } else if (/^(Rss|Swap):\s+[1-9]/.test(line)) {
      current.holdsMemory = true;
    } else if (line.startsWith('VmFlags:')) {
      current.flags = line.slice('VmFlags:'.length).trim().split(/\s+/);
    }
  }
  return out;
}

/** The program pid runs (its /proc/PID/exe), or '' when it is gone. */
/** The user namespace of `pid` (/proc/PID/ns/user's link, "user:[N]"), '' when it is gone. */
export function userNamespaceOf(pid: number | 'self'): string {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/user`);
  } catch {
    return '';
  }
}

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

/** /proc/PID/comm (the command's name, as ps shows it), or `unknown` when it is gone. */
export function commOf(pid: number, unknown: string): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return unknown;
  }
}

/** The state letter of /proc/PID/stat (R, S, T, Z, …), or undefined: gone, or /proc hidden. */
export function procState(pid: number | string): string | undefined {
  try {
    return readProcStat(pid).state;
  } catch {
    return undefined;
  }
}

/**
 * Thread tid is past its exit (gone, a zombie or dead): the kernel's writes at its exit
 * (clear_child_tid, in mm_release) are done — they come before exit_notify makes it a zombie.
 */
export function threadEnded(tid: number): boolean {
  const state = procState(tid);
  return state === undefined || state === 'Z' || state === 'X';
}

/** /proc/PID/status, parsed: a field's value as the kernel writes it (after its tab), or undefined where it has none. */
export interface ProcStatus {
  field(name: string): string | undefined;
  /** A number field (Tgid, TracerPid, Seccomp_filters…); `absent` where the kernel has no such line. */
  num(name: string, absent?: number): number;
  /** A hex signal or capability mask field (SigBlk, SigIgn, CapEff), 0n where absent. */
  mask(name: string): bigint;
}

/**
 * /proc/PID/status — or, `pid` a path below /proc ('self', 'PID/task/TID'), that task's;
 * undefined when it is gone (or unreadable).
 */
export function readProcStatus(pid: number | string): ProcStatus | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return {
    field: (name) => fields.get(name),
    num: (name, absent = -1) => {
      const v = fields.get(name);
      return v === undefined ? absent : Number.parseInt(v, 10);
    },
    mask: (name) => BigInt(`0x${fields.get(name) || '0'}`),
  };
}

/** How many seccomp filters task `pid` runs under (Seccomp_filters), or undefined when it is gone. */
function seccompFilters(pid: number): number | undefined {
  return readProcStatus(pid)?.num('Seccomp_filters', 0);
}

let inheritedFilters: number | undefined;

/**
 * Whether process `pid` of the program runs under a seccomp filter of its own (a sandbox:
 * bubblewrap, systemd's SystemCallFilter=, Chrome's): more filters than numactlx's own
 * (inherited at the spawn) and the one numactlx installs. Such a filter may kill the
 * process for a call numactlx injects (SECCOMP_RET_KILL_PROCESS for process_madvise, say);
 * src/tracer-thread/filter-verdict.ts reads and runs it where it may (root). False when it is gone.
 */
export function hasOwnSeccompFilter(pid: number): boolean {
  inheritedFilters ??= seccompFilters(process.pid) ?? 0;
  return (seccompFilters(pid) ?? 0) > inheritedFilters + 1;
}

/** CAP_SYS_ADMIN's bit in CapEff (<linux/capability.h>). */
const CAP_SYS_ADMIN = 21;
let filtersReadable: boolean | undefined;

/**
 * Whether numactlx may read its tracees' seccomp filters (PTRACE_SECCOMP_GET_FILTER,
 * kernel/seccomp.c seccomp_get_filter): CAP_SYS_ADMIN, and no filter of its own.
 */
export function mayReadSeccompFilters(): boolean {
  if (filtersReadable === undefined) {
    const st = readProcStatus('self');
    filtersReadable = st !== undefined && st.num('Seccomp', 0) === 0 && ((st.mask('CapEff') >> BigInt(CAP_SYS_ADMIN)) & 1n) === 1n;
  }
  return filtersReadable;
}
