// Finding the program the way execvp(3) will, so that a missing or non-executable
// program is reported before anything is started: `numactlx: execution of 'x': ENOENT`.
import fs from 'node:fs';
import path from 'node:path';
import { SetupError } from './errors.js';
import { errnoText } from '../src/sys/libc.js';
import os from 'node:os';

function failure(name: string, code: 'ENOENT' | 'EACCES'): SetupError {
  return new SetupError(`execution of '${name}': ${code} (${errnoText(os.constants.errno[code])})`);
}

function executable(file: string): 'ok' | 'ENOENT' | 'EACCES' {
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) return 'EACCES';
    fs.accessSync(file, fs.constants.X_OK);
    return 'ok';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'ENOENT' : 'EACCES';
  }
}

/** The path execvp would run for `name`; throws SetupError when there is none. */
export function resolveProgram(name: string, envPath = process.env.PATH ?? '/bin:/usr/bin'): string {
  if (name === '') throw failure(name, 'ENOENT');
  if (name.includes('/')) {
    const r = executable(name);
    if (r !== 'ok') throw failure(name, r);
    return name;
  }
  let sawEacces = false;
  for (const dir of envPath.split(':')) {
    const candidate = path.join(dir === '' ? '.' : dir, name);
    const r = executable(candidate);
    if (r === 'ok') return candidate;
    if (r === 'EACCES') sawEacces = true;
  }
  throw failure(name, sawEacces ? 'EACCES' : 'ENOENT');
}
