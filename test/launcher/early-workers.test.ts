// The engine and tracer workers started at numactlx's first line (launcher/early-workers.ts):
// a session takes them; a command line that runs no session (an error, --show) tells them
// to quit and waits until they have ended, because exiting while one still loads koffi
// aborts Node ("FATAL ERROR: Error::ThrowAsJavaScriptException napi_throw"; without the
// wait, 3 of 40 `--remap=… --show` runs aborted here).
import os from 'node:os';
import path from 'node:path';
import { asksForVirtualNode } from '../../launcher/early-workers.js';
import { execa } from 'execa';
import { NUMACTLX, numactlx } from '../helpers/numactlx.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

afterAll(removeTmpDirs);

test.each([
  [['--remap=3,F', '--membind=3', '--', 'true'], true],
  [['--membind=3', '--remap', '3,F', 'true'], true],
  [['--rem=3,F', '-m3', 'true'], true],
  [['--membind=0', '--', 'prog', '--remap=3,F'], false],
  [['--membind=0', 'true'], false],
  [['--remote', 'x'], false],
  [['snapshot', '1234'], false],
  [[], false],
])('asksForVirtualNode(%j) is %s', (argv, expected) => {
  expect(asksForVirtualNode(argv)).toBe(expected);
});

const DEBUG = { env: { NUMACTLX_DEBUG: '1' } };

function workerLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => /^numactlx: (engine|tracer)-worker: /.test(l)).sort();
}

function needTwoCpus(): void {
  if (os.availableParallelism() < 2) throw new Error(`early workers start only with 2 CPUs or more; this test runs on ${os.availableParallelism()}`);
}

test('a session takes both early workers, and the program runs', async () => {
  needTwoCpus();
  const backing = path.join(tmpDir(), 'n3.img');
  const r = await numactlx([`--remap=3,${backing},size=64m`, '--membind=3', '--', 'sh', '-c', 'echo ran $$'], DEBUG);
  expect(r.exitCode).toBe(0);
  expect(r.stdout).toMatch(/^ran \d+$/);
  expect(workerLines(r.stderr)).toEqual([
    'numactlx: engine-worker: started early, taken by the session',
    'numactlx: tracer-worker: started early, taken by the session',
  ]);
});

test('on one CPU no worker starts early (they would only take turns): the session starts its own', async () => {
  const backing = path.join(tmpDir(), 'n3.img');
  const r = await execa('taskset', ['-c', '0', NUMACTLX, `--remap=3,${backing},size=64m`, '--membind=3', '--', 'sh', '-c', 'echo ran'],
    { ...DEBUG, reject: false, stdin: 'ignore' });
  expect(r.exitCode).toBe(0);
  expect(r.stdout).toBe('ran');
  expect(workerLines(r.stderr)).toEqual([]);
});

test('no session: the early workers are told to quit, and numactlx ends cleanly every time', async () => {
  needTwoCpus();
  const dir = tmpDir();
  const backing = path.join(dir, 'n3.img');
  // --show exits right after the parse, while the workers are still loading: the case that aborted.
  const runs = 30;
  for (let i = 0; i < runs; i++) {
    const r = await numactlx([`--remap=3,${backing},size=64m`, '--membind=3', '--show'], DEBUG);
    expect({ run: i, code: r.exitCode, signal: r.signal, fatal: r.stderr.match(/FATAL ERROR.*/)?.[0] }).toEqual({ run: i, code: 0, signal: undefined, fatal: undefined });
    expect(workerLines(r.stderr)).toEqual([
      'numactlx: engine-worker: started early, not needed: told to quit',
      'numactlx: tracer-worker: started early, not needed: told to quit',
    ]);
  }
  // An error before the session (a usage error: its line, then the usage text); the workers quit as well.
  const bad = await numactlx([`--remap=3,${path.join(dir, 'missing', 'n3.img')}`, '--membind=3', '--', 'true'], DEBUG);
  expect(bad.exitCode).toBe(1);
  expect(bad.stderr.split('\n')[0]).toMatch(/^numactlx: invalid --remap: .*missing.*ENOENT$/);
  expect(workerLines(bad.stderr)).toHaveLength(2);
  expect(bad.stderr).not.toMatch(/FATAL ERROR/);
});
