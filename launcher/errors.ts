// The errors the command line reports, and how they print.
//
// Every failure reaches the user as one line, `numactlx: <what failed>: <why>`, on
// stderr, exit status 1 (numactl's convention); usage errors add the usage text.
import { SysError } from '../src/sys/libc.js';

export { debugging } from './debug.js';

/** A bad command line: printed with the usage text. */
export class UsageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UsageError';
  }
}

/** A setup failure that is not the user's syntax: printed alone. */
export class SetupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SetupError';
  }
}

/**
 * The one line for an error. Each layer writes its context into its own message
 * (`invalid --remap: PATH: directory … does not exist: ENOENT`), so the top message is
 * normally the whole story; a system-call failure further down the cause chain that
 * the message does not mention yet is appended (`…: ioctl(UFFDIO_API) failed: EINVAL`).
 */
export function describeError(err: unknown): string {
  let line = err instanceof Error ? err.message : String(err);
  for (let cur = err instanceof Error ? err.cause : undefined; cur instanceof Error; cur = cur.cause) {
    if (cur instanceof SysError && !line.includes(cur.code)) line += `: ${cur.message}`;
  }
  return line;
}

/** The errno name carried by an error or any of its causes, if one is a SysError. */
export function errnoOf(err: unknown): string | undefined {
  for (let cur: unknown = err; cur instanceof Error; cur = cur.cause) {
    if (cur instanceof SysError) return cur.code;
  }
  return undefined;
}
