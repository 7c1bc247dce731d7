// Benchmark 6 — real programs (issue 11): ruby, git, sqlite3 inserts, make -j2 and gcc,
// each run natively and under numactlx on node 3 (--membind=3), and with --baseline
// under another build, side by side (rotated order), pinned and unpinned. Wall time of
// the whole run (numactlx's start-up included: ≈ 0.3 s, see benchmark 4). Target: ≤ 1.3×.
//   ruby     arrays of 1M pairs, a sort, a thread, 20 forks (ruby -e, below)
//   git      init, add and commit numactlx's own src/ tree, log -p, gc (sh -c, a fresh repo)
//   sqlite3  300,000 INSERTs in one transaction into a new file database
//   make     make -j2 of 40 generated C files (cc -O2 -c each, then a link)
//   gcc      gcc -O2 -c of one generated C file of 2,000 functions
// Missing programs are skipped with a note (apt-get install ruby git sqlite3 make gcc).
import fs from 'node:fs';
import path from 'node:path';
import { quietRep, rotate, runSync } from './lib/proc.mjs';
import { cell, fmt, pairedRatios, summary, table } from './lib/stats.mjs';
import { loadNote } from './lib/matrix.mjs';

const RUBY = 'a = Array.new(1_000_000) { |i| [i * 7919 % 1_000_003, i.to_s] }; a.sort!; ' +
  't = Thread.new { (1..200_000).map { |i| i * i }.sum }; t.join; ' +
  '20.times { pid = fork { exit!(0) }; Process.wait(pid) }';

function which(cmd) {
  return runSync(['sh', '-c', `command -v ${cmd}`], { allowFail: true }).status === 0;
}

/** The inputs the programs work on, made once (untimed) in ctx.tmp. */
function prepare(ctx) {
  const dir = path.join(ctx.tmp, 'programs');
  fs.mkdirSync(dir, { recursive: true });
  const sql = path.join(dir, 'inserts.sql');
  const lines = ['CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, v REAL);', 'BEGIN;'];
  for (let i = 0; i < 300_000; i++) lines.push(`INSERT INTO t (name, v) VALUES ('row ${i}', ${(i * 0.37).toFixed(2)});`);
  lines.push('COMMIT;', 'SELECT count(*), sum(v) FROM t;');
  fs.writeFileSync(sql, `${lines.join('\n')}\n`);
  const proj = path.join(dir, 'make');
  fs.mkdirSync(proj, { recursive: true });
  const objs = [];
  for (let f = 0; f < 40; f++) {
    const fns = Array.from({ length: 60 }, (_, k) =>
      `int f${f}_${k}(int x) { int s = 0; for (int i = 0; i < x; i++) s += (i * ${k + 3}) ^ (s >> ${(k % 7) + 1}); return s; }`);
    fs.writeFileSync(path.join(proj, `u${f}.c`), `${fns.join('\n')}\n`);
    objs.push(`u${f}.o`);
  }
  fs.writeFileSync(path.join(proj, 'main.c'), 'int f0_0(int);\nint main(void) { return f0_0(3) == 0 ? 1 : 0; }\n');
  fs.writeFileSync(path.join(proj, 'Makefile'),
    `OBJS = main.o ${objs.join(' ')}\nprog: $(OBJS)\n\tcc -o prog $(OBJS)\n%.o: %.c\n\tcc -O2 -c -o $@ $<\nclean:\n\trm -f prog *.o\n`);
  const big = path.join(dir, 'big.c');
  const fns = Array.from({ length: 2000 }, (_, k) =>
    `static int g${k}(int *a, int n) { int s = ${k}; for (int i = 0; i < n; i++) { s = s * 31 + a[i] * ${k % 13 + 1}; if (s & 1) s ^= a[(i + ${k}) % n]; } return s; }\n` +
    `int h${k}(int *a, int n) { return g${k}(a, n) + (n > 1 ? g${k}(a + 1, n - 1) : 0); }`);
  fs.writeFileSync(big, `${fns.join('\n')}\n`);
  const src = path.join(path.dirname(path.dirname(new URL(import.meta.url).pathname)), 'src');
  return [
    { id: 'ruby', needs: ['ruby'], argv: ['ruby', '-e', RUBY] },
    { id: 'git', needs: ['git'], argv: ['sh', '-c', `r=${dir}/repo-$$; rm -rf "$r" && mkdir "$r" && cd "$r" && git init -q && cp -r ${src} . && ` +
      'git add -A && git -c user.name=b -c user.email=b@b commit -qm init && git log -p > /dev/null && git gc -q && cd / && rm -rf "$r"'] },
    { id: 'sqlite3', needs: ['sqlite3'], argv: ['sh', '-c', `rm -f ${dir}/db-$$ && sqlite3 ${dir}/db-$$ < ${sql} > /dev/null && rm -f ${dir}/db-$$`] },
    { id: 'make -j2', needs: ['make', 'cc'], argv: ['sh', '-c', `make -s -C ${proj} clean && make -s -j2 -C ${proj}`] },
    { id: 'gcc', needs: ['gcc'], argv: ['gcc', '-O2', '-c', '-o', path.join(dir, 'big.o'), big] },
  ];
}

export async function runPrograms(ctx) {
  const reps = ctx.reps ?? (ctx.quick ? 2 : 5);
  const out = { reps, results: {}, discarded: {}, skipped: [], baseline: ctx.baseline?.commit };
  for (const p of prepare(ctx)) {
    const missing = p.needs.filter((c) => !which(c));
    if (missing.length) {
      out.skipped.push(`${p.id} (${missing.join(', ')} not installed)`);
      continue;
    }
    const variants = [
      { id: 'native', argv: p.argv },
      { id: 'numactlx', argv: [...ctx.numactlxArgv, '--', ...p.argv] },
      ...(ctx.baseline ? [{ id: 'baseline', argv: [ctx.baseline.path, `--remap=3,${ctx.backing}.base,size=2g`, '--membind=3', '--', ...p.argv] }] : []),
    ];
    out.results[p.id] = {};
    out.discarded[p.id] = {};
    for (const mode of ctx.pinModes) {
      const byId = Object.fromEntries(variants.map((v) => [v.id, []]));
      out.discarded[p.id][mode.name] = 0;
      for (let rep = 0; rep < reps; rep++) {
        const once = async (r) => rotate(variants, r).map((v) => {
          const run = runSync(v.argv, { pin: mode.pin, cpu: true });
          ctx.log(`programs ${p.id} ${mode.name} rep ${r + 1}/${reps} ${v.id}: ${fmt(run.wallMs, 0)} ms (others ${fmt(run.cpu.foreign * 100, 0)}% CPU)`);
          return { id: v.id, wallMs: run.wallMs, cpu: run.cpu };
        });
        const { runs, discarded } = await quietRep(ctx, `programs ${p.id} ${mode.name}`, once, rep, mode.pin);
        out.discarded[p.id][mode.name] += discarded;
        for (const run of runs) byId[run.id].push(run);
      }
      out.results[p.id][mode.name] = byId;
    }
  }
  return out;
}

export function reportPrograms(r) {
  const rows = [];
  for (const [id, byMode] of Object.entries(r.results)) {
    for (const [mode, byId] of Object.entries(byMode)) {
      const ms = (k) => byId[k].map((x) => x.wallMs);
      const ratio = summary(pairedRatios(ms('numactlx'), ms('native')));
      rows.push([id, mode, cell(summary(ms('native')), 0), ...(r.baseline ? [cell(summary(ms('baseline')), 0)] : []),
        cell(summary(ms('numactlx')), 0), ...(r.baseline ? [cell(summary(pairedRatios(ms('baseline'), ms('native'))), 2)] : []),
        cell(ratio, 2), `≤ 1.3: ${ratio.median <= 1.3 ? 'yes' : 'no'}`]);
    }
  }
  const notes = Object.entries(r.results).map(([id, byMode]) => `${id}: ${loadNote(byMode, r.discarded[id])}`);
  return [
    `Wall ms of a whole run (numactlx's start-up included), ${r.reps} repetitions; cells median (min–max); ratios paired.`,
    '',
    table(['program', 'placement', 'native ms', ...(r.baseline ? [`before (${r.baseline}) ms`] : []), 'numactlx ms',
      ...(r.baseline ? ['before÷native'] : []), 'numactlx÷native', 'target'], rows),
    '',
    ...(r.skipped.length ? [`Skipped: ${r.skipped.join('; ')}.`, ''] : []),
    ...notes,
  ].join('\n\n');
}
