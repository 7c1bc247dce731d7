#!/usr/bin/env node
// What each of Linux 6.1's fallbacks costs, next to the native feature, on this host's
// Linux 6.18 where both paths exist (issue 9; docs/BENCHMARKS.md, "Linux 6.1 and /dev/dax
// in the guest"). NUMACTLX_DISABLE_FEATURES (src/kerndat/features.ts) makes numactlx
// take the old path; everything else is the same run.
//
//   node bench/fallbacks.mjs [--reps 3] [--placement pinned|unpinned|both] [--size 256m]
//                            [--parts dirty,sigbus,fork,start] [--md FILE]
//
// Parts, each variant side by side in every repetition (order rotated), file backing:
//   dirty   bench/pattern_passes SIZE held, writing its pages in address order (seq) or
//           scattered (random): pass 2 rewrites them (no snapshot before),
//           snapshot 1 (the first, full), pass 3 rewrites (the first write to every page
//           after a snapshot), snapshot 2 (of the whole rewrite), pass 4. Native: WP_ASYNC
//           + PAGEMAP_SCAN (pre-copy); 6.1: synchronous write faults, copy-before-write
//           (a write fault opens a run of up to 512 pages when the faults come in order:
//           src/engine-thread/write-runs.ts). "plain": the program without numactlx.
//   sigbus  bench/sigbus_cost on a 4 MiB --membind node: the first SIGBUS, then 1000 more
//           on the same page. Native: UFFDIO_POISON; 6.1: numactlx signals the thread.
//   fork    bench/fork_cost 64m: fork()+exit+reap ×50, then a child that reads its copy,
//           snapshot before and after it. Native: UFFD_EVENT_FORK; without: the tracer
//           sets up each child's userfaultfd (EVENT_FORK disabled alone: 6.1 has it; a
//           user without CAP_SYS_PTRACE does not).
//   start   numactlx … -- /bin/true: start-up and exit with each feature set.
// Pinned: taskset -c 0 for numactlx, its threads and the program; unpinned: free.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cell, summary, table } from './lib/stats.mjs';
import { runAsync } from './lib/nxsession.mjs';
import { rotate } from './lib/proc.mjs';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const { values: opt } = parseArgs({
  options: {
    reps: { type: 'string', default: '3' }, placement: { type: 'string', default: 'both' }, size: { type: 'string', default: '256m' },
    parts: { type: 'string', default: 'dirty,sigbus,fork,start' }, md: { type: 'string' }, numactlx: { type: 'string' },
  },
});
const LINUX_6_1 = 'POISON,WP_UNPOPULATED,WP_ASYNC,MOVE,PAGEMAP_SCAN,PROCESS_MADVISE';
const numactlx = opt.numactlx ?? execFileSync(path.join(benchDir, 'snapshot.sh'), { encoding: 'utf8' }).trim();
const commit = fs.readFileSync(path.join(path.dirname(path.dirname(numactlx)), 'COMMIT'), 'utf8').trim();
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'numactlx-fallbacks-'));
const bin = {};
for (const name of ['pattern_passes', 'sigbus_cost', 'fork_cost']) {
  bin[name] = path.join(work, name);
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', bin[name], path.join(benchDir, `${name}.c`)]);
}
const load = () => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const loads = [load()];
const log = (s) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);

/** A numactlx session (or the plain program) whose stdout is read line by line. */
function start(argv, env, pinned) {
  const full = pinned ? ['taskset', '-c', '0', ...argv] : argv;
  const child = spawn(full[0], full.slice(1), { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const s = { child, out: '', err: '', t0: Date.now() };
  child.stdout.on('data', (d) => { s.out += d; });
  child.stderr.on('data', (d) => { s.err += d; });
  s.exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  s.line = (re) => new Promise((resolve, reject) => {
    const look = () => { const m = re.exec(s.out); if (m) { child.stdout.off('data', look); resolve(m); } return m; };
    child.stdout.on('data', look);
    if (look()) return;
    s.exited.then(() => (look() ? undefined : reject(new Error(`ended before ${re}: ${s.err.slice(-300)}`))));
  });
  return s;
}

function setup(variant) {
  const dir = fs.mkdtempSync(path.join(work, 'run-'));
  const env = { ...process.env, NUMACTLX_RUNTIME_DIR: dir };
  if (variant.disable) env.NUMACTLX_DISABLE_FEATURES = variant.disable;
  return { dir, env, backing: path.join(dir, 'node3.img') };
}

async function snapshot(env, pid) {
  const t0 = Date.now();
  const r = await runAsync([numactlx, 'snapshot', '--wait', '--json', String(pid)], { env });
  if (r.status !== 0) throw new Error(`snapshot: ${r.stderr}`);
  return { durableMs: Date.now() - t0, ...JSON.parse(r.stdout).stats };
}

const passRe = (n) => new RegExp(`^pass ${n} write_ms ([\\d.]+) read_ms ([\\d.]+)$`, 'm');

const parts = {
  dirty: {
    variants: ['seq', 'random'].flatMap((order) => [{ id: `plain ${order}`, order }, { id: `native ${order}`, order },
      { id: `6.1 ${order}`, order, disable: LINUX_6_1 }]),
    async run(v, pinned) {
      const { env, backing } = setup(v);
      const prog = [bin.pattern_passes, opt.size, '1', 'hold', ...(v.order === 'random' ? ['random'] : [])];
      const plain = v.id.startsWith('plain');
      const s = start(plain ? prog : [numactlx, `--remap=3,${backing},size=1g`, '--membind=3', '--', ...prog], env, pinned);
      const w = async (n) => Number((await s.line(passRe(n)))[1]);
      const rec = { pass1: await w(1) };
      await s.line(/^ready /m);
      s.child.stdin.write('go\n');
      rec.pass2 = await w(2);
      if (!plain) rec.snap1 = await snapshot(env, s.child.pid);
      s.child.stdin.write('go\n');
      rec.pass3 = await w(3);
      if (!plain) rec.snap2 = await snapshot(env, s.child.pid);
      s.child.stdin.write('go\n');
      rec.pass4 = await w(4);
      s.child.stdin.end();
      const e = await s.exited;
      if (e.code !== 0) throw new Error(`exit ${e.code}: ${s.err.slice(-300)}`);
      return rec;
    },
  },
  sigbus: {
    variants: [{ id: 'native' }, { id: '6.1', disable: LINUX_6_1 }],
    async run(v, pinned) {
      const { env, backing } = setup(v);
      const s = start([numactlx, `--remap=3,${backing},size=4m`, '--membind=3', '--', bin.sigbus_cost, '64', '1000'], env, pinned);
      s.child.stdin.end();
      const e = await s.exited;
      const m = /first_us ([\d.]+) repeat_us_median ([\d.]+) repeat_us_max ([\d.]+)/.exec(s.out);
      if (!m) throw new Error(`exit ${e.code} ${e.signal}: ${s.out} ${s.err.slice(-300)}`);
      return { firstUs: Number(m[1]), repeatUs: Number(m[2]), repeatMaxUs: Number(m[3]) };
    },
  },
  fork: {
    variants: [{ id: 'native' }, { id: 'no EVENT_FORK', disable: 'EVENT_FORK' }, { id: '6.1 + no EVENT_FORK', disable: `EVENT_FORK,${LINUX_6_1}` }],
    async run(v, pinned) {
      const { env, backing } = setup(v);
      const s = start([numactlx, `--remap=3,${backing},size=1g`, '--membind=3', '--', bin.fork_cost, '64m', '50'], env, pinned);
      await s.line(/^filled$/m);
      const before = await snapshot(env, s.child.pid);
      s.child.stdin.write('go\n');
      const m = await s.line(/^fork_us ([\d.]+) ([\d.]+) reap_us ([\d.]+)$/m);
      await s.line(/^held \d+$/m);
      const after = await snapshot(env, s.child.pid);
      s.child.stdin.end('go\n');
      const e = await s.exited;
      if (e.code !== 0 || !/^done 0$/m.test(s.out)) throw new Error(`exit ${e.code}: ${s.err.slice(-300)}`);
      return { forkUs: Number(m[1]), forkMaxUs: Number(m[2]), reapUs: Number(m[3]), newPages: after.new_pages, pauseMs: after.pause_ms,
        durableMs: after.durableMs, firstPages: before.new_pages };
    },
  },
  start: {
    variants: [{ id: 'native' }, { id: '6.1', disable: LINUX_6_1 }],
    async run(v, pinned) {
      const { env, backing } = setup(v);
      const s = start([numactlx, `--remap=3,${backing},size=64m`, '--membind=3', '--', '/bin/true'], env, pinned);
      s.child.stdin.end();
      const e = await s.exited;
      if (e.code !== 0) throw new Error(`exit ${e.code}: ${s.err.slice(-300)}`);
      return { wallMs: Date.now() - s.t0 };
    },
  },
};

const placements = opt.placement === 'both' ? [true, false] : [opt.placement === 'pinned'];
const results = {};
for (const part of opt.parts.split(',')) {
  for (const pinned of placements) {
    for (let rep = 0; rep < Number(opt.reps); rep++) {
      for (const v of rotate(parts[part].variants, rep)) {
        const key = `${part}|${pinned ? 'pinned' : 'unpinned'}|${v.id}`;
        let rec;
        try {
          rec = await parts[part].run(v, pinned);
        } catch (err) {
          rec = { failed: String(err.message ?? err) };
        }
        (results[key] ??= []).push(rec);
        log(`${key} rep ${rep + 1}: ${JSON.stringify(rec)} (load ${load()})`);
      }
    }
    loads.push(load());
  }
}
fs.rmSync(work, { recursive: true, force: true });

const ok = (key) => (results[key] ?? []).filter((r) => !r.failed);
const s = (key, f, d = 2) => { const xs = ok(key).map(f).filter(Number.isFinite); return xs.length ? cell(summary(xs), d) : '–'; };
const out = [`numactlx ${commit}, host ${os.release()}, ${opt.reps} repetitions; load average (1, 5, 15 min) at the start and after each part/placement: ${loads.join(' → ')}.`, ''];
const failedKeys = Object.entries(results).flatMap(([k, rs]) => rs.filter((r) => r.failed).map((r) => `${k}: ${r.failed.slice(0, 200)}`));
for (const f of failedKeys) out.push(`FAILED ${f}`);
for (const part of opt.parts.split(',')) {
  const rows = [];
  for (const pinned of placements) {
    const p = pinned ? 'pinned' : 'unpinned';
    for (const v of parts[part].variants) {
      const k = `${part}|${p}|${v.id}`;
      if (part === 'dirty') {
        rows.push([p, v.id, s(k, (r) => r.pass2 / r.pass1), s(k, (r) => r.pass3 / r.pass2), s(k, (r) => r.pass4 / r.pass2),
          s(k, (r) => r.snap1?.pause_ms, 1), s(k, (r) => r.snap1?.durableMs, 0), s(k, (r) => r.snap2?.pause_ms, 1), s(k, (r) => r.snap2?.durableMs, 0),
          s(k, (r) => r.snap2?.durableMs / r.pass2, 1)]);
      } else if (part === 'sigbus') {
        rows.push([p, v.id, s(k, (r) => r.firstUs, 0), s(k, (r) => r.repeatUs, 1), s(k, (r) => r.repeatMaxUs, 0)]);
      } else if (part === 'fork') {
        rows.push([p, v.id, s(k, (r) => r.forkUs, 0), s(k, (r) => r.reapUs, 0), s(k, (r) => r.firstPages, 0), s(k, (r) => r.newPages, 0),
          s(k, (r) => r.pauseMs, 1)]);
      } else {
        rows.push([p, v.id, s(k, (r) => r.wallMs, 0)]);
      }
    }
  }
  const header = {
    dirty: ['placement', 'variant', 'pass 2 ÷ pass 1 (write)', 'pass 3 ÷ pass 2 (first writes after snapshot 1)', 'pass 4 ÷ pass 2 (after snapshot 2)',
      'snapshot 1 pause ms', 'snapshot 1 request→durable ms', 'snapshot 2 pause ms', 'snapshot 2 request→durable ms', 'snapshot 2 request→durable ÷ pass 2 write'],
    sigbus: ['placement', 'variant', 'first SIGBUS µs (write → handler)', 'each later SIGBUS on the page µs', 'its max µs'],
    fork: ['placement', 'variant', 'fork() µs (parent)', 'fork → child reaped µs', 'snapshot before the fork: pages stored', "snapshot after: pages stored (the held child's 64 MiB = 16384)", 'its pause ms'],
    start: ['placement', 'variant', 'numactlx … -- /bin/true ms'],
  }[part];
  out.push(`${part}${part === 'dirty' ? ` (${opt.size})` : ''}:`, '', table(header, rows), '');
}
const text = out.join('\n');
console.log(text);
if (opt.md) fs.writeFileSync(opt.md, `${text}\n`);
