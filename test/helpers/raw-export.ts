// Reading a snapshot exported with `numactlx export PATH ID --format raw -o DIR`.
import fs from 'node:fs';
import path from 'node:path';
import { numactlx } from './numactlx.js';

interface RawRun {
  addr: number;
  pages: number;
  offset: number;
}

export class RawSnapshot {
  private constructor(private readonly pages: Buffer, private readonly runs: RawRun[], readonly index: { id: number; label: string | null }) {}

  /** Exports snapshot `id` of `backing` into a fresh directory under `dir` and opens it. */
  static async export(backing: string, id: number, dir: string, pid?: number): Promise<RawSnapshot> {
    const out = path.join(dir, `snap-${id}`);
    const r = await numactlx(['export', backing, String(id), '--format', 'raw', '-o', out, ...(pid ? ['--pid', String(pid)] : [])]);
    if (r.exitCode !== 0) throw new Error(`export of snapshot ${id} failed: ${r.stderr}`);
    const index = JSON.parse(fs.readFileSync(path.join(out, 'index.json'), 'utf8'));
    const runs: RawRun[] = index.processes[0].runs.map((run: { addr: string; pages: number; offset: number }) => ({
      addr: Number(BigInt(run.addr)), pages: run.pages, offset: run.offset,
    }));
    const snap = new RawSnapshot(fs.readFileSync(path.join(out, 'pages.bin')), runs, index);
    fs.rmSync(out, { recursive: true, force: true });
    return snap;
  }

  /** The 8-byte little-endian word at `addr`, or undefined when its page is not in the snapshot. */
  word(addr: number): bigint | undefined {
    const run = this.runs.find((r) => addr >= r.addr && addr < r.addr + r.pages * 4096);
    if (!run) return undefined;
    return this.pages.readBigUInt64LE(run.offset + (addr - run.addr));
  }

  u32(addr: number): number | undefined {
    const run = this.runs.find((r) => addr >= r.addr && addr < r.addr + r.pages * 4096);
    if (!run) return undefined;
    return this.pages.readUInt32LE(run.offset + (addr - run.addr));
  }

  get pageCount(): number {
    return this.runs.reduce((n, r) => n + r.pages, 0);
  }
}
