#!/usr/bin/env node
// One numactlx session of bench/fast_writer with two snapshots, as one timeline: the
// writer's gaps over 5 ms (from its 10 ms bins), numactlx's NUMACTLX_DEBUG lines (pre-copy
// passes and looks, the freeze's scan and copy, the commit's phases) stamped as they
// arrive, and every 250 ms what the writer's scheduler statistics say it did (ran, waited
// on a run queue, user and system time) — whether a gap was a wait for the CPU or a sleep
// in the kernel. For docs/BENCHMARKS.md "Fast writer: request→durable and the longest
// stall (issue 10 item 0)".
//
//   node bench/fast-writer-timeline.mjs NUMACTLX [SIZE=1g] [PINNED=0|1] [SECONDS=30] [MODE=random64]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const [nx, size = '1g', pinned = '0', secs = '30', mode = 'random64'] = process.argv.slice(2);
if (!nx) {
  process.stderr.write('usage: fast-writer-timeline.mjs NUMACTLX [SIZE] [PINNED] [SECONDS] [MODE]\n');
  process.exit(2);
}
const benchDir = path.dirname(fileURLToPath(import.meta.url));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'numactlx-timeline-'));
const writer = path.join(work, 'fast_writer');
execFileSync('cc', ['-O2', '-o', writer, path.join(benchDir, 'fast_writer.c')]);
const now = () => process.hrtime.bigint();
const runtime = path.join(work, 'rt');
fs.mkdirSync(runtime, { mode: 0o700 });
const env = { ...process.env, NUMACTLX_DEBUG: '1', NUMACTLX_RUNTIME_DIR: runtime };
let argv = [nx, `--remap=3,${path.join(work, 'n3.img')},size=4g`, '--membind=3', '--', writer, size, mode, secs];
if (pinned === '1') argv = ['taskset', '-c', '0', ...argv];
const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
let out = '';
let started = false;
const ready = new Promise((resolve) => child.stdout.on('data', (d) => {
  out += d;
  if (!started && /^ready/m.test(out)) { started = true; resolve(now()); }
}));
const events = []; // [time, line]
// Missing faults while the program fills its memory are thousands of lines: only later ones.
readline.createInterface({ input: child.stderr }).on('line', (l) => { if (started || !/ fault 0x/.test(l)) events.push([now(), l]); });
const ended = new Promise((resolve) => child.on('close', resolve));
const t0 = await ready;
const wpid = Number(execFileSync('pgrep', ['-n', '-f', `^${writer} `]).toString().trim());
const samples = [];
const sampler = setInterval(() => {
  try {
    const [run, wait] = fs.readFileSync(`/proc/${wpid}/schedstat`, 'utf8').trim().split(' ').map(Number);
    const st = fs.readFileSync(`/proc/${wpid}/stat`, 'utf8').split(') ')[1].split(' ');
    samples.push([now(), run / 1e6, wait / 1e6, Number(st[11]) * 10, Number(st[12]) * 10]);
  } catch { /* ended */ }
}, 250);
for (const at of [3, 7]) {
  while (now() < t0 + BigInt(at * 1e9)) await new Promise((r) => setTimeout(r, 5));
  const req = now();
  events.push([req, `>>> snapshot requested`]);
  const answer = await new Promise((resolve) => {
    const c = spawn(nx, ['snapshot', '--wait', '--json', String(child.pid)], { env });
    let o = '';
    c.stdout.on('data', (d) => { o += d; });
    c.on('close', () => resolve(o));
  });
  const done = now();
  let stats = '';
  try { stats = JSON.stringify(JSON.parse(answer).stats); } catch { stats = 'failed'; }
  events.push([done, `<<< durable after ${(Number(done - req) / 1e6).toFixed(0)} ms ${stats}`]);
}
await ended;
clearInterval(sampler);
for (let i = 1; i < samples.length; i++) {
  const [t, run, wait, user, sys] = samples[i];
  const p = samples[i - 1];
  events.push([t, `   sched: ran ${(run - p[1]).toFixed(0)} ms, waited ${(wait - p[2]).toFixed(0)} ms, user ${user - p[3]} sys ${sys - p[4]} ms`]);
}
const lines = out.split('\n');
const start = BigInt(lines.find((l) => l.startsWith('start ')).split(' ')[1]);
const at = lines.findIndex((l) => l.startsWith('bins '));
const bins = lines[at + 1].split(' ').map(Number);
const gaps = lines[at + 2].split(' ').map(Number);
gaps.forEach((g, i) => { if (g > 5000) events.push([start + BigInt(i * 1e7), `   gap ${(g / 1000).toFixed(1)} ms (turns in its 10 ms bin: ${bins[i]})`]); });
events.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
for (const [t, l] of events) process.stdout.write(`${(Number(t - t0) / 1e6).toFixed(1).padStart(9)} ${l}\n`);
const per = [];
for (let i = 0; i + 25 <= bins.length; i += 25) per.push(bins.slice(i, i + 25).reduce((a, b) => a + b, 0) * 4);
process.stdout.write(`turns/s per 250 ms: ${per.map((x) => `${Math.round(x / 1000)}k`).join(' ')}\n`);
fs.rmSync(work, { recursive: true, force: true });
