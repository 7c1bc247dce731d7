// Where control sockets live: one directory per user, one `<numactlx pid>.sock` per session.
//
//   NUMACTLX_RUNTIME_DIR            the directory itself (tests point it at a temp dir)
//   $XDG_RUNTIME_DIR/numactlx/      when XDG_RUNTIME_DIR is set (systemd's per-user tmpfs)
//   /run/numactlx/                  for root
//   /tmp/numactlx-<uid>/            for anyone else
//
// The directory is the access control that matters: mode 0700, owned by us. A directory
// someone else made first (in /tmp anyone can), a symlink, or one with group/other bits is
// refused rather than repaired: a session would otherwise listen, and a client would send
// requests, in a place another user controls. lstat, never stat: a symlink is not followed.
import fs from 'node:fs';
import path from 'node:path';
import { ControlError } from './protocol.js';

/** The environment variable that names the socket directory outright. */
export const RUNTIME_DIR_ENV = 'NUMACTLX_RUNTIME_DIR';

/** sun_path of struct sockaddr_un is 108 bytes, NUL included (<sys/un.h>). */
const SUN_PATH_MAX = 107;

const SOCKET_NAME = /^([1-9]\d*)\.sock$/;

const uid = (): number => process.getuid?.() ?? 0;

/** The socket directory for this user and environment (not created, not checked). */
export function runtimeDir(env: NodeJS.ProcessEnv = process.env, userId: number = uid()): string {
  const override = env[RUNTIME_DIR_ENV];
  if (override) return path.resolve(override);
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg) return path.join(path.resolve(xdg), 'numactlx');
  return userId === 0 ? '/run/numactlx' : `/tmp/numactlx-${userId}`;
}

/**
 * Throws unless `dir` is a real directory (not a symlink) owned by this uid with no group
 * or other access. Returns false when it does not exist.
 */
export function checkRuntimeDir(dir: string): boolean {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new ControlError(`socket directory ${dir}: lstat failed: ${(err as NodeJS.ErrnoException).code}`, { cause: err });
  }
  if (st.isSymbolicLink()) throw new ControlError(`socket directory ${dir} is a symlink; refusing to use it`);
  if (!st.isDirectory()) throw new ControlError(`socket directory ${dir} is not a directory; refusing to use it`);
  if (st.uid !== uid()) {
    throw new ControlError(`socket directory ${dir} is owned by uid ${st.uid}, not ${uid()}; refusing to use it`);
  }
  if ((st.mode & 0o077) !== 0) {
    throw new ControlError(`socket directory ${dir} has mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}, `
      + 'group or others have access (it must be 0700); refusing to use it');
  }
  return true;
}

/** Whether `dir` is the shared-/tmp default (no NUMACTLX_RUNTIME_DIR, no XDG_RUNTIME_DIR, not root). */
function isTmpDefault(dir: string, env: NodeJS.ProcessEnv, userId: number): boolean {
  return !env[RUNTIME_DIR_ENV] && !env.XDG_RUNTIME_DIR && userId !== 0 && dir === runtimeDir(env, userId);
}

/**
 * The private fallbacks of the /tmp default: `/tmp/numactlx-<uid>-XXXXXX` directories
 * (mkdtemp names, which no one can take first) that are ours, 0700 and real directories.
 */
function tmpFallbacks(userId: number): string[] {
  let names: string[];
  try {
    names = fs.readdirSync('/tmp');
  } catch {
    return [];
  }
  const prefix = `numactlx-${userId}-`;
  return names.filter((n) => n.startsWith(prefix)).map((n) => path.join('/tmp', n)).filter((dir) => {
    try {
      return checkRuntimeDir(dir);
    } catch {
      return false; // someone else's: never used, never an error
    }
  }).sort();
}

/**
 * The directories where this user's sessions may have their sockets: the runtime
 * directory, and for the /tmp default the private fallbacks a session used because
 * another user had taken /tmp/numactlx-<uid> (ensureRuntimeDir). A /tmp default that
 * is not ours is left out; any other directory that is not ours is an error.
 */
export function sessionDirs(env: NodeJS.ProcessEnv = process.env, userId: number = uid()): string[] {
  const dir = runtimeDir(env, userId);
  if (!isTmpDefault(dir, env, userId)) return checkRuntimeDir(dir) ? [dir] : [];
  let own = false;
  try {
    own = checkRuntimeDir(dir);
  } catch {
    // taken by someone else: the fallbacks hold our sessions
  }
  return [...(own ? [dir] : []), ...tmpFallbacks(userId)];
}

/**
 * The socket directory, created with mode 0700 when missing, and checked. The /tmp
 * default, when another user made /tmp/numactlx-<uid> first (a directory anyone may
 * create in /tmp), is not refused — that would let any user stop another's sessions —
 * but replaced by a private mkdtemp directory, /tmp/numactlx-<uid>-XXXXXX, which the
 * clients search too (sessionDirs). Never a directory another uid owns or can enter.
 */
export function ensureRuntimeDir(dir: string = runtimeDir(), env: NodeJS.ProcessEnv = process.env): string {
  if (isTmpDefault(dir, env, uid())) {
    try {
      checkRuntimeDir(dir);
    } catch {
      const existing = tmpFallbacks(uid());
      if (existing.length > 0) return existing[0];
      const made = fs.mkdtempSync(`${dir}-`); // mode 0700
      checkRuntimeDir(made);
      return made;
    }
  }
  if (checkRuntimeDir(dir)) return dir;
  try {
    // recursive: NUMACTLX_RUNTIME_DIR may name a directory whose parents do not exist yet
    // (they get 0700 too). The mode is further masked by the umask, which can only remove bits.
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // EEXIST: someone made it since the check; checkRuntimeDir below judges it.
    if (code !== 'EEXIST') throw new ControlError(`socket directory ${dir}: mkdir failed: ${code}`, { cause: err });
  }
  checkRuntimeDir(dir);
  return dir;
}

/** The control socket of the session whose numactlx process is `pid`. */
export function socketPath(pid: number, dir: string = runtimeDir()): string {
  const file = path.join(dir, `${pid}.sock`);
  if (Buffer.byteLength(file) > SUN_PATH_MAX) {
    throw new ControlError(`control socket path ${file} is too long (${Buffer.byteLength(file)} bytes, a unix socket takes at most ${SUN_PATH_MAX})`);
  }
  return file;
}

/** The numactlx pid a socket file name stands for (`4711.sock` → 4711), else undefined. */
export function pidOfSocketName(name: string): number | undefined {
  const m = SOCKET_NAME.exec(name);
  return m ? Number(m[1]) : undefined;
}
