// Benchmark 3 — redis-benchmark against redis-server on 127.0.0.1, plain vs under
// numactlx on node 3 (every anonymous private mapping of the server on the virtual
// node). Runs alternate plain / numactlx, each on a fresh server; the server is shut
// down with `redis-cli -p PORT shutdown nosave`. Only loopback traffic, every client
// run bounded by a timeout (redis-benchmark retries forever on a closed port, so the
// server is pinged first).
//   redis-server --port PORT --bind 127.0.0.1 --save '' --appendonly no
//   redis-benchmark -h 127.0.0.1 -p PORT -t set,get -c 50 -n 200000 -q -P 1
//   and, as an extra, -P 16 with 10× the requests (-n 2000000): at ~1.5 M requests/s,
//   200000 pipelined requests last 0.15 s, too short to resolve a 5 % difference.
// Placements: "free" (nothing pinned) and "server cpu0, client cpu1" (taskset).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cpuRecord, machineCpu, processCpu } from './lib/cpu.mjs';
import { loadNote } from './lib/matrix.mjs';
import { quietRep, rotate, runSync, sleep } from './lib/proc.mjs';
import { cell, fmt, pairedRatios, summary, table } from './lib/stats.mjs';

const TESTS = ['SET', 'GET'];

function ping(port) {
  const r = runSync(['redis-cli', '-h', '127.0.0.1', '-p', String(port), 'ping'], { allowFail: true, timeoutMs: 2000 });
  return r.status === 0 && r.stdout.trim() === 'PONG';
}

function exited(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

async function startServer(argv, port, pin, logFile) {
  if (ping(port)) throw new Error(`something already answers on 127.0.0.1:${port}; pick another --redis-port`);
  const full = pin === undefined ? argv : ['taskset', '-c', String(pin), ...argv];
  const log = fs.openSync(logFile, 'w');
  const child = spawn(full[0], full.slice(1), { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  const end = exited(child);
  for (let waited = 0; waited < 20_000; waited += 50) {
    if (ping(port)) return { child, end };
    if (child.exitCode !== null || child.signalCode !== null) break;
    await sleep(50);
  }
  child.kill('SIGKILL');
  await end;
  throw new Error(`${full.join(' ')} did not answer PING on port ${port}:\n${fs.readFileSync(logFile, 'utf8')}`);
}

async function stopServer({ child, end }, port) {
  runSync(['redis-cli', '-h', '127.0.0.1', '-p', String(port), 'shutdown', 'nosave'], { allowFail: true, timeoutMs: 5000 });
  const timeout = sleep(15_000).then(() => 'timeout');
  if ((await Promise.race([end, timeout])) === 'timeout') {
    child.kill('SIGTERM');
    if ((await Promise.race([end, sleep(5000).then(() => 'timeout')])) === 'timeout') child.kill('SIGKILL');
    await end;
    throw new Error(`the server (pid ${child.pid}) did not exit after shutdown nosave`);
  }
  return end;
}

function parseRps(text) {
  const out = {};
  for (const t of TESTS) {
    const all = [...text.matchAll(new RegExp(`${t}: ([\\d.]+) requests per second`, 'g'))];
    if (all.length === 0) throw new Error(`no ${t} result in redis-benchmark output:\n${text.slice(-2000)}`);
    out[t] = Number(all[all.length - 1][1]);
  }
  return out;
}

export async function runRedis(ctx) {
  const port = ctx.redisPort;
  const n = ctx.quick ? 50000 : 200000;
  const reps = ctx.reps ?? (ctx.quick ? 1 : 3);
  const pipelines = [1, 16];
  const statsFile = path.join(ctx.tmp, 'redis-stats.json');
  const logFile = path.join(ctx.tmp, 'redis-server.log');
  const serverArgs = ['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  const list = [
    { id: 'plain', argv: serverArgs },
    { id: 'numactlx', argv: [...ctx.numactlxArgv, '--stats', statsFile, '--', ...serverArgs] },
  ];
  const placements = [
    { name: 'free', server: undefined, client: undefined },
    { name: 'server cpu0, client cpu1', server: 0, client: 1 },
  ];
  const results = {};
  const discarded = {};
  const cli = (...args) => runSync(['redis-cli', '-h', '127.0.0.1', '-p', String(port), ...args], { timeoutMs: 5000 });
  const runOne = async (v, pl, p) => {
    fs.rmSync(statsFile, { force: true });
    const server = await startServer(v.argv, port, pl.server, logFile);
    let run;
    try {
      // The CPU the server side uses during the benchmark: redis-server, and numactlx
      // (its node process, all threads) when it is there; with the client's, "own" CPU.
      const redisPid = Number(/process_id:(\d+)/.exec(cli('info', 'server').stdout)?.[1]);
      const pids = [...new Set([redisPid, server.child.pid])];
      const before = machineCpu();
      const serverBefore = pids.reduce((a, pid) => a + processCpu(pid), 0);
      const bench = runSync(['redis-benchmark', '-h', '127.0.0.1', '-p', String(port), '-t', 'set,get', '-c', '50',
        '-n', String(p > 1 ? n * 10 : n), '-q', '-P', String(p)], { pin: pl.client, timeoutMs: 300_000, cpu: true });
      const serverS = pids.reduce((a, pid) => a + processCpu(pid), 0) - serverBefore;
      run = { id: v.id, ...parseRps(bench.stdout), wallMs: bench.wallMs, cpu: cpuRecord(before, bench.cpu.ownS + serverS, bench.wallMs) };
      run.rss = Number(/used_memory_rss:(\d+)/.exec(cli('info', 'memory').stdout)?.[1]);
    } finally {
      const how = await stopServer(server, port);
      if (how.code !== 0) ctx.log(`redis: ${v.id} server ended with ${how.code ?? how.signal}`);
    }
    if (v.id === 'numactlx') run.pagesPlaced = JSON.parse(fs.readFileSync(statsFile, 'utf8')).nodes[0].pages_placed;
    return run;
  };
  for (const pl of placements) {
    for (const p of pipelines) {
      const key = `${pl.name}, -P ${p}`;
      const byId = { plain: [], numactlx: [] };
      discarded[key] = 0;
      for (let rep = 0; rep < reps; rep++) {
        const once = async (r) => {
          const runs = [];
          for (const v of rotate(list, r)) {
            const run = await runOne(v, pl, p);
            ctx.log(`redis ${key} rep ${r + 1}/${reps} ${v.id}: SET ${fmt(run.SET)} GET ${fmt(run.GET)} req/s ` +
              `(others ${fmt(run.cpu.foreign * 100, 0)}% CPU)`);
            runs.push(run);
          }
          return runs;
        };
        const { runs, discarded: d } = await quietRep(ctx, `redis ${key}`, once, rep);
        discarded[key] += d;
        for (const run of runs) byId[run.id].push(run);
      }
      results[key] = byId;
    }
  }
  return { n, reps, port, results, discarded };
}

export function reportRedis({ n, reps, results, discarded }) {
  const rows = [];
  let placed;
  for (const [key, r] of Object.entries(results)) {
    for (const t of TESTS) {
      const plain = r.plain.map((x) => x[t]);
      const nx = r.numactlx.map((x) => x[t]);
      const ratio = summary(pairedRatios(nx, plain));
      rows.push([key, t, cell(summary(plain), 0), cell(summary(nx), 0), cell(ratio, 3),
        ratio.median >= 0.95 ? 'met (≥ 0.95)' : 'missed (< 0.95)']);
    }
    placed ??= summary(r.numactlx.map((x) => x.pagesPlaced));
  }
  return [
    `-c 50 -n ${n} (-n ${n * 10} with -P 16); ${reps} runs each of plain and numactlx, alternating, a fresh server per run. ` +
      'Cells: median (min–max) requests/s; the ratio is numactlx÷plain of runs side by side.',
    '',
    table(['placement, pipeline', 'test', 'plain req/s', 'numactlx req/s', 'ratio', 'target'], rows),
    '',
    `Pages of the server placed on node 3 (numactlx --stats, median): ${fmt(placed?.median ?? NaN, 0)}.`,
    '',
    loadNote(Object.fromEntries(Object.entries(results).map(([k, r]) => [k, r])), discarded),
  ].join('\n');
}
