// Snapshot labels: what may name a snapshot. A label is stored in the catalog and names
// the snapshot in verbs that take SNAP (an id or a label), so it must never read as an
// id; the queue, the config file and `numactlx snapshot --label` all check it here.
import { SnapshotError } from './queue-api.js';

/** Labels are stored in the catalog and name snapshots in `export PATH SNAP`: at most this many bytes. */
export const MAX_LABEL_BYTES = 128;

/**
 * Why `label` cannot be a snapshot label, or undefined when it can. A label is 1 to 128
 * bytes of UTF-8 with no control characters and no surrounding white space, and is not a
 * number (verbs taking SNAP accept an id or a label; `42` must mean snapshot 42).
 */
export function labelProblem(label: string): string | undefined {
  if (label === '') return 'a label must not be empty';
  if (Buffer.byteLength(label) > MAX_LABEL_BYTES) return `a label is at most ${MAX_LABEL_BYTES} bytes`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(label)) return 'a label must not contain control characters';
  if (label.trim() !== label) return 'a label must not begin or end with white space';
  if (/^\d+$/.test(label)) return 'a label must not be a number (it would read as a snapshot id)';
  return undefined;
}

/** Throws a SnapshotError when `label` is not a valid label. */
export function checkLabel(label: string): void {
  const problem = labelProblem(label);
  if (problem) throw new SnapshotError(`invalid label ${JSON.stringify(label)}: ${problem}`);
}
