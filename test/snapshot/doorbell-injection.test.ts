// Snapshots asked while the tracer is busy elsewhere, or of programs that give no event of
// their own. Until stop 31 the doorbell was a sigqueue'd SIGURG to the program's first
// process; one that arrived while the tracer ran an injected call in that process — its exec
// set-up, an eviction's or a capture fork's call — was sent again as a plain tgkill, taken
// for the program's own SIGURG, and that snapshot, and every later one merged into it,
// waited for ever (found by triggers-report.test.ts, whose first cron tick fell in the
// program's exec set-up). A program that re-execs itself without pause is in an exec set-up
// ≈ a tenth of the time: before that fix, one of the first six snapshots hung in each of
// three tries. Programs that block SIGURG, take it with sigwaitinfo, or may queue no signal
// gave no stop for it. The ring now wakes the tracer through its waker
// (src/channels/tracer-wake.ts): these programs must still have every snapshot taken.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { NUMACTLX, numactlx } from '../helpers/numactlx.js';
import { procState, waitFor } from '../helpers/proc.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

afterAll(removeTmpDirs);

const SNAPSHOTS = 30;

test('snapshots asked of a program that re-execs itself all along: every one is taken, none waits for ever', async () => {
  const dir = tmpDir();
  const script = path.join(dir, 'reexec.sh');
  fs.writeFileSync(script, 'n=$1\n[ "$n" -gt 0 ] || exit 0\nexec /bin/sh "$0" $((n-1))\n');
  const backing = path.join(dir, 'node3.img');
  const env = { NUMACTLX_RUNTIME_DIR: tmpDir() };
  const session = execa(NUMACTLX, [`--remap=3,${backing},size=64m`, '--membind=3', '--', '/bin/sh', script, '1000000'],
    { env, reject: false });
  try {
    await waitFor('the session to answer', async () => (await numactlx(['status', String(session.pid)], { env })).exitCode === 0, 20_000, 20);
    for (let i = 1; i <= SNAPSHOTS; i++) {
      const r = await numactlx(['snapshot', '--wait', '--json', String(session.pid)], { env, timeout: 20_000 });
      expect({ snapshot: i, exit: r.exitCode, timedOut: r.timedOut, stderr: r.stderr }).toEqual({ snapshot: i, exit: 0, timedOut: false, stderr: '' });
    }
  } finally {
    session.kill('SIGTERM'); // forwarded: the program ends, and the session with it
    await session;
  }
  const listed = JSON.parse(String((await numactlx(['snapshots', backing, '--json'])).stdout)) as unknown[];
  expect(listed.length).toBe(SNAPSHOTS);
  expect((await numactlx(['verify', backing])).exitCode).toBe(0);
}, 300_000);

test('a program that blocks SIGURG: its snapshots are taken at its next trapped call', async () => {
  const dir = tmpDir();
  const backing = path.join(dir, 'node3.img');
  const env = { NUMACTLX_RUNTIME_DIR: tmpDir() };
  // Blocked before anything else runs; then a trapped mmap (anonymous, private) every 5 ms.
  const program = 'import signal, time, mmap\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGURG})\n' +
    'while True:\n    m = mmap.mmap(-1, 4096, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS); m.close(); time.sleep(0.005)\n';
  const session = execa(NUMACTLX, [`--remap=3,${backing},size=64m`, '--membind=3', '--', 'python3', '-c', program], { env, reject: false });
  try {
    await waitFor('the session to answer', async () => (await numactlx(['status', String(session.pid)], { env })).exitCode === 0, 20_000, 20);
    for (let i = 1; i <= 3; i++) {
      const r = await numactlx(['snapshot', '--wait', '--json', String(session.pid)], { env, timeout: 20_000 });
      expect({ snapshot: i, exit: r.exitCode, timedOut: r.timedOut, stderr: r.stderr }).toEqual({ snapshot: i, exit: 0, timedOut: false, stderr: '' });
    }
  } finally {
    session.kill('SIGTERM');
    await session;
  }
  expect((await numactlx(['verify', backing])).exitCode).toBe(0);
}, 120_000);

// Python sleeps in clock_nanosleep and appends a tick to a file every 0.2 s: no trapped call,
// no stop. `takes` also waits for SIGURG with sigwaitinfo — it takes the SIGURG itself.
test.each([
  ['blocks SIGURG and sleeps', 'while True:\n    time.sleep(0.2); tick()\n'],
  ['takes SIGURG with sigwaitinfo', 'while True:\n    signal.sigtimedwait({signal.SIGURG}, 0.2); tick()\n'],
  // Over RLIMIT_SIGPENDING a sigqueue'd signal arrives without its siginfo: stop 30's nudge
  // sent that way was a SIGSTOP of the user's, and the program and numactlx stayed stopped.
  ['blocks SIGURG and sleeps, no queued signal allowed (RLIMIT_SIGPENDING 0)',
    'import resource\nresource.setrlimit(resource.RLIMIT_SIGPENDING, (0, resource.getrlimit(resource.RLIMIT_SIGPENDING)[1]))\n' +
    'while True:\n    time.sleep(0.2); tick()\n'],
])('an idle program that %s: each snapshot is taken, and the program runs on, never stopped, no SIGURG left pending', async (_what, loop) => {
  const dir = tmpDir();
  const backing = path.join(dir, 'node3.img');
  const ticks = path.join(dir, 'ticks');
  const env = { NUMACTLX_RUNTIME_DIR: tmpDir() };
  const program = 'import os, signal, time\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGURG})\n' +
    // Each tick: the pid, and whether a SIGURG is pending (numactlx's ring, blocked for ever).
    `def tick():\n    with open(${JSON.stringify(ticks)}, 'a') as f: f.write(f'{os.getpid()} {int(signal.SIGURG in signal.sigpending())}\\n')\n` + loop;
  const session = execa(NUMACTLX, [`--remap=3,${backing},size=64m`, '--membind=3', '--', 'python3', '-c', program], { env, reject: false });
  const count = (): string[] => (fs.existsSync(ticks) ? fs.readFileSync(ticks, 'utf8').trim().split('\n') : []);
  try {
    await waitFor('the program to tick', () => count().length > 0, 20_000, 20);
    const pid = Number(count()[0].split(' ')[0]);
    for (let i = 1; i <= 3; i++) {
      const r = await numactlx(['snapshot', '--wait', '--json', String(session.pid)], { env, timeout: 20_000 });
      expect({ snapshot: i, exit: r.exitCode, timedOut: r.timedOut, stderr: r.stderr }).toEqual({ snapshot: i, exit: 0, timedOut: false, stderr: '' });
      const before = count().length;
      await waitFor('the program to tick again', () => count().length > before, 10_000, 20);
      expect(procState(pid)).not.toMatch(/^[Tt]$/);
      // Never sent a SIGURG its own sigwaitinfo could take one day.
      expect({ snapshot: i, sigurgPending: count().at(-1)!.split(' ')[1] }).toEqual({ snapshot: i, sigurgPending: '0' });
    }
  } finally {
    session.kill('SIGTERM');
    await session;
  }
  expect((await numactlx(['verify', backing])).exitCode).toBe(0);
}, 120_000);
