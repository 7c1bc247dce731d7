// Every page of the main thread's stack is in a snapshot, and gdb unwinds it from an
// exported core: the top of the stack — argv, envp and auxv, which exec wrote before
// numactlx registered the range, and main's own frame beside them — was never faulted in
// through the userfaultfd, so only the prepare's look at present pages (present-pages.ts)
// puts it in the snapshot. Without it gdb says "Cannot access memory" for main's locals
// and argv, and its backtrace stops short of main.
import path from 'node:path';
import { execa } from 'execa';
import { NUMACTLX, numactlx } from '../../helpers/numactlx.js';
import { compileFixture } from '../../helpers/fixtures.js';
import { waitFor } from '../../helpers/proc.js';
import { removeTmpDirs, tmpDir } from '../../helpers/tmp.js';

afterAll(() => removeTmpDirs());

test('gdb PROG CORE: the full backtrace to main, main\'s locals and argv, from a snapshot of node 3', async () => {
  // Static: no shared library to find, so the backtrace rests on the stack pages alone.
  const bin = await compileFixture('stack_locals', ['-static', '-g', '-O0']);
  const dir = tmpDir();
  const backing = path.join(dir, 'node3.img');
  const env = { NUMACTLX_RUNTIME_DIR: tmpDir() };
  const tag = `tag${process.pid}`;
  const session = execa(NUMACTLX, [`--remap=3,${backing},size=64m`, '--membind=3', '--', bin, tag],
    { env, reject: false, buffer: false, stdin: 'pipe' });
  let out = '';
  session.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  await waitFor('ready', () => out.includes('ready'), 20000);
  const snap = JSON.parse(String((await numactlx(['snapshot', '--wait', '--json'], { env })).stdout)) as { id: number };
  session.stdin!.end('go\n');
  const done = await session;
  expect(done.exitCode).toBe(0);
  expect(out).toContain(`main-secret-${tag} `);

  const core = path.join(dir, 'snap.core');
  expect((await numactlx(['export', backing, String(snap.id), '--format', 'core', '-o', core])).exitCode).toBe(0);
  const gdb = await execa('gdb', ['-batch', '-ex', 'bt', '-ex', 'frame function main', '-ex', 'p secret', '-ex', 'p argv[1]',
    '-ex', 'x/s argv[0]', bin, core], { reject: false, env: { DEBUGINFOD_URLS: '' } });
  const text = `${gdb.stdout}\n${gdb.stderr}`;
  expect(text).not.toMatch(/Cannot access memory/);
  // depth(0..8) then main, in order: every frame's return address was on the stack.
  const frames = [...gdb.stdout.matchAll(/^#(\d+)\s+(?:0x[0-9a-f]+ in )?(\w+) /gm)].map((m) => m[2]);
  const fromDepth = frames.slice(frames.indexOf('depth'));
  expect(fromDepth.slice(0, 10)).toEqual([...Array(9).fill('depth'), 'main']);
  expect(gdb.stdout).toContain(`"main-secret-${tag}\\000`);
  expect(gdb.stdout).toMatch(new RegExp(`\\$\\d+ = 0x[0-9a-f]+ "${tag}"`));
  // The strings at the very top of the stack, written by exec.
  expect(gdb.stdout).toMatch(new RegExp(`0x[0-9a-f]+:\\s+"${bin}"`));
}, 90000);
