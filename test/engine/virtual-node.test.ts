// Real programs on virtual node 3: every anonymous page trapped by userfaultfd and
// served by numactlx. Each case checks the program's own result (seeded patterns it
// writes and verifies, CRIU zdtm style) and that --stats saw its memory on node 3.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { compileFixture } from '../helpers/fixtures.js';
import { ROOT } from '../helpers/numactlx.js';
import { patternChecksum } from '../helpers/pattern.js';
import { node3, onVirtualNode } from '../helpers/virtual.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

afterAll(removeTmpDirs);

const MIB_PAGES = 256;

test('a threaded program: four threads fill and verify their own and shared memory', async () => {
  const bin = await compileFixture('threads');
  const { result, stats } = await onVirtualNode([bin, '4', '8']);
  expect(result.exitCode).toBe(0);
  expect(result.stdout).toBe('threads ok 4 f2efebe63398ddc7');
  // 4 threads × (8 MiB mmap + their part of the shared region and a malloc)
  expect(node3(stats).pages_placed).toBeGreaterThan(32 * MIB_PAGES);
});

test('fork then exec: the child sees the parent\'s data copy-on-write, the exec\'d image gets a node of its own', async () => {
  const bin = await compileFixture('fork_exec');
  const { result, stats } = await onVirtualNode([bin, '16']);
  expect(result.exitCode).toBe(0);
  expect(result.stdout).toBe('child ok 8192\nexec child ok 16 b549af5640ed0e29\nfork_exec ok 16');
  expect(stats.events.fork).toBeGreaterThanOrEqual(1);
  expect(node3(stats).pages_placed).toBeGreaterThan(3 * 16 * MIB_PAGES / 2);
});

test('vfork and posix_spawn children share the parent\'s mm until they exec', async () => {
  const bin = await compileFixture('vfork');
  const { result, stats } = await onVirtualNode([bin, '8']);
  expect(result.exitCode).toBe(0);
  expect(result.stdout).toMatch(/^vfork echo ok\nvfork child ok vfork (\w+)\nvfork child ok posix_spawn \1\nvfork ok 8$/);
  expect(node3(stats).pages_placed).toBeGreaterThan(8 * MIB_PAGES);
});

test('mremap: a filled region moved and grown keeps its data, the new part reads as zeros', async () => {
  const bin = await compileFixture('mremap_grow');
  const { result, stats } = await onVirtualNode([bin]);
  expect(result.exitCode).toBe(0);
  expect(result.stdout).toMatch(/mremap_grow ok$/);
  expect(stats.events.remap).toBeGreaterThanOrEqual(1);
  expect(node3(stats).pages_placed).toBeGreaterThan(64 * MIB_PAGES); // the grown region was served
});

test('munmap and MADV_DONTNEED then re-touch: the pages read as zeros again', async () => {
  const bin = await compileFixture('dontneed');
  const { result, stats } = await onVirtualNode([bin, '16']);
  expect(result.exitCode).toBe(0);
  expect(result.stdout).toBe('dropped Q0=1024 Q1=1024 Q2=1024 Q3=1\ndontneed ok 16');
  expect(stats.events.remove).toBeGreaterThanOrEqual(1);
  expect(stats.events.unmap).toBeGreaterThanOrEqual(1);
});

test('libnuma: numa_alloc_onnode(…, 3) and set_mempolicy(MPOL_BIND, {3}) are emulated and trapped', async () => {
  const bin = await compileFixture('numa_onnode', ['-lnuma']);
  const { result, stats } = await onVirtualNode([bin, '3', '4m'], { policy: [] });
  expect(result.exitCode).toBe(0);
  expect(result.stdout).toContain('numa_alloc_onnode: ok');
  expect(result.stdout).toContain('addr_policy: mode=2 nodes=3');
  expect(result.stdout).toContain('page_node=3');
  expect(result.stdout).toContain('task_policy: mode=2 nodes=3');
  expect(result.stdout).toContain('bound_page_node=3');
  // Only the memory the program itself placed on node 3 is there (no launch policy).
  expect(node3(stats).pages_placed).toBeGreaterThanOrEqual(4 * MIB_PAGES);
});

test('a static binary', async () => {
  const bin = await compileFixture('pattern', ['-static']);
  const { result, stats } = await onVirtualNode([bin, 'write', '64m', '7']);
  expect(result.exitCode).toBe(0);
  expect(result.stdout).toMatch(new RegExp(`^pattern ok 67108864 ${patternChecksum(7, 64 * MIB_PAGES)} `));
  expect(node3(stats).pages_placed).toBeGreaterThanOrEqual(64 * MIB_PAGES);
});

test('read() of a file into untouched trapped memory (kernel-mode faults)', async () => {
  const bin = await compileFixture('read_into');
  const file = path.join(ROOT, 'package-lock.json');
  const native = await execa(bin, [file]);
  const { result, stats } = await onVirtualNode([bin, file]);
  expect(result.exitCode).toBe(0);
  expect(result.stdout).toBe(native.stdout);
  expect(node3(stats).pages_placed).toBeGreaterThan(fs.statSync(file).size / 4096);
});

test('1 GiB written with a seeded pattern and verified', async () => {
  const bin = await compileFixture('pattern');
  const { result, stats } = await onVirtualNode([bin, 'write', '1g', '1'], { size: '1100m' });
  expect(result.exitCode).toBe(0);
  expect(result.stdout).toMatch(new RegExp(`^pattern ok 1073741824 ${patternChecksum(1, 1024 * MIB_PAGES)} `));
  expect(node3(stats).pages_placed).toBeGreaterThanOrEqual(1024 * MIB_PAGES);
});

test('python3 allocates and checks 256 MiB', async () => {
  const { result, stats } = await onVirtualNode(['/usr/bin/python3', path.join(ROOT, 'test/fixtures/python_alloc.py'), '256', '1']);
  expect(result.exitCode).toBe(0);
  expect(result.stdout).toBe('python ok 93d9614fdcd30572e26fba9eb810d1307353a1d9228a8c907515cb0ad24e1ada');
  expect(node3(stats).pages_placed).toBeGreaterThanOrEqual(256 * MIB_PAGES);
});

test('sh -c pipelines: every process of the pipeline runs on the node', async () => {
  const { result, stats } = await onVirtualNode(['sh', '-c', 'seq 1 200000 | sort -rn | head -3 | tr "\\n" " "; echo; ls / | wc -l']);
  expect(result.exitCode).toBe(0);
  const [top, count] = String(result.stdout).split('\n');
  expect(top).toBe('200000 199999 199998 ');
  expect(Number(count)).toBe(fs.readdirSync('/').filter((n) => !n.startsWith('.')).length);
  expect(stats.events.fork).toBeGreaterThanOrEqual(3);
  expect(node3(stats).pages_placed).toBeGreaterThan(1000);
});

test('--interleave over a real and a virtual node puts about half the pages on the virtual node', async () => {
  const bin = await compileFixture('pattern');
  const { result, stats } = await onVirtualNode([bin, 'write', '64m', '2'], { policy: ['--interleave=0,3'] });
  expect(result.exitCode).toBe(0);
  const placed = node3(stats).pages_placed;
  expect(placed).toBeGreaterThan(0.45 * 64 * MIB_PAGES);
  expect(placed).toBeLessThan(0.65 * 64 * MIB_PAGES);
});

test('a full --membind node: the faulting thread gets SIGBUS', async () => {
  const bin = await compileFixture('sigbus_fill');
  const { result, stats } = await onVirtualNode([bin, '64m'], { size: '4m' });
  expect(result.exitCode).toBe(3);
  expect(result.stdout).toMatch(/^sigbus at page \d+ /);
  expect(node3(stats).sigbus).toBeGreaterThanOrEqual(1);
  expect(node3(stats).pages_placed).toBeLessThanOrEqual(node3(stats).size_bytes / 4096);
  // One line from numactlx says why (the program dying of it would only get "Bus error").
  expect(String(result.stderr)).toMatch(/^numactlx: node 3 is full \(backing .*\): a page the program touched there \(pid \d+, 0x[0-9a-f]+\) gets SIGBUS under --membind; /);
  expect(String(result.stderr).split('\n').filter((l) => l.startsWith('numactlx: node 3 is full'))).toHaveLength(1);
});

test('a full --preferred node: pages fall back to ordinary memory and are counted', async () => {
  const bin = await compileFixture('sigbus_fill');
  const { result, stats } = await onVirtualNode([bin, '64m'], { size: '4m', policy: ['--preferred=3'] });
  expect(result.exitCode).toBe(0);
  expect(result.stdout).toBe('filled 16384 pages');
  expect(node3(stats).pages_fallback).toBeGreaterThan(16384 - node3(stats).size_bytes / 4096 - 1);
  expect(node3(stats).sigbus).toBe(0);
});
