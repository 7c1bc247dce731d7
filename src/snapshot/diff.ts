// Which pages differ between two snapshots of one session. Frames are written once and
// never changed while a snapshot references them, so two snapshots that reference the same
// frame for a page have the same bytes there: that page is unchanged without a read (the
// common case: an incremental snapshot shares every clean page with the one before).
// Different frames are read and compared, since a page rewritten with the same bytes gets
// a new frame all the same. Processes are matched by pid; a page one snapshot lacks
// (unmapped, newly mapped, a process that ended or forked) is "only in" the other.
import type { SnapshotSource } from './source.js';
import type { SnapshotPage, SnapshotProcess, SnapshotRecord } from './types.js';
import { readFrameInto } from './export-pages.js';
import { PAGE_SIZE } from '../sys/page.js';
import { NO_PROGRESS, type Progress } from './progress.js';

export type DiffKind = 'changed' | 'only_in_a' | 'only_in_b';

/** Adjacent pages of one process with the same difference; `end` is exclusive. */
export interface DiffRange {
  pid: number;
  start: number;
  end: number;
  pages: number;
  kind: DiffKind;
}

export interface DiffResult {
  a: number;
  b: number;
  /** By pid, then address. */
  ranges: DiffRange[];
  changed: number;
  onlyInA: number;
  onlyInB: number;
  unchanged: number;
  /** Pages whose frames differed and were read to compare (unchanged ones included). */
  compared: number;
}

const NO_PAGES: SnapshotPage[] = [];

/** The difference between snapshots `a` and `b` (a is usually the older). */
export function diffSnapshots(source: SnapshotSource, a: SnapshotRecord, b: SnapshotRecord,
  progress: Progress = NO_PROGRESS): DiffResult {
  const result: DiffResult = { a: a.id, b: b.id, ranges: [], changed: 0, onlyInA: 0, onlyInB: 0, unchanged: 0, compared: 0 };
  const byPid = (r: SnapshotRecord): Map<number, SnapshotProcess> => new Map(r.processes.map((p) => [p.pid, p]));
  const procsA = byPid(a);
  const procsB = byPid(b);
  const pids = [...new Set([...procsA.keys(), ...procsB.keys()])].sort((x, y) => x - y);
  const bufA = Buffer.alloc(PAGE_SIZE);
  const bufB = Buffer.alloc(PAGE_SIZE);
  try {
    for (const pid of pids) {
      const pa = procsA.get(pid)?.pages ?? NO_PAGES;
      const pb = procsB.get(pid)?.pages ?? NO_PAGES;
      let last: DiffRange | undefined;
      const note = (addr: number, kind: DiffKind): void => {
        if (kind === 'changed') result.changed++;
        else if (kind === 'only_in_a') result.onlyInA++;
        else result.onlyInB++;
        if (last && last.kind === kind && last.end === addr) {
          last.end += PAGE_SIZE;
          last.pages++;
        } else {
          last = { pid, start: addr, end: addr + PAGE_SIZE, pages: 1, kind };
          result.ranges.push(last);
        }
      };
      // Both lists are sorted by address (verify checks it): one merge walk.
      let i = 0;
      let j = 0;
      while (i < pa.length || j < pb.length) {
        const x = pa[i];
        const y = pb[j];
        if (y === undefined || (x !== undefined && x.addr < y.addr)) {
          note(x.addr, 'only_in_a');
          i++;
        } else if (x === undefined || y.addr < x.addr) {
          note(y.addr, 'only_in_b');
          j++;
        } else {
          if (x.frame === y.frame) {
            result.unchanged++;
          } else {
            result.compared++;
            const same = readFrameInto(source, x.frame, bufA).equals(readFrameInto(source, y.frame, bufB));
            progress.tick(1);
            if (same) result.unchanged++;
            else note(x.addr, 'changed');
          }
          i++;
          j++;
        }
      }
    }
  } finally {
    progress.done();
  }
  return result;
}

/** Pages with different frames in a and b: the reads a diff will do (for a progress bar). */
export function pagesToCompare(a: SnapshotRecord, b: SnapshotRecord): number {
  const procsB = new Map(b.processes.map((p) => [p.pid, p.pages]));
  let n = 0;
  for (const p of a.processes) {
    const pb = procsB.get(p.pid) ?? NO_PAGES;
    let j = 0;
    for (const x of p.pages) {
      while (j < pb.length && pb[j].addr < x.addr) j++;
      if (j < pb.length && pb[j].addr === x.addr && pb[j].frame !== x.frame) n++;
    }
  }
  return n;
}
