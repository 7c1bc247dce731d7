// A progress bar for the long offline verbs (verify, export, diff): drawn on stderr when
// it is a terminal, and nothing at all otherwise (DESIGN.md §2: quiet when not on a TTY,
// so scripts and pipes see only the verb's own output).
import { formatBytes } from '../../policy/size.js';
import { PAGE_SIZE } from '../sys/page.js';

/** What a long operation reports as it goes. */
export interface Progress {
  /** `n` more units done. */
  tick(n?: number): void;
  /** Finished (or abandoned): the bar is erased. Idempotent. */
  done(): void;
}

/** The part of a stream a bar needs (process.stderr, or a fake in tests). */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

export interface ProgressOptions {
  /** Where to draw (default process.stderr). */
  stream?: ProgressStream;
  /** How units print: pages as sizes by default. */
  unit?: (n: number) => string;
  /** Least time between two redraws, ms (default 100). */
  intervalMs?: number;
  now?: () => number;
}

/** A Progress that does nothing: not on a TTY, or the caller wants silence. */
export const NO_PROGRESS: Progress = { tick: () => undefined, done: () => undefined };

const sizeOfPages = (pages: number): string => formatBytes(pages * PAGE_SIZE);

/**
 * A bar for `total` units labelled `label`, on `stream` when it is a TTY; NO_PROGRESS
 * otherwise. Redraws at most every intervalMs; done() erases the line so the verb's
 * output starts on a clean line.
 */
export function createProgress(label: string, total: number, options: ProgressOptions = {}): Progress {
  const stream = options.stream ?? process.stderr;
  if (!stream.isTTY || total <= 0) return NO_PROGRESS;
  const unit = options.unit ?? sizeOfPages;
  const interval = options.intervalMs ?? 100;
  const now = options.now ?? Date.now;
  let done = 0;
  let drawn = false;
  let finished = false;
  let last = -Infinity;

  const draw = (): void => {
    const fraction = Math.min(1, done / total);
    const text = ` ${String(Math.floor(fraction * 100)).padStart(3)}% ${unit(done)}/${unit(total)}`;
    const columns = stream.columns ?? 80;
    const width = Math.max(10, Math.min(40, columns - label.length - text.length - 4));
    const filled = Math.round(fraction * width);
    // \r and erase-to-end-of-line: one line redrawn in place.
    stream.write(`\r${label} [${'#'.repeat(filled)}${' '.repeat(width - filled)}]${text}\x1b[K`);
    drawn = true;
  };

  return {
    tick(n = 1): void {
      if (finished) return;
      done += n;
      const t = now();
      if (t - last >= interval || done >= total) {
        last = t;
        draw();
      }
    },
    done(): void {
      if (finished) return;
      finished = true;
      if (drawn) stream.write('\r\x1b[K');
    },
  };
}
