// Benchmark 4 — start-up: wall time of a whole run of /bin/true, spawned from node
// (spawnSync, process.hrtime around it; the spawn itself is in every number, /bin/true
// alone shows that floor):
//   /bin/true
//   numactl --membind=0 /bin/true
//   numactlx -- /bin/true                           (no virtual node: numactlx execs it)
//   numactlx --membind=0 -- /bin/true               (the same, with set_mempolicy first)
//   numactlx --remap=3,F --membind=3 -- /bin/true   (backing F exists: opened, locked)
// and, to split numactlx's time: `node -e 0` (Node's own start-up), `node exec_floor.mjs
// /bin/true` (Node, koffi and execvpe: the floor of a Node launcher that execs) and
// `numactlx --version` (numactlx's modules for a launch loaded, nothing run).
// With --baseline, another build's `--membind=0 -- /bin/true` too.
// 20 runs each (10 with --quick) after 2 warm-up runs, in rotated order, each round
// started on a quiet machine (less than --max-foreign of a CPU busy for a second).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { rotate, runSync, waitQuiet } from './lib/proc.mjs';
import { cell, summary, table } from './lib/stats.mjs';

export async function runStartup(ctx) {
  const reps = ctx.reps ?? (ctx.quick ? 10 : 20);
  const list = [
    { id: '/bin/true', argv: ['/bin/true'] },
    { id: 'node -e 0', argv: [process.execPath, '-e', '0'] },
    { id: 'node exec_floor.mjs /bin/true', argv: [process.execPath, path.join(path.dirname(fileURLToPath(import.meta.url)), 'exec_floor.mjs'), '/bin/true'] },
    { id: 'numactlx --version', argv: [ctx.numactlx, '--version'] },
    { id: 'numactl --membind=0 /bin/true', argv: ['numactl', '--membind=0', '/bin/true'] },
    { id: 'numactlx -- /bin/true', argv: [ctx.numactlx, '--', '/bin/true'] },
    { id: 'numactlx --membind=0 -- /bin/true', argv: [ctx.numactlx, '--membind=0', '--', '/bin/true'] },
    { id: 'numactlx --remap=3,F --membind=3 -- /bin/true', argv: [ctx.numactlx, `--remap=3,${ctx.backing}`, '--membind=3', '--', '/bin/true'] },
    // --baseline: the same launch by another build, side by side.
    ...(ctx.baseline ? [{ id: `numactlx ${ctx.baseline.commit} --membind=0 -- /bin/true`, argv: [ctx.baseline.path, '--membind=0', '--', '/bin/true'] }] : []),
  ];
  // The backing exists before the first timed run (created at its size by a warm-up).
  runSync([...ctx.numactlxArgv, '--', '/bin/true']);
  const results = {};
  for (const mode of ctx.pinModes) {
    const byId = Object.fromEntries(list.map((v) => [v.id, []]));
    for (let rep = -2; rep < reps; rep++) {
      // Runs this short cannot be checked one by one: wait for a quiet machine instead.
      await waitQuiet(ctx.maxForeign, Math.min(ctx.maxWaitS, 60), mode.pin);
      for (const v of rotate(list, rep + 2)) {
        const r = runSync(v.argv, { pin: mode.pin });
        if (rep >= 0) byId[v.id].push(r.wallMs);
      }
    }
    ctx.log(`startup ${mode.name}: ${list.map((v) => `${v.id} ${summary(byId[v.id]).median.toFixed(1)} ms`).join('; ')}`);
    results[mode.name] = byId;
  }
  return { reps, results };
}

export function reportStartup({ reps, results }) {
  const rows = [];
  for (const [mode, r] of Object.entries(results)) {
    const base = summary(r['/bin/true']).median;
    for (const [id, xs] of Object.entries(r)) {
      const s = summary(xs);
      rows.push([mode, `\`${id}\``, cell(s, 1), `${(s.median - base).toFixed(1)}`]);
    }
  }
  return [
    `Wall time of the whole run, spawned from node; ${reps} runs each after 2 warm-ups, alternating. ` +
      'Cells: median (min–max) ms.',
    '',
    table(['placement', 'command', 'wall ms', 'ms over /bin/true (medians)'], rows),
  ].join('\n');
}
