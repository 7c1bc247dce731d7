// Both superblock copies (reliability issue, item 6): one flipped byte in the newest copy
// made `verify` say clean while the newest snapshot had vanished (and its id was given
// again); damage to the older copy was not reported. Each case below damages one byte of
// a real backing (two sessions, two snapshots) and checks verify, snapshots and the next
// session.
import fs from 'node:fs';
import path from 'node:path';
import { numactlx } from '../helpers/numactlx.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

afterAll(removeTmpDirs);

const SLOT = 4096;
const GENERATION = 40;
const CATALOG = 48;
const CRC = SLOT - 4;

async function twoSnapshots(): Promise<string> {
  const backing = path.join(tmpDir(), 'n3.img');
  for (let i = 0; i < 2; i++) {
    const r = await numactlx([`--remap=3,${backing},size=16m`, '--membind=3', '--snapshot-on-exit', '--', 'sh', '-c', 'echo $$ >/dev/null'],
      { env: { NUMACTLX_RUNTIME_DIR: tmpDir() } });
    expect({ exit: r.exitCode, stderr: r.stderr }).toEqual({ exit: 0, stderr: '' });
  }
  return backing;
}

function generationAt(file: string, slot: number): bigint {
  const b = Buffer.alloc(8);
  const fd = fs.openSync(file, 'r');
  fs.readSync(fd, b, 0, 8, slot * SLOT + GENERATION);
  fs.closeSync(fd);
  return b.readBigUInt64LE(0);
}

function flip(file: string, offset: number): void {
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, offset);
  b[0] ^= 0x10;
  fs.writeSync(fd, b, 0, 1, offset);
  fs.closeSync(fd);
}

async function ids(backing: string): Promise<number[]> {
  const r = await numactlx(['snapshots', backing, '--json']);
  expect(r.exitCode).toBe(0);
  return (JSON.parse(r.stdout) as Array<{ id: number }>).map((s) => s.id);
}

async function nextSession(backing: string): Promise<string> {
  const r = await numactlx([`--remap=3,${backing}`, '--membind=3', '--snapshot-on-exit', '--', 'true'], { env: { NUMACTLX_RUNTIME_DIR: tmpDir() } });
  expect(r.exitCode).toBe(0);
  return String(r.stderr);
}

test('the newest copy damaged outside its catalog field: recovered from its verified catalog, reported, ids kept', async () => {
  const backing = await twoSnapshots();
  const newest = generationAt(backing, 0) > generationAt(backing, 1) ? 0 : 1;
  flip(backing, newest * SLOT + CRC);
  const verify = await numactlx(['verify', backing]);
  expect(verify.exitCode).toBe(1);
  expect(verify.stdout).toMatch(new RegExp(`^superblock copy ${'AB'[newest]} is damaged \\(corrupt superblock \\(checksum mismatch\\)\\) but the catalog it names \\(generation \\d+\\) reads back verified: recovered from it$`, 'm'));
  expect(await ids(backing)).toEqual([1, 2]);
  // The session says so once, rewrites the copy, and the next snapshot is 3.
  expect(await nextSession(backing)).toMatch(/^numactlx: .*n3\.img: superblock copy [AB] is damaged .*recovered from it$/);
  expect(await ids(backing)).toEqual([1, 2, 3]);
  expect((await numactlx(['verify', backing])).exitCode).toBe(0);
}, 60_000);

test('the newest copy damaged in its catalog field: the loss is said, by verify and by the next session', async () => {
  const backing = await twoSnapshots();
  const newest = generationAt(backing, 0) > generationAt(backing, 1) ? 0 : 1;
  flip(backing, newest * SLOT + CATALOG);
  const verify = await numactlx(['verify', backing]);
  expect(verify.exitCode).toBe(1);
  expect(verify.stdout).toMatch(/the damaged copy was the newer one \(generation \d+\) and its catalog cannot be read: the snapshots committed last are lost/);
  expect(await ids(backing)).toEqual([1]);
  expect(await nextSession(backing)).toMatch(/^numactlx: .*: superblock copy [AB] is damaged .*the snapshots committed last are lost, and their ids may be given again$/);
}, 60_000);

test('the older copy damaged: reported by verify (nothing lost), both snapshots kept', async () => {
  const backing = await twoSnapshots();
  const older = generationAt(backing, 0) > generationAt(backing, 1) ? 1 : 0;
  flip(backing, older * SLOT + 20);
  const verify = await numactlx(['verify', backing, '--json']);
  expect(verify.exitCode).toBe(1);
  const report = JSON.parse(verify.stdout) as { superblocks: { copies: Array<{ slot: string; state: string }> }; problems: Array<{ kind: string; message: string }> };
  expect(report.superblocks.copies.map((c) => [c.slot, c.state])).toEqual(older === 0 ? [['A', 'damaged'], ['B', 'in use']] : [['A', 'in use'], ['B', 'damaged']]);
  expect(report.problems).toEqual([{ kind: 'superblock', snapshot: 0, message: expect.stringMatching(/the damaged copy was the older one, nothing is lost$/) }]);
  expect(await ids(backing)).toEqual([1, 2]);
}, 60_000);
