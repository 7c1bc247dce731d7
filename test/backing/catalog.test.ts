// The snapshot catalog on a real file backing: commit, reopen, delete, frames claimed at
// open, a crash before the commit, corruption, a full node.
import fs from 'node:fs';
import path from 'node:path';
import { inspectBacking } from '../../backing/inspect.js';
import { BackingError, BackingStore } from '../../backing/store.js';
import { loadCatalog, UnknownSnapshotError, type LoadedCatalog } from '../../backing/catalog.js';
import { commitSnapshot, commitSnapshotSteps, deleteSnapshots, dropDamaged } from '../../backing/catalog-commit.js';
import { removeSnapshot } from '../../backing/catalog-offline.js';
import { badPages, makeRecord, writePage, writePages } from '../helpers/snapshots.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';
import type { SnapshotRecord } from '../../src/snapshot/types.js';

const MiB = 1n << 20n;
const open: BackingStore[] = [];

function openStore(file: string, size?: bigint): BackingStore {
  const store = BackingStore.open(inspectBacking(file, size));
  open.push(store);
  return store;
}

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('nothing was thrown');
}

/** Commits a snapshot of `count` new pages (the engine's part first: frames written, synced). */
function snapshot(store: BackingStore, loaded: LoadedCatalog, id: number, count: number): SnapshotRecord {
  const rec = makeRecord(id, writePages(store, id, count));
  store.sync();
  commitSnapshot(store, loaded, rec);
  return rec;
}

/** Frames the catalog itself holds (records and root). */
function catalogFrames(loaded: LoadedCatalog): number[] {
  return [...loaded.rootFrames, ...loaded.catalog.records.flatMap((e) => e.frames)];
}

/** Flips one byte of frame `frame` at `offset` in the file, behind the store's back. */
function flip(file: string, store: BackingStore, frame: number, offset: number): void {
  const at = Number(store.superblock.dataOffset) + frame * 4096 + offset;
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, at);
  b[0] ^= 0x5a;
  fs.writeSync(fd, b, 0, 1, at);
  fs.closeSync(fd);
}

let dir: string;
let file: string;
beforeEach(() => {
  dir = tmpDir('numactlx-catalog-');
  file = path.join(dir, 'node.img');
});
afterEach(() => {
  for (const s of open.splice(0)) s.close();
});
afterAll(removeTmpDirs);

describe('commit and reload', () => {
  test('snapshots come back whole after reopening; their frames are claimed, the rest are free', () => {
    let store = openStore(file, 16n * MiB);
    let loaded = loadCatalog(store);
    expect(loaded.catalog).toEqual({ records: [], nextId: 1 });
    expect(store.framesInUse).toBe(0);
    const one = snapshot(store, loaded, 1, 100);
    // Snapshot 2 keeps 60 pages of snapshot 1 and has 40 new ones; 25 live-only pages
    // belong to no snapshot.
    const kept = one.processes[0].pages.slice(0, 60);
    const fresh = Array.from({ length: 40 }, (_, i) => writePage(store, 0x10000 + (500 + i) * 4096, 2000 + i));
    for (let i = 0; i < 25; i++) writePage(store, 0, 9000 + i);
    const two = makeRecord(2, [...kept, ...fresh], null);
    store.sync();
    commitSnapshot(store, loaded, two);
    expect(store.superblock.generation).toBe(3n);
    expect(store.superblock.catalog).not.toBe(0n);
    store.close();

    store = openStore(file);
    loaded = loadCatalog(store);
    expect(loaded.snapshots).toEqual([one, two]);
    expect(loaded.catalog.records.map((e) => e.id)).toEqual([1, 2]);
    expect(loaded.catalog.nextId).toBe(3);
    const pageFrames = new Set([one, two].flatMap((r) => r.processes[0].pages.map((p) => p.frame)));
    for (const f of pageFrames) {
      const uses = [one, two].filter((r) => r.processes[0].pages.some((p) => p.frame === f)).length;
      expect(loaded.refs.get(f)).toBe(uses);
    }
    expect([...loaded.refs.nonZero()].reduce((a, f) => a + loaded.refs.get(f), 0)).toBe(one.processes[0].pages.length + two.processes[0].pages.length);
    const meta = catalogFrames(loaded);
    expect(loaded.spareFrames).toHaveLength(1);
    expect(store.framesInUse).toBe(pageFrames.size + meta.length + 1);
    for (const rec of loaded.snapshots) expect(badPages(rec, (f) => store.frameView(f))).toEqual([]);

    // Allocating every free frame never hands out one the catalog references.
    const free = store.frameCount - store.framesInUse;
    const handed = new Set<number>();
    for (let f = store.allocFrame(); f >= 0; f = store.allocFrame()) handed.add(f);
    expect(handed.size).toBe(free);
    expect(store.framesInUse).toBe(store.frameCount);
    for (const f of [...pageFrames, ...meta, ...loaded.spareFrames]) expect(handed.has(f)).toBe(false);
  });

  test('a snapshot id already committed, or a page in a catalog frame, is refused before anything is written', () => {
    const store = openStore(file, 8n * MiB);
    const loaded = loadCatalog(store);
    const one = snapshot(store, loaded, 1, 3);
    const generation = store.superblock.generation;
    expect(thrown(() => commitSnapshot(store, loaded, one)).message).toBe(`snapshot 1 is already in the catalog of ${file}`);
    const root = loaded.rootFrames[0];
    const bad = makeRecord(2, [{ addr: 0, frame: root, crc: 0 }]);
    expect(thrown(() => commitSnapshot(store, loaded, bad)).message)
      .toBe(`snapshot 2: page 0x0 of pid 1002 names frame ${root}, which is the catalog's`);
    expect(store.superblock.generation).toBe(generation);
  });
});

describe('delete', () => {
  test('returns the records, frees their record frames, and a reopen shows the rest; ids are not reused', () => {
    let store = openStore(file, 16n * MiB);
    let loaded = loadCatalog(store);
    const recs = [1, 2, 3].map((id) => snapshot(store, loaded, id, 10 + id));
    const before = store.framesInUse;
    const recordFrames = loaded.catalog.records.filter((e) => e.id !== 2).flatMap((e) => e.frames).length;
    expect(deleteSnapshots(store, loaded, [3, 1, 3])).toEqual([recs[0], recs[2]]);
    expect(loaded.catalog.records.map((e) => e.id)).toEqual([2]);
    expect(store.framesInUse).toBe(before - recordFrames); // page frames are the engine's to free
    store.close();

    store = openStore(file);
    loaded = loadCatalog(store);
    expect(loaded.snapshots).toEqual([recs[1]]);
    expect(deleteSnapshots(store, loaded, [2])).toEqual([recs[1]]);
    store.close();

    store = openStore(file);
    loaded = loadCatalog(store);
    expect(loaded.catalog).toEqual({ records: [], nextId: 4 });
  });

  test('an unknown id changes nothing', () => {
    const store = openStore(file, 8n * MiB);
    const loaded = loadCatalog(store);
    snapshot(store, loaded, 1, 2);
    const generation = store.superblock.generation;
    const err = thrown(() => deleteSnapshots(store, loaded, [1, 5]));
    expect(err).toBeInstanceOf(UnknownSnapshotError);
    expect(err.message).toBe(`${file} has no snapshot 5`);
    expect(store.superblock.generation).toBe(generation);
    expect(loaded.catalog.records.map((e) => e.id)).toEqual([1]);
  });

  test('numactlx rm: refused while a session holds the lock, done once it is gone', () => {
    let store = openStore(file, 8n * MiB);
    const loaded = loadCatalog(store);
    const recs = [1, 2].map((id) => snapshot(store, loaded, id, 4));
    const busy = thrown(() => removeSnapshot(file, 1));
    expect(busy).toMatchObject({ reason: 'in-use', message: `${file} is in use by another numactlx (pid ${process.pid})` });
    store.close();
    expect(removeSnapshot(file, 1)).toEqual(recs[0]);
    expect(thrown(() => removeSnapshot(file, 1))).toBeInstanceOf(UnknownSnapshotError);
    store = openStore(file);
    expect(loadCatalog(store).snapshots).toEqual([recs[1]]);
  });
});

describe('crashes and damage', () => {
  // The engine commits in steps: its msync and fsync run on the checksum worker while it
  // serves faults (src/engine-thread/snapshot-commit.ts). Here `durable` stands for that
  // worker: it yields, syncs, and can fail.
  test('committed in steps: each sync is the caller\'s, the superblock taken only once durable; a failed sync leaves the previous catalog', () => {
    let store = openStore(file, 16n * MiB);
    let loaded = loadCatalog(store);
    const one = snapshot(store, loaded, 1, 8);
    const generation = store.superblock.generation;
    const calls: bigint[] = [];
    const durable = function* (): Generator<void, void> {
      calls.push(store.superblock.generation); // what the store holds while the sync runs
      yield;
      store.sync();
    };
    const two = makeRecord(2, writePages(store, 2, 8));
    store.sync();
    const steps = commitSnapshotSteps(store, loaded, two, durable);
    let yields = 0;
    while (!steps.next().done) yields++;
    // Record and root synced, then the superblock: two syncs, each yielding; the store
    // takes the new generation after the second.
    expect({ calls, yields: yields >= 2, generation: store.superblock.generation })
      .toEqual({ calls: [generation, generation], yields: true, generation: generation + 1n });

    const failing = function* (): Generator<void, void> {
      yield;
      throw new Error('the sync failed');
    };
    const inUse = store.framesInUse;
    const three = makeRecord(3, writePages(store, 3, 4));
    store.sync();
    const written = store.framesInUse;
    const failed = commitSnapshotSteps(store, loaded, three, failing);
    expect(() => { while (!failed.next().done); }).toThrow('the sync failed');
    // Failed at step 3: the record's and root's frames are free again, nothing was published.
    expect({ inUse: store.framesInUse, records: loaded.catalog.records.map((e) => e.id) }).toEqual({ inUse: written, records: [1, 2] });
    store.close();
    store = openStore(file);
    loaded = loadCatalog(store);
    expect(loaded.snapshots).toEqual([one, two]);
    expect(store.framesInUse).toBe(inUse);
  });

  test('killed between writing the record and committing it: the previous catalog is in force', () => {
    let store = openStore(file, 16n * MiB);
    let loaded = loadCatalog(store);
    const one = snapshot(store, loaded, 1, 8);
    const inUse = store.framesInUse;
    // The process "dies" where commitCatalog would write the superblock: record and root
    // frames are written and synced, the superblock is not.
    store.commitCatalog = (): void => {
      throw new Error('killed before the superblock write');
    };
    expect(() => snapshot(store, loaded, 2, 8)).toThrow('killed before the superblock write');
    store.close();

    store = openStore(file);
    loaded = loadCatalog(store);
    expect(loaded.snapshots).toEqual([one]);
    expect(store.framesInUse).toBe(inUse); // snapshot 2's frames are free again
    expect(snapshot(store, loaded, 2, 8).id).toBe(2);
  });

  // A damaged record costs its own snapshot only: the others load, it stays listed in
  // the catalog (a later commit keeps it) until `numactlx repair` drops it.
  const recordDamage: Array<[string, (l: LoadedCatalog) => [number, number], (l: LoadedCatalog) => RegExp]> = [
    ['a record byte', (l) => [l.catalog.records[1].frames[1], 2000],
      (l) => new RegExp(`^snapshot 2 \\(record at frame ${l.catalog.records[1].frame}\\): ` +
        'checksum mismatch \\(CRC32 [0-9a-f]+, recorded [0-9a-f]+\\)$')],
    ['a record chain link', (l) => [l.catalog.records[1].frames[0], 1],
      () => /^snapshot 2 \(record at frame \d+\): frame \d+ of its chain is outside the backing \(3840 frames\)$/],
  ];
  test.each(recordDamage)('%s damaged costs that snapshot only, and is never dropped by loading', (_what, where, message) => {
    let store = openStore(file, 16n * MiB);
    const loaded = loadCatalog(store);
    const one = snapshot(store, loaded, 1, 5);
    snapshot(store, loaded, 2, 2000); // a record of several frames
    const [frame, offset] = where(loaded);
    const expected = message(loaded);
    store.close();
    flip(file, store, frame, offset);
    store = openStore(file);
    const again = loadCatalog(store);
    expect(again.snapshots).toEqual([one]);
    expect(again.damaged.map((d) => d.reason)).toEqual([expect.stringMatching(expected)]);
    expect(again.catalog.records.map((e) => e.id)).toEqual([1, 2]);
    // A later commit keeps the damaged entry; dropDamaged removes it.
    snapshot(store, again, 3, 4);
    expect(again.catalog.records.map((e) => e.id)).toEqual([1, 2, 3]);
    expect(dropDamaged(store, again).map((d) => d.entry.id)).toEqual([2]);
    expect(again.catalog.records.map((e) => e.id)).toEqual([1, 3]);
    store.close();
  });

  const damage: Array<[string, (l: LoadedCatalog) => [number, number], (l: LoadedCatalog) => RegExp]> = [
    ['a root byte', (l) => [l.rootFrames[0], 30],
      (l) => new RegExp(`^catalog of FILE is corrupt: root \\(frame ${l.rootFrames[0]}\\): checksum mismatch`)],
    ['the root magic', (l) => [l.rootFrames[0], 4],
      (l) => new RegExp(`^catalog of FILE is corrupt: root \\(frame ${l.rootFrames[0]}\\): root: bad magic; numactlx repair FILE rebuilds it from the records that still read$`)],
  ];
  test.each(damage)('%s damaged is reported when the catalog is loaded, never dropped', (_what, where, message) => {
    let store = openStore(file, 16n * MiB);
    const loaded = loadCatalog(store);
    snapshot(store, loaded, 1, 5);
    snapshot(store, loaded, 2, 2000); // a record of several frames
    expect(loaded.catalog.records[1].frames.length).toBeGreaterThan(1);
    const [frame, offset] = where(loaded);
    const expected = message(loaded);
    store.close();
    flip(file, store, frame, offset);
    store = openStore(file);
    const err = thrown(() => loadCatalog(store));
    expect(err).toBeInstanceOf(BackingError);
    expect(err).toMatchObject({ reason: 'corrupt', path: file });
    expect(err.message.replaceAll(file, 'FILE')).toMatch(expected);
    expect(store.framesInUse).toBe(0);
  });
});

describe('a full node', () => {
  test('no frame for the record: a clear error and the committed catalog unchanged; a delete still works', () => {
    // 1 MiB of header and 24 frames.
    let store = openStore(file, MiB + 24n * 4096n);
    let loaded = loadCatalog(store);
    const one = snapshot(store, loaded, 1, 4);
    const live: number[] = [];
    for (let f = store.allocFrame(); f >= 0; f = store.allocFrame()) live.push(f);
    const pages = [{ addr: 0, frame: live[0], crc: 0 }];
    const err = thrown(() => commitSnapshot(store, loaded, makeRecord(2, pages)));
    expect(err).toMatchObject({ reason: 'no-space', message: `backing ${file}: no free frame for the snapshot catalog` });
    expect(loaded.catalog.records.map((e) => e.id)).toEqual([1]);
    // Room for the new root was kept aside: deleting needs no free frame.
    expect(deleteSnapshots(store, loaded, [1])).toEqual([one]);
    store.close();
    store = openStore(file);
    loaded = loadCatalog(store);
    expect(loaded.catalog).toEqual({ records: [], nextId: 2 });
  });
});
