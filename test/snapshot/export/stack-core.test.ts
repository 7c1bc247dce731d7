// A snapshot holds every page a core dump would, and gdb reads an exported core as it
// reads the kernel's:
// - the top of the main thread's stack (argv, envp, auxv, which exec wrote, and main's
//   frame beside them), which was there before numactlx registered the range and was
//   never faulted in through the userfaultfd: the prepare adopts it (present-pages.ts);
// - pages no virtual node holds, read in the freeze (snapshot-extras.ts): copied-on-write
//   pages of private file mappings (libraries' data: what gdb needs to walk into libc and
//   to find the shared libraries), shared anonymous memory.
// Without the first, gdb says "Cannot access memory" for main's locals and stops short
// of main; without the second, `bt` stops in libc at `??` and the markers below read as
// the file's bytes or not at all.
import path from 'node:path';
import { execa } from 'execa';
import { NUMACTLX, numactlx } from '../../helpers/numactlx.js';
import { compileFixture } from '../../helpers/fixtures.js';
import { waitFor } from '../../helpers/proc.js';
import { removeTmpDirs, tmpDir } from '../../helpers/tmp.js';

afterAll(() => removeTmpDirs());

interface Session { backing: string; env: Record<string, string>; out: () => string; stop: (input?: string) => Promise<number | undefined>; pid: number }

/** numactlx runs argv with all its memory on node 3; resolves once its output matches `ready`. */
async function start(argv: string[], ready: RegExp): Promise<Session> {
  const dir = tmpDir();
  const backing = path.join(dir, 'node3.img');
  const env = { NUMACTLX_RUNTIME_DIR: tmpDir() };
  const child = execa(NUMACTLX, [`--remap=3,${backing},size=256m`, '--membind=3', '--', ...argv],
    { env, reject: false, buffer: false, stdin: 'pipe', stderr: 'inherit' });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  await waitFor(`${argv[0]} to print ${ready}`, () => {
    if (child.exitCode !== null) throw new Error(`${argv[0]} ended (exit ${child.exitCode}) before it was ready: ${out}`);
    return ready.test(out);
  }, 30000);
  return {
    backing, env, out: () => out, pid: child.pid!,
    stop: async (input) => { child.stdin!.end(input); return (await child).exitCode; },
  };
}

/** A snapshot of the session, exported as a core; gdb on PROGRAM and it with `commands`. */
async function snapshotCore(s: Session, program: string, commands: string[]): Promise<{ gdb: string; stats: Record<string, number> }> {
  const snap = JSON.parse(String((await numactlx(['snapshot', String(s.pid), '--wait', '--json'], { env: s.env })).stdout)) as { id: number };
  const core = path.join(path.dirname(s.backing), `snap${snap.id}.core`);
  const exp = await numactlx(['export', s.backing, String(snap.id), '--format', 'core', '-o', core]);
  expect(exp.exitCode).toBe(0);
  const list = JSON.parse(String((await numactlx(['snapshots', s.backing, '--json'])).stdout)) as Array<Record<string, number>>;
  const gdb = await execa('gdb', ['-batch', ...commands.flatMap((c) => ['-ex', c]), program, core],
    { reject: false, env: { DEBUGINFOD_URLS: '' } });
  return { gdb: `${gdb.stdout}\n${gdb.stderr}`, stats: list.find((r) => r.id === snap.id)! };
}

/** The function names of one backtrace, innermost first. */
const frameNames = (bt: string): string[] => [...bt.matchAll(/^#\d+\s+(?:0x[0-9a-f]+ in )?([\w.]+) /gm)].map((m) => m[1]);

for (const linkage of ['static', 'dynamic'] as const) {
  test(`gdb PROG CORE (${linkage}): the whole backtrace to main, main's locals, argv, shared and copied-on-write file pages`, async () => {
    const bin = await compileFixture(`stack_locals`, linkage === 'static' ? ['-static', '-g', '-O0'] : ['-g', '-O0']);
    const tag = `tag${process.pid}`;
    const s = await start([bin, tag], /^ready /m);
    const [, shared, priv] = s.out().split('\n')[0].split(' ');
    const { gdb, stats } = await snapshotCore(s, bin, ['bt', 'frame function main', 'p secret', 'p argv[1]', 'x/s argv[0]',
      `x/s ${shared}`, `x/s ${priv}`]);
    expect(await s.stop('go\n')).toBe(0);
    expect(s.out()).toContain(`main-secret-${tag} `);
    expect(gdb).not.toMatch(/Cannot access memory|Backtrace stopped/);
    const frames = frameNames(gdb);
    // depth(0..8) then main, in order: every frame's return address was on the stack, and
    // (dynamic) gdb walked out of libc's read and fgets to reach them.
    const fromDepth = frames.slice(frames.indexOf('depth'));
    expect(fromDepth.slice(0, 10)).toEqual([...Array(9).fill('depth'), 'main']);
    expect(frames.slice(0, frames.indexOf('depth')).some((f) => /fgets$/.test(f))).toBe(true);
    expect(gdb).toMatch(new RegExp(`= "main-secret-${tag}(\\\\000|", '\\\\000')`));
    expect(gdb).toMatch(new RegExp(`\\$\\d+ = 0x[0-9a-f]+ "${tag}"`));
    expect(gdb).toMatch(new RegExp(`0x[0-9a-f]+:\\s+"${bin}"`));
    expect(gdb).toMatch(new RegExp(`${shared}:\\s+"shared-marker-${tag}"`));
    expect(gdb).toMatch(new RegExp(`${priv}:\\s+"private-marker-${tag}"`));
    // The shared page, the private file page and (dynamic) libc's written data.
    expect(stats.extra_pages).toBeGreaterThanOrEqual(2);
    expect(typeof stats.extra_ms).toBe('number');
  }, 120000);
}

/** `thread apply all bt`: each thread's frames, innermost first. */
function threadBacktraces(gdb: string): string[][] {
  return gdb.split(/^Thread \d+ /m).slice(1).map(frameNames);
}

test('gdb PROG CORE: python3 with a second thread, every thread\'s backtrace through libc to its start', async () => {
  const script = 'import sys, threading\nev = threading.Event()\nt = threading.Thread(target=ev.wait)\nt.start()\n'
    + 'print("ready", flush=True)\nsys.stdin.readline()\nev.set()\nt.join()\nprint("done")\n';
  const s = await start(['/usr/bin/python3', '-c', script], /^ready$/m);
  const { gdb, stats } = await snapshotCore(s, '/usr/bin/python3', ['thread apply all bt']);
  expect(await s.stop('go\n')).toBe(0);
  expect(s.out()).toContain('done');
  expect(gdb).not.toMatch(/Cannot access memory|Backtrace stopped/);
  const threads = threadBacktraces(gdb);
  expect(threads).toHaveLength(2);
  // The main thread to _start, the other to clone3 (start_thread before it).
  expect(threads.map((t) => t[t.length - 1]).sort()).toEqual(['_start', 'clone3']);
  for (const t of threads) expect(t.some((f) => /^(__GI___libc_read|__futex_abstimed_wait_common64|read|__libc_read)$/.test(f))).toBe(true);
  expect(stats.extra_pages).toBeGreaterThan(0);
}, 120000);

test('gdb PROG CORE: redis-server, every thread\'s backtrace through libc to its start', async () => {
  const which = await execa('sh', ['-c', 'command -v redis-server'], { reject: false });
  if (which.exitCode !== 0) throw new Error('redis-server is needed (Debian package redis-server)');
  const server = which.stdout.trim();
  const port = 20000 + (process.pid % 20000);
  const s = await start([server, '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', tmpDir()], /Ready to accept connections/);
  const { gdb } = await snapshotCore(s, server, ['thread apply all bt']);
  await execa('redis-cli', ['-p', String(port), 'shutdown', 'nosave'], { reject: false });
  expect(await s.stop()).toBe(0);
  expect(gdb).not.toMatch(/Cannot access memory|Backtrace stopped/);
  const threads = threadBacktraces(gdb);
  // redis's main thread, its bio threads and jemalloc's: each ends where it started.
  expect(threads.length).toBeGreaterThanOrEqual(3);
  // (gdb stops at main, when it knows main; the others run from clone3)
  for (const t of threads) expect(['main', '_start', 'clone3']).toContain(t[t.length - 1]);
  expect(threads.filter((t) => t[t.length - 1] !== 'clone3')).toHaveLength(1);
}, 120000);
