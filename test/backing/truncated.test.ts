// A backing file truncated under an open store: every frame access numactlx makes is a
// kernel copy (backing/frame-copy.ts), so a frame past the new end is an error naming the
// truncation — never a SIGBUS, which would end this very test process.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { inspectBacking } from '../../backing/inspect.js';
import { BackingError, BackingStore } from '../../backing/store.js';
import { loadCatalog } from '../../backing/catalog.js';
import { commitSnapshot } from '../../backing/catalog-commit.js';
import { ChecksumQueue, checksumShared } from '../../src/channels/checksum-ring.js';
import { FrameCrcs } from '../../backing/frame-crcs.js';
import { makeRecord, writePages } from '../helpers/snapshots.js';
import { patternPage as pattern } from '../helpers/pattern.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

const open: BackingStore[] = [];
afterEach(() => { for (const s of open.splice(0)) s.close(); });
afterAll(removeTmpDirs);

function store(): BackingStore {
  const file = path.join(tmpDir(), 'n3.img');
  const s = BackingStore.open(inspectBacking(file, 16n << 20n));
  open.push(s);
  return s;
}

const truncatedLine = (s: BackingStore): RegExp =>
  new RegExp(`^backing ${s.path} was truncated to 8192 bytes during the session \\(its snapshots need ${s.size}\\)$`);

test('readFrame and writeFrame: a frame past the end is a BackingError naming the truncation', () => {
  const s = store();
  const f = s.allocFrame();
  s.writeFrame(f, pattern(1));
  const out = Buffer.alloc(4096);
  s.readFrame(f, out);
  expect(out.equals(pattern(1))).toBe(true);
  fs.truncateSync(s.path, 8192); // the header only
  const err = (fn: () => void): BackingError => {
    try { fn(); } catch (e) { return e as BackingError; }
    throw new Error('no error');
  };
  for (const e of [err(() => s.readFrame(f, out)), err(() => s.writeFrame(f, pattern(2)))]) {
    expect(e).toBeInstanceOf(BackingError);
    expect(e.reason).toBe('lost');
    expect(e.message).toMatch(truncatedLine(s));
  }
});

test('a snapshot committed into a truncated backing fails with the reason; nothing is committed', () => {
  const s = store();
  const loaded = loadCatalog(s);
  const pages = writePages(s, 1, 4);
  fs.truncateSync(s.path, 8192);
  expect(() => commitSnapshot(s, loaded, makeRecord(1, pages))).toThrow(truncatedLine(s));
  expect(loaded.catalog.records).toEqual([]);
});

test('checksums: a frame that cannot be read back names its slot, and the others are computed', () => {
  const s = store();
  const frames = [s.allocFrame(), s.allocFrame(), s.allocFrame()];
  frames.forEach((f, i) => s.writeFrame(f, pattern(10 + i)));
  const shared = checksumShared([{ frameBase: Number(s.frameBase), frameCount: s.frameCount, sync: s.syncTarget() }]);
  const crcs = new FrameCrcs(shared.nodes);
  const out = new Uint32Array(3);
  expect(crcs.compute([0, 0, 0], frames, 3, out)).toBe(3);
  expect([...out]).toEqual(frames.map((_f, i) => zlib.crc32(pattern(10 + i))));

  // Truncated below the last frame only: the batch stops there.
  const last = Math.max(...frames);
  fs.truncateSync(s.path, Number(s.superblock.dataOffset) + last * 4096);
  const order = [...frames].sort((a, b) => a - b);
  expect(crcs.compute([0, 0, 0], order, 3, out)).toBe(2);

  // Without a checksum worker the engine computes them itself: the slot is named.
  const queue = new ChecksumQueue(shared);
  expect(queue.unreadable).toBe(-1);
  for (const f of order) queue.written(0, f);
  queue.settleSome();
  expect(queue.unreadable).toBe(0);
  expect(queue.crc(0, order[0])).toBe(zlib.crc32(pattern(10 + frames.indexOf(order[0]))));
  expect(queue.crc(0, last)).toBe(0);
});
