#!/usr/bin/env node
// stress-ng's vm stressor (every page rewritten and verified, at full speed) with a
// snapshot every 8 s — the snapshot-speed issue's benchmark (docs/BENCHMARKS.md, "A
// program writing at full speed"): bogo ops with snapshots ≥ 0.8× without, and no
// verify error.
//
// stress-ng's default vm method ("all") cycles through methods whose bogo ops count at very
// different rates, so its count is a staircase in time, not a rate: alone on this VM it
// stays at ≈ 1.30 M from 7 s to 12 s of a run (measured 2026-12-05, BENCHMARKS "Stop 24").
// A ratio of two counts then says little more than which stair each run reached;
// `--vm-method flip` (every byte of the buffer flipped and verified, counted evenly) gives
// a count that grows with the work done.
//
//   node bench/stress-ng-snapshot.mjs [--seconds 40] [--every 8] [--vm 2] [--vm-bytes 1G]
//        [--vm-method all] [--reps 1] [--numactlx PATH] [--baseline PATH] [--dir /var/tmp/numactlx-stress-bench] [--json FILE]
//
// Variants, side by side in each repetition (order rotated):
//   plain      stress-ng --vm 2 --vm-bytes 1G --vm-keep --verify -t 40s --metrics-brief
//   nx-quiet   the same under numactlx --remap=3,F,size=8g --membind=3 --keep 2, no snapshot
//   numactlx   the same with --schedule '*/8 * * * * *' (a snapshot every 8 s, numactlx's
//              cron schedule), --stats FILE: the snapshots taken, merged, missed
//   nx-sync    numactlx with NUMACTLX_DIRTY_TRACKING=sync (Linux 6.1's write faults)
//   nx-fork    numactlx with NUMACTLX_SNAPSHOT_CAPTURE=fork (each image held by a fork)
//   baseline   numactlx as 'numactlx', another build (--baseline PATH: bench/snapshot.sh COMMIT)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { numactlxCommit, rotate, runSync } from './lib/proc.mjs';
import { runAsync } from './lib/nxsession.mjs';
import { fmt, median, table } from './lib/stats.mjs';

const repo = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const { values: opt } = parseArgs({
  options: {
    seconds: { type: 'string', default: '40' },
    every: { type: 'string', default: '8' },
    vm: { type: 'string', default: '2' },
    'vm-bytes': { type: 'string', default: '1G' },
    'vm-method': { type: 'string', default: 'all' },
    reps: { type: 'string', default: '1' },
    numactlx: { type: 'string', default: path.join(repo, 'bin/numactlx') },
    baseline: { type: 'string' },
    dir: { type: 'string', default: '/var/tmp/numactlx-stress-bench' },
    variants: { type: 'string', default: 'plain,nx-quiet,numactlx,nx-sync' },
    json: { type: 'string', default: '/tmp/numactlx-stress-ng-bench.json' },
    md: { type: 'string' },
  },
});
const log = (s) => process.stderr.write(`${s}\n`);
const stress = ['stress-ng', '--vm', opt.vm, '--vm-bytes', opt['vm-bytes'], '--vm-keep', '--verify',
  ...(opt['vm-method'] === 'all' ? [] : ['--vm-method', opt['vm-method']]), '-t', `${opt.seconds}s`, '--metrics-brief'];

async function runOne(variant) {
  const dir = fs.mkdtempSync(path.join(opt.dir, `${variant}-`));
  const stats = path.join(dir, 'stats.json');
  const env = { ...process.env, NUMACTLX_RUNTIME_DIR: dir };
  if (variant === 'nx-sync') env.NUMACTLX_DIRTY_TRACKING = 'sync';
  if (variant === 'nx-fork') env.NUMACTLX_SNAPSHOT_CAPTURE = 'fork';
  const nx = [variant === 'baseline' ? opt.baseline : opt.numactlx, `--remap=3,${path.join(dir, 'node3.img')},size=8g`, '--membind=3', '--keep', '2', '--stats', stats];
  const argv = variant === 'plain' ? stress
    : variant === 'nx-quiet' ? [...nx, '--', ...stress]
      : [...nx, '--schedule', `*/${opt.every} * * * * *`, '--', ...stress];
  try {
    const r = await runAsync(argv, { env });
    const out = `${r.stdout}\n${r.stderr}`;
    const m = /metrc: \[\d+\] vm\s+(\d+)\s+([\d.]+)/.exec(out);
    const run = { variant, status: r.status, signal: r.signal, wallMs: r.wallMs, bogo: m ? Number(m[1]) : NaN,
      // stress-ng's own verify failures ("stress-ng: fail: … detected memory error"); numactlx's
      // lines (a tick after the program ended "failed") are shown, not counted.
      verifyErrors: (out.match(/^stress-ng: fail:.*$/gm) ?? []).length, tail: out.split('\n').filter((l) => /fail|error|numactlx:/i.test(l)).slice(0, 5) };
    if (variant !== 'plain' && fs.existsSync(stats)) {
      const s = JSON.parse(fs.readFileSync(stats, 'utf8'));
      run.triggers = s.triggers?.schedules;
      run.snapshots = s.triggers?.recent;
      run.dirty_tracking = s.dirty_tracking;
      run.slices = s.precopy_slices;
      run.captureForks = s.events?.capture_forks ?? 0;
    }
    return run;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  fs.mkdirSync(opt.dir, { recursive: true });
  const head = `numactlx ${numactlxCommit(opt.numactlx)}, Linux ${os.release()}, ${os.cpus().length} CPUs, ${runSync(['stress-ng', '--version']).stdout.trim()}, vm method ${opt['vm-method']}`;
  log(head);
  const variants = [...opt.variants.split(','), ...(opt.baseline ? ['baseline'] : [])];
  if (opt.baseline) log(`baseline: numactlx ${numactlxCommit(opt.baseline)} with the same snapshots`);
  const runs = [];
  for (let rep = 0; rep < Number(opt.reps); rep++) {
    for (const v of rotate(variants, rep)) {
      const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
      const run = { ...(await runOne(v)), load, rep };
      runs.push(run);
      const t = run.triggers?.[0];
      log(`rep ${rep + 1} ${v}: ${run.bogo} bogo ops, exit ${run.status ?? run.signal}, verify failures ${run.verifyErrors}${t ? `; schedule: ${t.ticks} ticks, ${t.taken} snapshots, ${t.merged} merged, ${t.missed} missed, ${t.failed} failed; pause/copy ms ${(run.snapshots ?? []).map((x) => `${fmt(x.pause_ms, 1)}/${fmt(x.copy_ms, 0)}`).join(' ')}` : ''}${run.slices ? `; slices ${run.slices.slices} (${fmt(run.slices.stopped_ms, 0)} ms stopped, ${run.slices.stalled ?? '-'} stalled)` : ''}${run.captureForks ? `, capture forks ${run.captureForks}` : ''} (load ${load})${run.tail.length ? `\n  ${run.tail.join('\n  ')}` : ''}`);
    }
  }
  fs.writeFileSync(opt.json, JSON.stringify({ head, runs }, null, 1));
  const med = (v) => median(runs.filter((r) => r.variant === v).map((r) => r.bogo));
  const rows = variants.map((v) => {
    const rs = runs.filter((r) => r.variant === v);
    const t = rs.map((r) => r.triggers?.[0]).filter(Boolean);
    return [v, fmt(med(v), 0), fmt(med(v) / med('nx-quiet'), 2), fmt(med(v) / med('plain'), 2),
      t.length ? t.map((x) => `${x.taken}/${x.ticks}`).join(', ') : '—',
      String(rs.reduce((n, r) => n + r.verifyErrors + (r.status === 0 ? 0 : 1), 0))];
  });
  const text = [head, '', table(['variant', 'bogo ops (median)', '÷ nx-quiet', '÷ plain', 'snapshots taken / ticks', 'failed runs or verify errors'], rows)].join('\n');
  if (opt.md) fs.writeFileSync(opt.md, text);
  process.stdout.write(`${text}\nraw results: ${opt.json}\n`);
}

main().catch((e) => { log(`stress-ng-snapshot: ${e.stack ?? e}`); process.exit(1); });
