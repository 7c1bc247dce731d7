// BackingStore on a regular file (ext4 or whatever holds os.tmpdir()).
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { inspectBacking, type BackingTarget } from '../../backing/inspect.js';
import { BackingError, BackingStore } from '../../backing/store.js';
import { encodeSuperblock, decodeSuperblock, SLOT_SIZE, type Superblock } from '../../backing/format.js';
import { copyToAddress } from '../../src/sys/mman.js';
import { ROOT } from '../helpers/numactlx.js';
import { patternPage } from '../helpers/pattern.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

const MiB = 1n << 20n;
const open: BackingStore[] = [];

/**
 * The target as the launcher would pass it, but without inspectBacking's own early
 * refusals (foreign, too small), which the launcher tests cover: the store must refuse
 * these itself too — the file can change between inspection and open.
 */
function targetOf(file: string, size?: bigint): BackingTarget {
  try {
    return inspectBacking(file, size);
  } catch {
    let st: fs.Stats | undefined;
    try { st = fs.lstatSync(file); } catch { st = undefined; }
    const s = size ?? BigInt(st?.size ?? 0);
    return { path: file, kind: 'file', exists: st !== undefined, size: s, align: 4096n, free: s };
  }
}

function openBacking(file: string, size?: bigint): BackingStore {
  const store = BackingStore.open(targetOf(file, size));
  open.push(store);
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

function slots(file: string): [Superblock | string, Superblock | string] {
  const buf = fs.readFileSync(file).subarray(0, 2 * SLOT_SIZE);
  const one = (b: Buffer): Superblock | string => {
    try {
      return decodeSuperblock(b);
    } catch (err) {
      return (err as Error).message;
    }
  };
  return [one(buf.subarray(0, SLOT_SIZE)), one(buf.subarray(SLOT_SIZE))];
}

/** Frame `f`'s contents: page f of the pattern of `seed` (../helpers/pattern.ts). */
const pattern = (f: number, seed: number): Buffer => patternPage(seed, f);

let dir: string;
beforeEach(() => {
  dir = tmpDir('numactlx-backing-');
});
afterEach(() => {
  for (const s of open.splice(0)) s.close();
});
afterAll(removeTmpDirs);

describe('creating and reopening', () => {
  test('a missing file is created sparse, mode 0600, with both superblock copies', () => {
    const file = path.join(dir, 'n1.img');
    const store = openBacking(file, 64n * MiB);
    const st = fs.statSync(file);
    expect(st.mode & 0o777).toBe(0o600);
    expect(BigInt(st.size)).toBe(64n * MiB);
    expect(st.blocks * 512).toBeLessThan(1 << 20); // sparse: the header, not 64 MiB
    expect(store).toMatchObject({ kind: 'file', size: 64n * MiB, frameCount: (63 << 20) / 4096, durability: 'fsync' });
    expect(store.superblock).toMatchObject({ dataOffset: MiB, generation: 1n, catalog: 0n });
    const [a, b] = slots(file);
    expect(a).toMatchObject({ generation: 0n, size: 64n * MiB });
    expect(b).toMatchObject({ generation: 1n, size: 64n * MiB });
  });

  test('reopening finds the same backing; superblock writes alternate and the newest wins', () => {
    const file = path.join(dir, 'n2.img');
    let store = openBacking(file, 8n * MiB);
    store.commitCatalog(100n);
    expect(slots(file)).toEqual([expect.objectContaining({ generation: 2n, catalog: 100n }),
      expect.objectContaining({ generation: 1n, catalog: 0n })]);
    store.commitCatalog(200n);
    expect(slots(file)).toEqual([expect.objectContaining({ generation: 2n, catalog: 100n }),
      expect.objectContaining({ generation: 3n, catalog: 200n })]);
    store.close();
    store = openBacking(file);
    expect(store.superblock).toMatchObject({ generation: 3n, catalog: 200n, size: 8n * MiB });
  });

  test('a corrupt newest copy falls back to the other one', () => {
    const file = path.join(dir, 'n3.img');
    const store = openBacking(file, 8n * MiB);
    store.commitCatalog(100n); // generation 2, slot A
    store.commitCatalog(200n); // generation 3, slot B
    store.close();
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from([0xff]), 0, 1, SLOT_SIZE + 20); // inside slot B's size field
    fs.closeSync(fd);
    const reopened = openBacking(file);
    expect(reopened.superblock).toMatchObject({ generation: 2n, catalog: 100n });
    reopened.commitCatalog(300n); // generation 3 again, over the corrupt copy
    expect(slots(file)[1]).toMatchObject({ generation: 3n, catalog: 300n });
  });

  test('an existing empty file of ours with no group or other access is formatted', () => {
    const file = path.join(dir, 'empty.img');
    fs.writeFileSync(file, '', { mode: 0o600 });
    const store = openBacking(file, 4n * MiB);
    expect(store.frameCount).toBe((3 << 20) / 4096);
    expect(slots(file)[1]).toMatchObject({ generation: 1n, size: 4n * MiB });
  });

  test('a size with no room for a frame is refused before anything is created', () => {
    const file = path.join(dir, 'tiny.img');
    const err = openError(file, MiB);
    expect(err).toMatchObject({ reason: 'too-small', path: file });
    expect(err.message).toBe(`${file}: too small: 1048576 bytes, a backing needs at least 1052672 ` +
      '(a 1048576-byte header and one frame)');
    expect(fs.existsSync(file)).toBe(false);
  });

  test('an existing backing asked for more is grown, one asked for less keeps its size', () => {
    const file = path.join(dir, 'grow.img');
    let store = openBacking(file, 4n * MiB);
    store.frameView(7).fill(0x77);
    store.close();
    store = openBacking(file, 16n * MiB);
    expect(store).toMatchObject({ size: 16n * MiB, frameCount: (15 << 20) / 4096 });
    expect(store.superblock.generation).toBe(2n);
    expect(fs.statSync(file).size).toBe(16 << 20);
    expect(store.frameView(7)[4095]).toBe(0x77);
    expect(slots(file)[0]).toMatchObject({ generation: 2n, size: 16n * MiB });
    store.close();
    // inspectBacking refuses a size below the file's, so this goes through the store directly.
    store = BackingStore.open({ ...inspectBacking(file), size: 8n * MiB });
    open.push(store);
    expect(store).toMatchObject({ size: 16n * MiB, frameCount: (15 << 20) / 4096 });
    expect(store.superblock.generation).toBe(2n);
  });
});

describe('refusing what is not ours', () => {
  const cases: Array<[string, (file: string) => void, string, RegExp]> = [
    ['a foreign file', (f) => fs.writeFileSync(f, Buffer.concat([Buffer.from('PRECIOUS DATA\n'), Buffer.alloc(3 << 20, 7)])),
      'foreign', /^FILE is not a numactlx backing \(bad magic\)$/],
    ['a short foreign file', (f) => fs.writeFileSync(f, 'hello\n'), 'foreign', /^FILE is not a numactlx backing \(bad magic\)$/],
    ['a backing with both copies corrupt', (f) => {
      const buf = Buffer.alloc(4 << 20);
      for (const g of [0n, 1n]) {
        const slot = encodeSuperblock({ version: 1, pageSize: 4096, size: 4n * MiB, dataOffset: MiB,
          frameCount: 768n, generation: g, catalog: 0n });
        slot[40] ^= 0x80;
        slot.copy(buf, Number(g) * SLOT_SIZE);
      }
      fs.writeFileSync(f, buf);
    }, 'corrupt', /^FILE: corrupt superblock \(checksum mismatch\)$/],
    ['a backing of a newer version', (f) => {
      const buf = Buffer.alloc(4 << 20);
      encodeSuperblock({ version: 1, pageSize: 4096, size: 4n * MiB, dataOffset: MiB, frameCount: 768n,
        generation: 0n, catalog: 0n }).copy(buf, 0);
      const v2 = encodeSuperblock({ version: 1, pageSize: 4096, size: 4n * MiB, dataOffset: MiB, frameCount: 768n,
        generation: 1n, catalog: 0n });
      v2.writeUInt32LE(2, 8);
      v2.copy(buf, SLOT_SIZE);
      fs.writeFileSync(f, buf);
    }, 'version', /^FILE: unsupported version 2 \(written by a newer numactlx\)$/],
    ['a backing whose file was truncated', (f) => {
      const buf = Buffer.alloc(2 << 20);
      encodeSuperblock({ version: 1, pageSize: 4096, size: 4n * MiB, dataOffset: MiB, frameCount: 768n,
        generation: 0n, catalog: 0n }).copy(buf, 0);
      fs.writeFileSync(f, buf);
    }, 'too-small', /^FILE: too small: its superblock records 4194304 bytes, the file has 2097152$/],
  ];

  test.each(cases)('%s is refused and left byte for byte unchanged', (_what, make, reason, message) => {
    const file = path.join(dir, 'victim.img');
    make(file);
    const before = fs.readFileSync(file);
    const mtime = fs.statSync(file).mtimeMs;
    // Through inspectBacking with a size, and straight to the store with the file's own
    // size (which inspectBacking would refuse first when it is not a page multiple).
    const direct = { path: file, kind: 'file' as const, exists: true, size: BigInt(before.length), align: 4096n, free: 0n };
    for (const attempt of [() => openBacking(file, 8n * MiB), () => BackingStore.open(direct)]) {
      let err: unknown;
      try {
        open.push(attempt());
      } catch (e) {
        err = e;
      }
      if (!(err instanceof BackingError)) throw new Error(`opened, or failed otherwise: ${String(err)}`);
      expect(err.reason).toBe(reason);
      expect(err.message).toMatch(new RegExp(message.source.replace('FILE', file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))));
    }
    expect(fs.readFileSync(file).equals(before)).toBe(true);
    expect(fs.statSync(file).mtimeMs).toBe(mtime);
  });

  test('a symbolic link at the path to create is refused and not followed', () => {
    const target = path.join(dir, 'elsewhere.img');
    const link = path.join(dir, 'link.img');
    fs.symlinkSync(target, link); // dangling: O_CREAT would create `target` through it
    const err = openError(link, 8n * MiB);
    expect(err).toMatchObject({ reason: 'symlink' });
    expect(err.message).toBe(`${link} is a symbolic link; numactlx does not follow links to a backing file`);
    expect(fs.existsSync(target)).toBe(false);
  });

  test('a symbolic link to an existing backing is refused too', () => {
    const real = path.join(dir, 'real.img');
    openBacking(real, 4n * MiB).close();
    const link = path.join(dir, 'link2.img');
    fs.symlinkSync(real, link);
    expect(openError(link)).toMatchObject({ reason: 'symlink', cause: expect.objectContaining({ code: 'ELOOP' }) });
  });
});

describe('the lock', () => {
  test('a second open in the same process is refused while the first is open', () => {
    const file = path.join(dir, 'locked.img');
    const first = openBacking(file, 4n * MiB);
    const err = openError(file);
    expect(err).toMatchObject({ reason: 'in-use' });
    expect(err.message).toBe(`${file} is in use by another numactlx (pid ${process.pid})`);
    first.close();
    expect(openBacking(file).frameCount).toBe(first.frameCount);
  });

  test('another process is refused while we hold it, and we are refused while it holds it', async () => {
    const dist = path.join(ROOT, 'dist/backing/store.js');
    if (!fs.existsSync(dist)) throw new Error(`${dist} is missing: build first (npx tsc -p tsconfig.json)`);
    const file = path.join(dir, 'shared.img');
    const script = `
      const { inspectBacking } = await import(${JSON.stringify(path.join(ROOT, 'dist/backing/inspect.js'))});
      const { BackingStore } = await import(${JSON.stringify(dist)});
      try {
        BackingStore.open(inspectBacking(process.argv[1]));
        console.log('ready');
      } catch (err) {
        console.log('refused: ' + err.message);
        process.exit(3);
      }
      process.stdin.resume();`;
    const ours = openBacking(file, 4n * MiB);
    const refused = await execa('node', ['--input-type=module', '-e', script, file], { reject: false, stdin: 'ignore' });
    expect(refused.exitCode).toBe(3);
    expect(refused.stdout).toBe(`refused: ${file} is in use by another numactlx (pid ${process.pid})`);
    ours.close();

    const holder = execa('node', ['--input-type=module', '-e', script, file], { reject: false, stdin: 'pipe' });
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout!.on('data', (d: Buffer) => (d.toString().includes('ready') ? resolve() : reject(new Error(d.toString()))));
        holder.on('exit', () => reject(new Error('the holder exited')));
      });
      expect(openError(file).message).toBe(`${file} is in use by another numactlx (pid ${holder.pid})`);
    } finally {
      holder.kill('SIGKILL'); // a killed holder releases the lock with its last fd
      await holder;
    }
    expect(openBacking(file).size).toBe(4n * MiB);
  });
});

describe('frames', () => {
  test('allocation hands out exactly frameCount frames, then -1; freed frames come back', () => {
    const store = openBacking(path.join(dir, 'frames.img'), 4n * MiB);
    const seen = new Set<number>();
    for (;;) {
      const f = store.allocFrame();
      if (f < 0) break;
      seen.add(f);
    }
    expect(seen.size).toBe(store.frameCount);
    expect(Math.min(...seen)).toBe(0);
    expect(Math.max(...seen)).toBe(store.frameCount - 1);
    expect(store.framesInUse).toBe(store.frameCount);
    expect(store.allocFrame()).toBe(-1);
    store.freeFrame(17);
    store.freeFrame(3);
    expect(store.framesInUse).toBe(store.frameCount - 2);
    expect([store.allocFrame(), store.allocFrame(), store.allocFrame()]).toEqual([3, 17, -1]);
    expect(store.noSpace).toBeUndefined();
  });

  test.each<[string, (s: BackingStore) => void]>([
    ['a frame never allocated', (s) => s.freeFrame(5)],
    ['a frame freed twice', (s) => {
      const f = s.allocFrame();
      s.freeFrame(f);
      s.freeFrame(f);
    }],
    ['a negative frame', (s) => s.freeFrame(-1)],
    ['a fraction', (s) => s.freeFrame(0.5)],
  ])('freeing %s is a RangeError', (_what, act) => {
    const store = openBacking(path.join(dir, 'bad-free.img'), 4n * MiB);
    expect(() => act(store)).toThrow(RangeError);
  });

  test('views and addresses name the same memory, inside the frame area only', () => {
    const store = openBacking(path.join(dir, 'addr.img'), 4n * MiB);
    expect(store.frameAddress(0)).toBe(store.frameBase);
    expect(store.frameAddress(9) - store.frameBase).toBe(9n * 4096n);
    copyToAddress(store.frameAddress(9) + 100n, Buffer.from('through the address'));
    expect(store.frameView(9).subarray(100, 119).toString()).toBe('through the address');
    expect(store.frameView(9).length).toBe(4096);
    expect(() => store.frameView(store.frameCount)).toThrow(RangeError);
    expect(() => store.frameAddress(-1)).toThrow(RangeError);
  });

  test('frame writes through the mapping survive close and reopen', () => {
    const file = path.join(dir, 'persist.img');
    let store = openBacking(file, 8n * MiB);
    for (let i = 0; i < 6; i++) store.allocFrame();
    store.frameView(5).set(pattern(5, 42));
    store.frameView(store.frameCount - 1).set(pattern(store.frameCount - 1, 42));
    store.sync();
    store.close();
    // The frame is on the medium at dataOffset + 5 × 4096, not only in our mapping.
    const onDisk = fs.readFileSync(file).subarray((1 << 20) + 5 * 4096, (1 << 20) + 6 * 4096);
    expect(onDisk.equals(pattern(5, 42))).toBe(true);
    store = openBacking(file);
    expect(store.frameView(5).equals(pattern(5, 42))).toBe(true);
    expect(store.frameView(store.frameCount - 1).equals(pattern(store.frameCount - 1, 42))).toBe(true);
    expect(store.frameView(4).equals(Buffer.alloc(4096))).toBe(true);
  });

  test('close is idempotent and the store is unusable after it', () => {
    const store = openBacking(path.join(dir, 'closed.img'), 4n * MiB);
    store.close();
    store.close();
    expect(() => store.frameView(0)).toThrow(/is closed/);
    expect(() => store.sync()).toThrow(BackingError);
  });
});
