// The errors the command line reports, and how they print.
//
// Every failure reaches the user as one line, `numactlx: <what failed>: <why>`, on
// stderr, exit status 1 (numactl's convention); usage errors add the usage text.
import { SysError } from '../src/sys/libc.js';

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
 * The one line for an error: its message, then each cause's message that adds
 * something (a SysError contributes its errno name), joined by ': '.
 */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let cur: unknown = err;
  while (cur !== undefined && cur !== null) {
    const msg = cur instanceof Error ? cur.message : String(cur);
    if (!parts.some((p) => p.endsWith(msg))) parts.push(msg);
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return parts.join(': ');
}

/** The errno name carried by an error or any of its causes, if one is a SysError. */
export function errnoOf(err: unknown): string | undefined {
  for (let cur: unknown = err; cur instanceof Error; cur = cur.cause) {
    if (cur instanceof SysError) return cur.code;
  }
  return undefined;
}
