#!/usr/bin/env node
// Programs under numactlx on a real /dev/dax, in the Linux 6.1 guest, side by side with
// the same programs without numactlx (issue 9's benchmark; docs/BENCHMARKS.md, "Linux 6.1
// and /dev/dax in the guest"). One boot of test/guest/vm.sh runs
// bench/guest/programs-in-guest.mjs; this script prepares it and reads its results.
//
//   node bench/guest-programs.mjs [--reps 3] [--kernel KVER] [--budget-s 960] [--md FILE]
//                                 [--py-n 200000] [--redis-n 100000] [--pattern-size 64m]
//   node bench/guest-programs.mjs --results-only SHARE/bench.jsonl     # the report again
//
// numactlx is the build of bench/snapshot.sh (one commit, under /tmp/numactlx-SHA),
// mounted in the guest as its project; the C program is compiled here into the share.
// TCG runs the guest on one host thread: only ratios mean anything. Each ratio is
// numactlx ÷ plain of the same repetition (runs alternate, order rotated); reported as
// median (min–max) over the repetitions. "wall" is the whole run, numactlx's start-up
// and exit included; "work" is the time the program measured for its own work phase.
// The host's load average is sampled every 20 s during the boot and printed.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cell, fmt, median, summary, table } from './lib/stats.mjs';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const repo = path.dirname(benchDir);
const { values: opt } = parseArgs({
  options: {
    reps: { type: 'string', default: '3' }, kernel: { type: 'string' }, 'budget-s': { type: 'string', default: '960' },
    md: { type: 'string' }, 'results-only': { type: 'string' },
    'py-n': { type: 'string', default: '200000' }, 'redis-n': { type: 'string', default: '100000' }, 'pattern-size': { type: 'string', default: '64m' },
  },
});

const runDir = process.env.NUMACTLX_GUEST_RUN ?? '/var/tmp/numactlx-guest-bench';
const share = path.join(runDir, 'share');
const loads = [];
let commit;
let records;
if (opt['results-only']) {
  // re-reads an earlier run's bench.jsonl (and its sidecar) without booting
  records = fs.readFileSync(opt['results-only'], 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  commit = records.find((r) => r.kind === 'host')?.commit;
  loads.push(...(records.find((r) => r.kind === 'host')?.loads ?? []));
} else {
  const numactlx = execFileSync(path.join(benchDir, 'snapshot.sh'), { encoding: 'utf8' }).trim();
  const project = path.dirname(path.dirname(numactlx));
  commit = fs.readFileSync(path.join(project, 'COMMIT'), 'utf8').trim();
  fs.mkdirSync(path.join(share, 'bin'), { recursive: true });
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', path.join(share, 'bin/pattern_passes'), path.join(benchDir, 'pattern_passes.c')]);
  const out = path.join(share, 'bench.jsonl');
  fs.rmSync(out, { force: true });
  const load = () => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  loads.push({ t: new Date().toISOString(), load: load() });
  const timer = setInterval(() => loads.push({ t: new Date().toISOString(), load: load() }), 20_000);
  const vmArgs = ['--fresh', '--share', share, '--project', project, '--timeout', String(Number(opt['budget-s']) + 900),
    '--env', `GUEST_BIN=${share}/bin`, '--env', 'GUEST_FRESH=1', '--env', `BENCH_REPS=${opt.reps}`,
    '--env', `GUEST_BENCH_BUDGET_S=${opt['budget-s']}`, '--env', `PY_N=${opt['py-n']}`, '--env', `REDIS_N=${opt['redis-n']}`,
    '--env', `PAT_SIZE=${opt['pattern-size']}`, ...(opt.kernel ? ['--kernel', opt.kernel] : []),
    `exec node ${JSON.stringify(path.join(benchDir, 'guest/programs-in-guest.mjs'))}`];
  const t0 = Date.now();
  const code = await new Promise((resolve) => {
    spawn(path.join(repo, 'test/guest/vm.sh'), vmArgs, { stdio: 'inherit', env: { ...process.env, NUMACTLX_GUEST_RUN: runDir } })
      .on('close', resolve);
  });
  clearInterval(timer);
  loads.push({ t: new Date().toISOString(), load: load() });
  console.log(`guest-programs: vm.sh exit ${code} after ${Math.round((Date.now() - t0) / 1000)} s`);
  records = fs.existsSync(out) ? fs.readFileSync(out, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
  fs.appendFileSync(out, `${JSON.stringify({ kind: 'host', commit, loads })}\n`);
}

const runs = records.filter((r) => r.kind === 'run');
const start = records.find((r) => r.kind === 'start') ?? {};
const lines = [];
const say = (s = '') => { lines.push(s); };
say(`numactlx ${commit}, guest kernel ${start.kernel}, ${start.reps} repetitions planned; ` +
  `python3 ${start.PY_N} tuples, redis-benchmark SET ${start.REDIS_N} keys -P 32, pattern_passes ${start.PAT_SIZE} × 2 passes.`);
const one = loads.map((l) => Number(l.load.split(' ')[0]));
say(`Host load average during the boot (${loads[0]?.t.slice(11, 16)}–${loads.at(-1)?.t.slice(11, 16)} UTC, every 20 s): ` +
  `at the start ${loads[0]?.load}, at the end ${loads.at(-1)?.load}; 1-minute median ${fmt(median(one), 1)}, max ${fmt(Math.max(...one), 1)}.`);
const doctor = records.find((r) => r.kind === 'doctor');
if (doctor) say(`doctor in the guest: exit ${doctor.exit}, degraded: ${(doctor.degraded ?? []).join(', ') || doctor.error}.`);
const failed = runs.filter((r) => r.failed);
for (const f of failed) say(`FAILED: rep ${f.rep + 1} ${f.program} ${f.variant}: ${f.failed}`);
for (const r of records.filter((x) => (x.kind === 'format' || x.kind === 'warmup') && x.failed)) say(`FAILED ${r.kind}: ${r.failed}`);
const budget = records.find((r) => r.kind === 'budget');
if (budget) say(`The time budget stopped the run before repetition ${budget.stoppedBefore + 1}.`);
say();

const rows = [];
for (const program of ['true', 'pattern', 'python3', 'redis']) {
  const plain = new Map(runs.filter((r) => r.program === program && r.variant === 'plain' && !r.failed).map((r) => [r.rep, r]));
  for (const variant of ['dax', 'file']) {
    const nx = runs.filter((r) => r.program === program && r.variant === variant && !r.failed && plain.has(r.rep));
    if (nx.length === 0) { rows.push([program, variant, '0', '–', '–', '–', '–']); continue; }
    const wall = summary(nx.map((r) => r.wallMs / plain.get(r.rep).wallMs));
    const work = nx[0].workMs !== undefined ? cell(summary(nx.map((r) => r.workMs / plain.get(r.rep).workMs)), 2) : '–';
    const ready = nx[0].readyMs !== undefined ? cell(summary(nx.map((r) => r.readyMs / plain.get(r.rep).readyMs)), 1) : '–';
    // what numactlx's start-up and exit cost, in units of the plain program's whole run
    const overhead = nx[0].workMs !== undefined
      ? cell(summary(nx.map((r) => (r.wallMs - r.workMs) / plain.get(r.rep).wallMs)), 2) : '–';
    rows.push([program, variant, String(nx.length), cell(wall, 2), work, overhead, ready]);
  }
}
say(table(['program', 'backing', 'n', 'wall ratio numactlx ÷ plain', 'work ratio', '(nx wall − nx work) ÷ plain wall', 'redis ready ratio'], rows));
say();
const plainMed = (program, key) => median(runs.filter((r) => r.program === program && r.variant === 'plain' && !r.failed).map((r) => r[key]));
say(`For scale only (TCG guest time, plain, medians): /bin/true ${fmt(plainMed('true', 'wallMs'), 0)} ms; ` +
  ['pattern', 'python3', 'redis'].map((p) => `${p} wall ${fmt(plainMed(p, 'wallMs') / 1000, 1)} s, work ${fmt(plainMed(p, 'workMs') / 1000, 1)} s`).join('; ') +
  `; numactlx … /bin/true on dax ${fmt(median(runs.filter((r) => r.program === 'true' && r.variant === 'dax' && !r.failed).map((r) => r.wallMs)) / 1000, 1)} s.`);
for (const snap of records.filter((r) => r.kind === 'snapshot')) {
  const what = `Snapshot on dax of pattern_passes ${start.PAT_SIZE} held, writing ${snap.order === 'random' ? 'scattered' : 'in address order'}`;
  if (snap.failed) { say(`${what}: FAILED: ${snap.failed}`); continue; }
  const p1 = snap.pass1.writeMs + snap.pass1.readMs;
  say(`${what}: pause ${fmt(snap.stats?.pause_ms, 1)} ms = ${fmt(snap.stats?.pause_ms / p1, 3)} × the program's first pass; ` +
    `request→durable ${fmt(snap.durableMs / p1, 2)} × the first pass (${snap.stats?.new_pages} new pages, copy ${fmt(snap.stats?.copy_ms, 0)} ms); ` +
    `the rewrite right after the snapshot (6.1: write faults) ÷ the rewrite before it: write ${fmt(snap.pass3.writeMs / snap.pass2.writeMs, 2)}, ` +
    `read ${fmt(snap.pass3.readMs / snap.pass2.readMs, 2)}.`);
}
const text = lines.join('\n');
console.log(`\n${text}`);
if (opt.md) fs.writeFileSync(opt.md, `${text}\n`);
