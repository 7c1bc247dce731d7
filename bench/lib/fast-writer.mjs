// What bench/fast_writer.c recorded, read back, and the figures of one snapshot or fork
// event: shared by bench/fast-writer.mjs (the host) and bench/guest/fast-writer-in-guest.mjs
// (the Linux 6.1 guest), so that both report the same columns computed the same way.
//
// Times: the writer's `start` and its 10 ms bins are CLOCK_MONOTONIC, and so is
// process.hrtime.bigint() of the driver on the same kernel: an event's request and
// durable times (ns, bigint) are placed in the writer's bins directly.
import { median, fmt } from './stats.mjs';

/** The writer's bin (fast_writer.c BIN_NS). */
export const BIN_MS = 10;
/** First event this long after `ready`, the second GAP_S later (or as soon as the first is over). */
export const AT_S = 3;
export const GAP_S = 4;
export const TAIL_S = 6;

/** fast_writer's output → { start, bins, gaps, forks: [[startNs, lenNs]], dones: [ns] }. */
export function parseWriter(out) {
  const lines = out.split('\n');
  const start = BigInt(lines.find((l) => l.startsWith('start ')).split(' ')[1]);
  const at = lines.findIndex((l) => l.startsWith('bins '));
  const bins = lines[at + 1].split(' ').map(Number);
  const gaps = lines[at + 2].split(' ').map(Number);
  const forks = lines.filter((l) => l.startsWith('fork_ns ')).map((l) => l.split(' ').slice(1).map(BigInt));
  const dones = lines.filter((l) => l.startsWith('child_done ')).map((l) => BigInt(l.split(' ')[1]));
  return { start, bins, gaps, forks, dones };
}

/** A fork event's durable time and fork()'s own time, from what the writer printed. */
export function completeForkEvents(rec, events) {
  events.forEach((e, i) => { e.done = rec.dones[i]; e.forkMs = rec.forks[i] ? Number(rec.forks[i][1]) / 1e6 : NaN; });
}

const binOf = (rec, t) => Math.floor(Number(t - rec.start) / 1e6 / BIN_MS);

/** Turns a second over bins [from, to). */
export function turnsPerS(rec, from, to) {
  let n = 0;
  for (let b = Math.max(0, from); b < Math.min(rec.bins.length, to); b++) n += rec.bins[b];
  return (n * 1000) / ((to - from) * BIN_MS);
}

/** The rate of a run without events: 2 s around its first third. */
export function quietRate(rec) {
  const mid = Math.floor(rec.bins.length / 3);
  return turnsPerS(rec, mid - 100, mid + 100);
}

/**
 * The figures of one event { req, done, forkMs?, answer?, failed? } of a run: turns/s in
 * the second before the request; the slowest 250 ms window from the request to durable
 * (turns/s); the longest gap between two turns from the request to 1 s after durable (ms);
 * turns/s in the second after durable; request→durable (ms); fork()'s time; the
 * snapshot's pause (its answer's stats.pause_ms).
 */
export function figures(rec, ev) {
  if (ev.failed || ev.done === undefined) return { before: NaN, slowest: NaN, stallMs: NaN, after: NaN, durableMs: NaN, forkMs: NaN, pauseMs: NaN };
  const bReq = binOf(rec, ev.req);
  const bDone = Math.max(bReq + 1, binOf(rec, ev.done));
  const perS = 1000 / BIN_MS;
  const win = 250 / BIN_MS;
  let slowest = Infinity;
  for (let b = bReq; b + win <= Math.max(bDone, bReq + win); b++) slowest = Math.min(slowest, turnsPerS(rec, b, b + win));
  let stall = 0;
  for (let b = bReq; b <= Math.min(rec.gaps.length - 1, bDone + perS); b++) stall = Math.max(stall, rec.gaps[b]);
  return {
    before: turnsPerS(rec, bReq - perS, bReq), slowest, stallMs: stall / 1000,
    after: turnsPerS(rec, bDone, bDone + perS), durableMs: Number(ev.done - ev.req) / 1e6, forkMs: ev.forkMs,
    pauseMs: ev.answer?.stats?.pause_ms ?? NaN,
  };
}

export const HEADER = ['placement/variant', 'event', 'turns/s before', 'slowest 250 ms / before', 'longest stall ms',
  '1 s after durable / before', 'request→durable ms', 'fork() ms', 'snapshot pause ms'];

/**
 * Table rows from results: key → one array per run of figures per event (a run without
 * events holds [{ before }]). Each column is the median over the runs; the two ratios
 * are of medians, as the host's first tables were made.
 */
export function rows(results) {
  const out = [];
  for (const [key, runs] of Object.entries(results)) {
    const nEvents = runs[0].length;
    for (let i = 0; i < nEvents; i++) {
      const pick = (f) => median(runs.map((r) => r[i]?.[f]).filter((x) => x !== undefined && !Number.isNaN(x)));
      const before = pick('before');
      out.push([key, runs[0][i].durableMs === undefined ? '-' : `#${i + 1}`, fmt(before, 0),
        fmt(pick('slowest') / before, 3), fmt(pick('stallMs'), 1), fmt(pick('after') / before, 3),
        fmt(pick('durableMs'), 0), fmt(pick('forkMs'), 1), fmt(pick('pauseMs'), 1)]);
    }
  }
  return out;
}
