// The catalog's encodings: records and roots round trip, the page map stays compact,
// and bytes that do not decode are refused with the first thing wrong.
import zlib from 'node:zlib';
import { CatalogFormatError } from '../../backing/catalog-bytes.js';
import { decodeRecord, encodeRecord, encodeRecordSteps, ENCODE_STEP_PAGES } from '../../backing/catalog-record-codec.js';
import { catalogPointer, decodeRoot, encodeRoot, parsePointer, rootLengthOf } from '../../backing/catalog-root-codec.js';
import { CHAIN_PAYLOAD, readChain, writeChain, writeChainSteps, type FrameReader } from '../../backing/catalog-image.js';
import type { SnapshotPage, SnapshotRecord } from '../../src/snapshot/types.js';
import { prng, testSeed } from '../helpers/random.js';

const PAGE = 4096;

function regs(tid: number): Buffer {
  const b = Buffer.alloc(216);
  for (let i = 0; i < 27; i++) b.writeBigUInt64LE(BigInt(tid) * 0x1_0000_0001n + BigInt(i), i * 8);
  return b;
}

function record(pages: SnapshotPage[], over: Partial<SnapshotRecord> = {}): SnapshotRecord {
  return {
    id: 7, label: 'before the upgrade ✓', time: '2025-01-02T03:04:05.678Z', program: ['python3', '-c', 'print("hi")'],
    node: 3,
    processes: [{
      pid: 4242, exe: '/usr/bin/python3.11', command: ['python3', '-c', 'print("hi")'],
      vmas: [{ start: 0x55_5555_4000, end: 0x55_5555_8000, perms: 'r-xp', offset: 0x1000, path: '/usr/bin/python3.11' },
        { start: 0x7fff_f7a0_0000, end: 0x7fff_f7c0_0000, perms: 'rw-p', offset: 0, path: '' }],
      threads: [{ tid: 4242, regs: regs(4242) }, { tid: 4243, regs: regs(4243) }],
      pages,
    }],
    stats: { pages: pages.length, new_pages: 3, bytes_written: 12288, pause_ms: 1.25, copy_ms: 30.5 },
    ...over,
  };
}

/**
 * A 1 GiB address space the way a program leaves it: a few big runs (heap, arenas,
 * stack, .data), frames allocated in order at first, then `shared` of the pages keeping
 * the frame of an older snapshot while the rest were copied into frames handed out in
 * between (an incremental snapshot).
 */
function realisticPages(count: number, shared: number, seed: number): SnapshotPage[] {
  const rng = prng(seed);
  const runs = [0.62, 0.2, 0.1, 0.05, 0.02, 0.01].map((f) => Math.floor(f * count));
  runs[0] += count - runs.reduce((a, b) => a + b, 0);
  const pages: SnapshotPage[] = [];
  let addr = 0x55_5555_9000;
  let fresh = 0;
  for (const n of runs) {
    for (let i = 0; i < n; i++, addr += PAGE) {
      const frame = rng.float() < shared ? rng.below(count * 2) : fresh++;
      pages.push({ addr, frame, crc: rng.u32() });
    }
    addr += PAGE * (1 + rng.below(1e6)); // a gap before the next mapping
  }
  return pages;
}

describe('records', () => {
  test('round trip: header, registers, VMAs, and a page map with gaps and backward frames', () => {
    const pages: SnapshotPage[] = [
      { addr: 0, frame: 5, crc: 0 }, { addr: PAGE, frame: 6, crc: 0xffff_ffff }, { addr: 2 * PAGE, frame: 2, crc: 1 },
      { addr: 0x7fff_ffff_e000, frame: 0xffff_fffe, crc: 0x1234_5678 }, { addr: 0x7fff_ffff_f000, frame: 0, crc: 9 },
    ];
    const rec = record(pages);
    expect(decodeRecord(encodeRecord(rec))).toEqual(rec);
    const bare = record([], { label: null, processes: [] });
    expect(decodeRecord(encodeRecord(bare))).toEqual(bare);
  });

  test('1 GiB of 4 KiB pages (262144) encodes in about 5 bytes a page', () => {
    const sizes: Record<string, number> = {};
    const seed = testSeed('catalog-codec: realistic page maps');
    for (const [name, shared] of [['first', 0], ['incremental 10%', 0.1], ['incremental 50%', 0.5]] as const) {
      const rec = record(realisticPages(262144, shared, seed));
      const bytes = encodeRecord(rec);
      const back = decodeRecord(bytes);
      // Compared by hand: toEqual on 262144 objects takes seconds.
      const [a, b] = [back.processes[0].pages, rec.processes[0].pages];
      expect(a.length).toBe(b.length);
      const differ = a.findIndex((p, i) => p.addr !== b[i].addr || p.frame !== b[i].frame || p.crc !== b[i].crc);
      expect(differ).toBe(-1);
      sizes[name] = bytes.length;
      console.log(`record of 262144 pages, ${name} frames: ${bytes.length} bytes ` +
        `(${(bytes.length / 262144).toFixed(2)} B/page, ${Math.ceil(bytes.length / 4092)} frames)`);
    }
    // 4 bytes of CRC a page is the floor; sequential frames add one byte.
    expect(sizes.first).toBeLessThan(262144 * 5 + 2048);
    expect(sizes['incremental 50%']).toBeLessThan(262144 * 7);
  });

  // The engine encodes a record between fault service, a step at a time: a heap is one run of
  // all its pages, and a step per run held faults for the whole run (60,000 pages: 4–8 ms here).
  test('a run of 20,000 pages is encoded in steps of at most ENCODE_STEP_PAGES pages, to the same bytes', () => {
    const pages = Array.from({ length: 20000 }, (_, i) => ({ addr: 0x7f00_0000_0000 + i * PAGE, frame: 100 + i, crc: (i * 2654435761) >>> 0 }));
    const rec = record(pages);
    const steps = encodeRecordSteps(rec);
    let yields = 0;
    let r = steps.next();
    for (; !r.done; r = steps.next()) yields++;
    // checkPages yields as often; the page map must too (it did not within a run).
    expect(yields).toBeGreaterThanOrEqual(2 * Math.floor(20000 / ENCODE_STEP_PAGES));
    expect(r.value.equals(encodeRecord(rec))).toBe(true);
  });

  test('pages out of order, unaligned or with a negative frame are refused when encoding', () => {
    const bad: SnapshotPage[][] = [
      [{ addr: PAGE, frame: 1, crc: 0 }, { addr: 0, frame: 2, crc: 0 }],
      [{ addr: PAGE, frame: 1, crc: 0 }, { addr: PAGE, frame: 2, crc: 0 }],
      [{ addr: 100, frame: 1, crc: 0 }],
      [{ addr: 0, frame: -1, crc: 0 }],
      [{ addr: 0, frame: 1, crc: -1 }],
    ];
    for (const pages of bad) expect(() => encodeRecord(record(pages))).toThrow(RangeError);
  });

  const good = encodeRecord(record([{ addr: 0, frame: 3, crc: 1 }, { addr: PAGE, frame: 4, crc: 2 }]));
  const jsonLength = good.readUInt32LE(12);
  const mapAt = 16 + jsonLength + 2 * (8 + 216);
  const cases: Array<[string, (b: Buffer) => Buffer, string]> = [
    ['bad magic', (b) => { b[0] ^= 1; return b; }, 'record: bad magic'],
    ['a newer version', (b) => { b.writeUInt32LE(2, 8); return b; }, 'record: unsupported version 2'],
    ['a cut-off record', (b) => b.subarray(0, b.length - 3), 'record: truncated ('],
    ['a header that is not JSON', (b) => { b[16] = 0x20; b[17] = 0x7b; return b; }, 'record header: '],
    ['a frame beyond the backing', (b) => { b[mapAt + 2] = 40; return b; }, 'page map: frame 20 of page 0x0 is outside the backing (10 frames)'],
    ['bytes after the last process', (b) => Buffer.concat([b, Buffer.from([0])]), 'record: 1 bytes after the last process'],
    ['a run longer than the pages', (b) => { b[mapAt + 1] = 3; return b; }, 'page map: a run of 3 pages with 2 left'],
  ];
  test.each(cases)('%s is refused', (_what, damage, message) => {
    const err = (() => {
      try {
        decodeRecord(damage(Buffer.from(good)), 10);
      } catch (e) {
        return e as Error;
      }
      throw new Error('decoded');
    })();
    expect(err).toBeInstanceOf(CatalogFormatError);
    expect(err.message.startsWith(message)).toBe(true);
  });
});

describe('roots', () => {
  test('round trip, and the superblock field carries the root frame and its CRC', () => {
    const root = { nextId: 12, entries: [{ id: 3, frame: 17, length: 1_310_800, crc: 0xdead_beef },
      { id: 11, frame: 0, length: 5_000_000_000, crc: 0 }] };
    const bytes = encodeRoot(root);
    expect(bytes.length).toBe(24 + 2 * 24);
    expect(rootLengthOf(bytes.subarray(0, 24))).toBe(bytes.length);
    expect(decodeRoot(bytes)).toEqual(root);
    const p = catalogPointer(17, zlib.crc32(bytes));
    expect(parsePointer(p)).toEqual({ frame: 17, crc: zlib.crc32(bytes) });
    expect(parsePointer(0n)).toBeUndefined();
    expect(() => parsePointer(0xabcd_0000_0000n)).toThrow('catalog field 0xabcd00000000 names no frame');
  });

  test('ids out of order or not below the next id are refused', () => {
    const unordered = encodeRoot({ nextId: 9, entries: [{ id: 5, frame: 1, length: 1, crc: 1 }, { id: 4, frame: 2, length: 1, crc: 1 }] });
    expect(() => decodeRoot(unordered)).toThrow('root: snapshot 4 after 5');
    const ahead = encodeRoot({ nextId: 5, entries: [{ id: 5, frame: 1, length: 1, crc: 1 }] });
    expect(() => decodeRoot(ahead)).toThrow('root: snapshot 5 is not below the next id 5');
  });
});

describe('chains', () => {
  /** Eight frames in memory. */
  function medium(): FrameReader & { frames: Buffer[] } {
    const frames = Array.from({ length: 8 }, () => Buffer.alloc(4096));
    return { frames, frameCount: 8, readFrame: (f, out) => frames[f].copy(out) };
  }
  const blob = Buffer.from(Array.from({ length: 2 * CHAIN_PAYLOAD + 10 }, (_, i) => i & 0xff));

  test('a chain of 40 frames is written in steps (16 frames a step) to the same frames', () => {
    const big = Buffer.from(Array.from({ length: 40 * CHAIN_PAYLOAD }, (_, i) => (i * 7) & 0xff));
    const [byOne, bySteps] = [new Map<number, Buffer>(), new Map<number, Buffer>()];
    const frames = Array.from({ length: 40 }, (_, i) => 100 + ((i * 17) % 40));
    writeChain((f, bytes) => byOne.set(f, Buffer.from(bytes)), big, frames);
    const steps = writeChainSteps((f, bytes) => bySteps.set(f, Buffer.from(bytes)), big, frames);
    let yields = 0;
    while (!steps.next().done) yields++;
    expect(yields).toBe(2);
    expect([...bySteps.entries()].sort((a, b) => a[0] - b[0])).toEqual([...byOne.entries()].sort((a, b) => a[0] - b[0]));
  });

  test('a blob comes back from frames in any order', () => {
    const m = medium();
    writeChain((f, bytes) => bytes.copy(m.frames[f]), blob, [5, 1, 6]);
    expect(readChain(m, 5, blob.length, new Set())).toEqual({ data: blob, frames: [5, 1, 6] });
  });

  const cases: Array<[string, (m: ReturnType<typeof medium>) => void, number, string]> = [
    ['a loop', (m) => m.frames[6].writeUInt32LE(5 + 1, 0), blob.length + CHAIN_PAYLOAD, 'frame 5 is linked twice'],
    ['a chain too short', (m) => m.frames[1].writeUInt32LE(0, 0), blob.length, 'chain ends at frame 1 before its 8194 bytes'],
    ['a chain too long', () => undefined, CHAIN_PAYLOAD, 'chain goes on after its 4092 bytes (frame 5)'],
    ['a link out of the backing', (m) => m.frames[1].writeUInt32LE(9, 0), blob.length, 'frame 8 of its chain is outside the backing (8 frames)'],
  ];
  test.each(cases)('%s is refused', (_what, damage, length, message) => {
    const m = medium();
    writeChain((f, bytes) => bytes.copy(m.frames[f]), blob, [5, 1, 6]);
    damage(m);
    expect(() => readChain(m, 5, length, new Set())).toThrow(message);
  });
});
