// ptrace inside and outside (issue 11). Inside: a program on a virtual node is
// numactlx's tracee, and a task has one tracer, so its ptrace calls on itself or its
// children fail with EPERM — with one line on stderr saying why and what to use — and
// those on a process outside the program work as they would anywhere. Outside:
// numactlx run under a tracer works (strace without -f, gdb) or, when the tracer takes
// the program first (strace -f), fails at once with one line and leaves nothing behind.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { NUMACTLX, numactlx, ROOT } from '../helpers/numactlx.js';
import { compileFixture } from '../helpers/fixtures.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';
import { needTool } from '../helpers/tools.js';

afterAll(removeTmpDirs);

const backing = path.join(tmpDir(), 'node3.img');
const REMAP = [`--remap=3,${backing},size=64m`, '--membind=3'];
const REFUSAL = (comm: string): RegExp => new RegExp(`^numactlx: ${comm} \\(pid \\d+\\): ptrace\\(PTRACE_[A-Z]+(, \\d+)?\\) fails with EPERM: ` +
  'the program runs under numactlx --remap, which traces every process of it, and Linux allows one tracer; ' +
  'for its memory use `numactlx snapshot` and `numactlx export BACKING ID --format core -o FILE`');

/** The tools the tests run: a missing one fails the test by name. */
const need = (tool: string): Promise<void> => needTool(tool, 'the ptrace tests run it');

/** Processes whose command line holds `marker`. */
function processesWith(marker: string): number[] {
  return fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker);
    } catch {
      return false; // gone
    }
  });
}

describe('a program on a virtual node that calls ptrace', () => {
  test('its calls on itself and its children fail with EPERM and one line; a process outside the program can be traced', async () => {
    const probe = await compileFixture('ptrace_probe');
    const outside = execa('sleep', ['300'], { reject: false });
    try {
      const plain = await execa(probe, [String(outside.pid)]);
      expect(plain.stdout).toBe('traceme: ok\nseize child: ok\nattach child: ok\nseize outside: ok');
      const r = await numactlx([...REMAP, '--', probe, String(outside.pid)]);
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toBe('traceme: EPERM\nseize child: EPERM\nattach child: EPERM\nseize outside: ok');
      const lines = String(r.stderr).split('\n');
      expect(lines).toHaveLength(1); // once per command
      expect(lines[0]).toMatch(REFUSAL('ptrace_probe'));
    } finally {
      outside.kill('SIGKILL');
      await outside;
    }
  });

  test('strace -f under numactlx: strace\'s own error, and one line naming strace', async () => {
    await need('strace');
    const r = await numactlx([...REMAP, '--', 'strace', '-f', '-o', '/dev/null', 'true']);
    expect(r.exitCode).not.toBe(0);
    const ours = String(r.stderr).split('\n').filter((l) => l.startsWith('numactlx:'));
    expect(ours).toHaveLength(1);
    expect(ours[0]).toMatch(REFUSAL('strace'));
    expect(r.stderr).toMatch(/^strace: .*Operation not permitted/m);
  });

  test('gdb run under numactlx: gdb cannot start its inferior, and one line naming gdb', async () => {
    await need('gdb');
    const r = await numactlx([...REMAP, '--', 'gdb', '-nx', '-batch', '-ex', 'run', '--args', '/bin/true']);
    const ours = String(r.stderr).split('\n').filter((l) => l.startsWith('numactlx:'));
    expect(ours).toHaveLength(1);
    expect(ours[0]).toMatch(REFUSAL('gdb'));
    expect(`${r.stdout}\n${r.stderr}`).toMatch(/ptrace: Operation not permitted/);
  });
});

describe('numactlx under a tracer', () => {
  test('strace -f: numactlx fails at once with one line naming strace, and leaves no process behind', async () => {
    await need('strace');
    const marker = `numactlx-marker-${process.pid}-${Date.now()}`;
    const r = await execa('strace', ['-f', '-o', '/dev/null', NUMACTLX, ...REMAP, '--', 'true', marker], { reject: false, timeout: 120_000 });
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^numactlx: starting 'true' under ptrace: the program was attached by strace \(pid \d+\), which traces numactlx and follows its children, before numactlx could trace it \(PTRACE_SEIZE: EPERM; a process has one tracer\): trace numactlx without following children \(strace without -f\), or run the program without --remap under the tracer$/);
    expect(processesWith(marker)).toEqual([]);
  });

  test('strace without -f: the program runs', async () => {
    await need('strace');
    const r = await execa('strace', ['-o', '/dev/null', NUMACTLX, ...REMAP, '--', 'sh', '-c', 'echo traced-ok'], { reject: false, timeout: 120_000 });
    expect({ exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr }).toEqual({ exitCode: 0, stdout: 'traced-ok', stderr: '' });
  });

  test('gdb (detaching from forks, its default): the program runs', async () => {
    await need('gdb');
    const r = await execa('gdb', ['-nx', '-batch', '-ex', 'run', '--args', 'node', path.join(ROOT, 'bin/numactlx.js'), ...REMAP, '--', 'sh', '-c', 'echo gdb-ok'],
      { reject: false, timeout: 180_000 });
    expect(r.stdout).toMatch(/^gdb-ok$/m);
    expect(r.stdout).toMatch(/exited normally/);
  });
});
