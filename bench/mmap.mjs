// Benchmark 2 — trapped mmap + munmap: mmap_munmap N (4 KiB anonymous mmap, one write,
// munmap; N = 100000, 20000 with --quick) natively vs under numactlx on node 3, pinned
// and unpinned, alternating. Under numactlx each iteration is a seccomp ptrace stop and
// a syscall-exit stop (the tracer has the engine register the new range), a missing
// fault served by the engine, and a UFFD_EVENT_UNMAP the munmapping thread waits on.
import fs from 'node:fs';
import path from 'node:path';
import { parseKv, rotate, runSync } from './lib/proc.mjs';
import { cell, fmt, pairedRatios, summary, table } from './lib/stats.mjs';

export async function runMmap(ctx) {
  const iters = ctx.quick ? 20000 : 100000;
  const reps = ctx.reps ?? (ctx.quick ? 3 : 5);
  const statsFile = path.join(ctx.tmp, 'mmap-stats.json');
  const list = [
    { id: 'native', argv: () => [ctx.bins.mmap_munmap, String(iters)] },
    { id: 'numactlx', argv: () => [...ctx.numactlxArgv, '--stats', statsFile, '--', ctx.bins.mmap_munmap, String(iters)] },
  ];
  const results = {};
  for (const mode of ctx.pinModes) {
    const byId = { native: [], numactlx: [] };
    for (let rep = 0; rep < reps; rep++) {
      for (const v of rotate(list, rep)) {
        fs.rmSync(statsFile, { force: true });
        const r = runSync(v.argv(), { pin: mode.pin });
        const kv = parseKv(r.stdout, 'us_per_pair');
        const run = { usPerPair: kv.us_per_pair, wallMs: r.wallMs };
        if (v.id === 'numactlx') {
          const st = JSON.parse(fs.readFileSync(statsFile, 'utf8'));
          run.faults = st.nodes[0].faults;
          run.unmap = st.events.unmap;
        }
        byId[v.id].push(run);
        ctx.log(`mmap ${mode.name} rep ${rep + 1}/${reps} ${v.id}: ${fmt(run.usPerPair, 2)} µs/pair`);
      }
    }
    results[mode.name] = byId;
  }
  return { iters, reps, results };
}

export function reportMmap({ iters, reps, results }) {
  const rows = [];
  for (const [mode, r] of Object.entries(results)) {
    const nat = r.native.map((x) => x.usPerPair);
    const nx = r.numactlx.map((x) => x.usPerPair);
    const added = nx.map((x, i) => x - nat[i]);
    rows.push([mode, cell(summary(nat), 2), cell(summary(nx), 2), cell(summary(added), 2),
      cell(summary(pairedRatios(nx, nat)), 1), fmt(summary(r.numactlx.map((x) => x.faults)).median, 0),
      fmt(summary(r.numactlx.map((x) => x.unmap)).median, 0)]);
  }
  return [
    `${iters} iterations of mmap 4 KiB + one write + munmap; ${reps} repetitions, alternating. Cells: median (min–max).`,
    '',
    table(['placement', 'native µs/pair', 'numactlx µs/pair', 'added µs/pair (paired)', 'ratio numactlx÷native',
      'numactlx faults', 'UNMAP events'], rows),
  ].join('\n');
}
