// Failures a user meets rather than causes by a typo — a program that cannot take its
// userfaultfd, a session that has ended, a device that is not one — are one `numactlx:`
// line, exit 1, never a stack trace; NUMACTLX_DEBUG=1 adds the trace. (A closed pipe on
// numactlx's output: test/launcher/output-errors.)
import path from 'node:path';
import { execa } from 'execa';
import { numactlx } from '../helpers/numactlx.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

afterAll(removeTmpDirs);

const TRACE = /^\s+at /m;

test('a program that cannot take its userfaultfd (no free fd at its exec): one line, and it runs on as it would without numactlx', async () => {
  const backing = path.join(tmpDir(), 'n3.img');
  const program = ['sh', '-c', 'ulimit -n 3; exec /bin/true'];
  // Natively too, /bin/true cannot open libc with three descriptors: exit 127 and ld.so's line.
  const native = await execa(program[0], program.slice(1), { reject: false });
  const r = await numactlx([`--remap=3,${backing},size=16m`, '--membind=3', '--', ...program]);
  const lines = r.stderr.split('\n');
  expect(r.exitCode).toBe(native.exitCode);
  expect(lines[0]).toMatch(/^numactlx: true \(pid \d+\) cannot have a userfaultfd \(EMFILE\): its memory is ordinary memory, not on a virtual node, and not in snapshots \(said once\)$/);
  expect(lines.slice(1).join('\n')).toBe(native.stderr);
  expect(r.stderr).not.toMatch(TRACE);
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
