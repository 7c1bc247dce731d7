// numactlx is a transparent wrapper: stdio, exit status, death by signal, signals
// sent to numactlx, inherited ignored signals and job-control stops all behave as if
// numactl had exec'd the program. Every case runs the built binary on real programs.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { NUMACTLX, numactlx, ROOT } from '../helpers/numactlx.js';
import { childrenOf, exeOf, procState, waitFor } from '../helpers/proc.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

afterAll(removeTmpDirs);

// Every transparency property holds on real nodes (numactlx execs the program, as
// numactl does) and on a virtual node (the program runs under the tracer).
const virtualBacking = path.join(tmpDir(), 'node3.img');
const MODES: Array<[string, string[]]> = [
  ['on real nodes', []],
  ['on a virtual node', [`--remap=3,${virtualBacking},size=64m`, '--membind=3']],
];

describe.each(MODES)('%s', (_name, mode) => {
  test('stdin, stdout and stderr reach the program', async () => {
    const r = await numactlx([...mode, 'sh', '-c', 'read line; echo "out:$line"; echo "err:$line" >&2'], { input: 'hello\n' });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('out:hello');
    expect(r.stderr).toBe('err:hello');
  });

  test.each([0, 1, 42, 255])('exit status %i is the program\'s', async (code) => {
    const r = await numactlx([...mode, 'sh', '-c', `exit ${code}`]);
    expect(r.exitCode).toBe(code);
    expect(r.signal).toBeUndefined();
  });

  test.each(['SIGTERM', 'SIGKILL', 'SIGSEGV', 'SIGABRT', 'SIGUSR2'])('death by %s is numactlx\'s death, with no core file', async (sig) => {
    const cwd = tmpDir();
    const r = await numactlx([...mode, 'sh', '-c', `kill -${sig.slice(3)} $$`], { cwd });
    expect(r.signal).toBe(sig);
    expect(fs.readdirSync(cwd)).toEqual([]);
  });

  test('argv, environment and working directory are the program\'s', async () => {
    const cwd = tmpDir();
    const r = await numactlx([...mode, 'sh', '-c', 'printf "%s|" "$0" "$1" "$NUMACTLX_TEST_VAR" "$(pwd)"; env | grep -c ^NUMACTLX_SIGIGN= || true', 'zero', 'a b'], {
      cwd, env: { NUMACTLX_TEST_VAR: 'v=1' },
    });
    expect(r.stdout).toBe(`zero|a b|v=1|${fs.realpathSync(cwd)}|0`);
  });

  test('the program\'s stdio stays blocking (Node must not make the shared pipes O_NONBLOCK)', async () => {
    const r = await numactlx([...mode, 'sh', '-c', 'for fd in 0 1 2; do sed -n "s/^flags:\\t//p" /proc/self/fdinfo/$fd; done'], { input: '' });
    const O_NONBLOCK = 0o4000;
    const flags = String(r.stdout).split('\n').map((f) => Number.parseInt(f, 8));
    expect(flags).toHaveLength(3);
    for (const f of flags) expect(f & O_NONBLOCK).toBe(0);
  });

  test('SIGPIPE has its default action: a pipeline ends the writer', async () => {
    const r = await execa('bash', ['-c', `"${NUMACTLX}" ${mode.join(' ')} yes | head -1; echo "status:\${PIPESTATUS[0]}"`]);
    expect(r.stdout).toBe('y\nstatus:141');
  });

  test('signals numactlx inherited as ignored stay ignored in the program (nohup, &)', async () => {
    const ignored = await execa('sh', ['-c', `trap '' INT HUP; exec "${NUMACTLX}" ${mode.join(' ')} sh -c 'grep SigIgn /proc/self/status'`]);
    expect(ignored.stdout).toMatch(/^SigIgn:\s+0+3$/); // SIGHUP (1) and SIGINT (2): bits 0 and 1
    const plain = await numactlx([...mode, 'sh', '-c', 'grep SigIgn /proc/self/status']);
    expect(plain.stdout).toMatch(/^SigIgn:\s+0+$/);
  });

    // On a virtual node SIGUSR1 is numactlx's snapshot signal (--snapshot-signal), not forwarded.
  const FORWARDED: string[] = ['HUP', 'INT', 'QUIT', ...(mode.length ? [] : ['USR1']), 'USR2', 'WINCH', 'ALRM', 'CONT', 'TERM'];

  test('signals sent to numactlx reach the program', async () => {
    const traps = FORWARDED.map((s) => `trap 'echo got-${s}${s === 'TERM' ? '; exit 3' : ''}' ${s}`).join('; ');
    const child = execa(NUMACTLX, [...mode, 'sh', '-c', `${traps}; echo ready; while :; do sleep 0.02; done`], { reject: false, buffer: false });
    const killer = setTimeout(() => child.kill('SIGKILL'), 20000); // never leave it running
    let out = '';
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    await waitFor('ready', () => out.includes('ready'));
    for (const sig of FORWARDED) {
      process.kill(child.pid!, `SIG${sig}`);
      await waitFor(`got-${sig}`, () => out.includes(`got-${sig}`));
    }
    const r = await child;
    clearTimeout(killer);
    expect(r.exitCode).toBe(3);
    expect(out.trim().split('\n')).toEqual(['ready', ...FORWARDED.map((s) => `got-${s}`)]);
  });

  test('a stopped program stops numactlx; SIGCONT to numactlx resumes both', async () => {
    const child = execa(NUMACTLX, [...mode, 'sleep', '30'], { reject: false, forceKillAfterDelay: 2000 });
    const pid = child.pid!;
    // Whatever fails below, never leave a stopped numactlx behind (jest would wait for it).
    const cleanUp = setTimeout(() => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }, 15000);
    // On real nodes numactlx execs the program: it is numactlx's own process.
    const program = await waitFor('the program', () => (mode.length === 0
      ? (exeOf(pid).endsWith('/sleep') ? pid : undefined)
      : childrenOf(pid).find((p) => exeOf(p).endsWith('/sleep'))), 20_000);
    process.kill(program, 'SIGSTOP');
    await waitFor('numactlx stopped', () => procState(pid) === 'T');
    process.kill(pid, 'SIGCONT');
    await waitFor('program running again', () => procState(program) === 'S' && procState(pid) !== 'T');
    process.kill(pid, 'SIGTERM');
    const r = await child;
    clearTimeout(cleanUp);
    expect(r.signal).toBe('SIGTERM');
    expect(procState(program) ?? 'gone').toMatch(/^(gone|Z)$/);
  });
});

// A session stopped with its program cannot answer its control socket: a verb says so at
// once, in one line, instead of waiting out its timeout; continued, it answers again.
test('a verb asked of a session stopped with its program says so; continued, the snapshot is taken', async () => {
  const env = { NUMACTLX_RUNTIME_DIR: tmpDir() };
  const backing = path.join(tmpDir(), 'node3.img');
  const child = execa(NUMACTLX, [`--remap=3,${backing},size=64m`, '--membind=3', 'sleep', '30'], { env, reject: false });
  const pid = child.pid!;
  const cleanUp = setTimeout(() => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }, 30000);
  try {
    const program = await waitFor('the program', () => childrenOf(pid).find((p) => exeOf(p).endsWith('/sleep')), 20_000);
    await waitFor('the session to answer', async () => (await numactlx(['status', String(pid)], { env })).exitCode === 0, 20_000, 20);
    process.kill(program, 'SIGSTOP');
    await waitFor('numactlx stopped', () => procState(pid) === 'T');
    const refused = await numactlx(['snapshot', '--wait', String(pid)], { env });
    expect({ exit: refused.exitCode, stderr: refused.stderr }).toEqual({ exit: 1,
      stderr: `numactlx: snapshot: session ${pid} is stopped, as its program is (Ctrl-Z, SIGSTOP): continue it (fg, or kill -CONT ${pid}) and ask again` });
    process.kill(pid, 'SIGCONT');
    await waitFor('numactlx running again', () => procState(pid) !== 'T');
    const taken = await numactlx(['snapshot', '--wait', String(pid)], { env });
    expect({ exit: taken.exitCode, stderr: taken.stderr }).toEqual({ exit: 0, stderr: '' });
  } finally {
    clearTimeout(cleanUp);
    child.kill('SIGTERM');
    await child;
  }
}, 60_000);

// numactlx ends with _exit once it has closed what it opened (src/sys/process.ts exitNow):
// nothing is left behind — no control socket, no process — and the backing verifies.
test('a session ends with nothing left behind: no control socket, no process, the backing whole', async () => {
  const runtime = tmpDir();
  const backing = path.join(tmpDir(), 'node3.img');
  const r = await numactlx([`--remap=3,${backing},size=64m`, '--membind=3', '--snapshot-on-exit', 'sh', '-c', 'echo $$; exit 3'],
    { env: { NUMACTLX_RUNTIME_DIR: runtime } });
  expect({ exit: r.exitCode, stderr: r.stderr }).toEqual({ exit: 3, stderr: '' });
  expect(fs.readdirSync(runtime).filter((f) => f.endsWith('.sock'))).toEqual([]);
  expect(fs.existsSync(`/proc/${Number(r.stdout)}`)).toBe(false);
  const listed = await numactlx(['snapshots', backing, '--json']);
  expect((JSON.parse(String(listed.stdout)) as unknown[]).length).toBe(1);
  expect((await numactlx(['verify', backing])).exitCode).toBe(0);
});

// Under V8's profilers numactlx exits through Node's own exit, where they write their
// files (launcher/main.ts leave): one CPU profile per thread — main, engine, tracer.
test('node --cpu-prof bin/numactlx.js profiles a session: a profile for each of its three threads', async () => {
  const dir = tmpDir();
  const backing = path.join(tmpDir(), 'node3.img');
  const r = await execa('node', ['--cpu-prof', '--cpu-prof-dir', dir, path.join(ROOT, 'bin/numactlx.js'),
    `--remap=3,${backing},size=64m`, '--membind=3', '--', 'sh', '-c', 'exit 4'], { reject: false });
  expect({ exit: r.exitCode, stderr: r.stderr }).toEqual({ exit: 4, stderr: '' });
  const profiles = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  expect(profiles.length).toBe(3);
  for (const f of profiles) expect((JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { samples: unknown[] }).samples.length).toBeGreaterThan(0);
});

test('--version prints the package version, --help the usage on stdout', async () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const v = await numactlx(['--version']);
  expect(v).toMatchObject({ exitCode: 0, stdout: pkg.version, stderr: '' });
  const h = await numactlx(['--help']);
  expect(h.exitCode).toBe(0);
  expect(h.stdout).toMatch(/^usage: numactlx /);
  expect(h.stdout).toContain('--remap=NODE,PATH[,size=SIZE]');
});

test('`numactlx -- NAME` runs a program named like a verb', async () => {
  const bin = tmpDir();
  fs.writeFileSync(path.join(bin, 'doctor'), '#!/bin/sh\necho "I am a program called doctor"\n', { mode: 0o755 });
  const r = await numactlx(['--', 'doctor'], { env: { PATH: `${bin}:${process.env.PATH}` } });
  expect(r).toMatchObject({ exitCode: 0, stdout: 'I am a program called doctor' });
});

