// The one error a backing reports, and how a failed system call or a format check
// becomes it: each names the path, and the reason tells the caller what went wrong.
import { FormatError } from './format.js';
import { SysError } from '../src/sys/libc.js';

export type BackingErrorReason = 'foreign' | 'corrupt' | 'version' | 'too-small' | 'in-use' | 'symlink' |
  'unsupported' | 'no-space' | 'io' |
  /** Deleted or truncated under the session (BackingStore.mediumProblem). */
  'lost';

/** A backing that cannot be opened or used; the message is the user's line. */
export class BackingError extends Error {
  readonly path: string;
  readonly reason: BackingErrorReason;
  /** The errno name when a system call failed ("ENOSPC"). */
  readonly code?: string;

  constructor(path: string, reason: BackingErrorReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BackingError';
    this.path = path;
    this.reason = reason;
    if (options?.cause instanceof SysError) this.code = options.cause.code;
  }
}

/**
 * Why a path cannot be a backing, found before it is opened (backing/inspect.ts). The
 * message names no path: the caller adds it (policy/remap.ts as the --remap value's
 * error, catalog-source.ts as a BackingError). `foreign`: a file numactlx did not create.
 */
export class InspectError extends Error {
  readonly foreign: boolean;

  constructor(message: string, options?: { cause?: unknown; foreign?: boolean }) {
    super(message, options);
    this.name = 'InspectError';
    this.foreign = options?.foreign ?? false;
  }
}

/** `err`, thrown while `doing` something to the backing at `path`, as the error to report. */
export function fail(path: string, err: unknown, doing: string): Error {
  if (err instanceof BackingError) return err;
  if (err instanceof SysError) {
    return new BackingError(path, err.code === 'ENOSPC' ? 'no-space' : 'io', `backing ${path}: ${err.code} while ${doing}`,
      { cause: err });
  }
  if (err instanceof FormatError) return formatFailure(path, err);
  return err instanceof Error ? err : new Error(String(err));
}

function formatFailure(path: string, err: FormatError): BackingError {
  switch (err.reason) {
    case 'bad-magic': return new BackingError(path, 'foreign', `${path} is not a numactlx backing (bad magic)`, { cause: err });
    case 'bad-version': return new BackingError(path, 'version', `${path}: ${err.message}`, { cause: err });
    case 'too-small': return new BackingError(path, 'too-small', `${path}: ${err.message}`, { cause: err });
    case 'bad-page-size': return new BackingError(path, 'unsupported', `${path}: ${err.message}`, { cause: err });
    default: return new BackingError(path, 'corrupt', `${path}: ${err.message}`, { cause: err });
  }
}
