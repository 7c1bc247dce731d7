// Benchmark 1c — what fault-ahead costs when access is sparse: touch 1g STRIDE (one
// write per STRIDE bytes: 64k and 1m; 256m with --quick) natively and under numactlx at
// every fault-ahead window. Fault-ahead serves zeros over the run of absent pages around
// each fault, so a sparse program gets memory it never touches: the numactlx --stats
// pages_placed count shows how much, against native (one 4 KiB page per write: THP is
// `madvise` here, so plain mmaps get 4 KiB pages).
import { loadNote, runMatrix } from './lib/matrix.mjs';
import { parseKv } from './lib/proc.mjs';
import { cell, fmt, pairedRatios, summary, table } from './lib/stats.mjs';
import { WINDOWS } from './fault.mjs';

const STRIDES = ['64k', '1m'];
const ALL = ['4k', ...WINDOWS];

function variants(ctx, size) {
  const { bins } = ctx;
  const parse = (r, st) => {
    const kv = parseKv(r.stdout, 'ns_per_page');
    return { nsPerWrite: kv.ns_per_page, writes: kv.pages, ...(st ? { placed: st.nodes[0].pages_placed } : {}) };
  };
  return STRIDES.flatMap((stride) => [
    { id: `native ${stride}`, argv: () => [bins.touch, size, stride], parse },
    ...ALL.map((w) => ({
      id: `nx-${w} ${stride}`,
      argv: (stats) => [...ctx.numactlxArgv, '--fault-ahead', w, '--stats', stats, '--', bins.touch, size, stride],
      parse,
    })),
  ]);
}

export async function runSparse(ctx) {
  const size = ctx.quick ? '256m' : '1g';
  const reps = ctx.reps ?? 3;
  const { results, discarded } = await runMatrix(ctx, 'sparse', variants(ctx, size), reps,
    (run) => `${fmt(run.nsPerWrite)} ns/write${run.placed !== undefined ? `, ${run.placed} pages placed` : ''}`,
    [ctx.bins.touch, size]);
  return { size, reps, results, discarded };
}

export function reportSparse({ size, reps, results, discarded }) {
  const rows = [];
  const mib = (pages) => `${fmt((pages * 4096) / 2 ** 20, 0)} MiB`;
  for (const [mode, r] of Object.entries(results)) {
    for (const stride of STRIDES) {
      const nat = r[`native ${stride}`];
      const natNs = nat.map((x) => x.nsPerWrite);
      rows.push([mode, stride, 'native', cell(summary(natNs)), '—', `${mib(nat[0].writes)} (one page per write)`]);
      for (const w of ALL) {
        const nx = r[`nx-${w} ${stride}`];
        const ns = nx.map((x) => x.nsPerWrite);
        rows.push([mode, stride, `numactlx --fault-ahead ${w}`, cell(summary(ns)), cell(summary(pairedRatios(ns, natNs)), 2),
          mib(summary(nx.map((x) => x.placed)).median)]);
      }
    }
  }
  return [
    `touch ${size} STRIDE: one write per STRIDE bytes; ${reps} repetitions, alternating, each run after an unmeasured ` +
      `native touch of ${size}. Cells: median (min–max).`,
    '',
    table(['placement', 'stride', 'variant', 'ns per write', 'ratio to native', 'memory made resident'], rows),
    '',
    loadNote(results, discarded),
  ].join('\n');
}
