// The guest half of bench/guest-fast-writer.mjs: issue 10's fast writer on Linux 6.1, in
// one boot of the test guest (test/guest/vm.sh). Writes every run as a JSON line to
// $GUEST_SHARE/fast-writer.jsonl and prints it; nothing is asserted but that each run
// worked (a failed run is recorded with its error and left out of the figures).
//
// Per repetition, order rotated: bench/fast_writer FW_SIZE FW_MODE
//   fork           plain, sent SIGUSR2 at AT_S and AT_S + GAP_S after ready (it forks, the
//                  child writes its memory to /tmp and exits; durable = the parent reaped it)
//   numactlx/dax   under numactlx --remap=3,/dev/dax0.0 (formatted afresh before the run),
//                  two `numactlx snapshot --wait` at the same times; on 6.1 numactlx tracks
//                  writes with synchronous write-protect faults (the features are probed)
//   numactlx/file  the same on /srv/node3.img (removed before the run)
//   nx-idle/dax, nx-idle/file  the writer idle, the same snapshots: the request→durable of a
//                  program that does not write
// The host's bench/fast-writer.mjs runs the writer for a fixed time; here a snapshot's
// length is not known in advance (TCG), so the writer's SECONDS is only an upper bound and
// it is told to end (SIGUSR1) TAIL_S after the second event is durable. The figures are
// computed here, by bench/lib/fast-writer.mjs, on the guest's own clock.
// Stops starting repetitions when GUEST_BENCH_BUDGET_S is spent.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { BACKINGS, BIN, NUMACTLX, run, why } from '../../test/guest/lib/programs.mjs';
import { AT_S, GAP_S, completeForkEvents, figures, parseWriter } from '../lib/fast-writer.mjs';

const share = process.env.GUEST_SHARE ?? process.cwd();
const OUT = path.join(share, 'fast-writer.jsonl');
const REPS = Number(process.env.BENCH_REPS ?? 2);
const BUDGET_MS = Number(process.env.GUEST_BENCH_BUDGET_S ?? 1500) * 1000;
const SIZE = process.env.FW_SIZE ?? '64m';
const MODE = process.env.FW_MODE ?? 'random64';
const WRITER = path.join(BIN, 'fast_writer');
const backings = (process.env.FW_BACKINGS ?? 'dax,file').split(',').filter(Boolean).map((n) => BACKINGS[n]);
// The writer's upper bound on its own run, and how long after the second durable it runs on
// (the figures look 1 s past durable).
const MAX_S = 900;
const TAIL_S = 2;
const start = Date.now();
const now = () => process.hrtime.bigint();
const sleepUntil = async (t) => { while (now() < t) await new Promise((r) => setTimeout(r, 5)); };

const record = (r) => {
  console.log(JSON.stringify(r));
  fs.appendFileSync(OUT, `${JSON.stringify(r)}\n`);
};

/** A fresh backing for one run: /dev/dax0.0 formatted again, the file removed. */
async function freshBacking(b) {
  if (b.name === 'file') { fs.rmSync(b.path, { force: true }); return; }
  const f = await run(NUMACTLX, ['format', '--force', b.path]);
  if (f.code !== 0) throw new Error(`numactlx format --force ${b.path}: ${why(f.stderr)}`);
}

/** One run of the writer; resolves { rec, events, readyMs }. */
async function runVariant(variant, b) {
  if (b) await freshBacking(b);
  const mode = variant === 'nx-idle' ? 'idle' : MODE;
  let argv = [WRITER, SIZE, mode, String(MAX_S)];
  if (b) argv = [NUMACTLX, `--remap=${b.remap}`, '--membind=3', '--', ...argv];
  const env = { ...process.env, FAST_WRITER_DUMP: '/tmp/fast-writer-dump.rdb' };
  const t00 = now();
  const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  const ended = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  child.stdout.on('data', (d) => { out += d; });
  // Resolves with what test(output) returns once it is truthy, for the output so far or to come.
  const until = (test, what) => new Promise((resolve, reject) => {
    const look = () => { const v = test(out); if (v) { child.stdout.off('data', look); resolve(v); } return v; };
    child.stdout.on('data', look);
    if (look()) return;
    ended.then(() => reject(new Error(`the writer ended before ${what}: ${why(err)}`)));
  });
  try {
    const ready = await until((o) => /^ready pages=\d+ pid=(\d+)$/m.exec(o), 'ready');
    const t0 = now();
    const writerPid = Number(ready[1]);
    const events = [];
    for (const [i, at] of [AT_S, AT_S + GAP_S].entries()) {
      await sleepUntil(t0 + BigInt(at * 1e9));
      const req = now();
      if (!b) {
        process.kill(writerPid, 'SIGUSR2');
        events.push({ req });
        // durable: the writer prints child_done once it reaped the child; the time in that
        // line is the one the figures use (completeForkEvents)
        await until((o) => (o.match(/^child_done \d+$/gm) ?? []).length > i, `child_done #${i + 1}`);
      } else {
        const r = await run(NUMACTLX, ['snapshot', '--wait', '--json', String(child.pid)]);
        const done = now();
        if (r.code !== 0) record({ kind: 'snapshot-failed', variant, backing: b.name, failed: why(r.stderr) });
        events.push({ req, done, answer: r.code === 0 ? JSON.parse(r.stdout) : undefined, failed: r.code !== 0 });
      }
    }
    await sleepUntil(now() + BigInt(TAIL_S * 1e9));
    process.kill(writerPid, 'SIGUSR1');
    const e = await ended;
    if (e.code !== 0) throw new Error(`exit ${e.code} ${e.signal ?? ''}: ${why(err)}`);
    const rec = parseWriter(out);
    if (!b) completeForkEvents(rec, events);
    return { rec, events, readyMs: Number(t0 - t00) / 1e6 };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

async function measure(rep, variant, b) {
  const key = { kind: 'run', rep, variant, backing: b?.name ?? 'plain' };
  try {
    const { rec, events, readyMs } = await runVariant(variant, b);
    record({ ...key, readyMs, seconds: (rec.bins.length * 10) / 1000, figures: events.map((e) => figures(rec, e)),
      stats: events.map((e) => e.answer?.stats) });
  } catch (err) {
    record({ ...key, failed: String(err.message ?? err).slice(0, 400) });
  }
}

record({ kind: 'start', kernel: os.release(), cpus: os.cpus().length, reps: REPS, SIZE, MODE, AT_S, GAP_S, TAIL_S });
const doctor = await run(NUMACTLX, ['doctor', '--json']);
try {
  const rows = JSON.parse(doctor.stdout).checks;
  record({ kind: 'doctor', exit: doctor.code, degraded: rows.filter((c) => c.status === 'degraded').map((c) => c.feature ?? c.name) });
} catch {
  record({ kind: 'doctor', exit: doctor.code, error: why(doctor.stderr) });
}
if (backings.includes(BACKINGS.dax)) {
  const f = await run(NUMACTLX, ['format', BACKINGS.dax.path]);
  if (f.code !== 0) record({ kind: 'format', failed: why(f.stderr) });
}
// Unmeasured: the first start reads node, the tree and the program over 9p.
if (backings.length > 0) await run(NUMACTLX, [`--remap=${backings[0].remap}`, '--membind=3', '--', '/bin/true']);

const units = [['fork'], ...backings.map((b) => ['numactlx', b]), ...backings.map((b) => ['nx-idle', b])];
for (let rep = 0; rep < REPS; rep++) {
  if (rep > 0 && Date.now() - start > BUDGET_MS) { record({ kind: 'budget', stoppedBefore: rep }); break; }
  for (let i = 0; i < units.length; i++) {
    const [variant, b] = units[(i + rep) % units.length];
    await measure(rep, variant, b);
  }
}
record({ kind: 'end', ms: Date.now() - start });
