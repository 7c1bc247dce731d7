// An in-memory SnapshotSource: frames in an array, snapshots built by the test. What the
// offline verbs (snapshots, verify, export, diff) are tested through until, and besides,
// the on-media catalog.
import zlib from 'node:zlib';
import { patternPage } from './pattern.js';
import type { SnapshotSource } from '../../src/snapshot/source.js';
import type { SnapshotPage, SnapshotProcess, SnapshotRecord, SnapshotStats, Vma } from '../../src/snapshot/types.js';

export const PAGE = 4096;

/** A user_regs_struct (216 bytes) with the named registers set, the others zero. */
export function fakeRegs(values: Record<string, bigint> = {}): Buffer {
  const order = ['r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8', 'rax', 'rcx', 'rdx', 'rsi', 'rdi',
    'orig_rax', 'rip', 'cs', 'eflags', 'rsp', 'ss', 'fs_base', 'gs_base', 'ds', 'es', 'fs', 'gs'];
  const regs = Buffer.alloc(order.length * 8);
  for (const [name, v] of Object.entries(values)) {
    const i = order.indexOf(name);
    if (i < 0) throw new Error(`no register ${name}`);
    regs.writeBigUInt64LE(v, i * 8);
  }
  return regs;
}

export interface FakeProcessSpec {
  pid: number;
  /** Page address → contents (a Buffer, or a seed: page 0 of its pattern, ./pattern.ts), or an existing frame. */
  pages: Array<[number, Buffer | number | { frame: number }]>;
  vmas?: Vma[];
  exe?: string;
  command?: string[];
  tids?: number[];
}

export interface FakeSnapshotSpec {
  id?: number;
  label?: string | null;
  time?: string;
  program?: string[];
  node?: number;
  processes: FakeProcessSpec[];
  stats?: Partial<SnapshotStats>;
}

export class FakeSource implements SnapshotSource {
  readonly path: string;
  readonly frames: Buffer[] = [];
  readonly records: SnapshotRecord[] = [];
  closed = false;
  /** Frames read so far (diff must not read frames two snapshots share). */
  reads = 0;

  constructor(path = '/fake/node3.img') {
    this.path = path;
  }

  /** What the catalog will report as the backing's frame count. */
  get frameCount(): number {
    return this.frames.length;
  }

  snapshots(): SnapshotRecord[] {
    return this.records;
  }

  readFrame(frame: number, out?: Buffer): Buffer {
    if (!Number.isInteger(frame) || frame < 0 || frame >= this.frames.length) {
      throw new RangeError(`frame ${frame} is outside the backing (${this.frames.length} frames)`);
    }
    this.reads++;
    if (!out) return Buffer.from(this.frames[frame]);
    this.frames[frame].copy(out);
    return out;
  }

  close(): void {
    this.closed = true;
  }

  /** A new frame holding `bytes` (zero-padded to 4096); its number. */
  addFrame(bytes: Buffer): number {
    const frame = Buffer.alloc(PAGE);
    bytes.copy(frame, 0, 0, Math.min(bytes.length, PAGE));
    this.frames.push(frame);
    return this.frames.length - 1;
  }

  page(addr: number, content: Buffer | number | { frame: number }): SnapshotPage {
    if (typeof content === 'object' && 'frame' in content && !Buffer.isBuffer(content)) {
      return { addr, frame: content.frame, crc: zlib.crc32(this.frames[content.frame]) };
    }
    const frame = this.addFrame(typeof content === 'number' ? patternPage(content) : content);
    return { addr, frame, crc: zlib.crc32(this.frames[frame]) };
  }

  /** Adds a snapshot: pages get new frames unless given as { frame } (shared). */
  addSnapshot(spec: FakeSnapshotSpec): SnapshotRecord {
    const id = spec.id ?? (this.records.at(-1)?.id ?? 0) + 1;
    const processes: SnapshotProcess[] = spec.processes.map((p) => {
      const pages = [...p.pages].sort((a, b) => a[0] - b[0]).map(([addr, c]) => this.page(addr, c));
      const lo = pages.length ? pages[0].addr : 0x10000;
      const hi = pages.length ? pages[pages.length - 1].addr + PAGE : 0x10000 + PAGE;
      return {
        pid: p.pid,
        exe: p.exe ?? '/usr/bin/fake',
        command: p.command ?? ['fake', '--run'],
        vmas: p.vmas ?? [{ start: lo, end: hi, perms: 'rw-p', offset: 0, path: '' }],
        threads: (p.tids ?? [p.pid]).map((tid) => ({ tid, regs: fakeRegs({ rip: 0x401000n + BigInt(tid), rsp: BigInt(hi - 64) }) })),
        pages,
      };
    });
    const total = processes.reduce((n, p) => n + p.pages.length, 0);
    const record: SnapshotRecord = {
      id,
      label: spec.label === undefined ? null : spec.label,
      time: spec.time ?? new Date(Date.UTC(2025, 0, 1, 12, 0, id)).toISOString(),
      program: spec.program ?? ['fake', '--run'],
      node: spec.node ?? 3,
      processes,
      stats: {
        pages: total, new_pages: total, bytes_written: total * PAGE, pause_ms: 1.25, copy_ms: 12.5, ...spec.stats,
      },
    };
    this.records.push(record);
    return record;
  }
}
