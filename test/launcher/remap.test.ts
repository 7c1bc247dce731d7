// --remap validation and how virtual nodes appear in --show and --hardware: files
// (new and existing), tmpfs, hugetlbfs and /dev/dax (a device node made with mknod,
// described by a fixture sysfs tree through NUMACTLX_SYSFS_ROOT).
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { numactlx } from '../helpers/numactlx.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';
import { encodeSuperblock, newSuperblock } from '../../backing/format.js';

const mounts: string[] = [];
afterAll(async () => {
  for (const m of mounts) await execa('umount', [m], { reject: false });
  removeTmpDirs();
});

/** A fake dax device: a char node with an unused major:minor and its sysfs entry. */
function fakeDax(size: bigint, align: bigint, via: 'dev-char' | 'bus-dax' = 'dev-char'): { dev: string; env: Record<string, string> } {
  const dir = tmpDir();
  const sys = path.join(dir, 'sys');
  const dev = path.join(dir, 'dax0.0');
  const [major, minor] = [511, via === 'dev-char' ? 7 : 8];
  fs.mkdirSync(path.join(sys, 'dev/char'), { recursive: true });
  const entry = via === 'dev-char' ? path.join(sys, 'dev/char', `${major}:${minor}`) : path.join(sys, 'bus/dax/devices/dax0.0');
  fs.mkdirSync(entry, { recursive: true });
  fs.writeFileSync(path.join(entry, 'size'), `${size}\n`);
  fs.writeFileSync(path.join(entry, 'align'), `${align}\n`);
  return { dev, env: { NUMACTLX_SYSFS_ROOT: sys, MKNOD: `${dev} c ${major} ${minor}` } };
}

async function mknod(spec: string): Promise<void> {
  const r = await execa('mknod', spec.split(' '), { reject: false });
  if (r.exitCode !== 0) throw new Error(`mknod (needs root, CAP_MKNOD) failed: ${r.stderr}`);
}

test('--hardware adds a file-backed virtual node: no CPUs, its size, free space, distances', async () => {
  const dir = tmpDir();
  const img = path.join(dir, 'node3.img');
  const r = await numactlx([`--remap=3,${img},size=64m`, '--hardware']);
  expect(r.exitCode).toBe(0);
  const real = await execa('numactl', ['--hardware']);
  const lines = String(r.stdout).split('\n');
  expect(lines[0]).toBe('available: 2 nodes (0,3)');
  // The real node is reported exactly as numactl does (free memory aside, it moves).
  const realLines = real.stdout.split('\n').filter((l) => /^node 0 (cpus|size)/.test(l));
  for (const l of realLines) expect(lines).toContain(l);
  expect(lines).toContain('node 3 cpus:');
  // The node's capacity: the backing less its 1 MiB metadata area.
  expect(lines).toContain('node 3 size: 63 MB');
  expect(lines).toContain('node 3 free: 63 MB');
  expect(lines.slice(-4)).toEqual(['node distances:', 'node   0   3 ', '  0:  10  20 ', '  3:  20  10 ']);
  expect(fs.existsSync(img)).toBe(false); // validation creates nothing
});

test('--show reports a policy over real and virtual nodes, and the backing', async () => {
  const dir = tmpDir();
  const r = await numactlx([`--remap=3,${dir}/n3.img,size=1g`, '--membind=0,3', '--show']);
  expect(r.exitCode).toBe(0);
  expect(r.stdout).toMatch(/^policy: bind\npreferred node: 0\nphyscpubind: 0 1 \ncpubind: 0 \nnodebind: 0 \nmembind: 0 3 \npreferred: 0 3 \n/);
  expect(r.stdout).toContain(`virtual node 3: ${dir}/n3.img (file, 1024 MB)`);
  const il = await numactlx([`--remap=5,${dir}/n5.img,size=2m`, '-i', 'all', '-s']);
  expect(il.stdout).toMatch(/^policy: interleave\npreferred node: 0 \(interleave next\)\ninterleavemask: 0 5 \ninterleavenode: 0\n/);
  expect(il.stdout).toContain('membind: 0 5 \n');
});

test('an existing backing has its own size; size= may grow it, never shrink it', async () => {
  const dir = tmpDir();
  const img = path.join(dir, 'n.img');
  fs.writeFileSync(img, Buffer.alloc(2 << 20));
  fs.writeFileSync(img, encodeSuperblock(newSuperblock(2n << 20n, 4096n)), { flag: 'r+' });
  expect((await numactlx([`--remap=3,${img}`, '-H'])).stdout).toContain('node 3 size: 1 MB');
  expect((await numactlx([`--remap=3,${img},size=8m`, '-H'])).stdout).toContain('node 3 size: 7 MB');
  expect(fs.statSync(img).size).toBe(2 << 20);
});

test('a tmpfs file is recognised as such', async () => {
  const dir = fs.mkdtempSync('/dev/shm/numactlx-test-');
  try {
    const r = await numactlx([`--remap=3,${dir}/n.img,size=2m`, '-s']);
    expect(r.stdout).toContain(`virtual node 3: ${dir}/n.img (tmpfs, 2 MB)`);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('a hugetlbfs file needs a size in whole huge pages', async () => {
  const dir = tmpDir();
  const m = await execa('mount', ['-t', 'hugetlbfs', '-o', 'pagesize=2M', 'none', dir], { reject: false });
  if (m.exitCode !== 0) throw new Error(`feature hugetlbfs: mount -t hugetlbfs failed: ${m.stderr}`);
  mounts.push(dir);
  const bad = await numactlx([`--remap=3,${dir}/n.img,size=1m`, '-s']);
  expect(bad.exitCode).toBe(1);
  expect(bad.stderr).toMatch(/size 1048576 is not a multiple of the huge page size \(2097152 bytes\)$/m);
  const good = await numactlx([`--remap=3,${dir}/n.img,size=4m`, '-s']);
  expect(good.stdout).toContain(`virtual node 3: ${dir}/n.img (hugetlbfs, 4 MB)`);
});

describe('/dev/dax', () => {
  const SIZE = 1054867456n; // what a real emulated NVDIMM namespace reported (DESIGN.md §4)
  const ALIGN = 2097152n;

  test.each(['dev-char', 'bus-dax'] as const)('size and alignment come from sysfs (%s)', async (via) => {
    const { dev, env } = fakeDax(SIZE, ALIGN, via);
    await mknod(env.MKNOD);
    const r = await numactlx([`--remap=3,${dev}`, '-H'], { env });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`node 3 size: ${(SIZE - ALIGN) >> 20n} MB`); // less a 2 MiB metadata area
    const s = await numactlx([`--remap=3,${dev}`, '-s'], { env });
    expect(s.stdout).toContain(`virtual node 3: ${dev} (dax, ${SIZE >> 20n} MB)`);
  });

  test('a size that is not a multiple of the device alignment is refused', async () => {
    const { dev, env } = fakeDax(SIZE, ALIGN);
    await mknod(env.MKNOD);
    const r = await numactlx([`--remap=3,${dev},size=1m`, '-s'], { env });
    expect(r.exitCode).toBe(1);
    expect(r.stderr.split('\n')[0]).toBe(`numactlx: invalid --remap: ${dev}: size 1048576 is not a multiple of the device alignment (2097152 bytes)`);
  });

  test('a size larger than the device is refused', async () => {
    const { dev, env } = fakeDax(SIZE, ALIGN);
    await mknod(env.MKNOD);
    const r = await numactlx([`--remap=3,${dev},size=2g`, '-s'], { env });
    expect(r.exitCode).toBe(1);
    expect(r.stderr.split('\n')[0]).toBe(`numactlx: invalid --remap: ${dev}: size 2147483648 is larger than the device (${SIZE} bytes)`);
  });

  test('a smaller aligned size uses part of the device', async () => {
    const { dev, env } = fakeDax(SIZE, ALIGN);
    await mknod(env.MKNOD);
    const r = await numactlx([`--remap=3,${dev},size=64m`, '-H'], { env });
    expect(r.stdout).toContain('node 3 size: 62 MB');
  });
});
