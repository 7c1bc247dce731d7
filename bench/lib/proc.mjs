// Running the programs a benchmark measures: synchronously (the C programs, /bin/true),
// with an optional CPU pin through taskset, and a wall-clock time taken around the
// spawn. Output lines of key=value pairs (what bench/*.c print) are parsed here.
import { spawnSync } from 'node:child_process';

/** Runs argv (pinned to `pin` when given); throws with stderr on a non-zero exit. */
export function runSync(argv, { pin, timeoutMs = 600_000, allowFail = false, env } = {}) {
  const full = pin === undefined ? argv : ['taskset', '-c', String(pin), ...argv];
  const t0 = process.hrtime.bigint();
  const r = spawnSync(full[0], full.slice(1), { encoding: 'utf8', timeout: timeoutMs, env: env ?? process.env, maxBuffer: 64 << 20 });
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.error) throw new Error(`${full.join(' ')}: ${r.error.message}`);
  if (!allowFail && (r.status !== 0 || r.signal)) {
    throw new Error(`${full.join(' ')}: exit ${r.status ?? r.signal}\n${r.stderr}${r.stdout}`);
  }
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, wallMs };
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

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
