// Reading snapshots without the lock while a session owns the backing, and what a
// kill -9 of the writer leaves. The writer in another process runs the built modules
// (dist/), like the integration tests.
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { execa } from 'execa';
import { inspectBacking } from '../../backing/inspect.js';
import { BackingError, BackingStore } from '../../backing/store.js';
import { loadCatalog, openSnapshotSource } from '../../backing/catalog.js';
import { commitSnapshot } from '../../backing/catalog-commit.js';
import { badPages, makeRecord, writePages } from '../helpers/snapshots.js';
import { ROOT } from '../helpers/numactlx.js';
import { waitFor } from '../helpers/proc.js';
import { prng, testSeed } from '../helpers/random.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';
import type { SnapshotRecord } from '../../src/snapshot/types.js';

const MiB = 1n << 20n;
const open: Array<{ close(): void }> = [];

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

const ids = (recs: SnapshotRecord[]): number[] => recs.map((r) => r.id);

let dir: string;
let file: string;
beforeEach(() => {
  dir = tmpDir('numactlx-source-');
  file = path.join(dir, 'node.img');
});
afterEach(() => {
  for (const s of open.splice(0)) s.close();
});
afterAll(removeTmpDirs);

describe('a source beside a session', () => {
  test('reads what is committed, without the lock and without writing', () => {
    const store = openStore(file, 16n * MiB);
    const loaded = loadCatalog(store);
    const recs = [1, 2].map((id) => {
      const rec = makeRecord(id, writePages(store, id, 30));
      store.sync();
      commitSnapshot(store, loaded, rec);
      return rec;
    });
    const before = fs.readFileSync(file);
    const source = openSnapshotSource(file);
    open.push(source);
    expect(source.path).toBe(file);
    expect(source.snapshots()).toEqual(recs);
    for (const rec of recs) expect(badPages(rec, (f) => source.readFrame(f))).toEqual([]);
    const out = Buffer.alloc(4096);
    expect(source.readFrame(recs[0].processes[0].pages[0].frame, out)).toBe(out);
    expect(() => source.readFrame(store.frameCount)).toThrow(`frame ${store.frameCount} is outside the backing (0 … ${store.frameCount - 1})`);
    expect(fs.readFileSync(file).equals(before)).toBe(true);
  });

  test('opened in the middle of a commit it sees the old catalog, after it the new one', () => {
    const store = openStore(file, 16n * MiB);
    const loaded = loadCatalog(store);
    const one = makeRecord(1, writePages(store, 1, 10));
    store.sync();
    commitSnapshot(store, loaded, one);
    const seen: number[][] = [];
    const look = (): void => {
      const source = openSnapshotSource(file);
      seen.push(ids(source.snapshots()));
      source.close();
    };
    const { sync, commitCatalog } = store;
    store.sync = (): void => {
      sync.call(store);
      look(); // record and root written and durable, the superblock not yet
    };
    store.commitCatalog = (c: bigint): void => {
      commitCatalog.call(store, c);
      look();
    };
    commitSnapshot(store, loaded, makeRecord(2, writePages(store, 2, 10)));
    expect(seen).toEqual([[1], [1, 2]]);
  });

  test('a corrupt catalog, a foreign file and a missing one are refused with the backing\'s errors', () => {
    const store = openStore(file, 8n * MiB);
    const loaded = loadCatalog(store);
    commitSnapshot(store, loaded, makeRecord(1, writePages(store, 1, 3)));
    const root = loaded.rootFrames[0];
    store.frameView(root)[4] ^= 1; // the root's magic, in place: no commit is under way
    expect(thrown(() => openSnapshotSource(file))).toMatchObject({ reason: 'corrupt',
      message: `catalog of ${file} is corrupt: root (frame ${root}): root: bad magic; numactlx repair ${file} rebuilds it from the records that still read` });
    const foreign = path.join(dir, 'foreign');
    fs.writeFileSync(foreign, Buffer.alloc(3 << 20, 1));
    expect(thrown(() => openSnapshotSource(foreign))).toMatchObject({ reason: 'foreign',
      message: `${foreign} is not a numactlx backing (bad magic)` });
    const missing = path.join(dir, 'missing');
    const err = thrown(() => openSnapshotSource(missing));
    expect(err).toBeInstanceOf(BackingError);
    expect(err.message).toBe(`backing ${missing}: ENOENT while opening it`);
  });
});

// A session in another process: commits snapshot after snapshot, keeping the last 3
// (each commit is followed by a delete, as --keep does), until it is killed.
const WRITER = `
const [dist, file, stop] = process.argv.slice(1);
const { BackingStore } = await import(dist + '/backing/store.js');
const { inspectBacking } = await import(dist + '/backing/inspect.js');
const { loadCatalog } = await import(dist + '/backing/catalog.js');
const { commitSnapshot, deleteSnapshots } = await import(dist + '/backing/catalog-commit.js');
const zlib = await import('node:zlib');
const store = BackingStore.open(inspectBacking(file));
const loaded = loadCatalog(store);
const refs = loaded.refs;
process.stdout.write('ready ' + loaded.catalog.nextId + '\\n');
for (let id = loaded.catalog.nextId; id < Number(stop); id++) {
  const pages = [];
  for (let i = 0; i < 20 + (id % 17); i++) {
    const frame = store.allocFrame();
    const data = Buffer.alloc(4096, (id * 31 + i) & 0xff);
    data.writeUInt32LE(id, 0);
    data.copy(store.frameView(frame));
    refs.inc(frame);
    pages.push({ addr: 0x10000 + (i < 10 ? i : i + 5) * 4096, frame, crc: zlib.crc32(data) });
  }
  store.sync();
  commitSnapshot(store, loaded, {
    id, label: 'snap ' + id, time: new Date(id * 1000).toISOString(), program: ['writer', String(id)], node: 0,
    processes: [{ pid: id, exe: '/w', command: ['w'], vmas: [], threads: [{ tid: id, regs: Buffer.alloc(216, id & 0xff) }], pages }],
    stats: { pages: pages.length, new_pages: pages.length, bytes_written: pages.length * 4096, pause_ms: 0, copy_ms: 0 },
  });
  const old = loaded.catalog.records.filter((e) => e.id <= id - 3).map((e) => e.id);
  for (const rec of deleteSnapshots(store, loaded, old)) {
    for (const p of rec.processes[0].pages) if (refs.dec(p.frame) === 0) store.freeFrame(p.frame);
  }
}
store.close();
`;

function distIsCurrent(): void {
  for (const name of ['catalog', 'catalog-commit', 'catalog-root-codec', 'catalog-record-codec', 'catalog-bytes', 'catalog-image',
    'catalog-source', 'store', 'frames']) {
    const built = path.join(ROOT, 'dist/backing', `${name}.js`);
    const source = path.join(ROOT, 'backing', `${name}.ts`);
    if (!fs.existsSync(built) || fs.statSync(built).mtimeMs < fs.statSync(source).mtimeMs) {
      throw new Error(`${built} is missing or older than its source: run npx tsc -p tsconfig.json first`);
    }
  }
}

/** Starts the writer; resolves once it holds the backing, with the first id it commits. */
function startWriter(stop = 1e9): Promise<{ child: ChildProcess; first: number }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', WRITER, path.join(ROOT, 'dist'), file, String(stop)],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
  return new Promise((resolve, reject) => {
    child.stdout?.once('data', (d: Buffer) => resolve({ child, first: Number(/ready (\d+)/.exec(d.toString())?.[1]) }));
    child.once('exit', (code) => reject(new Error(`writer exited (${code}) before it was ready: ${err}`)));
  });
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** A turn of the event loop (the writer's pipes are read there), not a wait for anything. */
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Whether the catalog lists snapshot `id` or a later one. */
function committed(id: number): boolean {
  const source = openSnapshotSource(file);
  try {
    return source.snapshots().some((r) => r.id >= id);
  } finally {
    source.close();
  }
}

/**
 * A view a session keeping 3 snapshots can commit: consecutive ids, each record its own,
 * at most `most`: 4 (a commit before its delete) for a writer that started on 3 or fewer.
 */
function checkView(recs: SnapshotRecord[], most = 4): void {
  const got = ids(recs);
  expect(got.length).toBeLessThanOrEqual(most);
  got.forEach((id, i) => expect(id).toBe(got[0] + i));
  for (const r of recs) {
    expect(r).toMatchObject({ label: `snap ${r.id}`, program: ['writer', String(r.id)] });
    expect(r.processes[0].pages).toHaveLength(20 + (r.id % 17));
  }
}

describe('a session in another process', () => {
  beforeAll(distIsCurrent);

  test('every source opened while it commits and deletes sees exactly one commit\'s catalog', async () => {
    openStore(file, 16n * MiB).close();
    const { child } = await startWriter();
    try {
      // At least 500 sources, and until they have seen 11 of the writer's catalogs.
      const views = new Set<string>();
      const deadline = Date.now() + 60_000;
      let opened = 0;
      while (opened < 500 || views.size <= 10) {
        if (Date.now() > deadline) throw new Error(`timed out after 60 s waiting for 11 distinct catalogs (${views.size} seen in ${opened} sources)`);
        const source = openSnapshotSource(file);
        checkView(source.snapshots());
        views.add(ids(source.snapshots()).join(','));
        source.close();
        opened++;
        if (opened % 20 === 0) await turn();
      }
      console.log(`${opened} sources opened beside the writer, ${views.size} distinct catalogs seen`);
    } finally {
      child.kill('SIGKILL');
      await exited(child);
    }
  });

  test('kill -9 at any moment leaves the last committed catalog, loadable and verify-clean', async () => {
    openStore(file, 16n * MiB).close();
    const rng = prng(testSeed('catalog-source kill -9'));
    const rounds = 12;
    let last = 0;
    let left = 0; // records the last writer left
    for (let round = 0; round < rounds; round++) {
      const { child, first } = await startWriter();
      expect(first).toBeGreaterThan(last); // ids never go back
      await waitFor(`the writer's first commit (snapshot ${first}) in round ${round}`, () => committed(first), 20_000);
      // The moment of the kill, somewhere in the commits that follow: a random delay
      // (seeded) is what this test is about, not a wait for something.
      await sleep(rng.between(0, 150));
      child.kill('SIGKILL');
      await exited(child);
      const store = openStore(file);
      const loaded = loadCatalog(store);
      // A writer killed between a commit and its delete leaves 4; the next one's first
      // commit comes before its first delete, so a kill there leaves one more.
      checkView(loaded.snapshots, Math.max(4, left + 1));
      for (const rec of loaded.snapshots) expect(badPages(rec, (f) => store.frameView(f))).toEqual([]);
      left = loaded.snapshots.length;
      last = loaded.catalog.nextId - 1;
      store.close();
    }
    expect(last).toBeGreaterThanOrEqual(rounds); // one commit at least per round
  });
});

describe('other media', () => {
  let saved: string | undefined;
  const mounts: string[] = [];
  afterAll(async () => {
    for (const s of open.splice(0)) s.close();
    for (const m of mounts.splice(0)) await execa('umount', [m]);
    if (saved !== undefined) fs.writeFileSync('/proc/sys/vm/nr_hugepages', saved);
  });

  /** Commits two snapshots, reads them through a source beside the session, then reloads them. */
  function roundTrip(backing: string, size: bigint, kind: string): void {
    let store = openStore(backing, size);
    expect(store.kind).toBe(kind);
    const loaded = loadCatalog(store);
    const recs = [1, 2].map((id) => {
      const rec = makeRecord(id, writePages(store, id, 40));
      store.sync();
      commitSnapshot(store, loaded, rec);
      return rec;
    });
    const source = openSnapshotSource(backing);
    expect(source.snapshots()).toEqual(recs);
    for (const rec of recs) expect(badPages(rec, (f) => source.readFrame(f))).toEqual([]);
    source.close();
    store.close();
    store = openStore(backing);
    expect(loadCatalog(store).snapshots).toEqual(recs);
  }

  test('tmpfs', () => {
    const shm = fs.mkdtempSync('/dev/shm/numactlx-catalog-');
    try {
      roundTrip(path.join(shm, 'node.img'), 8n * MiB, 'tmpfs');
    } finally {
      for (const s of open.splice(0)) s.close();
      fs.rmSync(shm, { recursive: true, force: true });
    }
  });

  test('hugetlbfs (read by pread, which it has, unlike write)', async () => {
    const knob = '/proc/sys/vm/nr_hugepages';
    if (fs.readFileSync(knob, 'utf8').trim() === '0') {
      saved = '0';
      fs.writeFileSync(knob, '8');
    }
    const free = Number(/^HugePages_Free:\s+(\d+)/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
    if (free < 3) throw new Error(`hugetlbfs is not usable: ${free} free huge pages after setting vm.nr_hugepages`);
    const mnt = tmpDir('numactlx-mnt-');
    const r = await execa('mount', ['-t', 'hugetlbfs', 'none', mnt], { reject: false });
    if (r.exitCode !== 0) throw new Error(`hugetlbfs is not available: mount failed: ${r.stderr}`);
    mounts.push(mnt);
    roundTrip(path.join(mnt, 'node.img'), 8n * MiB, 'hugetlbfs');
  });
});
