// The same program on every kind of backing this machine can offer: a regular file, a
// tmpfs file and a hugetlbfs file (2 MiB pages; vm.nr_hugepages is raised for the test
// and restored). /dev/dax needs a device this machine does not have (README).
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { compileFixture } from '../helpers/fixtures.js';
import { node3, onVirtualNode } from '../helpers/virtual.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

const HUGEPAGES = '/proc/sys/vm/nr_hugepages';
let savedHugepages: string | undefined;
const mounts: string[] = [];

afterAll(async () => {
  for (const m of mounts) await execa('umount', [m], { reject: false });
  if (savedHugepages !== undefined) fs.writeFileSync(HUGEPAGES, savedHugepages);
  removeTmpDirs();
});

async function run(backing: string, kind: string): Promise<void> {
  const bin = await compileFixture('pattern');
  const { result, stats } = await onVirtualNode([bin, 'write', '16m', '9'], { backing, size: '32m' });
  expect(result.exitCode).toBe(0);
  expect(result.stdout).toMatch(/^pattern ok 16777216 /);
  expect(node3(stats).kind).toBe(kind);
  expect(node3(stats).pages_placed).toBeGreaterThanOrEqual(16 * 256);
}

test('a regular file', async () => {
  await run(path.join(tmpDir(), 'n3.img'), 'file');
});

test('a tmpfs file', async () => {
  const dir = fs.mkdtempSync('/dev/shm/numactlx-test-');
  try {
    await run(path.join(dir, 'n3.img'), 'tmpfs');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a hugetlbfs file', async () => {
  savedHugepages = fs.readFileSync(HUGEPAGES, 'utf8').trim();
  if (Number(savedHugepages) < 24) fs.writeFileSync(HUGEPAGES, '24');
  const dir = tmpDir();
  const m = await execa('mount', ['-t', 'hugetlbfs', '-o', 'pagesize=2M', 'none', dir], { reject: false });
  if (m.exitCode !== 0) throw new Error(`feature hugetlbfs: mount failed: ${m.stderr}`);
  mounts.push(dir);
  await run(path.join(dir, 'n3.img'), 'hugetlbfs');
});
