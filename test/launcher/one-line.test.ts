// Failures a user meets rather than causes by a typo — a program that cannot take its
// userfaultfd, a session that has ended, a device that is not one — are one `numactlx:`
// line, exit 1, never a stack trace; NUMACTLX_DEBUG=1 adds the trace. (A closed pipe on
// numactlx's output: test/launcher/output-errors.)
import path from 'node:path';
import { numactlx } from '../helpers/numactlx.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

afterAll(removeTmpDirs);

const TRACE = /^\s+at /m;

test('a program that cannot take its userfaultfd (no free fd at its exec): one line, the program killed', async () => {
  const backing = path.join(tmpDir(), 'n3.img');
  const args = [`--remap=3,${backing},size=16m`, '--membind=3', '--', 'sh', '-c', 'ulimit -n 3; exec /bin/true'];
  const r = await numactlx(args);
  expect({ exit: r.exitCode, stderr: r.stderr }).toEqual({ exit: 1,
    stderr: 'numactlx: the tracer failed and killed the program: userfaultfd in the program failed: EMFILE' });
  const debug = await numactlx(args, { env: { NUMACTLX_DEBUG: '1' } });
  expect(debug.stderr).toMatch(TRACE);
});

test('a session that has ended, a pid that is none: one line each', async () => {
  const env = { NUMACTLX_RUNTIME_DIR: tmpDir() };
  for (const [args, line] of [
    [['snapshot', '2147483646'], 'numactlx: snapshot: no numactlx session with pid 2147483646'],
    [['status', '2147483646'], 'numactlx: status: no numactlx session with pid 2147483646'],
    [['snapshot'], 'numactlx: snapshot: no numactlx session is running'],
  ] as const) {
    const r = await numactlx([...args], { env });
    expect({ args, exit: r.exitCode, stderr: r.stderr }).toEqual({ args, exit: 1, stderr: line });
  }
});

test('numactlx format refuses what is not a /dev/dax device, in one line', async () => {
  const file = path.join(tmpDir(), 'n3.img');
  for (const [args, line] of [
    [['format', '/dev/null'], 'numactlx: format: /dev/null: a character device that is not a /dev/dax device (no dax entry in sysfs)'],
    [['format', file, '--size', '16m'], `numactlx: format: ${file} is not a /dev/dax device; a backing file is created and formatted by --remap=NODE,PATH,size=SIZE`],
    [['format', '/dev/null', '--size', 'lots'], "numactlx: format: invalid --size 'lots': "],
  ] as const) {
    const r = await numactlx([...args]);
    expect({ args, exit: r.exitCode, line: String(r.stderr).split('\n')[0].slice(0, line.length) }).toEqual({ args, exit: 1, line });
  }
});
