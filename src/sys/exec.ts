// execve(2) through glibc's execvpe(3) (glibc 2.36 <unistd.h>, a GNU extension): execvp's
// search of PATH — as numactl's execvp(av[0], av) — with an explicit environment.
//
// What execve keeps, which is how numactl hands its placement over: the exec'ing
// thread's memory policy, CPU affinity and signal mask, ignored (not caught) signal
// dispositions, resource limits, and every descriptor without FD_CLOEXEC. It ends every
// other thread of the process (de_thread), so calling it from Node's main thread leaves
// nothing of Node behind. The pid stays the process's.
import { libc, SysError, lastErrno } from './libc.js';

const execvpeRaw = libc.func('int execvpe(const char *file, const char **argv, const char **envp)');

/**
 * Replaces this process with `file` (searched in PATH when it has no slash), `argv`
 * (argv[0] included) and `env` ("NAME=value"). Returns only on failure: throws
 * SysError('execvp', errno). The strings are copied by the kernel; koffi keeps its
 * temporary C arrays alive for the call.
 */
export function execvpe(file: string, argv: readonly string[], env: readonly string[]): never {
  execvpeRaw(file, [...argv, null], [...env, null]);
  throw new SysError('execvp', lastErrno());
}
