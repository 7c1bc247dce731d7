// The floor of any Node launcher that execs its program as numactl does: Node starts,
// loads koffi, clears FD_CLOEXEC on the stdio, binds execvpe and execs argv — nothing else
// (bench/startup.mjs).
//   node bench/exec_floor.mjs PROGRAM [ARGS...]
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');
const fcntl = libc.func('int fcntl(int fd, int cmd, int arg)');
// Node sets FD_CLOEXEC on fds 0-2 (F_SETFD = 2): clear it, or the program has no stdio.
for (const fd of [0, 1, 2]) fcntl(fd, 2, 0);
const execvpe = libc.func('int execvpe(const char *file, const char **argv, const char **envp)');
const argv = process.argv.slice(2);
const env = Object.entries(process.env).map(([k, v]) => `${k}=${v}`);
execvpe(argv[0], [...argv, null], [...env, null]);
process.stderr.write(`exec_floor: execvpe(${argv[0]}) failed: errno ${koffi.errno()}\n`);
process.exit(1);
