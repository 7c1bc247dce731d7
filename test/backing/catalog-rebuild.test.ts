// A damaged catalog root (reliability issue, item 6) made the whole catalog unreadable:
// `verify` named it and `repair` could do nothing. repairBacking now rebuilds the root
// from the records that still read back verified (backing/catalog-rebuild.ts): through
// the damaged root's own entries, or the previous root's; deleted snapshots stay deleted.
import fs from 'node:fs';
import path from 'node:path';
import { inspectBacking } from '../../backing/inspect.js';
import { BackingStore } from '../../backing/store.js';
import { loadCatalog, type LoadedCatalog } from '../../backing/catalog.js';
import { commitSnapshot, deleteSnapshots } from '../../backing/catalog-commit.js';
import { repairBacking } from '../../backing/catalog-offline.js';
import { openSnapshotSource } from '../../backing/catalog-source.js';
import { decodeSuperblock, SLOT_SIZE } from '../../backing/format.js';
import { badPages, makeRecord, writePages } from '../helpers/snapshots.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';
import type { SnapshotRecord } from '../../src/snapshot/types.js';

afterAll(removeTmpDirs);

/** Byte offsets in the root's first frame (after the 4-byte chain link; catalog.ts). */
const ROOT = 4;
const ENTRY = (i: number): number => ROOT + 24 + 24 * i;

interface Made { file: string; records: SnapshotRecord[]; rootFrame: number; dataOffset: number }

/** A backing with snapshots 1–3 committed (then `after` on the open catalog); the root is not damaged yet. */
function backing(after?: (store: BackingStore, loaded: LoadedCatalog) => void): Made {
  const file = path.join(tmpDir(), 'n3.img');
  const store = BackingStore.open(inspectBacking(file, 16n << 20n));
  try {
    const loaded = loadCatalog(store);
    const records = [1, 2, 3].map((id) => {
      const rec = makeRecord(id, writePages(store, id, 20 * id));
      store.sync();
      commitSnapshot(store, loaded, rec);
      return rec;
    });
    after?.(store, loaded);
    return { file, records, rootFrame: loaded.rootFrames[0], dataOffset: Number(store.superblock.dataOffset) };
  } finally {
    store.close();
  }
}

function flip(m: Made, offset: number, mask = 0x5a): void {
  const at = m.dataOffset + m.rootFrame * 4096 + offset;
  const fd = fs.openSync(m.file, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, at);
  b[0] ^= mask;
  fs.writeSync(fd, b, 0, 1, at);
  fs.closeSync(fd);
}

/** The snapshots the backing lists now, their pages checked against their frames. */
function listed(file: string): { ids: number[]; bad: string[] } {
  const source = openSnapshotSource(file);
  try {
    const recs = source.snapshots();
    return { ids: recs.map((r) => r.id), bad: recs.flatMap((r) => badPages(r, (f) => source.readFrame(f))) };
  } finally {
    source.close();
  }
}

/** Both superblock copies pass their checks. */
function bothCopiesValid(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(2 * SLOT_SIZE);
  fs.readSync(fd, buf, 0, buf.length, 0);
  fs.closeSync(fd);
  try {
    decodeSuperblock(buf.subarray(0, SLOT_SIZE));
    decodeSuperblock(buf.subarray(SLOT_SIZE));
    return true;
  } catch {
    return false;
  }
}

const cases: Array<[string, number, number[], number[], number[]]> = [
  // what flipped, where, kept, of which through the previous root, lost
  ['the magic', ROOT + 2, [1, 2, 3], [], []],
  ['the count', ROOT + 12, [1, 2, 3], [], []],
  ['the next id', ROOT + 17, [1, 2, 3], [], []],
  ['snapshot 2\'s record CRC', ENTRY(1) + 16, [1, 2, 3], [2], []],
  ['snapshot 1\'s first frame', ENTRY(0) + 4, [1, 2, 3], [1], []],
  // The newest snapshot is in no earlier root: its own entry was the only way to it.
  ['snapshot 3\'s length', ENTRY(2) + 8, [1, 2], [], [3]],
];

test.each(cases)('a flipped byte in the root (%s): loading names it, repair rebuilds it', (_what, offset, kept, fromPrevious, lost) => {
  const m = backing();
  flip(m, offset);
  expect(() => openSnapshotSource(m.file)).toThrow(new RegExp(`^catalog of ${m.file} is corrupt: root \\(frame ${m.rootFrame}\\): .*; ` +
    `numactlx repair ${m.file} rebuilds it from the records that still read$`));

  const result = repairBacking(m.file);
  expect(result.root?.damage).toMatch(new RegExp(`^root \\(frame ${m.rootFrame}\\): `));
  expect(result.root?.fromPrevious).toEqual(fromPrevious);
  expect(result.kept).toEqual(kept);
  expect(result.dropped.map((d) => d.id)).toEqual(lost);
  expect(listed(m.file)).toEqual({ ids: kept, bad: [] });
  expect(bothCopiesValid(m.file)).toBe(true);

  // The backing is whole again: a session's catalog loads, and ids are not given twice.
  const store = BackingStore.open(inspectBacking(m.file));
  try {
    const loaded = loadCatalog(store);
    expect(loaded.snapshots).toEqual(m.records.filter((r) => kept.includes(r.id)));
    expect(loaded.catalog.nextId).toBeGreaterThanOrEqual(4);
  } finally {
    store.close();
  }
  expect(repairBacking(m.file)).toEqual({ dropped: [], kept, superblock: undefined, root: undefined });
});

test('a snapshot the last commit deleted stays deleted', () => {
  const m = backing((store, loaded) => { deleteSnapshots(store, loaded, [1]); });
  flip(m, ENTRY(0) + 16); // snapshot 2's CRC (now the first entry)
  const result = repairBacking(m.file);
  expect({ kept: result.kept, fromPrevious: result.root?.fromPrevious }).toEqual({ kept: [2, 3], fromPrevious: [2] });
  expect(listed(m.file)).toEqual({ ids: [2, 3], bad: [] });
});
