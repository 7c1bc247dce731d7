#!/usr/bin/env node
// What a program writing at full speed feels of a snapshot, next to what it feels of
// forking itself (Redis BGSAVE's way) — the snapshot-speed issue's benchmark
// (docs/BENCHMARKS.md, "A program writing at full speed").
//
//   node bench/fast-writer.mjs [--size 1g] [--mode random64|seq] [--reps 2]
//                              [--placement pinned|unpinned|both] [--md FILE]
//                              [--variants plain,fork,nx-quiet,numactlx,nx-idle,nx-sync,nx-idle-sync]
//                              [--numactlx PATH] [--baseline PATH] [--seconds S]
//
// Variants, side by side in each repetition (order rotated):
//   plain      bench/fast_writer SIZE MODE, no numactlx, no snapshot (the rate ceiling)
//   fork       the same, sent SIGUSR2 twice (AT_S and AT_S+GAP_S after ready): it forks,
//              the child writes the whole memory to a file and exits; "durable" is when the
//              parent sees the child gone
//   numactlx   numactlx --remap=3,FILE,size=… --membind=3 -- fast_writer …, two snapshots
//              (`numactlx snapshot --wait`) at the same times: the first full, the second
//              of what the program wrote since; "durable" is the answer
//   nx-quiet   the same session, no snapshot (the rate under numactlx alone)
//   nx-idle    fast_writer idle (no writes) under numactlx, the same two snapshots: the
//              request-to-durable time of a program that does not write
//   nx-fork, nx-idle-fork  numactlx and nx-idle with NUMACTLX_SNAPSHOT_CAPTURE=fork (each
//              image held by a fork of the program made in the freeze)
//   nx-sync, nx-idle-sync  numactlx and nx-idle with NUMACTLX_DIRTY_TRACKING=sync (Linux
//              6.1's write faults and copy-before-write; numactlx and nx-idle use what the
//              kernel has: asynchronous dirty tracking and pre-copy on 6.7+)
// The snapshot's pause (pause_ms of its answer: for a pre-copy snapshot, the final copy of
// what was written since the pre-copy) is reported next to fork()'s own time.
// Per snapshot (or fork): the writer's rate in the second before the request, its slowest
// 250 ms window from the request to durable, its longest stall in that span, its rate in
// the second after durable, and request-to-durable. Ratios against the rate before.
// Pinned: the writer and numactlx on CPU 0 (taskset); unpinned: free.
// --numactlx PATH runs that build (bench/snapshot.sh COMMIT prints one; default this
// checkout's bin/numactlx); --baseline PATH adds each numactlx variant again under that
// build as `base:VARIANT`, in the same repetition, so two builds are compared side by side.
// --seconds: how long each writer runs (default 73 s with snapshots, 33 s without).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { table } from './lib/stats.mjs';
import { runAsync } from './lib/nxsession.mjs';
import { AT_S, GAP_S, TAIL_S, HEADER, completeForkEvents, figures, parseWriter, quietRate, rows } from './lib/fast-writer.mjs';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const repo = path.dirname(benchDir);
const { values: opt } = parseArgs({
  options: {
    numactlx: { type: 'string', default: path.join(repo, 'bin/numactlx') }, baseline: { type: 'string' },
    seconds: { type: 'string' },
    size: { type: 'string', default: '1g' }, mode: { type: 'string', default: 'random64' },
    reps: { type: 'string', default: '2' }, placement: { type: 'string', default: 'both' },
    md: { type: 'string' }, variants: { type: 'string', default: 'plain,fork,nx-quiet,numactlx,nx-idle,nx-sync,nx-idle-sync' },
  },
});
const now = () => process.hrtime.bigint();
const sleepUntil = async (t) => { while (now() < t) await new Promise((r) => setTimeout(r, 5)); };

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'numactlx-fastwriter-'));
const writer = path.join(work, 'fast_writer');
execFileSync('cc', ['-O2', '-o', writer, path.join(benchDir, 'fast_writer.c')]);

/** Runs one variant; returns the writer's record and each event's [request, durable] ns. */
async function runVariant(name, pinned) {
  const base = name.startsWith('base:');
  const variant = base ? name.slice(5) : name;
  const numactlx = base ? opt.baseline : opt.numactlx;
  const mode = variant.startsWith('nx-idle') ? 'idle' : opt.mode;
  const snapshots = variant === 'numactlx' || variant === 'nx-sync' || variant === 'nx-fork' || variant.startsWith('nx-idle');
  // Under load (a shared 2-vCPU VM) the first snapshot of 1 GiB took 25–30 s: more time for
  // the snapshot variants, so that the second one finds the program.
  const seconds = opt.seconds ? Number(opt.seconds) : AT_S + GAP_S + TAIL_S + (snapshots ? 60 : 20);
  const runtime = fs.mkdtempSync(path.join(work, 'rt-'));
  const backing = path.join(work, `node3-${variant}.img`);
  fs.rmSync(backing, { force: true });
  const env = { ...process.env, NUMACTLX_RUNTIME_DIR: runtime, FAST_WRITER_DUMP: path.join(work, 'dump.rdb') };
  if (variant.endsWith('sync')) env.NUMACTLX_DIRTY_TRACKING = 'sync';
  if (variant.endsWith('fork') && variant !== 'fork') env.NUMACTLX_SNAPSHOT_CAPTURE = 'fork';
  let argv = [writer, opt.size, mode, String(seconds)];
  const underNx = variant.startsWith('nx') || variant === 'numactlx';
  if (underNx) argv = [numactlx, `--remap=3,${backing},size=4g`, '--membind=3', '--', ...argv];
  if (pinned) argv = ['taskset', '-c', '0', ...argv];
  const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const ready = new Promise((resolve) => child.stdout.on('data', (d) => { out += d; if (/^ready/m.test(out)) resolve(now()); }));
  const ended = new Promise((resolve) => child.on('close', resolve));
  const t0 = await ready;
  const events = [];
  if (variant === 'fork' || snapshots) {
    for (const at of [AT_S, AT_S + GAP_S]) {
      await sleepUntil(t0 + BigInt(at * 1e9));
      const req = now();
      if (variant === 'fork') {
        process.kill(child.pid, 'SIGUSR2');
        events.push({ req });
      } else {
        const r = await runAsync([numactlx, 'snapshot', '--wait', '--json', String(child.pid)], { env });
        // A failed snapshot is a row of its own (its figures NaN), not the end of the run.
        if (r.status !== 0) process.stderr.write(`${variant}: snapshot failed: ${r.stderr}`);
        events.push({ req, done: now(), answer: r.status === 0 ? JSON.parse(r.stdout) : undefined, failed: r.status !== 0 });
      }
    }
  }
  await ended;
  const rec = parseWriter(out);
  if (variant === 'fork') completeForkEvents(rec, events);
  fs.rmSync(runtime, { recursive: true, force: true });
  fs.rmSync(backing, { force: true });
  return { ...rec, events };
}

let variants = opt.variants.split(',');
if (opt.baseline) variants = variants.flatMap((v) => (v === 'numactlx' || v.startsWith('nx') ? [v, `base:${v}`] : [v]));
const placements = opt.placement === 'both' ? [true, false] : [opt.placement === 'pinned'];
const results = {}; // key placement/variant → array of figures per event index
for (let rep = 0; rep < Number(opt.reps); rep++) {
  for (const pinned of placements) {
    const order = variants.map((_, i) => variants[(i + rep) % variants.length]);
    for (const v of order) {
      const rec = await runVariant(v, pinned);
      const key = `${pinned ? 'pinned' : 'unpinned'}/${v}`;
      results[key] ??= [];
      if (rec.events.length === 0) {
        results[key].push([{ before: quietRate(rec) }]);
      } else {
        results[key].push(rec.events.map((e) => figures(rec, e)));
      }
      process.stderr.write(`rep ${rep} ${key} done\n`);
    }
  }
}

const text = `fast-writer ${opt.size} ${opt.mode}, ${opt.reps} reps, medians; load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}\n\n${table(HEADER, rows(results))}\n`;
process.stdout.write(text);
if (opt.md) fs.writeFileSync(opt.md, text);
fs.rmSync(work, { recursive: true, force: true });
