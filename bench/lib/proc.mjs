// Running the programs a benchmark measures: synchronously (the C programs, /bin/true),
// with an optional CPU pin through taskset, and a wall-clock time taken around the
// spawn. Output lines of key=value pairs (what bench/*.c print) are parsed here.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cpuRecord, machineCpu } from './cpu.mjs';

/**
 * Waits (up to `maxWaitS`) until the machine (or CPU `cpu`) has been quiet for a
 * second: less than `maxBusy` of one CPU busy. Returns the seconds waited.
 */
export async function waitQuiet(maxBusy, maxWaitS, cpu) {
  for (let waited = 0; waited < maxWaitS; waited++) {
    const before = machineCpu(cpu).busy;
    await sleep(1000);
    if (machineCpu(cpu).busy - before <= maxBusy) return waited;
  }
  return maxWaitS;
}

const timeFile = path.join(os.tmpdir(), `numactlx-bench-time-${process.pid}`);

/** Removes the file /usr/bin/time writes to (call at exit). */
export function removeTimeFile() {
  fs.rmSync(timeFile, { force: true });
}

/**
 * Runs argv (pinned to `pin` when given); throws with stderr on a non-zero exit.
 * With `cpu: true` the command runs under /usr/bin/time and the result carries
 * `cpu` (see cpu.mjs): its own CPU time and how much the rest of the machine took.
 */
export function runSync(argv, { pin, timeoutMs = 600_000, allowFail = false, env, cpu = false } = {}) {
  let full = pin === undefined ? argv : ['taskset', '-c', String(pin), ...argv];
  if (cpu) full = ['/usr/bin/time', '-f', '%U %S', '-o', timeFile, ...full];
  const before = cpu ? machineCpu(pin) : undefined;
  const t0 = process.hrtime.bigint();
  const r = spawnSync(full[0], full.slice(1), { encoding: 'utf8', timeout: timeoutMs, env: env ?? process.env, maxBuffer: 64 << 20 });
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.error) throw new Error(`${full.join(' ')}: ${r.error.message}`);
  if (!allowFail && (r.status !== 0 || r.signal)) {
    throw new Error(`${full.join(' ')}: exit ${r.status ?? r.signal}\n${r.stderr}${r.stdout}`);
  }
  const out = { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, wallMs };
  if (cpu) {
    const [u, s] = fs.readFileSync(timeFile, 'utf8').trim().split('\n').pop().split(' ').map(Number);
    out.cpu = cpuRecord(before, u + s, wallMs, pin);
  }
  return out;
}

/** The last line of `text` holding `key=`, as an object of numbers (strings when not numeric). */
export function parseKv(text, key) {
  const line = text.split('\n').reverse().find((l) => l.includes(`${key}=`));
  if (!line) throw new Error(`no line with ${key}= in output:\n${text}`);
  const out = {};
  for (const m of line.matchAll(/(\w+)=(\S+)/g)) {
    const n = Number(m[2]);
    out[m[1]] = Number.isFinite(n) ? n : m[2];
  }
  return out;
}

/** Order of `items` for repetition `rep`: a rotation, so no variant always runs first. */
export function rotate(items, rep) {
  const k = rep % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/**
 * Runs repetition `rep` — `once(rep)` runs every variant once and returns the runs,
 * each with a `cpu` record — again while another process took more than `maxForeign`
 * of a CPU during any of its runs (up to `retries` times; the last attempt is kept
 * either way). Returns { runs, discarded }.
 */
export async function quietRep(ctx, label, once, rep, cpu) {
  let discarded = 0;
  for (;;) {
    const waited = await waitQuiet(ctx.maxForeign, ctx.maxWaitS, cpu);
    if (waited > 0) ctx.log(`${label} rep ${rep + 1}: waited ${waited} s for other processes to quieten`);
    const runs = await once(rep);
    const worst = Math.max(...runs.map((r) => r.cpu?.foreign ?? 0));
    if (worst <= ctx.maxForeign || discarded >= ctx.retries) return { runs, discarded };
    discarded++;
    ctx.log(`${label} rep ${rep + 1}: other processes took ${(worst * 100).toFixed(0)}% of a CPU during a run; repeating it`);
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The commit a numactlx binary was built from: its checkout's HEAD, or the COMMIT file bench/snapshot.sh writes. */
export function numactlxCommit(numactlx) {
  const dir = path.dirname(path.dirname(fs.realpathSync(numactlx)));
  const head = runSync(['git', '-C', dir, 'rev-parse', '--short', 'HEAD'], { allowFail: true }).stdout.trim();
  if (head) return head;
  try {
    return fs.readFileSync(path.join(dir, 'COMMIT'), 'utf8').slice(0, 7);
  } catch {
    return 'unknown';
  }
}
