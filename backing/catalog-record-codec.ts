// A snapshot record as bytes (the catalog's second encoding; the root is
// catalog-root-codec.ts's), as pure functions over Buffers. The layout (byte by byte) and
// why it is shaped so are drawn in catalog.ts; chains of frames and checksums are
// catalog-image.ts's.
//
// Numbers throughout: ids, frames and lengths are u32 (or a u64 length read as an
// exact Number below 2^53), page addresses are below 2^47 and page numbers below 2^35,
// so every value is an exact double and the page map loop (262144 pages per GiB) never
// touches a BigInt. Varints are LEB128 computed with * and % rather than bit operators,
// which would truncate them to 32 bits.
import { drain } from './steps.js';
import type { SnapshotPage, SnapshotProcess, SnapshotRecord, SnapshotStats, Vma } from './record-types.js';
import { ByteReader, ByteWriter, CatalogFormatError, check } from './catalog-bytes.js';
import { PAGE_SIZE as PAGE } from '../src/sys/page.js';

const RECORD_MAGIC = 'NXSNAPR\0';
/** The record's format version (the root has its own: catalog-root-codec.ts). */
const VERSION = 1;
const MAX_U32 = 0xffff_ffff;
/** The highest page number whose address is still an exact Number. */
const MAX_PAGE = Math.floor(Number.MAX_SAFE_INTEGER / PAGE);

function vmaRow(v: Vma): [number, number, string, number, string] {
  return [v.start, v.end, v.perms, v.offset, v.path];
}

/** Pages between two yields of the record encoder (~0.15 ms of work). */
export const ENCODE_STEP_PAGES = 1024;

function* checkPages(pages: SnapshotPage[], pid: number): Generator<void, void> {
  let prev = -1;
  for (let i = 0; i < pages.length; i++) {
    const p = pages[i];
    if (!(Number.isInteger(p.addr) && p.addr % PAGE === 0 && p.addr > prev && p.addr / PAGE <= MAX_PAGE) ||
        !(Number.isInteger(p.frame) && p.frame >= 0 && p.frame <= MAX_U32) ||
        !(Number.isInteger(p.crc) && p.crc >= 0 && p.crc <= MAX_U32)) {
      throw new RangeError(`process ${pid}: page ${JSON.stringify(p)} is not aligned, ascending and in range`);
    }
    prev = p.addr;
    if (i % ENCODE_STEP_PAGES === ENCODE_STEP_PAGES - 1) yield;
  }
}

/**
 * The page map: runs of consecutive pages, each `gap count` (pages since the previous
 * run's end) then `count` zigzag frame deltas, then the CRC32 column. Written into a
 * scratch buffer sized for the worst case (a run per page: 8 + 8 + 5 varint bytes, and
 * 4 CRC bytes) without per-byte bounds checks: this loop runs 262144 times per GiB.
 */
function* writePageMap(w: ByteWriter, pages: SnapshotPage[]): Generator<void, number> {
  const out = Buffer.allocUnsafe(pages.length * 25);
  let pos = 0;
  const varint = (v: number): void => {
    while (v >= 0x80) {
      out[pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    out[pos++] = v;
  };
  let end = 0; // page number after the previous run
  let frame = -1;
  // Yields every ENCODE_STEP_PAGES pages, inside a run too: a heap is one run of all its
  // pages (a 1M-key redis-server: 60,000), which took one step of 4–8 ms here.
  let nextYield = ENCODE_STEP_PAGES;
  for (let i = 0; i < pages.length;) {
    const first = pages[i].addr / PAGE;
    let j = i + 1;
    while (j < pages.length && pages[j].addr / PAGE === first + (j - i)) j++;
    varint(first - end);
    varint(j - i);
    for (let k = i; k < j; k++) {
      if (k >= nextYield) {
        nextYield = k + ENCODE_STEP_PAGES;
        yield;
      }
      const d = pages[k].frame - frame - 1;
      varint(d >= 0 ? d * 2 : -d * 2 - 1);
      frame = pages[k].frame;
    }
    end = first + (j - i);
    i = j;
  }
  const mapBytes = pos;
  for (let k = 0; k < pages.length; k++) {
    if (k % (ENCODE_STEP_PAGES * 8) === ENCODE_STEP_PAGES * 8 - 1) yield;
    pos = out.writeUInt32LE(pages[k].crc, pos);
  }
  w.bytes(out.subarray(0, pos));
  return mapBytes;
}

/** A snapshot record's bytes. Throws RangeError on a record that could not be read back. */
export function encodeRecord(rec: SnapshotRecord): Buffer {
  return drain(encodeRecordSteps(rec));
}

/** encodeRecord in steps: yields every ENCODE_STEP_PAGES pages (the engine serves faults between). */
export function* encodeRecordSteps(rec: SnapshotRecord): Generator<void, Buffer> {
  if (!Number.isInteger(rec.id) || rec.id < 0 || rec.id >= MAX_U32) throw new RangeError(`snapshot id ${rec.id} is not a u32`);
  const w = new ByteWriter(4096);
  const maps: number[] = [];
  // The bulk first into its own writer: the JSON header needs each map's length.
  const body = new ByteWriter(1 << 16);
  for (const p of rec.processes) {
    yield* checkPages(p.pages, p.pid);
    for (const t of p.threads) {
      body.u32(t.tid);
      body.u32(t.regs.length);
      body.bytes(t.regs);
    }
    maps.push(yield* writePageMap(body, p.pages));
  }
  const header = {
    id: rec.id, label: rec.label, time: rec.time, program: rec.program, node: rec.node, stats: rec.stats,
    processes: rec.processes.map((p, i) => ({
      pid: p.pid, exe: p.exe, command: p.command, vmas: p.vmas.map(vmaRow),
      threads: p.threads.length, pages: p.pages.length, mapBytes: maps[i],
    })),
  };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  w.ascii(RECORD_MAGIC);
  w.u32(VERSION);
  w.u32(json.length);
  w.bytes(json);
  w.bytes(body.done());
  return w.done();
}

const isInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isStr = (v: unknown): v is string => typeof v === 'string';
const isStrs = (v: unknown): v is string[] => Array.isArray(v) && v.every(isStr);

function parseHeader(json: Buffer): Record<string, unknown> {
  let h: unknown;
  try {
    h = JSON.parse(json.toString('utf8'));
  } catch (err) {
    throw new CatalogFormatError(`record header: ${(err as Error).message}`);
  }
  check(typeof h === 'object' && h !== null && !Array.isArray(h), 'record header is not an object');
  const o = h as Record<string, unknown>;
  check(isInt(o.id) && (o.label === null || isStr(o.label)) && isStr(o.time) && isStrs(o.program) && isInt(o.node) &&
    Array.isArray(o.processes), 'record header: bad field types');
  const s = o.stats as Record<string, unknown> | null;
  check(typeof s === 'object' && s !== null &&
    ['pages', 'new_pages', 'bytes_written', 'pause_ms', 'copy_ms'].every((k) => typeof s[k] === 'number'),
    'record header: bad stats');
  return o;
}

function readVmas(v: unknown): Vma[] {
  check(Array.isArray(v), 'record header: vmas is not a list');
  return (v as unknown[]).map((row) => {
    check(Array.isArray(row) && row.length === 5 && isInt(row[0]) && isInt(row[1]) && isStr(row[2]) && isInt(row[3]) &&
      isStr(row[4]), 'record header: bad vma');
    const [start, end, perms, offset, path] = row as [number, number, string, number, string];
    return { start, end, perms, offset, path };
  });
}

function readPageMap(r: ByteReader, count: number, mapBytes: number, maxFrame: number): SnapshotPage[] {
  const mapEnd = r.pos + mapBytes;
  const crcAt = mapEnd;
  r.need(mapBytes + count * 4);
  const pages: SnapshotPage[] = new Array<SnapshotPage>(count);
  let page = 0;
  let frame = -1;
  let n = 0;
  while (n < count) {
    page += r.varint();
    const run = r.varint();
    if (run < 1 || run > count - n) throw new CatalogFormatError(`page map: a run of ${run} pages with ${count - n} left`);
    check(page + run <= MAX_PAGE, 'page map: address out of range');
    for (let k = 0; k < run; k++, n++, page++) {
      const z = r.varint();
      frame += 1 + (z % 2 === 0 ? z / 2 : -(z + 1) / 2);
      if (frame < 0 || frame >= maxFrame) {
        throw new CatalogFormatError(`page map: frame ${frame} of page 0x${(page * PAGE).toString(16)} ` +
          `is outside the backing (${maxFrame} frames)`);
      }
      pages[n] = { addr: page * PAGE, frame, crc: r.buf.readUInt32LE(crcAt + n * 4) };
    }
  }
  check(r.pos === mapEnd, `page map: ${mapEnd - r.pos} bytes left over`);
  r.skip(count * 4);
  return pages;
}

/**
 * Reads a record; frames must be below `maxFrame` (the backing's frame count). Throws
 * CatalogFormatError naming the first thing wrong.
 */
export function decodeRecord(buf: Buffer, maxFrame: number = MAX_U32 + 1): SnapshotRecord {
  const r = new ByteReader(buf, 'record');
  r.magic(RECORD_MAGIC);
  r.version(VERSION);
  const h = parseHeader(r.bytes(r.u32()));
  const processes: SnapshotProcess[] = (h.processes as unknown[]).map((pv) => {
    const p = pv as Record<string, unknown>;
    check(typeof p === 'object' && p !== null && isInt(p.pid) && isStr(p.exe) && isStrs(p.command) &&
      isInt(p.threads) && isInt(p.pages) && isInt(p.mapBytes), 'record header: bad process');
    const vmas = readVmas(p.vmas);
    const threads = [];
    for (let t = 0; t < (p.threads as number); t++) {
      const tid = r.u32();
      threads.push({ tid, regs: Buffer.from(r.bytes(r.u32())) });
    }
    const pages = readPageMap(r, p.pages as number, p.mapBytes as number, maxFrame);
    return { pid: p.pid as number, exe: p.exe as string, command: p.command as string[], vmas, threads, pages };
  });
  check(r.pos === buf.length, `record: ${buf.length - r.pos} bytes after the last process`);
  return {
    id: h.id as number, label: h.label as string | null, time: h.time as string, program: h.program as string[],
    node: h.node as number, stats: h.stats as SnapshotStats, processes,
  };
}
