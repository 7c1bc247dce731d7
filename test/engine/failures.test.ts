// Bad input and faults around a virtual node: each fails with one clear line and
// loses nothing (a foreign file is never written), and numactlx never leaves the
// program running on its own.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { NUMACTLX, numactlx } from '../helpers/numactlx.js';
import { childrenOf, exeOf, procState, waitFor } from '../helpers/proc.js';
import { compileFixture } from '../helpers/fixtures.js';
import { node3, onVirtualNode } from '../helpers/virtual.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';
import { decodeOwner, OWNER_OFFSET, OWNER_SIZE } from '../../backing/format.js';

const mounts: string[] = [];
afterAll(async () => {
  for (const m of mounts) await execa('umount', [m], { reject: false });
  removeTmpDirs();
});

/** The pid in a backing's owner record (backing/format.ts), or undefined. */
function ownerOf(backing: string): number | undefined {
  try {
    const fd = fs.openSync(backing, 'r');
    try {
      const buf = Buffer.alloc(OWNER_SIZE);
      fs.readSync(fd, buf, 0, OWNER_SIZE, Number(OWNER_OFFSET));
      return decodeOwner(buf);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined; // not created yet
  }
}

async function smallTmpfs(size: string): Promise<string> {
  const dir = tmpDir();
  const r = await execa('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { reject: false });
  if (r.exitCode !== 0) throw new Error(`feature tmpfs mount (root): ${r.stderr}`);
  mounts.push(dir);
  return dir;
}

test('a backing on a full filesystem: a clear ENOSPC, nothing left behind, the program never runs', async () => {
  const dir = await smallTmpfs('64k');
  fs.writeFileSync(path.join(dir, 'filler'), Buffer.alloc(60 * 1024));
  const marker = path.join(tmpDir(), 'ran');
  const r = await numactlx([`--remap=3,${dir}/n3.img,size=64m`, '--membind=3', 'sh', '-c', `touch ${marker}`]);
  expect(r.exitCode).toBe(1);
  expect(r.stderr).toMatch(new RegExp(`^numactlx: backing ${dir}/n3.img: ENOSPC while (creating|formatting) it`));
  expect(fs.existsSync(path.join(dir, 'n3.img'))).toBe(false);
  expect(fs.existsSync(marker)).toBe(false);
});

test('a node larger than its filesystem behaves as an exhausted node once the filesystem is full', async () => {
  const dir = await smallTmpfs('8m');
  const bin = await compileFixture('sigbus_fill');
  const { result, stats } = await onVirtualNode([bin, '64m'], { backing: path.join(dir, 'n3.img'), size: '64m' });
  expect(result.exitCode).toBe(3);
  expect(node3(stats).sigbus).toBeGreaterThanOrEqual(1);
}, 60000);

test('a foreign file as backing is refused and left byte for byte unchanged', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'data.bin');
  const content = Buffer.alloc(1 << 20, 0xab);
  fs.writeFileSync(file, content);
  const r = await numactlx([`--remap=3,${file}`, '--membind=3', 'true']);
  expect(r.exitCode).toBe(1);
  expect(r.stderr.split('\n')[0]).toBe(`numactlx: invalid --remap: ${file}: not a numactlx backing (bad magic); numactlx never overwrites a file it did not create`);
  expect(fs.readFileSync(file).equals(content)).toBe(true);
});

test('a backing in use by another numactlx is refused, naming its pid', async () => {
  const dir = tmpDir();
  const backing = path.join(dir, 'n3.img');
  const first = execa(NUMACTLX, [`--remap=3,${backing},size=16m`, '--membind=3', 'sleep', '30'], { reject: false });
  // The holder writes its pid into the backing's owner record once it has the lock.
  await waitFor(`the first session (pid ${first.pid}) to record itself as ${backing}'s owner`, () => ownerOf(backing) === first.pid, 20000);
  const second = await numactlx([`--remap=3,${backing}`, '--membind=3', 'true']);
  expect(second.exitCode).toBe(1);
  expect(second.stderr).toBe(`numactlx: ${backing} is in use by another numactlx (pid ${first.pid})`);
  first.kill('SIGTERM');
  expect((await first).signal).toBe('SIGTERM');
});

test('program not found, with a virtual node: exit 1 and the backing is not created', async () => {
  const dir = tmpDir();
  const r = await numactlx([`--remap=3,${dir}/n3.img,size=16m`, '--membind=3', 'no-such-program-x']);
  expect(r.exitCode).toBe(1);
  expect(r.stderr).toBe("numactlx: execution of 'no-such-program-x': ENOENT (No such file or directory)");
  expect(fs.existsSync(`${dir}/n3.img`)).toBe(false);
});

test('a program killed by a signal: numactlx dies by the same signal', async () => {
  const { result } = await onVirtualNode(['sh', '-c', 'kill -SEGV $$']);
  expect(result.signal).toBe('SIGSEGV');
});

test('exit status and signals pass through on a virtual node too', async () => {
  const { result } = await onVirtualNode(['sh', '-c', 'exit 42']);
  expect(result.exitCode).toBe(42);
  const dir = tmpDir();
  const child = execa(NUMACTLX, [`--remap=3,${dir}/n3.img,size=16m`, '--membind=3', 'sh', '-c', "trap 'echo got-TERM; exit 7' TERM; echo ready; while :; do sleep 0.02; done"], { reject: false, buffer: false });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  await waitFor('ready', () => out.includes('ready'));
  process.kill(child.pid!, 'SIGTERM');
  const r = await child;
  expect(r.exitCode).toBe(7);
  expect(out).toContain('got-TERM');
});

test('numactlx killed with SIGKILL: the program is killed with it (not left to run out its 1000 s)', async () => {
  const dir = tmpDir();
  const child = execa(NUMACTLX, [`--remap=3,${dir}/n3.img,size=16m`, '--membind=3', 'sleep', '1000'], { reject: false });
  let program: number | undefined;
  try {
    program = await waitFor('the program', () => childrenOf(child.pid!).find((p) => exeOf(p).endsWith('/sleep')));
    process.kill(child.pid!, 'SIGKILL');
    await child;
    const pid = program;
    await waitFor(`the program (pid ${pid}) to die`, () => { const s = procState(pid); return s === undefined || s === 'Z'; }, 20000);
  } finally {
    child.kill('SIGKILL');
    if (program !== undefined && exeOf(program).endsWith('/sleep')) process.kill(program, 'SIGKILL');
  }
});

test('an unusable control-socket directory: one line, exit 1, the backing is free again', async () => {
  const dir = tmpDir();
  const runtime = tmpDir();
  fs.chmodSync(runtime, 0o755);
  const backing = path.join(dir, 'n3.img');
  const r = await numactlx([`--remap=3,${backing},size=16m`, '--membind=3', 'true'], { env: { NUMACTLX_RUNTIME_DIR: runtime }, timeout: 20000 });
  expect(r.exitCode).toBe(1);
  expect(r.stderr).toMatch(/^numactlx: control socket: socket directory .* has mode 0755, group or others have access \(it must be 0700\); refusing to use it$/);
  const again = await numactlx([`--remap=3,${backing}`, '--membind=3', 'true'], { env: { NUMACTLX_RUNTIME_DIR: tmpDir() } });
  expect(again.exitCode).toBe(0);
});

// The backing deleted or truncated under a running session: test/engine/backing-lost.test.ts.
