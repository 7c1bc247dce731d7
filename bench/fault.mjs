// Benchmark 1 — fault service, SIZE (1 GiB; 256 MiB with --quick) touched one byte per
// 4 KiB page, in order:
//   a. no fault-ahead: numactlx --fault-ahead 4k -- touch SIZE  vs  uffd_baseline SIZE 4k
//      (an in-process C handler thread). Target: numactlx faults/s ÷ C faults/s ≥ 0.8.
//   b. fault-ahead 64k, 256k, 1m, 2m under numactlx  vs  the kernel's own
//      first touch (touch SIZE, natively). Target: numactlx ns/page ≤ native ns/page.
//      uffd_baseline at the same chunk runs too, as the C reference for each window.
// Pinned (taskset -c 0: numactlx, its threads and the program on CPU 0) and unpinned.
// Every variant runs once per repetition, in a rotated order, each right after an
// unmeasured native `touch SIZE` (warm memory: see lib/matrix.mjs), so baseline and
// numactlx see the same state of the host's lazily handed-over memory. Times are the program's
// own ns_per_page (its touch loop only), never numactlx's start-up.
import { runMatrix, loadNote } from './lib/matrix.mjs';
import { parseKv } from './lib/proc.mjs';
import { cell, fmt, pairedRatios, summary, table } from './lib/stats.mjs';

export const WINDOWS = ['64k', '256k', '1m', '2m'];

function variants(ctx, size) {
  const { bins } = ctx;
  const touch = (r) => ({ nsPerPage: parseKv(r.stdout, 'ns_per_page').ns_per_page });
  const nx = (w) => ({
    id: `nx-${w}`,
    argv: (stats) => [...ctx.numactlxArgv, '--fault-ahead', w, '--stats', stats, '--', bins.touch, size],
    parse: (r, st) => ({ ...touch(r), faults: st.nodes[0].faults, faultAheadPages: st.nodes[0].fault_ahead_pages }),
  });
  const c = (w) => ({
    id: `c-${w}`,
    argv: () => [bins.uffd_baseline, size, w],
    parse: (r) => { const kv = parseKv(r.stdout, 'ns_per_page'); return { nsPerPage: kv.ns_per_page, faults: kv.faults }; },
  });
  return [
    { id: 'native', argv: () => [bins.touch, size], parse: touch },
    c('4k'), nx('4k'),
    ...WINDOWS.flatMap((w) => [nx(w), c(w)]),
  ];
}

export async function runFault(ctx) {
  const size = ctx.quick ? '256m' : '1g';
  const reps = ctx.reps ?? (ctx.quick ? 3 : 5);
  const { results, discarded } = await runMatrix(ctx, 'fault', variants(ctx, size), reps,
    (run) => `${fmt(run.nsPerPage)} ns/page${run.faults !== undefined ? ` (${run.faults} faults)` : ''}`,
    [ctx.bins.touch, size]);
  return { size, reps, results, discarded };
}

const ns = (runs) => runs.map((r) => r.nsPerPage);

export function reportFault({ size, reps, results, discarded }) {
  const out = [];
  out.push(`Touched: ${size}, one write per 4 KiB page; ${reps} repetitions per variant, alternating, each run right ` +
    `after an unmeasured native touch of ${size} (warm memory). Cells: median (min–max).`);
  out.push('');
  out.push('**a. No fault-ahead (one 4 KiB UFFDIO_COPY per fault): numactlx vs an in-process C handler**');
  out.push('');
  const rowsA = [];
  for (const [mode, r] of Object.entries(results)) {
    const c = ns(r['c-4k']);
    const n = ns(r['nx-4k']);
    const fps = (xs) => xs.map((x) => 1e9 / x);
    const ratio = summary(pairedRatios(c, n)); // = nx faults/s ÷ C faults/s
    rowsA.push([mode, cell(summary(c)), cell(summary(fps(c))), cell(summary(n)), cell(summary(fps(n))),
      cell(ratio, 2), ratio.median >= 0.8 ? 'met (≥ 0.8)' : 'missed (< 0.8)']);
  }
  out.push(table(['placement', 'C ns/page', 'C faults/s', 'numactlx ns/page', 'numactlx faults/s',
    'ratio numactlx÷C faults/s', 'target'], rowsA));
  out.push('');
  out.push('**b. Fault-ahead under numactlx vs the kernel\'s own anonymous first touch**');
  out.push('');
  const rowsB = [];
  const best = {};
  for (const [mode, r] of Object.entries(results)) {
    const nat = ns(r.native);
    rowsB.push([mode, 'native (kernel)', cell(summary(nat)), '—', '—', '—', '—', '—']);
    for (const w of ['4k', ...WINDOWS]) {
      const n = ns(r[`nx-${w}`]);
      const ratio = summary(pairedRatios(n, nat));
      const faults = summary(r[`nx-${w}`].map((x) => x.faults));
      const target = w === '4k' ? '(no fault-ahead)' : ratio.median <= 1 ? 'met (≤ 1)' : 'missed (> 1)';
      const c = ns(r[`c-${w}`]);
      rowsB.push([mode, `numactlx --fault-ahead ${w}`, cell(summary(n)), cell(summary(c)), cell(summary(pairedRatios(c, n)), 2),
        fmt(faults.median, 0), cell(ratio, 2), target]);
      if (w !== '4k') (best[w] ??= []).push(...pairedRatios(n, nat));
    }
  }
  out.push(table(['placement', 'variant', 'ns/page', 'C handler, same chunk, ns/page', 'numactlx÷C faults/s', 'numactlx faults',
    'ratio numactlx÷native ns/page', 'target'], rowsB));
  out.push('');
  const rank = Object.entries(best).map(([w, xs]) => [w, summary(xs).median]).sort((a, b) => a[1] - b[1]);
  out.push(loadNote(results, discarded));
  out.push('');
  out.push(`Fault-ahead windows ranked by the median of every paired numactlx÷native ratio (pinned and ` +
    `unpinned together): ${rank.map(([w, m]) => `${w} ${fmt(m, 2)}`).join(', ')}.`);
  return out.join('\n');
}
