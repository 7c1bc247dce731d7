// Benchmark 2 — trapped mmap + munmap: mmap_munmap N (4 KiB anonymous mmap, one write,
// munmap; N = 100000, 20000 with --quick) natively vs under numactlx on node 3, pinned
// and unpinned, alternating. Under numactlx each iteration is a seccomp ptrace stop and
// a syscall-exit stop (the tracer has the engine register the new range), a missing
// fault served by the engine, and a UFFD_EVENT_UNMAP the munmapping thread waits on.
// Two more variants split that cost:
//   numactlx, trap only: --remap=3,F without a policy naming node 3: mmap is still
//     trapped (seccomp stop + syscall-exit stop) but nothing is registered, so the
//     page is the kernel's and munmap sends no event;
//   numactlx, no node: `numactlx -- mmap_munmap` (no tracer work at all).
import { loadNote, runMatrix } from './lib/matrix.mjs';
import { parseKv } from './lib/proc.mjs';
import { cell, fmt, pairedRatios, summary, table } from './lib/stats.mjs';

export async function runMmap(ctx) {
  const iters = ctx.quick ? 20000 : 100000;
  const reps = ctx.reps ?? (ctx.quick ? 3 : 5);
  const parse = (r, st) => ({
    usPerPair: parseKv(r.stdout, 'us_per_pair').us_per_pair,
    ...(st ? { faults: st.nodes[0].faults, unmap: st.events.unmap } : {}),
  });
  const prog = [ctx.bins.mmap_munmap, String(iters)];
  const list = [
    { id: 'native', argv: () => prog, parse },
    { id: 'numactlx', argv: (stats) => [...ctx.numactlxArgv, '--stats', stats, '--', ...prog], parse },
    { id: 'trap only', argv: () => [ctx.numactlx, `--remap=3,${ctx.backing},size=2g`, '--', ...prog], parse },
    { id: 'no node', argv: () => [ctx.numactlx, '--', ...prog], parse },
  ];
  const { results, discarded } = await runMatrix(ctx, 'mmap', list, reps, (run) => `${fmt(run.usPerPair, 2)} µs/pair`);
  return { iters, reps, results, discarded };
}

export function reportMmap({ iters, reps, results, discarded }) {
  const rows = [];
  for (const [mode, r] of Object.entries(results)) {
    const nat = r.native.map((x) => x.usPerPair);
    const nx = r.numactlx.map((x) => x.usPerPair);
    const added = nx.map((x, i) => x - nat[i]);
    const trap = (r['trap only'] ?? []).map((x) => x.usPerPair);
    const none = (r['no node'] ?? []).map((x) => x.usPerPair);
    rows.push([mode, cell(summary(nat), 2), cell(summary(nx), 2), cell(summary(added), 2),
      cell(summary(pairedRatios(nx, nat)), 1),
      trap.length ? cell(summary(trap), 2) : '—', none.length ? cell(summary(none), 2) : '—',
      fmt(summary(r.numactlx.map((x) => x.faults)).median, 0), fmt(summary(r.numactlx.map((x) => x.unmap)).median, 0)]);
  }
  return [
    `${iters} iterations of mmap 4 KiB + one write + munmap; ${reps} repetitions, alternating. Cells: median (min–max).`,
    '',
    table(['placement', 'native µs/pair', 'numactlx µs/pair', 'added µs/pair (paired)', 'ratio numactlx÷native',
      'trap only µs/pair', 'no node µs/pair', 'numactlx faults', 'UNMAP events'], rows),
    '',
    loadNote(results, discarded),
  ].join('\n');
}
