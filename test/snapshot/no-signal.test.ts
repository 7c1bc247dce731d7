// A snapshot sends the program no signal: the tracer is woken by a process of numactlx's
// own, the waker (src/tracer-thread/waker.ts, src/channels/tracer-wake.ts), and stops the
// program's threads with PTRACE_INTERRUPT. Before it, the ring was a SIGURG queued to the
// program, and a SIGSTOP (the "nudge") where SIGURG could bring no stop: a program that
// blocks every signal and takes them with sigwaitinfo (as daemons do) lost a pending
// SIGCONT to each nudge (a stop signal discards it), and a program over RLIMIT_SIGPENDING
// got numactlx's ring as a SIGURG of its own.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { NUMACTLX, numactlx } from '../helpers/numactlx.js';
import { childrenOf, isWaker, procState, waitFor } from '../helpers/proc.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

afterAll(removeTmpDirs);

// Blocks every signal it can (SIGURG too, or not: then a handler counts each SIGURG, and it
// may queue no signal), makes SIGCONT and SIGUSR1 pending, ticks every 0.1 s until a `go`
// file appears, then prints every signal pending, taken with sigtimedwait.
const PROGRAM = (dir: string, blockUrg: boolean): string => `
import os, resource, signal, time
urg = []
if ${blockUrg ? 'False' : 'True'}:
    resource.setrlimit(resource.RLIMIT_SIGPENDING, (0, resource.getrlimit(resource.RLIMIT_SIGPENDING)[1]))
    signal.signal(signal.SIGURG, lambda *a: urg.append(1))
every = set(signal.Signals) - {signal.SIGKILL, signal.SIGSTOP} - (set() if ${blockUrg ? 'True' : 'False'} else {signal.SIGURG})
signal.pthread_sigmask(signal.SIG_BLOCK, every)
os.kill(os.getpid(), signal.SIGCONT)
os.kill(os.getpid(), signal.SIGUSR1)
ticks = ${JSON.stringify(path.join(dir, 'ticks'))}
while not os.path.exists(${JSON.stringify(path.join(dir, 'go'))}):
    with open(ticks, 'a') as f: f.write(f'{os.getpid()}\\n')
    time.sleep(0.1)
got = []
while True:
    info = signal.sigtimedwait(every, 0)
    if info is None: break
    got.append(signal.Signals(info.si_signo).name)
print('pending', ' '.join(sorted(got)), 'sigurg', len(urg), flush=True)
`;

test.each([
  ['every signal, SIGURG too', true],
  ['every signal but SIGURG, which it counts, and may queue no signal (RLIMIT_SIGPENDING 0)', false],
])('snapshots of a program that blocks %s, with SIGCONT pending: it loses none and gets none', async (_what, blockUrg) => {
  const dir = tmpDir();
  const backing = path.join(dir, 'node3.img');
  const env = { NUMACTLX_RUNTIME_DIR: tmpDir() };
  const ticks = path.join(dir, 'ticks');
  const count = (): number => (fs.existsSync(ticks) ? fs.readFileSync(ticks, 'utf8').trim().split('\n').length : 0);
  const session = execa(NUMACTLX, [`--remap=3,${backing},size=64m`, '--membind=3', '--', 'python3', '-c', PROGRAM(dir, blockUrg)], { env, reject: false });
  await waitFor('the program to tick', () => count() > 0, 20_000, 20);
  for (let i = 1; i <= 3; i++) {
    const r = await numactlx(['snapshot', '--wait', '--json', String(session.pid)], { env, timeout: 20_000 });
    expect({ snapshot: i, exit: r.exitCode, timedOut: r.timedOut, stderr: r.stderr }).toEqual({ snapshot: i, exit: 0, timedOut: false, stderr: '' });
    const before = count();
    await waitFor('the program to tick again', () => count() > before, 10_000, 20);
  }
  fs.writeFileSync(path.join(dir, 'go'), '');
  const done = await session;
  expect({ exit: done.exitCode, stdout: done.stdout, stderr: done.stderr }).toEqual({ exit: 0, stdout: 'pending SIGCONT SIGUSR1 sigurg 0', stderr: '' });
  expect((await numactlx(['verify', backing])).exitCode).toBe(0);
}, 120_000);

test('the waker: numactlx\'s own child, in a group of its own; killed, another takes its place; none is left after the session, nor after numactlx is killed', async () => {
  const dir = tmpDir();
  const env = { NUMACTLX_RUNTIME_DIR: tmpDir() };
  const wakerOf = (pid: number): number | undefined => childrenOf(pid, true).find(isWaker);
  const start = () => execa(NUMACTLX, [`--remap=3,${path.join(dir, `n3-${Date.now()}.img`)},size=64m`, '--membind=3', '--', 'sleep', '600'], { env, reject: false });
  const session = start();
  const nx = session.pid!;
  try {
    const first = await waitFor('the waker', () => wakerOf(nx), 20_000, 20);
    // Its own process group: the terminal's Ctrl-C and Ctrl-Z are the program's alone.
    const pgrp = Number(fs.readFileSync(`/proc/${first}/stat`, 'utf8').split(') ')[1].split(' ')[2]);
    expect(pgrp).toBe(first);
    expect(childrenOf(nx)).toHaveLength(1); // the program
    process.kill(first, 'SIGKILL');
    const second = await waitFor('another waker', () => { const w = wakerOf(nx); return w !== undefined && w !== first ? w : undefined; }, 20_000, 20);
    const r = await numactlx(['snapshot', '--wait', String(nx)], { env, timeout: 20_000 });
    expect({ exit: r.exitCode, stderr: r.stderr }).toEqual({ exit: 0, stderr: '' });
    // A signal sent to the waker by someone else is taken as a ring, and suppressed.
    process.kill(second, 'SIGTERM');
    const again = await numactlx(['snapshot', '--wait', String(nx)], { env, timeout: 20_000 });
    expect({ exit: again.exitCode, stderr: again.stderr, waker: wakerOf(nx) }).toEqual({ exit: 0, stderr: '', waker: second });
    session.kill('SIGTERM');
    await session;
    expect(procState(second)).toBeUndefined();
  } finally {
    session.kill('SIGKILL');
    await session;
  }
  // numactlx killed: PTRACE_O_EXITKILL takes its waker with it.
  const killed = start();
  const w = await waitFor('the waker', () => wakerOf(killed.pid!), 20_000, 20);
  killed.kill('SIGKILL');
  await killed;
  await waitFor('the waker to be gone', () => procState(w) === undefined || procState(w) === 'Z' ? true : undefined, 10_000, 20);
}, 120_000);
