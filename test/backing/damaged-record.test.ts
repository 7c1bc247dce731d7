// One damaged catalog record (reliability issue, item 6) made every snapshot of the
// backing unreadable: `snapshots`, `rm`, `export` and new sessions refused it, with no
// way back to the intact ones. Now the damage costs that snapshot only, every verb and
// the next session say so in one line, and `numactlx repair` drops it and keeps the rest.
import fs from 'node:fs';
import path from 'node:path';
import { numactlx } from '../helpers/numactlx.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';
import { BackingStore } from '../../backing/store.js';
import { loadCatalog } from '../../backing/catalog.js';
import { openBackingTarget } from '../../backing/catalog-source.js';

afterAll(removeTmpDirs);

/** Flips one byte inside snapshot `id`'s record (its first chain frame, past the link word). */
function damageRecord(file: string, id: number): void {
  const store = BackingStore.open(openBackingTarget(file));
  let offset: number;
  try {
    const entry = loadCatalog(store).catalog.records.find((r) => r.id === id)!;
    offset = Number(store.superblock.dataOffset) + entry.frames[0] * 4096 + 40;
  } finally {
    store.close();
  }
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, offset);
  b[0] ^= 0x20;
  fs.writeSync(fd, b, 0, 1, offset);
  fs.closeSync(fd);
}

const session = (backing: string): ReturnType<typeof numactlx> => numactlx([`--remap=3,${backing},size=16m`, '--membind=3', '--snapshot-on-exit', '--',
  'sh', '-c', 'echo $$ >/dev/null'], { env: { NUMACTLX_RUNTIME_DIR: tmpDir() } });

test('a damaged record costs its snapshot only; repair drops it and keeps the rest', async () => {
  const backing = path.join(tmpDir(), 'n3.img');
  for (let i = 0; i < 3; i++) expect((await session(backing)).exitCode).toBe(0);
  damageRecord(backing, 2);
  const damaged = /snapshot 2 \(record at frame \d+\): checksum mismatch/;

  const list = await numactlx(['snapshots', backing, '--json']);
  expect(list.exitCode).toBe(0);
  expect((JSON.parse(list.stdout) as Array<{ id: number }>).map((s) => s.id)).toEqual([1, 3]);
  expect(list.stderr).toMatch(new RegExp(`^numactlx: snapshots: snapshot 2 of .* is damaged and left out \\(${damaged.source}.*\\); numactlx repair .* drops it$`));

  const verify = await numactlx(['verify', backing]);
  expect(verify.exitCode).toBe(1);
  expect(verify.stdout).toMatch(damaged);

  const out = tmpDir();
  expect((await numactlx(['export', backing, '3', '--format', 'core', '-o', path.join(out, 'core3')])).exitCode).toBe(0);
  const two = await numactlx(['export', backing, '2', '--format', 'core', '-o', path.join(out, 'core2')]);
  expect({ exit: two.exitCode, stderr: two.stderr }).toEqual({ exit: 1, stderr: expect.stringMatching(/^numactlx: export: snapshot 2 of .* is damaged \(.*\); numactlx repair .* drops it$/) });
  expect(fs.readdirSync(out)).toEqual(['core3']);

  // A session runs, says so once, and its snapshot gets a new id (4: ids are not reused).
  const next = await session(backing);
  expect(next.exitCode).toBe(0);
  expect(next.stderr).toMatch(/^numactlx: .*: snapshot 2 \(record at frame \d+\): checksum mismatch .*: that snapshot is left out \(numactlx repair .* drops it\)$/);
  expect((await numactlx(['rm', backing, '1'])).exitCode).toBe(0);

  const repair = await numactlx(['repair', backing]);
  expect(repair.exitCode).toBe(0);
  expect(repair.stdout).toMatch(/: dropped snapshot 2: snapshot 2 \(record at frame \d+\): checksum mismatch/);
  expect(repair.stdout).toMatch(/: kept 2 snapshots \(3, 4\)$/);
  expect((await numactlx(['verify', backing])).exitCode).toBe(0);
  expect((await numactlx(['repair', backing])).stdout).toMatch(/nothing to repair/);
}, 120_000);

test('repair of a damaged superblock copy rewrites both copies; verify is clean after it', async () => {
  const backing = path.join(tmpDir(), 'n3.img');
  for (let i = 0; i < 2; i++) expect((await session(backing)).exitCode).toBe(0);
  const fd = fs.openSync(backing, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, 20);
  b[0] ^= 1;
  fs.writeSync(fd, b, 0, 1, 20); // copy A's size field
  fs.closeSync(fd);
  expect((await numactlx(['verify', backing])).exitCode).toBe(1);
  const repair = await numactlx(['repair', backing]);
  expect(repair.stdout).toMatch(/superblock copy A is damaged .*; both copies rewritten\n.*kept 2 snapshots \(1, 2\)$/);
  expect((await numactlx(['verify', backing])).exitCode).toBe(0);
}, 60_000);

test('a flipped byte in the catalog root: verify and sessions name it with the repair; repair rebuilds it, every snapshot kept', async () => {
  const backing = path.join(tmpDir(), 'n3.img');
  for (let i = 0; i < 3; i++) expect((await session(backing)).exitCode).toBe(0);
  const store = BackingStore.open(openBackingTarget(backing));
  let offset: number;
  try {
    offset = Number(store.superblock.dataOffset) + loadCatalog(store).rootFrames[0] * 4096 + 4 + 24 + 24 + 16; // snapshot 2's CRC
  } finally {
    store.close();
  }
  const fd = fs.openSync(backing, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, offset);
  b[0] ^= 0x01;
  fs.writeSync(fd, b, 0, 1, offset);
  fs.closeSync(fd);
  const line = new RegExp(`catalog of ${backing} is corrupt: root \\(frame \\d+\\): checksum mismatch .*; numactlx repair ${backing} rebuilds it from the records that still read$`);

  const verify = await numactlx(['verify', backing]);
  expect(verify.exitCode).toBe(1);
  expect(verify.stderr).toMatch(new RegExp(`^numactlx: verify: ${line.source}`));
  const refused = await session(backing);
  expect(refused.exitCode).toBe(1);
  expect(refused.stderr).toMatch(new RegExp(`^numactlx: ${line.source}`));

  const repair = await numactlx(['repair', backing]);
  expect(repair.exitCode).toBe(0);
  expect(repair.stdout).toMatch(/: the catalog root was damaged \(root \(frame \d+\): checksum mismatch .*\): rebuilt from the records that still read \(snapshot 2 through the previous catalog's entries\)\n.*: kept 3 snapshots \(1, 2, 3\)$/);
  expect((await numactlx(['verify', backing])).stdout).toMatch(/: 3 snapshots, .*: clean$/m);
  // A session runs again; its snapshot gets id 4 (ids are not given twice).
  expect((await session(backing)).exitCode).toBe(0);
  const list = await numactlx(['snapshots', backing, '--json']);
  expect((JSON.parse(list.stdout) as Array<{ id: number }>).map((s) => s.id)).toEqual([1, 2, 3, 4]);
}, 120_000);
