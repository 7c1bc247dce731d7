// posix_spawn(3) with file actions and attributes (glibc 2.36, <spawn.h>).
//
// Why posix_spawn and not child_process: libuv reaps its children with waitpid on
// SIGCHLD and would steal ptrace stops; a child spawned here is invisible to libuv and
// is waited for only by the thread that spawned it (see DESIGN.md §3.1).
//
// glibc's posix_spawn runs the child with CLONE_VM|CLONE_VFORK: the child inherits the
// *calling thread's* memory policy, CPU affinity and signal mask, which is how the
// launcher hands numactl's placement to the program.
import { libc, checkErrnoResult } from './libc.js';
import { sigset } from './signal.js';
import { O_WRONLY } from './fcntl.js';

// Opaque glibc types: posix_spawnattr_t is 336 bytes, posix_spawn_file_actions_t 80
// bytes on x86_64; allocate with room to spare, the library only writes inside them.
const ATTR_BYTES = 512;
const FILE_ACTIONS_BYTES = 256;

export const POSIX_SPAWN_RESETIDS = 0x01;
export const POSIX_SPAWN_SETPGROUP = 0x02;
export const POSIX_SPAWN_SETSIGDEF = 0x04;
export const POSIX_SPAWN_SETSIGMASK = 0x08;
export const POSIX_SPAWN_SETSID = 0x80;

const spawnRaw = libc.func('int posix_spawn(_Out_ int *pid, const char *path, void *actions, void *attr, const char **argv, const char **envp)');
const spawnpRaw = libc.func('int posix_spawnp(_Out_ int *pid, const char *file, void *actions, void *attr, const char **argv, const char **envp)');
const attrInit = libc.func('int posix_spawnattr_init(void *attr)');
const attrDestroy = libc.func('int posix_spawnattr_destroy(void *attr)');
const attrSetflags = libc.func('int posix_spawnattr_setflags(void *attr, short flags)');
const attrSetsigmask = libc.func('int posix_spawnattr_setsigmask(void *attr, const void *set)');
const attrSetsigdefault = libc.func('int posix_spawnattr_setsigdefault(void *attr, const void *set)');
const attrSetpgroup = libc.func('int posix_spawnattr_setpgroup(void *attr, int pgroup)');
const actionsInit = libc.func('int posix_spawn_file_actions_init(void *actions)');
const actionsDestroy = libc.func('int posix_spawn_file_actions_destroy(void *actions)');
const actionsAdddup2 = libc.func('int posix_spawn_file_actions_adddup2(void *actions, int fd, int newfd)');
const actionsAddopen = libc.func('int posix_spawn_file_actions_addopen(void *actions, int fd, const char *path, int oflag, unsigned int mode)');
// glibc 2.34+: bound at first use, so that numactlx still loads with an older glibc.
let actionsAddclosefrom: ((actions: Buffer, from: number) => unknown) | null | undefined;
function addCloseFrom(actions: Buffer, from: number): void {
  if (actionsAddclosefrom === undefined) {
    try {
      actionsAddclosefrom = libc.func('int posix_spawn_file_actions_addclosefrom_np(void *actions, int from)');
    } catch {
      actionsAddclosefrom = null; // the child keeps the descriptors numactlx has without close-on-exec
    }
  }
  if (actionsAddclosefrom) checkErrnoResult('posix_spawn_file_actions_addclosefrom_np', actionsAddclosefrom(actions, from) as number);
}

export interface SpawnOptions {
  /** Path, or a name searched in PATH when `searchPath` is set. */
  file: string;
  argv: string[];
  /** "NAME=value" strings; the calling process's environment when omitted. */
  env?: string[];
  searchPath?: boolean;
  /** Signals whose disposition the child gets reset to SIG_DFL. */
  defaultSignals?: Iterable<number>;
  /** The child's signal mask (empty when omitted). */
  signalMask?: Iterable<number>;
  /** The child leads a process group of its own: the terminal's Ctrl-C and Ctrl-Z do not reach it. */
  ownProcessGroup?: boolean;
  /**
   * The child's standard input is this descriptor, its output and error /dev/null, and it
   * has no other descriptor (glibc 2.34's addclosefrom_np; older, those without close-on-exec) — none of numactlx's, which its
   * callers wait on (a pipe kept open by a child outlives numactlx for them).
   */
  detachedStdin?: number;
}

/**
 * Spawns a program and returns its pid. Throws SysError('posix_spawn', errno) when the
 * program cannot be executed (glibc reports exec's errno: ENOENT, EACCES, ENOEXEC…).
 */
export function spawnProgram(opts: SpawnOptions): number {
  const attr = Buffer.alloc(ATTR_BYTES);
  const actions = Buffer.alloc(FILE_ACTIONS_BYTES);
  checkErrnoResult('posix_spawnattr_init', attrInit(attr) as number);
  checkErrnoResult('posix_spawn_file_actions_init', actionsInit(actions) as number);
  try {
    // Node opens fds 0–2 with O_CLOEXEC: dup2(fd, fd) in the child clears the flag
    // (glibc special-cases equal fds to do exactly that), or the program loses its stdio.
    if (opts.detachedStdin === undefined) {
      for (const fd of [0, 1, 2]) {
        checkErrnoResult('posix_spawn_file_actions_adddup2', actionsAdddup2(actions, fd, fd) as number);
      }
    } else {
      checkErrnoResult('posix_spawn_file_actions_adddup2', actionsAdddup2(actions, opts.detachedStdin, 0) as number);
      for (const fd of [1, 2]) {
        checkErrnoResult('posix_spawn_file_actions_addopen', actionsAddopen(actions, fd, '/dev/null', O_WRONLY, 0) as number);
      }
      addCloseFrom(actions, 3);
    }
    const sigmask = sigset(opts.signalMask ?? []);
    const sigdef = sigset(opts.defaultSignals ?? []);
    checkErrnoResult('posix_spawnattr_setsigmask', attrSetsigmask(attr, sigmask) as number);
    checkErrnoResult('posix_spawnattr_setsigdefault', attrSetsigdefault(attr, sigdef) as number);
    if (opts.ownProcessGroup) checkErrnoResult('posix_spawnattr_setpgroup', attrSetpgroup(attr, 0) as number);
    const group = opts.ownProcessGroup ? POSIX_SPAWN_SETPGROUP : 0;
    checkErrnoResult('posix_spawnattr_setflags',
      attrSetflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | group) as number);

    const pid = new Int32Array(1);
    const env = opts.env ?? Object.entries(process.env).map(([k, v]) => `${k}=${v}`);
    const fn = opts.searchPath ? spawnpRaw : spawnRaw;
    const ret = fn(pid, opts.file, actions, attr, [...opts.argv, null], [...env, null]) as number;
    checkErrnoResult('posix_spawn', ret);
    return pid[0];
  } finally {
    actionsDestroy(actions);
    attrDestroy(attr);
  }
}
