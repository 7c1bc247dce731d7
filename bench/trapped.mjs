// Benchmark 5 — the trapped calls one by one: trapped_syscalls OP N (bench/trapped_syscalls.c)
// natively and under numactlx on node 3 (--membind=3), pinned and unpinned, alternating:
//   mmap  4 KiB anonymous mmap + one write + munmap: two ptrace stops (seccomp entry,
//         syscall exit), the range registered, a missing fault served, the munmap's
//         UFFD_EVENT_UNMAP;
//   brk   sbrk(+4 KiB) + one write: the same without the UNMAP;
//   fork  fork + _exit + waitpid: the parent's fork stop and its UFFD_EVENT_FORK, the
//         child's first stop, exit stop and end;
//   brktrim  the break given back by 64 KiB after a growth and a write (malloc's trim),
//         the shrink alone timed: one ptrace stop (no exit stop since stop 32) and the
//         UFFD_EVENT_UNMAP. No target of its own; the brk target is the nearest.
// Targets (issue 11): mmap+munmap ≤ +15 µs a pair, brk expansion ≤ 20 µs, fork ≤ 2× native.
//
// Three figures per run, because the machine is shared and wall time depends on what
// else runs: the program's own wall time per operation (µs/op, what the targets are
// about); and, from a long and a short run side by side (so start-up cancels out), the
// CPU time of the whole process tree per operation and its voluntary context switches
// per operation (/usr/bin/time: numactlx's threads and the program), which load changes
// little: every round trip between threads removed shows as 2 switches fewer.
import fs from 'node:fs';
import path from 'node:path';
import { quietRep, rotate, runSync, parseKv } from './lib/proc.mjs';
import { cell, fmt, pairedRatios, summary, table } from './lib/stats.mjs';
import { loadNote } from './lib/matrix.mjs';

const OPS = [
  { op: 'mmap', iters: 20000, quick: 4000, target: (nat, nx) => nx - nat <= 15, targetText: '≤ +15 µs' },
  { op: 'brk', iters: 20000, quick: 4000, target: (nat, nx) => nx <= 20, targetText: '≤ 20 µs' },
  { op: 'fork', iters: 1000, quick: 200, target: (nat, nx) => nx <= 2 * nat, targetText: '≤ 2× native' },
  { op: 'brktrim', iters: 10000, quick: 2000, target: (nat, nx) => nx <= 20, targetText: '≤ 20 µs (as brk)' },
];

/** One run under /usr/bin/time: the program's µs/op, the tree's CPU seconds and voluntary switches. */
function timed(ctx, argv, pin) {
  const out = path.join(ctx.tmp, 'trapped-time');
  const r = runSync(['/usr/bin/time', '-f', '%U %S %w', '-o', out, ...argv], { pin, cpu: true });
  const [u, s, w] = fs.readFileSync(out, 'utf8').trim().split('\n').pop().split(' ').map(Number);
  return { us: parseKv(r.stdout, 'us_per_op').us_per_op, cpuS: u + s, switches: w, cpu: r.cpu, wallMs: r.wallMs };
}

export async function runTrapped(ctx) {
  const reps = ctx.reps ?? (ctx.quick ? 3 : 5);
  const out = {};
  for (const o of OPS) {
    const iters = ctx.quick ? o.quick : o.iters;
    const short = Math.max(1, Math.round(iters / 10));
    const variants = [
      { id: 'native', argv: (n) => [ctx.bins.trapped_syscalls, o.op, String(n)] },
      { id: 'numactlx', argv: (n) => [...ctx.numactlxArgv, '--', ctx.bins.trapped_syscalls, o.op, String(n)] },
      // --baseline: the build before, side by side (its own backing: two sessions never share one).
      ...(ctx.baseline ? [{ id: 'baseline', argv: (n) => [ctx.baseline.path, `--remap=3,${ctx.backing}.base,size=2g`, '--membind=3', '--', ctx.bins.trapped_syscalls, o.op, String(n)] }] : []),
    ];
    const results = {};
    const discarded = {};
    for (const mode of ctx.pinModes) {
      results[mode.name] = Object.fromEntries(variants.map((v) => [v.id, []]));
      discarded[mode.name] = 0;
      for (let rep = 0; rep < reps; rep++) {
        const once = async (r) => rotate(variants, r).map((v) => {
          const long = timed(ctx, v.argv(iters), mode.pin);
          const brief = timed(ctx, v.argv(short), mode.pin);
          const run = {
            id: v.id, us: long.us, cpu: long.cpu, wallMs: long.wallMs,
            cpuUs: ((long.cpuS - brief.cpuS) * 1e6) / (iters - short),
            switches: (long.switches - brief.switches) / (iters - short),
          };
          ctx.log(`trapped ${o.op} ${mode.name} rep ${r + 1}/${reps} ${v.id}: ${fmt(run.us, 2)} µs/op, ` +
            `${fmt(run.cpuUs, 1)} CPU µs/op, ${fmt(run.switches, 2)} switches/op (others ${fmt(run.cpu.foreign * 100, 0)}% CPU)`);
          return run;
        });
        const { runs, discarded: d } = await quietRep(ctx, `trapped ${o.op} ${mode.name}`, once, rep, mode.pin);
        discarded[mode.name] += d;
        for (const run of runs) results[mode.name][run.id].push(run);
      }
    }
    out[o.op] = { iters, reps, results, discarded };
  }
  out.baseline = ctx.baseline?.commit;
  return out;
}

export function reportTrapped(byOp) {
  const rows = [];
  const notes = [];
  const base = byOp.baseline;
  for (const o of OPS) {
    const r = byOp[o.op];
    if (!r) continue;
    for (const [mode, m] of Object.entries(r.results)) {
      const pick = (k, id = 'numactlx') => [m.native.map((x) => x[k]), m[id].map((x) => x[k])];
      const [nat, nx] = pick('us');
      const [natCpu, nxCpu] = pick('cpuUs');
      const [natSw, nxSw] = pick('switches');
      const met = o.target(summary(nat).median, summary(nx).median);
      const before = m.baseline?.length ? m.baseline : undefined;
      rows.push([`${o.op} (${r.iters})`, mode, cell(summary(nat), 2),
        ...(base ? [before ? cell(summary(before.map((x) => x.us)), 2) : '—'] : []),
        cell(summary(nx), 2),
        cell(summary(nx.map((x, i) => x - nat[i])), 2), cell(summary(pairedRatios(nx, nat)), 2),
        ...(base ? [before ? cell(summary(pairedRatios(nx, before.map((x) => x.us))), 2) : '—'] : []),
        `${fmt(summary(natCpu).median, 1)} / ${before ? `${fmt(summary(before.map((x) => x.cpuUs)).median, 1)} / ` : ''}${fmt(summary(nxCpu).median, 1)}`,
        `${fmt(summary(natSw).median, 2)} / ${before ? `${fmt(summary(before.map((x) => x.switches)).median, 2)} / ` : ''}${fmt(summary(nxSw).median, 2)}`,
        `${o.targetText}: ${met ? 'yes' : 'no'}`]);
    }
    notes.push(`${o.op}: ${loadNote(r.results, r.discarded)}`);
  }
  const who = base ? `native / before (${base}) / numactlx` : 'native / numactlx';
  return [
    'µs per operation (mmap: a mmap + write + munmap pair; brk: one sbrk expansion + write; fork: fork + exit + wait). ' +
      'Cells: median (min–max) of the repetitions; added and ratios are paired (same repetition). CPU µs and ' +
      `voluntary switches per operation: medians, ${who}, for the whole process tree.`,
    '',
    table(['op (iterations)', 'placement', 'native µs', ...(base ? [`before (${base}) µs`] : []), 'numactlx µs', 'added µs',
      'numactlx÷native', ...(base ? ['numactlx÷before'] : []), 'CPU µs/op', 'voluntary switches/op', 'target met?'], rows),
    '',
    ...notes,
  ].join('\n\n');
}
