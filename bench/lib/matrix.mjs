// The shape most benchmarks share: every variant once per repetition, in a rotated
// order, for each CPU placement; a repetition during which other processes were busy is
// run again (quietRep). A variant is { id, argv(statsFile), parse(result, stats) }:
// argv builds the command (numactlx variants write --stats to statsFile, read back
// as `stats`), parse turns its output into the run's record.
//
// `prewarm` (argv): run before every measured run, unmeasured. The host hands this VM's
// memory over lazily and takes back what the guest frees (virtio-balloon free page
// reporting is on here): a run that allocates right after another freed the same amount
// gets warm memory, a run after a pause may get cold memory, several µs a page slower.
// Touching SIZE natively just before each run gives every variant warm memory.
import fs from 'node:fs';
import path from 'node:path';
import { quietRep, rotate, runSync } from './proc.mjs';
import { fmt, summary } from './stats.mjs';

export async function runMatrix(ctx, name, variants, reps, describe, prewarm) {
  const statsFile = path.join(ctx.tmp, `${name}-stats.json`);
  const results = {};
  const discarded = {};
  for (const mode of ctx.pinModes) {
    const byId = Object.fromEntries(variants.map((v) => [v.id, []]));
    discarded[mode.name] = 0;
    for (let rep = 0; rep < reps; rep++) {
      const once = async (r) => {
        const runs = [];
        for (const v of rotate(variants, r)) {
          fs.rmSync(statsFile, { force: true });
          if (prewarm) runSync(prewarm, { pin: mode.pin });
          const argv = v.argv(statsFile);
          const res = runSync(argv, { pin: mode.pin, cpu: true });
          const stats = fs.existsSync(statsFile) ? JSON.parse(fs.readFileSync(statsFile, 'utf8')) : undefined;
          const run = { id: v.id, ...v.parse(res, stats), wallMs: res.wallMs, cpu: res.cpu };
          ctx.log(`${name} ${mode.name} rep ${r + 1}/${reps} ${v.id}: ${describe(run)} ` +
            `(others ${fmt(run.cpu.foreign * 100, 0)}% CPU)`);
          runs.push(run);
        }
        return runs;
      };
      const { runs, discarded: d } = await quietRep(ctx, `${name} ${mode.name}`, once, rep, mode.pin);
      discarded[mode.name] += d;
      for (const run of runs) byId[run.id].push(run);
    }
    results[mode.name] = byId;
  }
  return { results, discarded };
}

/** One sentence on how busy the machine was during the kept runs of a benchmark. */
export function loadNote(results, discarded) {
  const runs = Object.values(results).flatMap((byId) => Object.values(byId).flat()).filter((r) => r.cpu);
  if (runs.length === 0) return '';
  const f = summary(runs.map((r) => r.cpu.foreign * 100));
  const steal = summary(runs.map((r) => (r.cpu.stealS / (r.wallMs / 1000)) * 100));
  const d = Object.values(discarded ?? {}).reduce((a, b) => a + b, 0);
  return `Other processes during the kept runs (on the run's CPU when pinned): median ${fmt(f.median, 0)}%, max ${fmt(f.max, 0)}% of one CPU; ` +
    `steal median ${fmt(steal.median, 1)}%, max ${fmt(steal.max, 1)}%; ${d} repetition(s) run again because another ` +
    'process took more than the --max-foreign share during one of its runs.';
}
