// numactlx's own output when it cannot be written, for every verb and option that prints:
// as coreutils do. A closed pipe ends numactlx by SIGPIPE (status 141 in a shell), quietly;
// with SIGPIPE inherited ignored, EPIPE is one line, `numactlx: write error: EPIPE …`, and
// status 1, as any other write error (/dev/full: ENOSPC). `| head -1` shows the first line
// and nothing else. Never a stack trace.
//
// The closed pipe is made deterministic by test/fixtures/closed_stdout.py (the read end is
// closed before numactlx starts); `| head -1` may or may not close it before numactlx has
// written, so both of its endings are accepted there.
import fs from 'node:fs';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { NUMACTLX, numactlx, ROOT } from '../helpers/numactlx.js';
import { waitFor } from '../helpers/proc.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

afterAll(removeTmpDirs);

const CLOSED_STDOUT = path.join(ROOT, 'test/fixtures/closed_stdout.py');
const runtime = tmpDir();
const ENV = { NUMACTLX_RUNTIME_DIR: runtime };
let image: string;
let session: ResultPromise | undefined;
let sessionPid: number;

/** Each printing command; `fresh` makes what a run consumes (a backing copy, an output path). */
interface Row { name: string; args: () => string[]; live?: boolean }

const copyOf = (file: string): string => {
  const copy = path.join(tmpDir(), path.basename(file));
  fs.copyFileSync(file, copy);
  return copy;
};

const ROWS: Row[] = [
  { name: '--help', args: () => ['--help'] },
  { name: '--version', args: () => ['--version'] },
  { name: '--show', args: () => ['--membind=0', '--show'] },
  { name: '--hardware', args: () => ['--hardware'] },
  { name: 'doctor', args: () => ['doctor'] },
  { name: 'diff --help', args: () => ['diff', '--help'] },
  { name: 'status', args: () => ['status', String(sessionPid)], live: true },
  { name: 'ps', args: () => ['ps'], live: true },
  { name: 'snapshot', args: () => ['snapshot', '--wait', String(sessionPid)], live: true },
  { name: 'snapshots', args: () => ['snapshots', image] },
  { name: 'verify', args: () => ['verify', image] },
  { name: 'diff', args: () => ['diff', image, '1', '2'] },
  { name: 'export', args: () => ['export', image, '1', '--format', 'raw', '-o', path.join(tmpDir(), 'raw')] },
  { name: 'rm', args: () => ['rm', copyOf(image), '1'] },
  { name: 'repair', args: () => ['repair', copyOf(image)] },
];

beforeAll(async () => {
  image = path.join(tmpDir(), 'node3.img');
  session = execa(NUMACTLX, [`--remap=3,${image},size=16m`, '--membind=3', '--', 'sleep', '1000'], {
    env: ENV, reject: false, stdin: 'ignore',
  });
  sessionPid = session.pid!;
  await waitFor('the session\'s control socket', () => fs.readdirSync(runtime).some((f) => f.endsWith('.sock')), 30_000);
  for (const n of [1, 2]) {
    const r = await numactlx(['snapshot', '--wait', String(sessionPid)], { env: ENV });
    expect(r).toMatchObject({ exitCode: 0, stdout: String(n) });
  }
}, 120_000);

afterAll(async () => {
  session?.kill('SIGKILL');
  await session;
});

/** The live rows run while the session runs; the offline ones after it has ended. */
async function endSession(): Promise<void> {
  if (!session) return;
  session.kill('SIGTERM');
  await session;
  session = undefined;
}

describe.each([true, false])('while a session runs: %s', (live) => {
  beforeAll(async () => { if (!live) await endSession(); }, 60_000);

  test.each(ROWS.filter((r) => Boolean(r.live) === live).map((r) => [r.name, r]))('%s', async (_name, row) => {
    const { args } = row as Row;
    // It prints something (the checks below could not fail otherwise).
    const plain = await numactlx(args(), { env: ENV });
    expect({ exitCode: plain.exitCode, stderr: plain.stderr }).toEqual({ exitCode: 0, stderr: '' });
    expect(plain.stdout).not.toBe('');

    const closed = await execa('python3', [CLOSED_STDOUT, 'default', NUMACTLX, ...args()], { env: ENV, reject: false });
    expect({ signal: closed.signal, stderr: closed.stderr }).toEqual({ signal: 'SIGPIPE', stderr: '' });

    const ignored = await execa('python3', [CLOSED_STDOUT, 'ignored', NUMACTLX, ...args()], { env: ENV, reject: false });
    expect({ exitCode: ignored.exitCode, stderr: ignored.stderr }).toEqual({
      exitCode: 1, stderr: 'numactlx: write error: EPIPE (Broken pipe)',
    });

    const head = await execa('bash', ['-c', '"$@" | head -1; echo "status:${PIPESTATUS[0]}"', 'bash', NUMACTLX, ...args()], { env: ENV, reject: false });
    const [first, status] = head.stdout.split('\n');
    expect({ stderr: head.stderr, first }).toEqual({ stderr: '', first: head.stdout.startsWith('status:') ? undefined : expect.any(String) });
    expect(status).toMatch(/^status:(0|141)$/);
    // What the plain run printed first, but for what differs from run to run (a new
    // snapshot id, an uptime, a fresh temporary path).
    const shape = (line: string): string => line.replace(/numactlx-test-\w+/g, 'TMP').replace(/\d+/g, '#');
    expect(shape(first)).toBe(shape(plain.stdout.split('\n')[0]));
  }, 120_000);
});

test('a full disk (/dev/full) and a closed stdout: one line each, status 1', async () => {
  const full = await execa('sh', ['-c', '"$@" >/dev/full', 'sh', NUMACTLX, '--version'], { reject: false });
  expect({ exitCode: full.exitCode, stderr: full.stderr }).toEqual({ exitCode: 1, stderr: 'numactlx: write error: ENOSPC (No space left on device)' });
  const closed = await execa('sh', ['-c', '"$@" >&-', 'sh', NUMACTLX, '--version'], { reject: false });
  expect({ exitCode: closed.exitCode, stderr: closed.stderr }).toEqual({ exitCode: 1, stderr: 'numactlx: write error: EBADF (Bad file descriptor)' });
});
