// Running the built numactlx binary from tests.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type Options, type Result } from 'execa';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const NUMACTLX = path.join(ROOT, 'bin/numactlx');

/** Runs `numactlx ARGS`; never rejects: the test checks exitCode, stdout, stderr. */
export function numactlx(args: string[], options: Options = {}): Promise<Result> {
  return execa(NUMACTLX, args, { reject: false, ...(options.input === undefined ? { stdin: 'ignore' } : {}), ...options }) as Promise<Result>;
}
