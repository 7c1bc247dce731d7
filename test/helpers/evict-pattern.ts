// evict_pattern.c's pages, read back from a snapshot: each page says what it should hold
// (MAGIC | generation, its index, the stream of (seed, generation, index)), and each
// process keeps a generation per page in its own memory — so an exported snapshot can be
// checked process by process against the tables it holds.
import fs from 'node:fs';
import path from 'node:path';
import { numactlx } from './numactlx.js';

const PAGE = 4096;
const M64 = (1n << 64n) - 1n;
const MAGIC = 0x50414745n; // "PAGE", the high half of a page's first word (evict_pattern.c)

// evict_pattern.c's generator (fixture.h page_state + xorshift).
export function pageState(seed: bigint, page: bigint): bigint {
  let x = (seed * 0x9e3779b97f4a7c15n + (page + 1n) * 0xbf58476d1ce4e5b9n) & M64;
  x ^= x >> 30n;
  x = (x * 0xbf58476d1ce4e5b9n) & M64;
  x ^= x >> 27n;
  x = (x * 0x94d049bb133111ebn) & M64;
  x ^= x >> 31n;
  return x === 0n ? 1n : x;
}

/** Whether words 2… of `page` are the stream of (seed, generation, index). */
export function streamOk(page: Buffer, seed: bigint, gen: bigint, index: bigint): boolean {
  let s = pageState(seed ^ (gen << 32n), index);
  for (let i = 2; i < PAGE / 8; i++) {
    s ^= (s << 13n) & M64;
    s ^= s >> 7n;
    s ^= (s << 17n) & M64;
    if (page.readBigUInt64LE(i * 8) !== s) return false;
  }
  return true;
}

export interface Checked { processes: number; pages: number }

/**
 * Exports snapshot `id` (raw) and checks every process in it against its own generation
 * table (a uint16_t per page at `genAddr`): each page the table names is there, whole, at
 * that generation — but at most one per process, the one being written at the freeze,
 * and `lost` more missing (the snapshot's lost_pages: pages frozen in it and then
 * unmapped or moved by the program before they could be copied; README, Known limits).
 */
export async function checkSnapshot(backing: string, id: number, dir: string, seed: bigint, pages: number, genAddr: number,
  lost = 0): Promise<Checked> {
  const out = path.join(dir, `snap-${id}`);
  const r = await numactlx(['export', backing, String(id), '--format', 'raw', '-o', out]);
  if (r.exitCode !== 0) throw new Error(`export of snapshot ${id}: ${r.stderr}`);
  const index = JSON.parse(fs.readFileSync(path.join(out, 'index.json'), 'utf8'));
  const bin = fs.readFileSync(path.join(out, 'pages.bin'));
  let total = 0;
  for (const proc of index.processes as Array<{ pid: number; runs: Array<{ addr: string; pages: number; offset: number }> }>) {
    const runs = proc.runs.map((x) => ({ addr: Number(BigInt(x.addr)), pages: x.pages, offset: x.offset }));
    const at = (addr: number): number | undefined => {
      const run = runs.find((x) => addr >= x.addr && addr < x.addr + x.pages * PAGE);
      return run && run.offset + (addr - run.addr);
    };
    const gens = new Uint16Array(pages);
    for (let p = 0; p < pages; p += 2) {
      const off = at(genAddr + p * 2);
      if (off === undefined) throw new Error(`snapshot ${id} pid ${proc.pid}: the generation table at 0x${(genAddr + p * 2).toString(16)} is missing`);
      gens[p] = bin.readUInt16LE(off);
      if (p + 1 < pages) gens[p + 1] = bin.readUInt16LE(off + 2);
    }
    const seen = new Map<number, number>(); // index → generation of the whole page found
    let odd = 0;
    let missing = 0;
    const problems: string[] = [];
    for (const run of runs) {
      for (let i = 0; i < run.pages; i++) {
        const page = bin.subarray(run.offset + i * PAGE, run.offset + (i + 1) * PAGE);
        const w0 = page.readBigUInt64LE(0);
        if (w0 >> 32n !== MAGIC) continue;
        const gen = w0 & 0xffffn;
        const p = Number(page.readBigUInt64LE(8));
        const whole = p < pages && streamOk(page, seed, gen, BigInt(p));
        if (!whole || gens[p] !== Number(gen)) {
          odd++;
          problems.push(`0x${(run.addr + i * PAGE).toString(16)}: index ${p} generation ${gen}${whole ? '' : ' (torn)'}, the table says ${gens[p]}`);
          continue;
        }
        seen.set(p, Number(gen));
      }
    }
    for (let p = 0; p < pages; p++) {
      if (gens[p] !== 0 && !seen.has(p)) { missing++; problems.push(`index ${p} (generation ${gens[p]}) is missing`); }
    }
    // The page being written at the freeze shows twice at most (as odd, and as missing).
    if (odd > 2 || odd + missing > 2 + lost) {
      throw new Error(`snapshot ${id} pid ${proc.pid}: ${odd} pages wrong, ${missing} missing (${lost} lost):\n${problems.slice(0, 10).join('\n')}`);
    }
    total += seen.size;
  }
  fs.rmSync(out, { recursive: true, force: true });
  return { processes: index.processes.length, pages: total };
}
