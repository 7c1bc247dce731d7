// `numactlx snapshot` through the built binary, against fake sessions
// (./fake-snapshot-session.mjs: the real control server and SnapshotQueue over a scripted
// engine). Each test has its own socket directory (NUMACTLX_RUNTIME_DIR).
import fs from 'node:fs';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { numactlx, ROOT } from '../helpers/numactlx.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

const SCRIPT = path.join(ROOT, 'test/snapshot/fake-snapshot-session.mjs');

interface Session {
  numactlx_pid: number;
  program_pid: number;
  socket: string;
  /** The labels take() was called with, so far. */
  takes: (string | null)[];
  /** Resolves when take() has been called `n` times. */
  takesReached(n: number): Promise<void>;
  /** Resolves when `n` snapshot requests have reached the session. */
  requestsReached(n: number): Promise<void>;
  /** With hold_commit: lets the snapshots held so far, and all later ones, commit. */
  commit(): void;
}

const running: ResultPromise[] = [];

async function startSession(dir: string, config: Record<string, unknown> = {}): Promise<Session> {
  if (!fs.existsSync(path.join(ROOT, 'dist/src/snapshot/queue.js'))) throw new Error('dist/ is missing: npx tsc -p tsconfig.json first');
  const proc = execa(process.execPath, [SCRIPT, JSON.stringify(config)], {
    reject: false, stdin: 'pipe', buffer: false, cwd: '/', env: { NUMACTLX_RUNTIME_DIR: dir },
  });
  running.push(proc);
  const takes: (string | null)[] = [];
  let requests = 0;
  const waiters: (() => void)[] = [];
  const reached = (count: () => number, n: number): Promise<void> => new Promise<void>((res) => {
    const check = (): void => { if (count() >= n) res(); else waiters.push(check); };
    check();
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    proc.stderr.on('data', (chunk: Buffer) => { err += chunk.toString(); });
    proc.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      let nl: number;
      while ((nl = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        if (line.startsWith('ready ')) {
          const ready = JSON.parse(line.slice(6)) as Pick<Session, 'numactlx_pid' | 'program_pid' | 'socket'>;
          resolve({
            ...ready,
            takes,
            takesReached: (n) => reached(() => takes.length, n),
            requestsReached: (n) => reached(() => requests, n),
            commit: () => { proc.stdin.write('commit\n'); },
          });
        } else if (line.startsWith('take ')) {
          takes.push(JSON.parse(line.slice(5)) as string | null);
          for (const w of waiters.splice(0)) w();
        } else if (line.startsWith('request ')) {
          requests++;
          for (const w of waiters.splice(0)) w();
        }
      }
    });
    void proc.then((r) => reject(new Error(`fake session exited (${r.exitCode ?? r.signal}): ${err}`)));
  });
}

afterEach(async () => {
  for (const p of running.splice(0)) {
    p.kill('SIGTERM');
    await p;
  }
});
afterAll(removeTmpDirs);

const run = (dir: string, args: string[]) => numactlx(['snapshot', ...args], { env: { NUMACTLX_RUNTIME_DIR: dir } });

test('prints the id; by numactlx pid, by program pid, or the only session', async () => {
  const dir = tmpDir();
  const s = await startSession(dir);
  const ids: string[] = [];
  for (const args of [[], [String(s.numactlx_pid)], [String(s.program_pid)]]) {
    const r = await run(dir, args);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    ids.push(String(r.stdout));
  }
  expect(ids).toEqual(['1', '2', '3']);
  expect(s.takes).toEqual([null, null, null]);
});

test('--label, --json: the answer as the session gave it', async () => {
  const dir = tmpDir();
  const s = await startSession(dir);
  const r = await run(dir, ['--label', 'before-upgrade', '--json', String(s.program_pid)]);
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  expect(JSON.parse(String(r.stdout))).toEqual({ id: 1, label: 'before-upgrade' });
  expect(s.takes).toEqual(['before-upgrade']);
});

test('--wait: answered when durable, with time and stats', async () => {
  const dir = tmpDir();
  await startSession(dir, { commit_ms: 300 }); // a slow commit, to be waited for
  const r = await run(dir, ['--wait', '--json', '--label=nightly run']);
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  expect(JSON.parse(String(r.stdout))).toEqual({
    id: 1, label: 'nightly run', time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    stats: { pages: 256, new_pages: 16, bytes_written: 65536, pause_ms: 0.5, copy_ms: 3 },
  });
  const plain = await run(dir, ['--wait']);
  expect(plain.stdout).toBe('2');
});

test('requests made while a snapshot is copying are coalesced into the next one', async () => {
  const dir = tmpDir();
  // Snapshot 1 stays copying (not durable) until all four requests have reached the session.
  const s = await startSession(dir, { hold_commit: true });
  const first = run(dir, []);
  await s.takesReached(1);
  const asked = Promise.all([run(dir, []), run(dir, ['--wait']), run(dir, ['--label', 'x'])]);
  await s.requestsReached(4);
  s.commit();
  const later = await asked;
  expect((await first).stdout).toBe('1');
  expect(later.map((r) => r.exitCode)).toEqual([0, 0, 0]);
  // The two unlabelled requests share one snapshot; 'x' gets its own. Which of the two
  // comes first depends on which verb reached the session first.
  const [plain, waited, labelled] = later.map((r) => Number(r.stdout));
  expect(plain).toBe(waited);
  expect([plain, labelled].sort()).toEqual([2, 3]);
  expect(s.takes[0]).toBeNull();
  expect(s.takes[plain - 1]).toBeNull();
  expect(s.takes[labelled - 1]).toBe('x');
  expect(s.takes).toHaveLength(3);
});

test('a snapshot that fails to commit: --wait says why, without --wait the id was given', async () => {
  const dir = tmpDir();
  const s = await startSession(dir, { fail_durable: 'backing /x: ENOSPC: no frame for the snapshot' });
  const waited = await run(dir, ['--wait']);
  expect(waited.stderr).toBe(`numactlx: snapshot: session ${s.numactlx_pid}: snapshot 1: backing /x: ENOSPC: no frame for the snapshot`);
  expect(waited.stdout).toBe('');
  expect(waited.exitCode).toBe(1);
  const quick = await run(dir, []);
  expect(quick.stdout).toBe('2');
  expect(quick.exitCode).toBe(0);
});

test('a snapshot that cannot be taken: the engine\'s reason', async () => {
  const dir = tmpDir();
  const s = await startSession(dir, { fail_take: 'cannot stop the program: ESRCH' });
  const r = await run(dir, []);
  expect(r.stderr).toBe(`numactlx: snapshot: session ${s.numactlx_pid}: cannot stop the program: ESRCH`);
  expect(r.exitCode).toBe(1);
});

test('no session, two sessions, an unknown pid', async () => {
  const none = await run(path.join(tmpDir(), 'never-created'), []);
  expect(none.stderr).toBe('numactlx: snapshot: no numactlx session is running');
  expect(none.exitCode).toBe(1);
  const dir = tmpDir();
  const a = await startSession(dir);
  const b = await startSession(dir);
  const pids = [a.numactlx_pid, b.numactlx_pid].sort((x, y) => x - y).join(', ');
  const two = await run(dir, []);
  expect(two.stderr).toBe(`numactlx: snapshot: 2 sessions are running; name one: numactlx snapshot PID (pids: ${pids})`);
  expect(two.exitCode).toBe(1);
  const unknown = await run(dir, [String(process.pid)]);
  expect(unknown.stderr).toBe(`numactlx: snapshot: no numactlx session with pid ${process.pid}`);
  expect(unknown.exitCode).toBe(1);
  expect(a.takes).toEqual([]);
  expect(b.takes).toEqual([]);
});

test('--help prints the usage', async () => {
  const r = await run(tmpDir(), ['--help']);
  expect(r.stdout).toBe('usage: numactlx snapshot [--label L] [--wait] [PID] [--json]');
  expect(r.exitCode).toBe(0);
});

test.each([
  [['--bogus'], "snapshot: unknown option '--bogus' (valid: --label L, --wait, --json, --help)"],
  [['--label'], "snapshot: option '--label' requires an argument"],
  [['--label', '--wait'], "snapshot: option '--label' requires an argument"],
  [['--label='], "snapshot: option '--label' requires an argument"],
  [['--label', 'a', '--label', 'b'], 'snapshot: --label given 2 times (one label per snapshot)'],
  [['--label', '42'], 'snapshot: invalid --label "42": a label must not be a number (it would read as a snapshot id)'],
  [['--label', ' padded'], 'snapshot: invalid --label " padded": a label must not begin or end with white space'],
  [['--label', 'x'.repeat(200)], `snapshot: invalid --label "${'x'.repeat(200)}": a label is at most 128 bytes`],
  [['abc'], "snapshot: invalid PID 'abc' (a process id: a positive integer)"],
  [['0123'], "snapshot: invalid PID '0123' (a process id: a positive integer)"],
  [['1', '2'], "snapshot: too many arguments: '2' (one PID at most)"],
])('%j is a usage error', async (args, message) => {
  const dir = tmpDir();
  const s = await startSession(dir);
  const r = await run(dir, args);
  const [first, ...rest] = String(r.stderr).split('\n');
  expect(first).toBe(`numactlx: ${message}`);
  expect(rest[0]).toMatch(/^usage: numactlx/);
  expect(r.stdout).toBe('');
  expect(r.exitCode).toBe(1);
  expect(s.takes).toEqual([]); // nothing was asked of the session
});

test('`numactlx -- snapshot` still runs a program named snapshot', async () => {
  const bin = tmpDir();
  fs.writeFileSync(path.join(bin, 'snapshot'), '#!/bin/sh\necho program-snapshot\n', { mode: 0o755 });
  const r = await numactlx(['--', 'snapshot'], { env: { NUMACTLX_RUNTIME_DIR: tmpDir(), PATH: `${bin}:${process.env.PATH}` } });
  expect(r.stdout).toBe('program-snapshot');
  expect(r.exitCode).toBe(0);
});
