// --snapshot-on-exit with a multi-threaded program (reliability issue, item 3): the
// snapshot is taken at the exit stop of the last thread to reach one, also when the
// threads it joined have not been reported gone by waitpid yet (the test that found it
// skipped the snapshot 4 runs in 6, exit 0 and no word). exit_running returns from main
// while its threads run: every thread passes its exit stop before waitpid reports any.
import path from 'node:path';
import { execa, type Result } from 'execa';
import { NUMACTLX, numactlx } from '../helpers/numactlx.js';
import { childrenOf, exeOf, procState, waitFor } from '../helpers/proc.js';
import { compileFixture } from '../helpers/fixtures.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

const RUNS = 6;

afterAll(() => removeTmpDirs());

test(`a program that exits while its 8 threads run leaves its exit snapshot, ${RUNS} runs of ${RUNS}`, async () => {
  const exitRunning = await compileFixture('exit_running');
  for (let run = 1; run <= RUNS; run++) {
    const backing = path.join(tmpDir(), 'n3.img');
    const r = await numactlx([`--remap=3,${backing},size=64m`, '--membind=3', '--snapshot-on-exit', '--', exitRunning, '8', '1m'],
      { env: { NUMACTLX_RUNTIME_DIR: tmpDir() } });
    expect({ run, exit: r.exitCode, stderr: r.stderr }).toEqual({ run, exit: 0, stderr: '' });
    expect(r.stdout).toBe('filled 8');
    const list = await numactlx(['snapshots', backing, '--json']);
    const snaps = JSON.parse(list.stdout) as Array<{ pages: number }>;
    expect({ run, snapshots: snaps.length }).toEqual({ run, snapshots: 1 });
    // 8 threads × 1 MiB of their own: all of it is in the snapshot.
    expect(snaps[0].pages).toBeGreaterThanOrEqual(8 * 256);
  }
}, 120_000);

// The program ending with a snapshot in flight (reliability issue, item 4): numactlx
// exits with the program's status, --keep is applied to that snapshot too, and the
// client waiting for it gets its real outcome — never "closed the connection".
test('a program exiting 7 during a snapshot: exit 7, the waiting client answered, --keep applied', async () => {
  const exitRunning = await compileFixture('exit_running');
  for (let round = 1; round <= 3; round++) {
    const backing = path.join(tmpDir(), 'n3.img');
    const env = { NUMACTLX_RUNTIME_DIR: tmpDir() };
    const session = execa(NUMACTLX, [`--remap=3,${backing},size=1g`, '--membind=3', '--keep', '1', '--', exitRunning, '8', '32m', '7'],
      { env, reject: false, buffer: false, stdin: 'pipe' });
    let out = '';
    session.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    try {
      await waitFor('the threads to fill their memory', () => out.includes('filled 8\n'), 60_000);
      for (let i = 0; i < 2; i++) expect((await numactlx(['snapshot', '--wait', String(session.pid)], { env })).exitCode).toBe(0);
      const inFlight = numactlx(['snapshot', '--wait', '--json', String(session.pid)], { env });
      // 256 MiB written since the last snapshot: the copy takes a while, and the program
      // returns 7 as soon as it reads this line (its threads still writing).
      session.stdin!.end('stop\n');
      const [end, last] = await Promise.all([session as Promise<Result>, inFlight]);
      expect({ round, exit: end.exitCode }).toEqual({ round, exit: 7 });
      expect(last.stderr).not.toMatch(/closed the connection/);
      if (last.exitCode === 0) expect(JSON.parse(last.stdout)).toHaveProperty('id');
      else expect(last.stderr).toMatch(/^numactlx: /);
      const list = JSON.parse((await numactlx(['snapshots', backing, '--json'])).stdout) as unknown[];
      expect({ round, kept: list.length }).toEqual({ round, kept: 1 });
      expect((await numactlx(['verify', backing])).exitCode).toBe(0);
    } finally {
      session.kill('SIGKILL');
      await session;
    }
  }
}, 600_000); // three rounds of a 256 MiB program; under load a round took 140 s

// A supervisor's SIGTERM that arrives after the program ended, while numactlx finishes
// the session (the exit snapshot, --stats), has no program left to reach: numactlx
// drops it, finishes and exits with the program's status. It used to kill
// numactlx by SIGTERM's default action (status 143, no snapshot, no --stats): seen in
// the redis test, whose `shutdown` raced the test's SIGTERM.
test('SIGTERM after the program ended, during the exit snapshot: ignored, exit status the program\'s', async () => {
  const exitRunning = await compileFixture('exit_running');
  const backing = path.join(tmpDir(), 'n3.img');
  const env = { NUMACTLX_RUNTIME_DIR: tmpDir() };
  const session = execa(NUMACTLX, [`--remap=3,${backing},size=1g`, '--membind=3', '--snapshot-on-exit', '--', exitRunning, '4', '64m', '5'],
    { env, reject: false, buffer: false, stdin: 'pipe' });
  let out = '';
  session.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  try {
    await waitFor('the threads to fill their memory', () => out.includes('filled 4\n'), 60_000);
    const program = childrenOf(session.pid!);
    expect(program).toHaveLength(1);
    session.stdin!.end('stop\n');
    await waitFor('the program to be reaped', () => procState(program[0]) === undefined, 60_000);
    // From the reaping on, SIGTERM after SIGTERM until numactlx has exited: one of them
    // lands after the main thread heard of the end, whenever that is.
    let sent = 0;
    for (let state = procState(session.pid!); state !== undefined && state !== 'Z'; state = procState(session.pid!)) {
      process.kill(session.pid!, 'SIGTERM');
      sent++;
    }
    expect(sent).toBeGreaterThan(0);
    const end = await session;
    expect({ exit: end.exitCode, signal: end.signal }).toEqual({ exit: 5, signal: undefined });
    const list = JSON.parse((await numactlx(['snapshots', backing, '--json'])).stdout) as Array<{ pages: number }>;
    expect(list).toHaveLength(1);
    expect(list[0].pages).toBeGreaterThanOrEqual(4 * 64 * 256);
  } finally {
    session.kill('SIGKILL');
  }
}, 120_000);

// A snapshot asked for just as the program ends (a cron tick, the snapshot signal): the
// doorbell rings a process already on its way out, which never stops for it. The tracer
// answers such a request when the process is gone — at once if others are left to
// freeze, with "no process of the session is running" if none is — so the session ends.
// It used to wait for that freeze for ever (the --schedule test hung 1 run in 20).
test('snapshot signals racing the program\'s end: every session ends, 20 runs of 20', async () => {
  for (let run = 1; run <= 20; run++) {
    const backing = path.join(tmpDir(), 'n3.img');
    const session = execa(NUMACTLX, [`--remap=3,${backing},size=64m`, '--membind=3', '--snapshot-signal', 'SIGUSR1', '--',
      'sh', '-c', 'i=0; while [ $i -lt 30 ]; do i=$((i+1)); /bin/true; done; echo done'],
    { env: { NUMACTLX_RUNTIME_DIR: tmpDir() }, reject: false });
    let ended = false;
    const result = session.finally(() => { ended = true; });
    try {
      // Once node runs numactlx's code (bin/numactlx is a shell script first, whose
      // child is sed): the program's start-up shell is node's child.
      await waitFor('the program to start', () => ended || (exeOf(session.pid!).endsWith('/node') && childrenOf(session.pid!).length > 0), 20_000);
      let sent = 0;
      while (!ended) {
        try { process.kill(session.pid!, 'SIGUSR1'); sent++; } catch { break; }
        // The pace of the signal storm (about one a millisecond, whatever the session is
        // doing), not a wait for anything: the test is that any timing ends the session.
        await new Promise((r) => setTimeout(r, 1));
        if (sent > 20_000) throw new Error(`run ${run}: the session did not end (hung)`);
      }
      const end = await result;
      expect({ run, exit: end.exitCode, stdout: end.stdout }).toEqual({ run, exit: 0, stdout: 'done' });
      // Whatever the signals asked for was committed or refused in one line. (A process
      // past its exit stop is no longer frozen — its pages would vanish before their copy;
      // the lost-pages line is allowed, being the honest report should the shell unmap.)
      for (const line of String(end.stderr).split('\n').filter(Boolean)) {
        // (A freeze that found every process gone says so under the snapshot's id.)
        expect(line).toMatch(/^numactlx: ((snapshot \d+: )?no process of the session is running|snapshot \d+: \d+ pages? frozen in it were unmapped or discarded .*)$/);
      }
      const verify = await numactlx(['verify', backing]);
      if (verify.exitCode !== 0) throw new Error(`run ${run}: verify: ${verify.exitCode}\n${verify.stdout}\n${verify.stderr}`);
    } finally {
      session.kill('SIGKILL');
    }
  }
}, 300_000);
