// `numactlx verify PATH`: every frame every committed snapshot references still has the
// CRC32 recorded when it was written, and every record is well formed — pages strictly
// ascending and page aligned, each inside one of its process's VMAs, each frame inside the
// backing, registers the size of a user_regs_struct. One line per problem, then a
// summary; exit 0 only when clean. A frame shared by several snapshots is read once.
import zlib from 'node:zlib';
import { createProgress, NO_PROGRESS, type Progress } from '../../src/snapshot/progress.js';
import { hex, readFrameInto } from '../../src/snapshot/export-pages.js';
import { USER_REGS_SIZE } from '../../src/sys/arch/index.js';
import { PAGE_SIZE } from '../../src/sys/page.js';
import type { SnapshotSource } from '../../src/snapshot/source.js';
import type { SnapshotProcess, SnapshotRecord } from '../../src/snapshot/types.js';
import { positionals, type Verb, type VerbArgs } from './parse.js';
import { withSource } from './snapshots.js';
import { printOut } from '../output.js';

export type ProblemKind = 'checksum' | 'unreadable' | 'frame-range' | 'order' | 'unaligned' | 'outside-vma' |
  'registers' | 'duplicate-id' | 'superblock';

export interface VerifyProblem {
  kind: ProblemKind;
  snapshot: number;
  /** The report's line. */
  message: string;
}

export interface VerifyReport {
  snapshots: number;
  /** Page references checked (a frame shared by n snapshots counts n times). */
  pages: number;
  /** Distinct frames read. */
  frames: number;
  problems: VerifyProblem[];
  /** The two superblock copies (a backing's): which is in use, which is damaged. */
  superblocks?: SnapshotSource['superblocks'];
}

export interface VerifyOptions {
  /** Frames in the backing; by default the source's `frameCount` when it has one. */
  frameCount?: number;
  progress?: Progress;
}

const where = (r: SnapshotRecord, p: SnapshotProcess, addr: number): string => `snapshot ${r.id}: page ${hex(addr)} (pid ${p.pid})`;

/** Checks every snapshot of `source` (see the header comment). */
export function verifySource(source: SnapshotSource, opts: VerifyOptions = {}): VerifyReport {
  const records = source.snapshots();
  const frameCount = opts.frameCount ?? (source as SnapshotSource & { frameCount?: number }).frameCount;
  const progress = opts.progress ?? NO_PROGRESS;
  const report: VerifyReport = { snapshots: records.length, pages: 0, frames: 0, problems: [], superblocks: source.superblocks };
  const problem = (kind: ProblemKind, snapshot: number, message: string): void => {
    report.problems.push({ kind, snapshot, message });
  };
  // A damaged copy is a problem even when nothing was lost (it was the older one, or
  // the newer one was recovered): the next damage to the other copy would be fatal.
  if (source.superblocks?.damage) problem('superblock', 0, source.superblocks.damage);
  for (const d of source.damaged ?? []) problem('unreadable', d.id, `${d.reason} (numactlx repair drops it, keeping the others)`);
  // frame → its CRC32 as read now, or the reason it could not be read.
  const crcs = new Map<number, number | string>();
  const buf = Buffer.alloc(PAGE_SIZE);
  const seen = new Set<number>();
  try {
    for (const r of records) {
      if (seen.has(r.id)) problem('duplicate-id', r.id, `snapshot ${r.id}: id listed more than once`);
      seen.add(r.id);
      for (const p of r.processes) {
        for (const t of p.threads) {
          if (t.regs.length !== USER_REGS_SIZE) {
            problem('registers', r.id, `snapshot ${r.id}: thread ${t.tid} (pid ${p.pid}): registers are ${t.regs.length} bytes, not ${USER_REGS_SIZE}`);
          }
        }
        const vmas = [...p.vmas].sort((x, y) => x.start - y.start);
        let v = 0;
        let prev = -1;
        for (const page of p.pages) {
          report.pages++;
          if (page.addr % PAGE_SIZE !== 0) problem('unaligned', r.id, `${where(r, p, page.addr)}: not page aligned`);
          if (page.addr <= prev) {
            problem('order', r.id, `${where(r, p, page.addr)}: out of order (after ${hex(prev)})`);
            v = 0; // the walk over the VMAs starts again
          }
          prev = Math.max(prev, page.addr);
          while (v < vmas.length && vmas[v].end <= page.addr) v++;
          if (v >= vmas.length || vmas[v].start > page.addr) problem('outside-vma', r.id, `${where(r, p, page.addr)}: not inside any VMA`);
          if (!Number.isInteger(page.frame) || page.frame < 0 || (frameCount !== undefined && page.frame >= frameCount)) {
            problem('frame-range', r.id, `${where(r, p, page.addr)}: frame ${page.frame} outside the backing (${frameCount ?? '?'} frames)`);
            progress.tick(1);
            continue;
          }
          let crc = crcs.get(page.frame);
          if (crc === undefined) {
            try {
              crc = zlib.crc32(readFrameInto(source, page.frame, buf));
            } catch (err) {
              crc = err instanceof Error ? err.message : String(err);
            }
            crcs.set(page.frame, crc);
          }
          if (typeof crc === 'string') problem('unreadable', r.id, `${where(r, p, page.addr)}: frame ${page.frame} unreadable: ${crc}`);
          else if (crc !== page.crc) problem('checksum', r.id, `${where(r, p, page.addr)}: frame ${page.frame} checksum mismatch`);
          progress.tick(1);
        }
      }
    }
  } finally {
    progress.done();
  }
  report.frames = crcs.size;
  return report;
}

/** The report's lines: the problems, then the summary. */
export function formatVerify(path: string, report: VerifyReport): string {
  const { problems } = report;
  const checksums = problems.filter((p) => p.kind === 'checksum').length;
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  const inSnapshots = (n: number): string => (n === 0 ? '' : ` in ${plural(n, 'snapshot')}`);
  const counted = `${plural(report.snapshots, 'snapshot')}, ${plural(report.pages, 'page')}, ${plural(report.frames, 'frame')}`;
  const summary = problems.length === 0
    ? `${path}: ${counted}: clean`
    : `${path}: ${counted}: ${plural(problems.length, 'problem')} (${checksums} checksum ${checksums === 1 ? 'mismatch' : 'mismatches'}, `
      + `${problems.length - checksums} other)${inSnapshots(new Set(problems.filter((p) => p.snapshot > 0).map((p) => p.snapshot)).size)}`;
  return [...problems.map((p) => p.message), summary].join('\n') + '\n';
}

export const verifyCommand: Verb = {
  spec: { name: 'verify', usage: 'usage: numactlx verify PATH [--json]\n', options: [{ name: 'json', type: 'boolean' }] },
  run: runVerify,
};

async function runVerify(args: VerbArgs): Promise<number> {
  const [path] = positionals('verify', args, ['PATH']);
  const report = await withSource('verify', path, (source) => {
    const total = source.snapshots().reduce((n, r) => n + r.processes.reduce((m, p) => m + p.pages.length, 0), 0);
    return verifySource(source, { progress: createProgress('verify', total) });
  });
  printOut(args.flags.json ? `${JSON.stringify({ path, ...report, clean: report.problems.length === 0 }, null, 2)}\n`
    : formatVerify(path, report));
  return report.problems.length === 0 ? 0 : 1;
}
