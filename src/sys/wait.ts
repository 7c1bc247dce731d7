// waitpid(2) and the wait-status macros of <sys/wait.h> (glibc 2.36, Linux 6.1 uapi).
import { libc, check } from './libc.js';

export const WNOHANG = 0x1;
export const WUNTRACED = 0x2;
export const WCONTINUED = 0x8;
/** Wait for every child, clone and thread children included (ptrace needs it). */
export const __WALL = 0x40000000;

const waitpidRaw = libc.func('int waitpid(int pid, _Out_ int *status, int options)');

export interface WaitResult {
  /** 0 with WNOHANG when no child changed state. */
  pid: number;
  status: number;
}

/** waitpid(2); EINTR is retried. Throws SysError('waitpid', errno) otherwise. */
export function waitpid(pid: number, options: number): WaitResult {
  const status = new Int32Array(1);
  for (;;) {
    const ret = waitpidRaw(pid, status, options) as number;
    if (ret === -1) {
      try {
        check('waitpid', ret);
      } catch (err) {
        if ((err as { code?: string }).code === 'EINTR') continue;
        throw err;
      }
    }
    return { pid: ret, status: status[0] };
  }
}

/** waitpid(-1, options): undefined when the caller has no child (ECHILD) — traced tasks count. */
export function waitAnyChild(options: number): WaitResult | undefined {
  try {
    return waitpid(-1, options);
  } catch (err) {
    if ((err as { code?: string }).code === 'ECHILD') return undefined;
    throw err;
  }
}

export const WIFEXITED = (s: number): boolean => (s & 0x7f) === 0;
export const WEXITSTATUS = (s: number): number => (s >> 8) & 0xff;
export const WIFSIGNALED = (s: number): boolean => ((s & 0x7f) + 1) >> 1 > 0 && (s & 0x7f) !== 0x7f;
export const WTERMSIG = (s: number): number => s & 0x7f;
export const WCOREDUMP = (s: number): boolean => (s & 0x80) !== 0;
export const WIFSTOPPED = (s: number): boolean => (s & 0xff) === 0x7f;
export const WSTOPSIG = (s: number): number => (s >> 8) & 0xff;
export const WIFCONTINUED = (s: number): boolean => s === 0xffff;
/** The ptrace event of a PTRACE_EVENT stop (status >> 16), 0 for other stops. */
export const WPTRACEEVENT = (s: number): number => (s >> 16) & 0xff;
