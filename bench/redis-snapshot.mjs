#!/usr/bin/env node
// redis-server with 1M keys under redis-benchmark while it is snapshotted five times:
// numactlx snapshots (`numactlx snapshot PID --wait`) next to redis's own BGSAVE (fork +
// the child writing dump.rdb) — the snapshot-speed issue's benchmark (docs/BENCHMARKS.md,
// "A program writing at full speed"). What the clients feel: p50, p99 and max latency
// and requests per second over the whole run, snapshots included.
//
//   node bench/redis-snapshot.mjs [--keys 1000000] [--value 100] [--seconds 30]
//        [--snapshots 5] [--reps 1] [--placement free|pinned|both] [--numactlx PATH]
//        [--port 7393] [--dir /var/tmp/numactlx-redis-bench] [--json FILE] [--md FILE]
//        [--latency-monitor MS] [--debug-log DIR]
//
// Where the slow requests fall: --latency-monitor MS runs redis-server with
// --latency-monitor-threshold MS and logs, after each run, the commands that took MS or
// more inside redis (LATENCY HISTORY, seconds from the load's start) next to the events'
// times; --debug-log DIR runs numactlx with NUMACTLX_DEBUG=1 and keeps its stderr there
// (DIR/<placement>-<variant>-<rep>.log: the engine's pre-copy, slice, freeze and commit lines).
//
// Variants, side by side in each repetition (order rotated):
//   plain        redis-server, no snapshot (the latency floor)
//   bgsave       redis-server, BGSAVE ×N during the run (each waits for the last to end)
//   nx-quiet     redis-server under numactlx --remap=3,F,size=… --membind=3, no snapshot
//   numactlx     the same, `numactlx snapshot --wait` ×N at the same times
//   nx-fork      numactlx with NUMACTLX_SNAPSHOT_CAPTURE=fork (each image held by a fork)
// The load: redis-benchmark -t set -r KEYS -d VALUE -c 50 -n (the plain run's rate ×
// --seconds), random keys over the whole keyspace, so every snapshot finds pages written.
// Events start 2 s into the load, one every (seconds − 4) / N s, each after the previous
// ended. Pinned: server (and numactlx) on CPU 0, redis-benchmark on CPU 1.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { numactlxCommit, runSync, sleep, rotate } from './lib/proc.mjs';
import { runAsync } from './lib/nxsession.mjs';
import { fmt, median, table } from './lib/stats.mjs';

const repo = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const { values: opt } = parseArgs({
  options: {
    keys: { type: 'string', default: '1000000' },
    value: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '30' },
    snapshots: { type: 'string', default: '5' },
    reps: { type: 'string', default: '1' },
    placement: { type: 'string', default: 'both' },
    numactlx: { type: 'string', default: path.join(repo, 'bin/numactlx') },
    port: { type: 'string', default: '7393' },
    dir: { type: 'string', default: '/var/tmp/numactlx-redis-bench' },
    variants: { type: 'string', default: 'plain,bgsave,nx-quiet,numactlx' },
    json: { type: 'string', default: '/tmp/numactlx-redis-snapshot-bench.json' },
    md: { type: 'string' },
    'latency-monitor': { type: 'string' },
    'debug-log': { type: 'string' },
  },
});
const KEYS = Number(opt.keys);
const SECONDS = Number(opt.seconds);
const EVENTS = Number(opt.snapshots);
const port = String(opt.port);
const cli = (...args) => runSync(['redis-cli', '-h', '127.0.0.1', '-p', port, ...args], { timeoutMs: 600_000 });
const log = (s) => process.stderr.write(`${s}\n`);

function ping() {
  const r = runSync(['redis-cli', '-h', '127.0.0.1', '-p', port, 'ping'], { allowFail: true, timeoutMs: 2000 });
  return r.status === 0 && r.stdout.trim() === 'PONG';
}

/** Starts redis-server (under numactlx when `nx`), fills KEYS keys; resolves { child, redisPid, env, fillMs }. */
async function startServer(nx, pin, dir, extraEnv = {}) {
  if (ping()) throw new Error(`something already answers on 127.0.0.1:${port}`);
  const server = ['redis-server', '--port', port, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', dir, '--enable-debug-command', 'yes',
    ...(opt['latency-monitor'] ? ['--latency-monitor-threshold', opt['latency-monitor']] : [])];
  const env = { ...process.env, ...extraEnv, NUMACTLX_RUNTIME_DIR: path.join(dir, 'run'), ...(opt['debug-log'] ? { NUMACTLX_DEBUG: '1' } : {}) };
  fs.mkdirSync(env.NUMACTLX_RUNTIME_DIR, { recursive: true, mode: 0o700 });
  let argv = nx ? [opt.numactlx, `--remap=3,${path.join(dir, 'node3.img')},size=4g`, '--membind=3', '--', ...server] : server;
  if (pin !== undefined) argv = ['taskset', '-c', String(pin), ...argv];
  // Its stderr goes to a file, not a pipe: this script waits in spawnSync (redis-cli) with
  // its event loop stopped, and a pipe nobody reads fills (64 KiB) — numactlx's NUMACTLX_DEBUG
  // lines then block its engine thread in write(2), and with it redis (DEBUG POPULATE hung).
  const errPath = path.join(dir, 'server.stderr');
  const errFd = fs.openSync(errPath, 'w', 0o600);
  const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'ignore', errFd] });
  fs.closeSync(errFd);
  const err = () => fs.readFileSync(errPath, 'utf8');
  const end = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  for (let waited = 0; !ping(); waited += 50) {
    if (child.exitCode !== null || child.signalCode !== null || waited > 30_000) {
      child.kill('SIGKILL');
      throw new Error(`${argv.join(' ')} did not answer PING: ${err()}`);
    }
    await sleep(50);
  }
  const t0 = performance.now();
  cli('debug', 'populate', String(KEYS), 'key', opt.value);
  const fillMs = performance.now() - t0;
  const redisPid = Number(/process_id:(\d+)/.exec(cli('info', 'server').stdout)?.[1]);
  return { child, end, redisPid, env, fillMs, err };
}

async function stopServer(s) {
  runSync(['redis-cli', '-h', '127.0.0.1', '-p', port, 'shutdown', 'nosave'], { allowFail: true, timeoutMs: 10_000 });
  const r = await Promise.race([s.end, sleep(30_000).then(() => undefined)]);
  if (!r) { s.child.kill('SIGKILL'); await s.end; throw new Error('the server did not end after shutdown nosave'); }
  return r;
}

/** One BGSAVE, to its end: { ms, forkMs }. */
async function bgsave() {
  const t0 = performance.now();
  cli('bgsave');
  for (;;) {
    const info = cli('info', 'persistence').stdout;
    if (/rdb_bgsave_in_progress:0/.test(info)) {
      if (!/rdb_last_bgsave_status:ok/.test(info)) throw new Error('BGSAVE failed');
      break;
    }
    await sleep(20);
  }
  const forkMs = Number(/latest_fork_usec:(\d+)/.exec(cli('info', 'stats').stdout)?.[1]) / 1000;
  return { ms: performance.now() - t0, forkMs };
}

/** One numactlx snapshot, answered: { ms, pause_ms, copy_ms, ... }. */
async function snapshot(s) {
  const r = await runAsync([opt.numactlx, 'snapshot', String(s.redisPid), '--wait', '--json'], { env: s.env });
  if (r.status !== 0) throw new Error(`numactlx snapshot failed: ${r.stderr}`);
  const a = JSON.parse(r.stdout);
  return { ms: r.wallMs, pause_ms: a.stats.pause_ms, copy_ms: a.stats.copy_ms, pages: a.stats.pages };
}

function parseCsv(text) {
  const line = text.split('\n').find((l) => l.startsWith('"SET"'));
  if (!line) throw new Error(`no SET line from redis-benchmark: ${text.slice(-500)}`);
  const [rps, avg, min, p50, p95, p99, max] = line.split(',').slice(1).map((x) => Number(x.replace(/"/g, '')));
  return { rps, avg, min, p50, p95, p99, max };
}

/** The commands that took --latency-monitor ms or more inside redis: [[seconds since t0Epoch, ms], …]. */
function slowCommands(t0Epoch) {
  // Redis 7 logs O(1) commands such as SET under 'fast-command', the others under 'command'.
  return ['command', 'fast-command'].flatMap((event) => {
    const out = cli('--csv', 'latency', 'history', event).stdout.trim();
    return out ? out.split('\n').map((l) => l.replace(/"/g, '').split(',').map(Number))
      .map(([at, ms]) => [Math.round((at - t0Epoch) * 10) / 10, ms]) : [];
  }).sort((a, b) => a[0] - b[0]);
}

async function runOne(variant, pin, requests, tag) {
  const dir = fs.mkdtempSync(path.join(opt.dir, `${variant}-`));
  const nx = variant.startsWith('nx') || variant === 'numactlx';
  const s = await startServer(nx, pin?.server, dir, variant === 'nx-fork' ? { NUMACTLX_SNAPSHOT_CAPTURE: 'fork' } : {});
  const run = { variant, fillMs: s.fillMs, events: [] };
  try {
    const benchArgv = ['redis-benchmark', '-h', '127.0.0.1', '-p', port, '-t', 'set', '-r', String(KEYS), '-d', opt.value,
      '-c', '50', '-n', String(requests), '--csv'];
    const t0 = performance.now();
    const t0Epoch = Date.now() / 1000;
    const bench = runAsync(benchArgv, { pin: pin?.client });
    let done = false;
    void bench.then(() => { done = true; });
    const every = ((SECONDS - 4) / EVENTS) * 1000;
    for (let i = 0; i < EVENTS && (variant === 'bgsave' || variant === 'numactlx' || variant === 'nx-fork'); i++) {
      const at = 2000 + i * every;
      const wait = at - (performance.now() - t0);
      if (wait > 0) await sleep(wait);
      if (done) { run.late = (run.late ?? 0) + 1; }
      const ev = variant === 'bgsave' ? await bgsave() : await snapshot(s);
      run.events.push({ at: performance.now() - t0, ...ev });
    }
    const r = await bench;
    if (r.status !== 0) throw new Error(`redis-benchmark failed: ${r.stderr}`);
    Object.assign(run, parseCsv(r.stdout), { wallMs: r.wallMs });
    run.rssKb = Number(/used_memory_rss:(\d+)/.exec(cli('info', 'memory').stdout)?.[1]) / 1024;
    if (opt['latency-monitor']) run.slow = slowCommands(t0Epoch);
  } finally {
    const how = await stopServer(s);
    if (opt['debug-log'] && nx) {
      fs.mkdirSync(opt['debug-log'], { recursive: true });
      fs.writeFileSync(path.join(opt['debug-log'], `${tag}.log`), s.err());
    }
    if (how.code !== 0 && !(nx && how.code === null)) log(`${variant}: server ended with ${how.code ?? how.signal}: ${s.err()}`);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return run;
}

async function main() {
  fs.mkdirSync(opt.dir, { recursive: true });
  const placements = { free: undefined, pinned: { server: 0, client: 1 } };
  const names = opt.placement === 'both' ? ['free', 'pinned'] : [opt.placement];
  const variants = opt.variants.split(',');
  const results = {};
  const head = `numactlx ${numactlxCommit(opt.numactlx)}, Linux ${os.release()}, ${os.cpus().length} CPUs, redis ${runSync(['redis-server', '--version']).stdout.split(' ')[2]}`;
  log(head);
  for (const name of names) {
    const pin = placements[name];
    // The request count: what plain redis serves in --seconds.
    const probe = await runOne('plain', pin, 200_000);
    const requests = Math.round(probe.rps * SECONDS);
    log(`${name}: plain ${fmt(probe.rps, 0)} SET/s → ${requests} requests a run`);
    results[name] = [];
    for (let rep = 0; rep < Number(opt.reps); rep++) {
      for (const v of rotate(variants, rep)) {
        const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
        const run = await runOne(v, pin, requests, `${name}-${v}-${rep + 1}`);
        run.load = load;
        results[name].push(run);
        log(`${name} rep ${rep + 1} ${v}: ${fmt(run.rps, 0)} SET/s, p50 ${run.p50} p99 ${run.p99} max ${run.max} ms; events ${run.events.map((e) => `${fmt(e.ms, 0)} ms${e.pause_ms !== undefined ? ` (pause ${fmt(e.pause_ms, 1)})` : ` (fork ${fmt(e.forkMs, 1)})`}`).join(', ')}${run.late ? `; ${run.late} after the load ended` : ''} (load ${load})` +
          (run.slow ? `\n  events at ${run.events.map((e) => fmt(e.at / 1000, 1)).join(', ')} s (ended); redis commands ≥ ${opt['latency-monitor']} ms [s, ms]: ${JSON.stringify(run.slow)}` : ''));
      }
    }
  }
  fs.writeFileSync(opt.json, JSON.stringify({ head, results }, null, 1));
  const md = [head, ''];
  const rows = [];
  for (const [name, runs] of Object.entries(results)) {
    const by = (v) => runs.filter((r) => r.variant === v);
    const med = (v, k) => median(by(v).map((r) => r[k]));
    for (const v of variants) {
      const evs = by(v).flatMap((r) => r.events);
      rows.push([name, v, fmt(med(v, 'rps'), 0), fmt(med(v, 'p50'), 3), fmt(med(v, 'p99'), 3), fmt(med(v, 'max'), 1),
        evs.length ? fmt(median(evs.map((e) => e.ms)), 0) : '—',
        evs.length ? fmt(median(evs.map((e) => e.pause_ms ?? e.forkMs)), 1) : '—']);
    }
    for (const nxv of ['numactlx', 'nx-fork'].filter((v) => variants.includes(v))) {
      const ratio = (k) => fmt(med(nxv, k) / med('bgsave', k), 2);
      rows.push([name, `${nxv} ÷ bgsave`, ratio('rps'), ratio('p50'), ratio('p99'), ratio('max'), '', '']);
    }
  }
  md.push(table(['placement', 'variant', 'SET/s', 'p50 ms', 'p99 ms', 'max ms', 'event ms (median)', 'pause / fork() ms (median)'], rows));
  const text = md.join('\n');
  if (opt.md) fs.writeFileSync(opt.md, text);
  process.stdout.write(`${text}\nraw results: ${opt.json}\n`);
}

main().catch((e) => { log(`redis-snapshot: ${e.stack ?? e}`); process.exit(1); });
