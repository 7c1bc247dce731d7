#!/usr/bin/env node
// Issue 10's fast writer on Linux 6.1: bench/fast_writer.c writing at full speed in the
// QEMU guest of test/guest/ (Debian 12's kernel, /dev/dax0.0 on an emulated NVDIMM),
// snapshot by `numactlx snapshot --wait` next to the same program forking itself
// (docs/BENCHMARKS.md, "Fast writer on Linux 6.1 (guest)"). One boot of test/guest/vm.sh
// runs bench/guest/fast-writer-in-guest.mjs; this script prepares it and reads its results.
//
//   node bench/guest-fast-writer.mjs [--size 64m] [--mode random64] [--reps 2]
//                                    [--backings dax,file] [--budget-s 1500] [--kernel KVER]
//                                    [--run-dir DIR] [--md FILE]
//   node bench/guest-fast-writer.mjs --results-only DIR/share/fast-writer.jsonl
//
// numactlx is the build of bench/snapshot.sh (one commit, under /tmp/numactlx-SHA), mounted
// in the guest as its project, and the guest script is that commit's; the writer is compiled
// here into the share. The guest's images and share are under --run-dir (default
// /var/tmp/numactlx-guest-fastwriter), apart from the suite's (/var/tmp/numactlx-guest) and
// bench/guest-programs.mjs's (/var/tmp/numactlx-guest-bench): vm.sh keeps everything of a
// boot under its NUMACTLX_GUEST_RUN, so the three can boot at the same time.
// TCG runs the guest on one host thread: only ratios mean anything. Ratios are of runs of
// the same repetition (order rotated), median (min–max) over the repetitions.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cell, fmt, median, summary, table } from './lib/stats.mjs';
import { HEADER, rows } from './lib/fast-writer.mjs';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const repo = path.dirname(benchDir);
const { values: opt } = parseArgs({
  options: {
    size: { type: 'string', default: '64m' }, mode: { type: 'string', default: 'random64' },
    reps: { type: 'string', default: '2' }, backings: { type: 'string', default: 'dax,file' },
    'budget-s': { type: 'string', default: '1500' }, kernel: { type: 'string' },
    'run-dir': { type: 'string', default: '/var/tmp/numactlx-guest-fastwriter' },
    md: { type: 'string' }, 'results-only': { type: 'string' },
  },
});

const share = path.join(opt['run-dir'], 'share');
const loadNow = () => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
let records;
if (opt['results-only']) {
  records = readJsonl(opt['results-only']);
} else {
  const numactlx = execFileSync(path.join(benchDir, 'snapshot.sh'), { encoding: 'utf8' }).trim();
  const project = path.dirname(path.dirname(numactlx));
  const commit = fs.readFileSync(path.join(project, 'COMMIT'), 'utf8').trim();
  fs.mkdirSync(path.join(share, 'bin'), { recursive: true });
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', path.join(share, 'bin/fast_writer'), path.join(benchDir, 'fast_writer.c')]);
  const out = path.join(share, 'fast-writer.jsonl');
  fs.rmSync(out, { force: true });
  const loads = [{ t: new Date().toISOString(), load: loadNow() }];
  const timer = setInterval(() => loads.push({ t: new Date().toISOString(), load: loadNow() }), 20_000);
  const vmArgs = ['--fresh', '--share', share, '--project', project, '--timeout', String(Number(opt['budget-s']) + 1200),
    '--env', `GUEST_BIN=${share}/bin`, '--env', `BENCH_REPS=${opt.reps}`, '--env', `GUEST_BENCH_BUDGET_S=${opt['budget-s']}`,
    '--env', `FW_SIZE=${opt.size}`, '--env', `FW_MODE=${opt.mode}`, '--env', `FW_BACKINGS=${opt.backings}`,
    ...(opt.kernel ? ['--kernel', opt.kernel] : []),
    `exec node ${JSON.stringify(path.join(project, 'bench/guest/fast-writer-in-guest.mjs'))}`];
  const t0 = Date.now();
  const code = await new Promise((resolve) => {
    spawn(path.join(repo, 'test/guest/vm.sh'), vmArgs, { stdio: 'inherit', env: { ...process.env, NUMACTLX_GUEST_RUN: opt['run-dir'] } })
      .on('close', resolve);
  });
  clearInterval(timer);
  loads.push({ t: new Date().toISOString(), load: loadNow() });
  console.log(`guest-fast-writer: vm.sh exit ${code} after ${Math.round((Date.now() - t0) / 1000)} s`);
  fs.appendFileSync(out, `${JSON.stringify({ kind: 'host', commit, loads, vmExit: code, bootS: Math.round((Date.now() - t0) / 1000) })}\n`);
  records = readJsonl(out);
}

function readJsonl(file) {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

// JSON keeps NaN as null
const num = (x) => (x === null || x === undefined ? NaN : x);
const runs = records.filter((r) => r.kind === 'run' && !r.failed)
  .map((r) => ({ ...r, figures: r.figures.map((f) => Object.fromEntries(Object.entries(f).map(([k, v]) => [k, num(v)]))) }));
const start = records.find((r) => r.kind === 'start') ?? {};
const host = records.find((r) => r.kind === 'host') ?? {};
const lines = [];
const say = (s = '') => { lines.push(s); };
say(`numactlx ${host.commit}, guest kernel ${start.kernel} (${start.cpus} vCPUs under TCG), fast_writer ${start.SIZE} ${start.MODE}, ` +
  `${start.reps} repetitions planned; events at ${start.AT_S} s and ${start.AT_S + start.GAP_S} s after ready.`);
const one = (host.loads ?? []).map((l) => Number(l.load.split(' ')[0]));
if (one.length) {
  say(`Host load average during the boot (${host.loads[0].t.slice(11, 16)}–${host.loads.at(-1).t.slice(11, 16)} UTC, every 20 s): ` +
    `at the start ${host.loads[0].load}, at the end ${host.loads.at(-1).load}; 1-minute median ${fmt(median(one), 1)}, ` +
    `max ${fmt(Math.max(...one), 1)}; the boot took ${host.bootS} s.`);
}
const doctor = records.find((r) => r.kind === 'doctor');
if (doctor) say(`doctor in the guest: exit ${doctor.exit}, degraded: ${doctor.error ?? ((doctor.degraded ?? []).join(', ') || 'none')}.`);
for (const r of records.filter((x) => x.failed)) say(`FAILED: ${r.kind} ${r.rep === undefined ? '' : `rep ${r.rep + 1} `}${r.variant ?? ''} ${r.backing ?? ''}: ${r.failed}`);
const budget = records.find((r) => r.kind === 'budget');
if (budget) say(`The time budget stopped the run before repetition ${budget.stoppedBefore + 1}.`);
say();

// The host's table: medians over the repetitions, per variant and backing.
const results = {};
const keyOf = (r) => (r.variant === 'fork' ? 'fork' : `${r.backing}/${r.variant}`);
for (const r of runs) (results[keyOf(r)] ??= []).push(r.figures);
say(`fast-writer ${start.SIZE} ${start.MODE} in the 6.1 guest, ${new Set(runs.map((r) => r.rep)).size} reps, medians`);
say();
say(table(['backing/variant', ...HEADER.slice(1)], rows(Object.fromEntries(Object.entries(results).sort()))));
say();

// The issue's ratios, per repetition: numactlx ÷ fork, and numactlx ÷ nx-idle on the same backing.
const find = (rep, variant, backing) => runs.find((r) => r.rep === rep && r.variant === variant && (variant === 'fork' || r.backing === backing));
const ratioRows = [];
const reps = [...new Set(runs.map((r) => r.rep))];
const backings = [...new Set(runs.filter((r) => r.variant !== 'fork').map((r) => r.backing))].sort();
for (const backing of backings) {
  for (const ev of [0, 1]) {
    const col = { slowNx: [], slowFork: [], slowest: [], stall: [], afterNx: [], afterFork: [], durable: [], durableFork: [], pause: [] };
    for (const rep of reps) {
      const nx = find(rep, 'numactlx', backing)?.figures[ev];
      const fork = find(rep, 'fork')?.figures[ev];
      const idle = find(rep, 'nx-idle', backing)?.figures[ev];
      if (nx) col.afterNx.push(nx.after / nx.before);
      if (fork) col.afterFork.push(fork.after / fork.before);
      if (nx) col.slowNx.push(nx.slowest / nx.before);
      if (fork) col.slowFork.push(fork.slowest / fork.before);
      if (nx && fork) {
        // 0 ÷ 0 (both writers stopped for a whole window) is left out: NaN
        col.slowest.push((nx.slowest / nx.before) / (fork.slowest / fork.before));
        col.stall.push(nx.stallMs / fork.stallMs);
        col.durableFork.push(nx.durableMs / fork.durableMs);
        col.pause.push(nx.pauseMs / fork.forkMs);
      }
      if (nx && idle) col.durable.push(nx.durableMs / idle.durableMs);
    }
    // the cell of the defined values, with their count when some were not (0 ÷ 0)
    const c = (xs, d = 2) => {
      const ok = xs.filter((x) => Number.isFinite(x));
      if (ok.length === 0) return `undefined (${xs.length} of ${xs.length})`;
      return `${cell(summary(ok), d)}${ok.length < xs.length ? ` [n=${ok.length}]` : ''}`;
    };
    ratioRows.push([backing, `#${ev + 1}`, String(col.stall.length), c(col.slowNx, 3), c(col.slowFork, 3), c(col.slowest, 3), c(col.stall), c(col.afterNx, 3), c(col.afterFork, 3),
      c(col.durable), c(col.durableFork), c(col.pause)]);
  }
}
say('Ratios per repetition, median (min–max); [n=K]: only K repetitions defined it (the others 0 ÷ 0 or ÷ 0):');
say();
say(table(['backing', 'event', 'n', 'slowest 250 ms / before: numactlx', '… fork', '… numactlx ÷ fork', 'longest stall: numactlx ÷ fork',
  'numactlx: 1 s after durable ÷ before', 'fork: 1 s after durable ÷ before', 'request→durable: numactlx ÷ nx-idle',
  'request→durable: numactlx ÷ fork', 'snapshot pause ÷ fork() ms'], ratioRows));
say();
const readyMed = (variant, backing) => median(runs.filter((r) => r.variant === variant && (!backing || r.backing === backing)).map((r) => r.readyMs));
say(`For scale only (TCG guest time, medians): spawn → writer ready ${fmt(readyMed('fork') / 1000, 1)} s plain, ` +
  backings.map((b) => `${fmt(readyMed('numactlx', b) / 1000, 1)} s under numactlx on ${b}`).join(', ') + '.');
const text = lines.join('\n');
console.log(`\n${text}`);
if (opt.md) fs.writeFileSync(opt.md, `${text}\n`);
