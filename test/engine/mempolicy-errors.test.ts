// Emulated memory-policy calls fail exactly as the kernel's would (reliability issue,
// item 5): a bad nodemask pointer, a bad mode or flag, a huge maxnode, an unaligned
// start — each gets the kernel's errno under numactlx as without it, and the session
// goes on (a bad pointer used to make the tracer fail with EIO and kill the program).
import path from 'node:path';
import { execa } from 'execa';
import { numactlx } from '../helpers/numactlx.js';
import { compileFixture } from '../helpers/fixtures.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

afterAll(() => removeTmpDirs());

test.each([
  ['--membind=3', ['--membind=3']],
  ['--remap only', []],
])('bad mbind/set_mempolicy/get_mempolicy calls naming virtual node 3 (%s) get the kernel\'s errno', async (_name, policy) => {
  const bin = await compileFixture('mempolicy_errors');
  const native = await execa(bin, [], { reject: false });
  expect(native.exitCode).toBe(0);
  expect(native.stdout).toMatch(/alive$/);
  const backing = path.join(tmpDir(), 'n3.img');
  const r = await numactlx([`--remap=3,${backing},size=16m`, ...policy, '--', bin], { env: { NUMACTLX_RUNTIME_DIR: tmpDir() } });
  expect({ exit: r.exitCode, stderr: r.stderr }).toEqual({ exit: 0, stderr: '' });
  const lines = (s: string): string[] => s.split('\n');
  // get_mempolicy reads the emulated policy under --membind=3; its failures are the same.
  expect(lines(r.stdout)).toEqual(lines(native.stdout));
});
