// The guest half of bench/guest-programs.mjs: runs in one boot of the test guest
// (test/guest/vm.sh), writes every measured run as a JSON line to
// $GUEST_SHARE/bench.jsonl and prints it. Not a test: nothing is asserted but that each
// run worked (a failed run is recorded with its error, and left out of the ratios).
//
// Per repetition, in a rotated order: each program plain, under numactlx on /dev/dax0.0,
// under numactlx on a file on the guest's ext4 disk. Programs (each times its own work):
//   true     /bin/true: numactlx's start-up and exit alone
//   python3  builds PY_N tuples, sorts them, a dict and a sum (prints work_ms)
//   redis    redis-server; its work is redis-benchmark SET of REDIS_N keys (-P 32)
//   pattern  bench/pattern_passes PAT_SIZE 2: writes and reads its memory (work_ms)
// Then once, on dax: pattern_passes held, a snapshot between two rewrite passes (pause,
// request→durable, and what the first writes after it cost: Linux 6.1's write faults),
// writing in address order and scattered (`random`: no write-fault runs to open).
// Stops starting repetitions when GUEST_BENCH_BUDGET_S is spent.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { BACKINGS, BIN, NUMACTLX, run, why } from '../../test/guest/lib/programs.mjs';

const share = process.env.GUEST_SHARE ?? process.cwd();
const OUT = path.join(share, 'bench.jsonl');
const REPS = Number(process.env.BENCH_REPS ?? 3);
const BUDGET_MS = Number(process.env.GUEST_BENCH_BUDGET_S ?? 960) * 1000;
const PY_N = process.env.PY_N ?? '200000';
const REDIS_N = process.env.REDIS_N ?? '100000';
const PAT_SIZE = process.env.PAT_SIZE ?? '64m';
const PATTERN = path.join(BIN, 'pattern_passes');
const start = Date.now();
const backings = [BACKINGS.dax, BACKINGS.file];

const record = (r) => {
  console.log(JSON.stringify(r));
  fs.appendFileSync(OUT, `${JSON.stringify(r)}\n`);
};
const under = (b, argv) => (b ? [NUMACTLX, `--remap=${b.remap}`, '--membind=3', '--', ...argv] : argv);

const PY = `
import time, random, sys
N = int(sys.argv[1])
t0 = time.monotonic()
random.seed(1)
xs = [(random.random(), str(i) * 3, [i]) for i in range(N)]
xs.sort()
d = {x[1]: x for x in xs}
s = sum(x[0] for x in xs)
print('work_ms %.1f' % ((time.monotonic() - t0) * 1e3), len(d), round(s, 3))
`;

/** A one-shot program: wall time of the whole run and the work_ms it printed. */
async function oneShot(argv) {
  const r = await run(argv[0], argv.slice(1));
  if (r.code !== 0) throw new Error(`${argv.join(' ')}: exit ${r.code} ${r.signal ?? ''}: ${why(r.stderr)}`);
  const m = /^work_ms ([\d.]+)(.*)$/m.exec(r.stdout);
  return { wallMs: r.ms, workMs: m ? Number(m[1]) : undefined, result: m?.[2]?.trim() };
}

let port = 6400;
/** redis-server to "Ready", then redis-benchmark SET of REDIS_N keys (the work), SHUTDOWN. */
async function redis(b) {
  const p = String(port++);
  const argv = under(b, ['/usr/bin/redis-server', '--port', p, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', '/tmp', '--logfile', '']);
  const t0 = Date.now();
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  child.stderr.on('data', (d) => { err += d; });
  await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => { out += d; if (/Ready to accept connections/.test(out)) resolve(); });
    exited.then(() => reject(new Error(`redis-server ended before it was ready: ${why(err)}`)));
  });
  const readyMs = Date.now() - t0;
  const bench = await run('/usr/bin/redis-benchmark', ['-p', p, '-t', 'set', '-n', REDIS_N, '-r', REDIS_N, '-P', '32', '-d', '64', '-q']);
  const size = (await run('/usr/bin/redis-cli', ['-p', p, 'DBSIZE'])).stdout.trim();
  await run('/usr/bin/redis-cli', ['-p', p, 'SHUTDOWN', 'NOSAVE']);
  const e = await exited;
  if (bench.code !== 0 || e.code !== 0) throw new Error(`redis: benchmark exit ${bench.code}, server exit ${e.code} ${e.signal ?? ''}: ${why(err)}`);
  return { wallMs: Date.now() - t0, workMs: bench.ms, readyMs, result: `dbsize ${size}` };
}

const programs = {
  true: () => (b) => oneShot(under(b, ['/bin/true'])),
  python3: () => (b) => oneShot(under(b, ['/usr/bin/python3', '-c', PY, PY_N])),
  redis: () => (b) => redis(b),
  pattern: () => (b) => oneShot(under(b, [PATTERN, PAT_SIZE, '2'])),
};

async function measure(rep, program, b) {
  const t = Date.now();
  try {
    const r = await programs[program]()(b);
    record({ kind: 'run', rep, program, variant: b?.name ?? 'plain', ...r });
  } catch (err) {
    record({ kind: 'run', rep, program, variant: b?.name ?? 'plain', failed: String(err.message ?? err).slice(0, 400), wallMs: Date.now() - t });
  }
}

/** pattern_passes held on dax: pass 2 plain rewrite, snapshot, pass 3 rewrite after it. */
async function snapshotRun(order) {
  const argv = under(BACKINGS.dax, [PATTERN, PAT_SIZE, '1', 'hold', ...(order === 'random' ? ['random'] : [])]);
  const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  const line = (re) => new Promise((resolve, reject) => {
    const look = () => { const m = re.exec(out); if (m) { child.stdout.off('data', on); resolve(m); } return m; };
    const on = (d) => { out += d; look(); };
    child.stdout.on('data', on);
    if (look()) return;
    exited.then(() => reject(new Error(`numactlx ended before ${re}: ${why(err)}`)));
  });
  const passRe = (n) => new RegExp(`^pass ${n} write_ms ([\\d.]+) read_ms ([\\d.]+)$`, 'm');
  try {
    const p1 = await line(passRe(1));
    await line(/^ready /m);
    child.stdin.write('go\n');
    const p2 = await line(passRe(2));
    const t0 = Date.now();
    const s = await run(NUMACTLX, ['snapshot', '--wait', '--json', String(child.pid)]);
    const durableMs = Date.now() - t0;
    if (s.code !== 0) throw new Error(`numactlx snapshot: ${why(s.stderr)}`);
    const answer = JSON.parse(s.stdout);
    child.stdin.write('go\n');
    const p3 = await line(passRe(3));
    child.stdin.end();
    const code = await exited;
    const num = (m) => ({ writeMs: Number(m[1]), readMs: Number(m[2]) });
    record({ kind: 'snapshot', backing: 'dax', order, exit: code, pass1: num(p1), pass2: num(p2), pass3: num(p3), durableMs, stats: answer.stats });
  } catch (err) {
    child.kill('SIGKILL');
    record({ kind: 'snapshot', backing: 'dax', order, failed: String(err.message ?? err).slice(0, 400) });
  }
}

record({ kind: 'start', kernel: os.release(), cpus: os.cpus().length, reps: REPS, PY_N, REDIS_N, PAT_SIZE });
const doctor = await run(NUMACTLX, ['doctor', '--json']);
try {
  const rows = JSON.parse(doctor.stdout).checks;
  record({ kind: 'doctor', exit: doctor.code, degraded: rows.filter((c) => c.status === 'degraded').map((c) => c.feature ?? c.name) });
} catch {
  record({ kind: 'doctor', exit: doctor.code, error: why(doctor.stderr) });
}
if (process.env.GUEST_FRESH === '1') {
  const f = await run(NUMACTLX, ['format', '/dev/dax0.0']);
  if (f.code !== 0) record({ kind: 'format', failed: why(f.stderr) });
}
// Unmeasured: the first start of each reads node, the tree and the program over 9p.
for (const b of [undefined, ...backings]) await oneShot(under(b, ['/bin/true'])).catch((e) => record({ kind: 'warmup', failed: String(e.message) }));
await oneShot(['/usr/bin/python3', '-c', PY, '1000']).catch(() => undefined);

const variants = [undefined, ...backings];
const order = ['true', 'pattern', 'python3', 'redis'];
for (let rep = 0; rep < REPS; rep++) {
  if (rep > 0 && Date.now() - start > BUDGET_MS) { record({ kind: 'budget', stoppedBefore: rep }); break; }
  for (const program of order) {
    for (let i = 0; i < variants.length; i++) await measure(rep, program, variants[(i + rep) % variants.length]);
  }
  if (rep === 0) for (const order of ['seq', 'random']) await snapshotRun(order);
}
record({ kind: 'end', ms: Date.now() - start });
