// Reading process state from /proc, and waiting for it.
import fs from 'node:fs';
import { procState } from '../../src/sys/procfs.js';

export { procState };

/** numactlx's waker (src/tracer-thread/waker.ts): a `cat` child of numactlx's, not the program's. */
export function isWaker(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('numactlx-waker\0');
  } catch {
    return false;
  }
}

/** Direct children of a process (all its threads'), numactlx's waker left out unless `withWaker`. */
export function childrenOf(pid: number, withWaker = false): number[] {
  const out: number[] = [];
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const text = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    } catch {
      // thread gone
    }
  }
  return withWaker ? out : out.filter((p) => !isWaker(p));
}

/**
 * Waits for an event the test cannot be told of directly (a process state, a file, a
 * line of status): polls `probe` until it returns a value and returns that value, or
 * throws `timed out after N s waiting for WHAT` after `ms` — 30 s unless given: a
 * deadline that catches a hang, generous on a loaded machine, never a measure of speed.
 * `probe` may be async (a `numactlx status` run); it is called again `every` ms after
 * the last call ended. That pause is the polling interval, not a synchronisation:
 * nothing is assumed to have happened when it ends. A probe that throws ends the wait
 * with its error.
 */
export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>,
  ms = 30_000, every = 10): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** The executable of a process, or '' once it is gone (or between fork and exec). */
export function exeOf(pid: number): string {
  try {
    return fs.readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return '';
  }
}

/**
 * Where every thread of `pid` and of its descendants is, one line each: "pid/tid comm
 * state wchan syscall" — what a test prints when something hangs, so that the hang can
 * be told apart (a thread in handle_userfault, the tracer in waitpid, the engine in poll).
 */
export function describeTree(pid: number): string {
  const read = (p: string): string => { try { return fs.readFileSync(p, 'utf8').trim(); } catch { return '?'; } };
  const lines: string[] = [];
  const visit = (p: number): void => {
    let tids: string[] = [];
    try { tids = fs.readdirSync(`/proc/${p}/task`); } catch { return; }
    for (const tid of tids) {
      const base = `/proc/${p}/task/${tid}`;
      const state = procState(`${p}/task/${tid}`) ?? '?';
      lines.push(`${p}/${tid} ${read(`${base}/comm`)} ${state} ${read(`${base}/wchan`)} syscall ${read(`${base}/syscall`).split(' ')[0]}`);
    }
    try { for (const c of childrenOf(p)) visit(c); } catch { /* gone */ }
  };
  visit(pid);
  return lines.join('\n');
}
