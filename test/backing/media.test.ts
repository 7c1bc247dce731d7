// BackingStore on the other media: a tiny tmpfs (space runs out long before the node
// does), hugetlbfs, and the /dev/dax code path on an emulated device. These need root
// (mount, sysctl, mknod); a missing feature fails the test by name.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { inspectBacking } from '../../backing/inspect.js';
import { BackingError, BackingStore } from '../../backing/store.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

const MiB = 1n << 20n;
const stores: BackingStore[] = [];
const mounts: string[] = [];

function openBacking(file: string, size?: bigint): BackingStore {
  const store = BackingStore.open(inspectBacking(file, size));
  stores.push(store);
  return store;
}

function openError(file: string, size?: bigint): BackingError {
  try {
    openBacking(file, size);
  } catch (err) {
    if (err instanceof BackingError) return err;
    throw err;
  }
  throw new Error(`${file} opened`);
}

async function mount(feature: string, args: string[]): Promise<string> {
  const dir = tmpDir('numactlx-mnt-');
  const r = await execa('mount', [...args, dir], { reject: false });
  if (r.exitCode !== 0) throw new Error(`${feature} is not available: mount ${args.join(' ')} failed: ${r.stderr}`);
  mounts.push(dir);
  return dir;
}

/** Writes every frame the store hands out; a SIGBUS here would kill the test run. */
function fillNode(store: BackingStore): number[] {
  const got: number[] = [];
  for (;;) {
    const f = store.allocFrame();
    if (f < 0) return got;
    store.frameView(f).fill((f % 251) + 1);
    got.push(f);
  }
}

function meminfo(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(fs.readFileSync('/proc/meminfo', 'utf8'));
  if (!m) throw new Error(`/proc/meminfo has no ${field}`);
  return Number(m[1]);
}

afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});
afterAll(async () => {
  for (const dir of mounts.splice(0)) await execa('umount', [dir]);
  removeTmpDirs();
});

describe('tmpfs', () => {
  test('a 64 MiB node on a 4 MiB tmpfs opens sparse and reports full, never SIGBUS', async () => {
    const dir = await mount('tmpfs', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs']);
    fs.writeFileSync(path.join(dir, 'filler'), Buffer.alloc(1 << 20, 1));
    const file = path.join(dir, 'n.img');
    const store = openBacking(file, 64n * MiB);
    expect(store).toMatchObject({ kind: 'tmpfs', size: 64n * MiB, durability: 'ram' });
    expect(fs.statSync(file).blocks * 512).toBeLessThanOrEqual(16 << 10); // the header only

    const first = fillNode(store);
    expect(first.length * 4096).toBeGreaterThan(2.5 * (1 << 20));
    expect(first.length * 4096).toBeLessThanOrEqual(3 << 20);
    expect(store.noSpace).toMatchObject({ syscall: 'fallocate', code: 'ENOSPC' });
    expect(store.allocFrame()).toBe(-1);

    // Space freed elsewhere: the remembered ENOSPC holds for a while, then is retried.
    fs.rmSync(path.join(dir, 'filler'));
    expect(store.allocFrame()).toBe(-1);
    store.retrySpace();
    const more = fillNode(store);
    expect((first.length + more.length) * 4096).toBeGreaterThan(3.5 * (1 << 20));
    expect(store.noSpace?.code).toBe('ENOSPC');
    expect(store.framesInUse).toBe(first.length + more.length);

    // Freed frames keep their space: they come back without asking the filesystem.
    store.freeFrame(more[0]!);
    expect(store.allocFrame()).toBe(more[0]);
    expect(store.frameView(first[10]!)[0]).toBe((first[10]! % 251) + 1);
  });

  // Frame warming reserves space ahead of the frames handed out (frames.ts reserveAhead):
  // on a full medium it gets what it can, says nothing and leaves the node not full —
  // the frames reserved are handed out as before, and an allocation past them finds out.
  test('space reserved ahead for warming stops quietly where the medium is full', async () => {
    const dir = await mount('tmpfs', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs']);
    const file = path.join(dir, 'n.img');
    const store = openBacking(file, 64n * MiB);
    expect(store.framesHandedOut).toBe(0);
    const twoMiB = store.reserveFramesAhead(512);
    expect(twoMiB).toBe(512);
    expect(fs.statSync(file).blocks * 512).toBeGreaterThanOrEqual(2 << 20);

    const got = store.reserveFramesAhead(16384); // 64 MiB asked of 4 MiB
    expect(got).toBeGreaterThan(512);
    expect(got * 4096).toBeLessThan(4 << 20);
    expect(store.noSpace).toBeUndefined();
    expect(store.framesHandedOut).toBe(0);

    const frames = fillNode(store);
    expect(frames.length).toBeGreaterThanOrEqual(got);
    expect(store.framesHandedOut).toBe(frames.length);
    expect(store.noSpace).toMatchObject({ syscall: 'fallocate', code: 'ENOSPC' });
  });

  test('creating a backing on a full tmpfs fails with ENOSPC and leaves nothing behind', async () => {
    const dir = await mount('tmpfs', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs']);
    const empty = path.join(dir, 'empty.img');
    fs.writeFileSync(empty, '', { mode: 0o600 }); // ours, private: a file numactlx may format
    expect(() => fs.writeFileSync(path.join(dir, 'filler'), Buffer.alloc(2 << 20, 1))).toThrow(/ENOSPC/);
    const listing = fs.readdirSync(dir).sort();

    const file = path.join(dir, 'n3.img');
    const err = openError(file, 8n * MiB);
    expect(err.message).toBe(`backing ${file}: ENOSPC while creating it`);
    expect(err).toMatchObject({ reason: 'no-space', code: 'ENOSPC',
      cause: expect.objectContaining({ message: 'fallocate failed: ENOSPC' }) });
    expect(fs.readdirSync(dir).sort()).toEqual(listing);

    // An existing empty file is not ours to remove: it is left empty.
    const err2 = openError(empty, 8n * MiB);
    expect(err2.message).toBe(`backing ${empty}: ENOSPC while formatting it`);
    expect(fs.statSync(empty).size).toBe(0);
  });
});

describe('hugetlbfs', () => {
  let saved: string | undefined;
  beforeAll(() => {
    const knob = '/proc/sys/vm/nr_hugepages';
    if (fs.readFileSync(knob, 'utf8').trim() === '0') {
      saved = '0';
      fs.writeFileSync(knob, '8');
    }
  });
  afterAll(async () => {
    for (const s of stores.splice(0)) s.close();
    for (const dir of mounts.splice(0)) await execa('umount', [dir]); // frees the file's huge pages
    if (saved !== undefined) fs.writeFileSync('/proc/sys/vm/nr_hugepages', saved);
  });

  test('a node larger than the free huge pages fills them, then reports full', async () => {
    const free = meminfo('HugePages_Free');
    if (free < 2) throw new Error(`hugetlbfs is not usable: ${free} free huge pages after setting vm.nr_hugepages`);
    const dir = await mount('hugetlbfs', ['-t', 'hugetlbfs', 'none']);
    const huge = meminfo('Hugepagesize') * 1024;
    const file = path.join(dir, 'h.img');
    const size = BigInt(huge) * BigInt(free + 8); // more than there is
    const store = openBacking(file, size);
    expect(store).toMatchObject({ kind: 'hugetlbfs', size, durability: 'ram' });
    expect(store.superblock.dataOffset).toBe(BigInt(huge));
    expect(meminfo('HugePages_Free')).toBeGreaterThanOrEqual(free - 1); // only the header's page is taken

    const got = fillNode(store);
    const perPage = huge / 4096;
    expect(got.length % perPage).toBe(0);
    expect(got.length).toBeGreaterThan(0);
    expect(got.length).toBeLessThanOrEqual((free - 1) * perPage);
    expect(store.noSpace?.code).toBe('ENOSPC');

    store.frameView(5).fill(0x5a);
    store.sync();
    store.close();
    const again = openBacking(file);
    expect(again.size).toBe(size);
    expect(again.frameView(5).equals(Buffer.alloc(4096, 0x5a))).toBe(true);
  });
});

describe('/dev/dax code path (emulated)', () => {
  // No /dev/dax device exists here (DESIGN.md §4; the real one is tested in a Linux 6.1
  // guest). A node with the numbers of /dev/zero, described as a dax device by a sysfs
  // fixture, takes the same path: opened without O_CREAT, header and frames reached only
  // through align-sized MAP_SHARED mappings, no fallocate, sync() without msync, writes
  // flushed through libpmem. /dev/zero's shared mappings are fresh zeroed memory each
  // time, so what a format wrote cannot be read back by a second open here.
  let dev: string;
  let sysfs: string;
  beforeAll(async () => {
    const dir = tmpDir('numactlx-dax-');
    sysfs = path.join(dir, 'sys');
    fs.mkdirSync(path.join(sysfs, 'dev/char/1:5'), { recursive: true });
    fs.writeFileSync(path.join(sysfs, 'dev/char/1:5/size'), String(64 << 20));
    fs.writeFileSync(path.join(sysfs, 'dev/char/1:5/align'), String(2 << 20));
    dev = path.join(dir, 'dax0.0');
    const r = await execa('mknod', ['-m', '600', dev, 'c', '1', '5'], { reject: false });
    if (r.exitCode !== 0) throw new Error(`mknod (to emulate a /dev/dax node) failed: ${r.stderr}`);
  });
  beforeEach(() => { process.env.NUMACTLX_SYSFS_ROOT = sysfs; });
  afterEach(() => { delete process.env.NUMACTLX_SYSFS_ROOT; });

  test('a device without a numactlx superblock is refused, naming numactlx format', () => {
    expect(openError(dev)).toMatchObject({ reason: 'foreign',
      message: `${dev} has no numactlx superblock (its first 8 KiB are zero); numactlx writes a /dev/dax device only ` +
        `once told to: numactlx format ${dev}` });
  });

  test('format (open with a format request) writes a superblock at the device alignment and maps the frames', () => {
    const store = BackingStore.open(inspectBacking(dev), { force: false });
    stores.push(store);
    expect(store).toMatchObject({ kind: 'dax', size: 64n * MiB, durability: 'pmem', durabilityNote: undefined,
      frameCount: (62 << 20) / 4096 });
    expect(store.superblock).toMatchObject({ dataOffset: 2n * MiB, generation: 1n });
    // /dev/zero sizes its shared memory to the mapping's length and ignores the offset,
    // so only the first frameCount - dataOffset/4096 frames are backed in this emulation.
    const usable = store.frameCount - (2 << 20) / 4096;
    for (let i = 0; i < store.frameCount; i++) expect(store.allocFrame()).toBe(i); // no fallocate on dax
    expect(store.allocFrame()).toBe(-1);
    store.writeFrame(usable - 1, Buffer.alloc(4096, 0xda));
    expect(store.frameView(usable - 1)[4095]).toBe(0xda);
    expect(() => store.sync()).not.toThrow(); // the frame written is flushed (libpmem)
    // The lock holds; the owner's pid cannot be read back through a second /dev/zero
    // mapping (it is new memory), so the message falls back to naming the flock.
    expect(openError(dev)).toMatchObject({ reason: 'in-use',
      message: `${dev} is in use: another process holds its lock (flock)` });
  });

  test('without libpmem (NUMACTLX_DISABLE_FEATURES=LIBPMEM) the store says what durability it lacks', () => {
    process.env.NUMACTLX_DISABLE_FEATURES = 'LIBPMEM';
    try {
      const store = BackingStore.open(inspectBacking(dev), { force: false });
      stores.push(store);
      expect(store).toMatchObject({ durability: 'platform', durabilityNote: 'no CPU cache flush (libpmem disabled by ' +
        'NUMACTLX_DISABLE_FEATURES): its snapshots survive a crash of numactlx, but power loss only on an eADR platform' });
    } finally {
      delete process.env.NUMACTLX_DISABLE_FEATURES;
    }
  });

  test('format is for /dev/dax devices only', () => {
    const file = path.join(tmpDir(), 'n.img');
    expect(() => BackingStore.open(inspectBacking(file, 16n * MiB), { force: false })).toThrow(
      `${file}: numactlx format is for /dev/dax devices; a backing file is created and formatted by --remap=NODE,PATH,size=SIZE`);
    expect(fs.existsSync(file)).toBe(false);
  });
});
