#!/usr/bin/env node
// numactlx benchmarks (see docs/BENCHMARKS.md for the method and the results).
//
//   node bench/run.mjs [--quick] [BENCH...]
//     BENCH: fault | sparse | mmap | redis | startup | trapped | programs (default: all, in that order)
//     --quick              smaller sizes and fewer repetitions (a smoke run, ~2 min)
//     --reps N             repetitions per variant (default: fault 5, sparse 3, mmap 5, redis 3,
//                          startup 20, trapped 5, programs 5)
//     --placement P        pinned | unpinned | both (default both; pinned = taskset -c 0)
//     --numactlx PATH      the numactlx to measure (default: bin/numactlx of this checkout;
//                          run `npm run build` first)
//     --baseline PATH      another numactlx (e.g. "$(bench/snapshot.sh main)") measured side by
//                          side where a benchmark supports it (startup, trapped, programs)
//     --redis-port PORT    default 7390
//     --max-foreign F      run a repetition again when other processes took more than F
//                          of one CPU during one of its runs (default 0.25; the VM is shared)
//     --retries N          at most N such repeats per repetition (default 3); before each
//                          attempt, wait up to --max-wait S seconds (default 300) for a
//                          quiet second (less than F of a CPU busy)
//     --json FILE          raw results (default /tmp/numactlx-bench-results.json)
//     --md FILE            also write the Markdown report there
//     --from-json FILE     measure nothing: print the report of the raw results in FILE
//
// Needs root (userfaultfd, ptrace), cc, taskset; redis-server/redis-benchmark for redis.
// The C programs are compiled into bench/bin/ (not tracked: add bench/bin/ to .gitignore).
// The virtual node's backing is a 2 GiB file in a temporary directory under /tmp,
// removed at the end.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildPrograms } from './lib/build.mjs';
import { removeTimeFile, runSync } from './lib/proc.mjs';
import { reportFault, runFault } from './fault.mjs';
import { reportMmap, runMmap } from './mmap.mjs';
import { reportRedis, runRedis } from './redis.mjs';
import { reportSparse, runSparse } from './sparse.mjs';
import { reportStartup, runStartup } from './startup.mjs';
import { reportTrapped, runTrapped } from './trapped.mjs';
import { reportPrograms, runPrograms } from './programs.mjs';

const BENCHES = {
  fault: { title: '1. Fault service', run: runFault, report: reportFault },
  sparse: { title: '1c. Fault-ahead on sparse access', run: runSparse, report: reportSparse },
  mmap: { title: '2. Trapped mmap + munmap', run: runMmap, report: reportMmap },
  redis: { title: '3. redis-benchmark', run: runRedis, report: reportRedis },
  startup: { title: '4. Start-up', run: runStartup, report: reportStartup },
  trapped: { title: '5. Trapped calls: mmap, brk, fork', run: runTrapped, report: reportTrapped },
  programs: { title: '6. Real programs: ruby, git, sqlite3, make -j2, gcc', run: runPrograms, report: reportPrograms },
};

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const repo = path.dirname(benchDir);

function readOr(file, fallback = '') {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return fallback;
  }
}

function machine(numactlx) {
  const cpu = /model name\s*:\s*(.*)/.exec(readOr('/proc/cpuinfo'))?.[1] ?? os.cpus()[0]?.model;
  const nxRepo = path.dirname(path.dirname(fs.realpathSync(numactlx)));
  // A checkout, or a tree exported with `git archive` holding the commit in a COMMIT file.
  const commit = runSync(['git', '-C', nxRepo, 'rev-parse', '--short', 'HEAD'], { allowFail: true }).stdout.trim()
    || readOr(path.join(nxRepo, 'COMMIT')).slice(0, 7);
  return {
    kernel: os.release(),
    cpus: os.cpus().length,
    cpu,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    thp: readOr('/sys/kernel/mm/transparent_hugepage/enabled'),
    node: process.version,
    numactlx: numactlx,
    numactlxCommit: commit || 'unknown',
    date: new Date().toISOString(),
  };
}

/** The Markdown report of raw results. */
function render(raw, names) {
  const info = raw.machine;
  const header = `Machine: Linux ${info.kernel}, ${info.cpus} vCPUs (${info.cpu}), ${info.memGiB} GiB, THP \`${info.thp}\`, ` +
    `Node ${info.node}; numactlx ${info.numactlxCommit}; ${info.date}${raw.quick ? '; --quick' : ''}.\n`;
  const sections = names.map((name) => `### ${BENCHES[name].title}\n\n${BENCHES[name].report(raw.results[name])}\n`);
  return [header, ...sections].join('\n');
}

function usage(msg) {
  process.stderr.write(`run.mjs: ${msg}\nusage: node bench/run.mjs [--quick] [--reps N] [--placement pinned|unpinned|both] ` +
    `[--numactlx PATH] [--baseline PATH] [--redis-port PORT] [--max-foreign F] [--retries N] [--max-wait S] [--json FILE] [--md FILE] [${Object.keys(BENCHES).join('|')} ...]\n`);
  process.exit(2);
}

async function main() {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        quick: { type: 'boolean', default: false },
        reps: { type: 'string' },
        placement: { type: 'string', default: 'both' },
        numactlx: { type: 'string', default: path.join(repo, 'bin', 'numactlx') },
        baseline: { type: 'string' },
        'redis-port': { type: 'string', default: '7390' },
        'max-foreign': { type: 'string', default: '0.25' },
        retries: { type: 'string', default: '3' },
        'max-wait': { type: 'string', default: '300' },
        json: { type: 'string', default: '/tmp/numactlx-bench-results.json' },
        md: { type: 'string' },
        'from-json': { type: 'string' },
      },
    });
  } catch (err) {
    usage(err.message);
  }
  const { values: o, positionals } = parsed;
  if (o['from-json']) {
    const raw = JSON.parse(fs.readFileSync(o['from-json'], 'utf8'));
    const md = render(raw, Object.keys(raw.results));
    process.stdout.write(md);
    if (o.md) fs.writeFileSync(o.md, md);
    return;
  }
  const names = positionals.length ? positionals : Object.keys(BENCHES);
  for (const n of names) if (!BENCHES[n]) usage(`unknown benchmark '${n}' (choose from ${Object.keys(BENCHES).join(', ')})`);
  const reps = o.reps === undefined ? undefined : Number(o.reps);
  if (reps !== undefined && !(Number.isInteger(reps) && reps > 0)) usage(`bad --reps '${o.reps}' (a positive integer)`);
  const pinModes = { pinned: [{ name: 'pinned', pin: 0 }], unpinned: [{ name: 'unpinned', pin: undefined }] };
  pinModes.both = [...pinModes.pinned, ...pinModes.unpinned];
  if (!pinModes[o.placement]) usage(`bad --placement '${o.placement}' (pinned, unpinned or both)`);
  const redisPort = Number(o['redis-port']);
  if (!(Number.isInteger(redisPort) && redisPort > 0 && redisPort < 65536)) usage(`bad --redis-port '${o['redis-port']}'`);
  const maxForeign = Number(o['max-foreign']);
  if (!(maxForeign >= 0)) usage(`bad --max-foreign '${o['max-foreign']}' (a fraction of one CPU, e.g. 0.25)`);
  const retries = Number(o.retries);
  if (!(Number.isInteger(retries) && retries >= 0)) usage(`bad --retries '${o.retries}' (0 or more)`);
  const maxWaitS = Number(o['max-wait']);
  if (!(Number.isInteger(maxWaitS) && maxWaitS >= 0)) usage(`bad --max-wait '${o['max-wait']}' (seconds)`);
  if (process.getuid() !== 0) usage('run as root (numactlx needs userfaultfd and ptrace)');
  const numactlx = path.resolve(o.numactlx);
  const nxRepo = path.dirname(path.dirname(fs.realpathSync(numactlx)));
  if (!fs.existsSync(path.join(nxRepo, 'dist'))) usage(`${nxRepo}/dist is missing: run \`npm run build\` there first`);

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'numactlx-bench-'));
  const backing = path.join(tmp, 'node3.img');
  const cleanUp = () => {
    fs.rmSync(tmp, { recursive: true, force: true });
    removeTimeFile();
  };
  process.on('exit', cleanUp);
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

  const ctx = {
    bins: buildPrograms(benchDir),
    numactlx,
    baseline: o.baseline && { path: path.resolve(o.baseline), commit: machine(path.resolve(o.baseline)).numactlxCommit },
    numactlxArgv: [numactlx, `--remap=3,${backing},size=2g`, '--membind=3'],
    backing,
    tmp,
    quick: o.quick,
    reps,
    pinModes: pinModes[o.placement],
    redisPort,
    maxForeign,
    retries,
    maxWaitS,
    log: (line) => process.stderr.write(`${line}\n`),
  };
  const info = machine(numactlx);
  ctx.log(`numactlx ${info.numactlxCommit} on Linux ${info.kernel}, ${info.cpus} CPUs (${info.cpu}), ${info.memGiB} GiB`);

  const raw = { machine: info, quick: o.quick, results: {} };
  for (const name of names) {
    const t0 = Date.now();
    raw.results[name] = await BENCHES[name].run(ctx);
    ctx.log(`${name}: done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    fs.writeFileSync(o.json, `${JSON.stringify(raw, null, 2)}\n`);
  }
  const md = render(raw, names);
  process.stdout.write(md);
  if (o.md) fs.writeFileSync(o.md, md);
  ctx.log(`raw results: ${o.json}`);
}

main().catch((err) => {
  process.stderr.write(`run.mjs: ${err.stack ?? err}\n`);
  process.exit(1);
});
