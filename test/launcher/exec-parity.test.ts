// numactl's exec semantics on real nodes: numactl applies the policy and CPU binding and
// execs the program in its own process. numactlx must do the same: the program has the
// launcher's pid and parent, gets exactly the process state numactl would hand over
// (descriptors, signal dispositions, mask, limits, environment, argv), and nothing of
// numactlx stays behind — no second process, no thread, nothing left by kill -9.
//
// Both launchers run the exec_state fixture from the same inherited state, set up by
// test/fixtures/with_state.py (which execs the launcher, so the launcher's pid is the
// pid execa started).
import fs from 'node:fs';
import path from 'node:path';
import { execa, type Result } from 'execa';
import { compileFixture } from '../helpers/fixtures.js';
import { NUMACTLX, ROOT } from '../helpers/numactlx.js';
import { childrenOf, exeOf, waitFor } from '../helpers/proc.js';

const NUMACTL = '/usr/bin/numactl';
const WITH_STATE = path.join(ROOT, 'test/fixtures/with_state.py');

let probe: string;

beforeAll(async () => {
  if (!fs.existsSync(NUMACTL)) throw new Error(`${NUMACTL} is missing: these tests compare against the real numactl (apt-get install numactl)`);
  probe = await compileFixture('exec_state');
});

const ENV = { NODE_OPTIONS: undefined, NUMACTLX_PARITY: 'a b=c' };

async function launch(launcher: string, state: string, options: string[]): Promise<{ r: Result; lines: string[] }> {
  const subprocess = execa('python3', [WITH_STATE, state, launcher, ...options, '--', probe, 'one', ''], {
    reject: false, env: ENV, stdin: 'ignore',
  });
  const r = await subprocess as Result;
  // Each run gets its own stdio sockets from execa: their inode numbers differ.
  const lines = String(r.stdout).replace(/socket:\[\d+\]/g, 'socket:[…]').split('\n');
  // The launcher's pid is the one execa started (with_state.py execs it), its parent us.
  expect(lines.slice(0, 2)).toEqual([`pid: ${subprocess.pid}`, `ppid: ${process.pid}`]);
  // The environment's content, not its order: bin/numactlx is a shell script, and dash
  // passes its exported variables on in its own order.
  const env = lines.filter((l) => l.startsWith('env: ')).sort();
  return { r, lines: [...lines.slice(2).filter((l) => !l.startsWith('env: ')), ...env] };
}

describe.each(['plain', 'inherited'])('inherited state: %s', (state) => {
  test.each([['--membind=0'], ['-N', '0', '-C', '1'], ['--interleave=all', '--physcpubind=0']])(
    'numactlx %s execs the program as numactl does (same pid, same state)',
    async (...options) => {
      const expected = await launch(NUMACTL, state, options);
      expect(expected.r).toMatchObject({ exitCode: 0, stderr: '' });
      const got = await launch(NUMACTLX, state, options);
      expect({ exitCode: got.r.exitCode, stderr: got.r.stderr, lines: got.lines })
        .toEqual({ exitCode: 0, stderr: '', lines: expected.lines });
      // The comparison can fail: the state is the one set up (read from numactl's run).
      if (state === 'inherited') {
        expect(expected.lines).toEqual(expect.arrayContaining([
          'status SigIgn:\t0000000000000003', 'status SigBlk:\t0000000008000800', 'fd 300: /dev/null 0100000',
        ]));
        expect(expected.lines.some((l) => l.startsWith('fd 0:'))).toBe(false);
        expect(expected.lines.find((l) => l.startsWith('limit: Max open files'))).toMatch(/files\s+1000\s/);
      }
    },
  );
});

test('kill -9 of numactlx is kill -9 of the program: one process, one thread, nothing left behind', async () => {
  const mark = `NUMACTLX_EXEC_MARK=${process.pid}-${Date.now()}`;
  const marked = (): number[] => fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(mark);
    } catch {
      return false;
    }
  });
  const child = execa(NUMACTLX, ['--membind=0', '--', probe, 'wait'], {
    reject: false, env: { [mark.split('=')[0]]: mark.split('=')[1] }, stdin: 'pipe', buffer: false,
  });
  const pid = child.pid!;
  try {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    await waitFor('the program to be ready', () => out.includes('ready\n'), 20_000);
    expect(exeOf(pid)).toBe(probe);
    expect(out).toContain(`pid: ${pid}\n`);
    expect(fs.readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^Threads:\s+1$/m);
    expect(childrenOf(pid)).toEqual([]);
    expect(marked()).toEqual([pid]);
    process.kill(pid, 'SIGKILL');
    const r = await child;
    expect(r.signal).toBe('SIGKILL');
    expect(marked()).toEqual([]);
  } finally {
    child.kill('SIGKILL');
  }
}, 60_000);

test('an exec that fails after the placement: numactl\'s status, one line', async () => {
  const dir = fs.mkdtempSync('/tmp/numactlx-exec-');
  try {
    const script = path.join(dir, 'bad-interpreter');
    fs.writeFileSync(script, '#!/nonexistent/interpreter\n', { mode: 0o755 });
    const real = await execa(NUMACTL, ['--membind=0', script], { reject: false });
    const ours = await execa(NUMACTLX, ['--membind=0', '--', script], { reject: false });
    expect(real.exitCode).toBe(1);
    expect({ exitCode: ours.exitCode, stderr: ours.stderr }).toEqual({
      exitCode: 1, stderr: `numactlx: execution of '${script}': ENOENT (No such file or directory)`,
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
