// Creating an export's output files and directory safely.
//
// Output files are created mode 0600 (they hold the program's memory) with
// O_EXCL|O_NOFOLLOW: never through a symbolic link, never over an existing file unless
// `force`, and then by rename() of a new file over it (rename replaces a link itself,
// it does not follow it), so a failed export leaves the old file as it was.
//
// The directory an output lands in must be one no other user can rearrange
// (checkOutputParent), and a directory is used through /proc/self/fd/N once opened, so
// what is created lands in the directory that was checked.
import fs from 'node:fs';
import path from 'node:path';
import { ExportError } from './export-pages.js';

/** A new output file being written; commit() makes it the file at `path`. */
export interface OutputFile {
  readonly path: string;
  readonly fd: number;
  /** Closes it and (with force) renames it over the old file. */
  commit(): void;
  /** Closes and removes what this export created. */
  abort(): void;
}

/** The errno name of a failed fs call ("EIO" when it carries none). */
export const errno = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? 'EIO';

function isSymlink(file: string): boolean {
  try {
    return fs.lstatSync(file).isSymbolicLink();
  } catch {
    return false;
  }
}

const S_ISVTX = 0o1000;

/**
 * The directory an output goes into must be one no other user can rearrange: owned by
 * us or root, and not writable by group or others unless sticky (/tmp is fine: its
 * sticky bit keeps others from renaming or deleting what numactlx creates there).
 * Otherwise another user could swap the file or directory numactlx just wrote — a
 * snapshot holds program memory.
 */
export function checkOutputParent(dir: string, shown: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    return; // creating in it fails next, with its own errno
  }
  const euid = process.geteuid?.() ?? 0;
  const where = path.dirname(shown) || '.';
  if (st.uid !== euid && st.uid !== 0) {
    throw new ExportError(`${where} belongs to uid ${st.uid}: numactlx writes snapshots only into directories of yours or root's`);
  }
  if ((st.mode & 0o022) !== 0 && (st.mode & S_ISVTX) === 0) {
    const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
    throw new ExportError(`${where} has mode ${mode}: other users could replace what numactlx writes there ` +
      '(choose a directory only you can write, or one with the sticky bit like /tmp)');
  }
}

/**
 * Creates `name` in directory `dir` (a path, possibly a /proc/self/fd/N magic link to a
 * directory already opened), mode 0600, never through a symlink. `shown` is the path the
 * user gave, for messages.
 */
export function createOutput(dir: string, name: string, shown: string, force: boolean): OutputFile {
  checkOutputParent(dir, shown);
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
  const flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;
  const target = path.join(dir, name);
  if (!force) {
    let fd: number;
    try {
      fd = fs.openSync(target, flags, 0o600);
    } catch (err) {
      if (errno(err) === 'EEXIST') {
        throw new ExportError(isSymlink(target)
          ? `${shown} is a symbolic link: numactlx never writes through one (remove it, or --force to replace the link itself)`
          : `${shown} exists (use --force to replace it)`, { cause: err });
      }
      throw new ExportError(`cannot create ${shown}: ${errno(err)}`, { cause: err });
    }
    return {
      path: shown, fd,
      commit: () => fs.closeSync(fd),
      abort: () => {
        fs.closeSync(fd);
        fs.rmSync(target, { force: true });
      },
    };
  }
  try {
    if (fs.lstatSync(target).isDirectory()) throw new ExportError(`${shown} is a directory: EISDIR`);
  } catch (err) {
    if (err instanceof ExportError) throw err;
  }
  const temp = path.join(dir, `.${name}.numactlx-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
  let fd: number;
  try {
    fd = fs.openSync(temp, flags, 0o600);
  } catch (err) {
    throw new ExportError(`cannot create a file next to ${shown}: ${errno(err)}`, { cause: err });
  }
  return {
    path: shown, fd,
    commit: () => {
      fs.closeSync(fd);
      try {
        fs.renameSync(temp, target);
      } catch (err) {
        fs.rmSync(temp, { force: true });
        throw new ExportError(`cannot replace ${shown}: ${errno(err)}`, { cause: err });
      }
    },
    abort: () => {
      fs.closeSync(fd);
      fs.rmSync(temp, { force: true });
    },
  };
}

/**
 * Opens (creating it mode 0700 when missing) the output directory, never through a
 * symbolic link. The returned path is /proc/self/fd/N: files created under it land in the
 * directory that was checked, even if `dir` is replaced meanwhile. close() releases it.
 */
export function openOutputDir(dir: string): { path: string; close(): void; removeIfCreated(): void } {
  checkOutputParent(path.dirname(path.resolve(dir)), dir);
  let created = false;
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
    created = true;
  } catch (err) {
    if (errno(err) !== 'EEXIST') throw new ExportError(`cannot create directory ${dir}: ${errno(err)}`, { cause: err });
  }
  const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = fs.constants;
  let fd: number;
  try {
    fd = fs.openSync(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  } catch (err) {
    if (errno(err) === 'ELOOP' || isSymlink(dir)) {
      throw new ExportError(`${dir} is a symbolic link: numactlx never writes through one`, { cause: err });
    }
    throw new ExportError(errno(err) === 'ENOTDIR' ? `${dir} is not a directory: ENOTDIR` : `cannot open ${dir}: ${errno(err)}`,
      { cause: err });
  }
  return {
    path: `/proc/self/fd/${fd}`,
    close: () => {
      if (fd < 0) return;
      fs.closeSync(fd);
      fd = -1;
    },
    // A failed export leaves nothing behind: not even the directory it made (if empty).
    removeIfCreated: () => {
      if (!created) return;
      try { fs.rmdirSync(dir); } catch { /* not empty, or gone: leave it */ }
    },
  };
}
