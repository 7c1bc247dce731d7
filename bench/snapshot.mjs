#!/usr/bin/env node
// Snapshot benchmarks (docs/BENCHMARKS.md, "Snapshots"): what a live numactlx snapshot
// costs the running program, next to what fork() of the same memory costs it.
//
//   node bench/snapshot.mjs [--quick] [--sizes 1g,4g] [--reps N] [--placement pinned|unpinned|both]
//                           [--numactlx PATH] [--json FILE] [--md FILE] [--from-json FILE]
//                           [--max-load L] [--load-wait S] [--no-criu] [--variants fork,wp,session]
//
// Per repetition, for each size and placement (rotated order), side by side:
//   fork      bench/pause_probe --fork 3 SIZE, natively: the time around fork() of SIZE of
//             dirty 4 KiB pages in the parent (the child _exits at once);
//   wp        bench/wp_baseline SIZE 3, natively: UFFDIO_WRITEPROTECT of the same dirty memory
//             from inside its own process — the kernel's part of a freeze, with no ptrace
//             and no scan (and fork() again, in that process);
//   session   numactlx --remap=3,BACKING,size=… --membind=3 -- pause_probe SIZE, with
//             NUMACTLX_DEBUG=1 and a private NUMACTLX_RUNTIME_DIR, driven over stdin:
//     baseline     200 ms of the probe's write loop, no snapshot (a plain store's latency);
//     full-first   the session's first snapshot, every page dirty, the probe looping over
//                  all pages (numactlx's pause_ms, the probe's own gaps);
//     full-rewrite every page written again (`dirty all`: one write-protect fault each),
//                  then the same;
//     runs64k / scattered4k
//                  1% of the pages dirty as 64 KiB runs / as single 4 KiB pages, the probe
//                  looping over that 1% (each preceded by an unmeasured "flush" snapshot,
//                  so that exactly that 1% is dirty); INC_ROUNDS rounds, patterns alternating;
//     pending      every page dirty and the probe idle at the freeze; as soon as the
//                  session's status shows the freeze over, the probe writes every page going down
//                  while the copier goes up: every write hits a page not copied yet until
//                  they meet — its latency is the copy-before-write fault;
//     tracking     300 ms more of the same walk after the snapshot is committed: writes to
//                  clean write-protected pages (the dirty-tracking fault, no copy).
// Each numactlx snapshot is `numactlx snapshot --wait --json PID`; meanwhile the bench
// polls the session's `status` (control socket, every POLL_MS) to learn when the freeze is
// over. The debug lines give its freeze (stop, scan, UFFDIO_WRITEPROTECT, resume) and copy
// (process_vm_readv, maps, sync, commit) times; they are read when the session has ended
// (numactlx's workers flush their stderr only then). The probe's longest gaps carry
// CLOCK_MONOTONIC end times, matched with the end of the freeze (status) and the client's
// answer (the commit).
//
// Backings: 8× SIZE (seven full snapshots per session without --keep): SIZE ≤ 1 GiB on
// tmpfs (/dev/shm); 4 GiB on a sparse file under /tmp — /dev/shm is RAM.
// Before measuring, waits (polling every 30 s, up to --load-wait s, default 1200) for the
// 1-minute load average to drop below --max-load (default 0.7); measures anyway after.
// Needs root (userfaultfd, ptrace), cc, taskset. CRIU: `apt-cache policy criu`, and one
// `criu dump --leave-running` of the probe if criu is installed (--no-criu: skip).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { machineCpu } from './lib/cpu.mjs';
import { numactlxCommit, runSync, rotate, sleep } from './lib/proc.mjs';
import { cell, fmt, median, pairedRatios, summary, table } from './lib/stats.mjs';
import { parseKv, runAsync, Session } from './lib/nxsession.mjs';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const repo = path.dirname(benchDir);
const INC_ROUNDS = 2;
const FORKS_PER_RUN = 3;
const POLL_MS = 5;

const log = (line) => process.stderr.write(`${line}\n`);

function readOr(file, fallback = '') {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return fallback;
  }
}

function sizeBytes(s) {
  const m = /^(\d+)([kmg]?)$/i.exec(s);
  if (!m) throw new Error(`bad size '${s}'`);
  return Number(m[1]) * { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 }[m[2].toLowerCase()];
}

/** Compiles bench/NAME.c into bench/bin/NAME when the binary is missing or older. */
function build(name) {
  const bin = path.join(benchDir, 'bin', name);
  const src = path.join(benchDir, `${name}.c`);
  fs.mkdirSync(path.dirname(bin), { recursive: true });
  if (!fs.existsSync(bin) || fs.statSync(bin).mtimeMs < fs.statSync(src).mtimeMs) {
    runSync([process.env.CC ?? 'cc', '-O2', '-o', bin, src]);
  }
  return bin;
}

const loadAvg = () => Number(readOr('/proc/loadavg', '0').split(' ')[0]);

/** Polls the 1-minute load average every 30 s until it is below maxLoad or maxWaitS passed. */
async function waitLoad(maxLoad, maxWaitS) {
  const t0 = Date.now();
  for (;;) {
    const l = loadAvg();
    const waited = (Date.now() - t0) / 1000;
    if (l < maxLoad) return { quiet: true, load: l, waitedS: waited };
    if (waited >= maxWaitS) return { quiet: false, load: l, waitedS: waited };
    log(`load average ${l} ≥ ${maxLoad}: waiting (${Math.round(waited)} s so far)`);
    await sleep(30_000);
  }
}

/** CPU seconds of this process and its reaped descendants (utime, stime, cutime, cstime). */
function selfCpu() {
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
}

function cpuStart() {
  return { m: machineCpu(), self: selfCpu(), t: Date.now(), load: loadAvg() };
}

/** How busy the rest of the machine was since `s` (call after every process of the run was reaped). */
function cpuEnd(s) {
  const m = machineCpu();
  const wallS = (Date.now() - s.t) / 1000;
  const own = selfCpu() - s.self;
  return {
    wallS, ownS: own, foreign: Math.max(0, m.busy - s.m.busy - own) / wallS, steal: (m.steal - s.m.steal) / wallS,
    loadStart: s.load, loadEnd: loadAvg(),
  };
}

function machine(numactlx) {
  const cpu = /model name\s*:\s*(.*)/.exec(readOr('/proc/cpuinfo'))?.[1] ?? os.cpus()[0]?.model;
  const commit = numactlxCommit(numactlx);
  return {
    kernel: os.release(), cpus: os.cpus().length, cpu, memGiB: Math.round(os.totalmem() / 2 ** 30),
    thp: readOr('/sys/kernel/mm/transparent_hugepage/enabled'),
    clocksource: readOr('/sys/devices/system/clocksource/clocksource0/current_clocksource'),
    node: process.version, numactlx, numactlxCommit: commit || 'unknown', date: new Date().toISOString(),
  };
}

/** The longest probe gap (ms) overlapping [lo, hi] (bigint ns, CLOCK_MONOTONIC) and ending after `after`, or NaN. */
function gapIn(gaps, lo, hi, after = 0n) {
  let best = NaN;
  for (const g of gaps) {
    const start = g.end - g.len;
    if (g.end >= lo && start <= hi && g.end > after) best = Number.isNaN(best) ? Number(g.len) / 1e6 : Math.max(best, Number(g.len) / 1e6);
  }
  return best;
}

const msToNs = (ms) => BigInt(Math.round(ms * 1e6));

/** One measured snapshot with the probe looping: `mark`, snapshot, `report`. */
async function measured(s, kind) {
  await s.cmd('mark', /^marked/);
  const snap = await s.snapshot();
  const probe = await s.report();
  return { kind, snap, probe };
}

/**
 * A sample once the session has ended (the engine's timings are known): numactlx's
 * figures, and the probe's gap at the freeze and at the commit.
 */
function finalize({ kind, snap, probe, ...rest }, engine) {
  const d = engine.get(snap.id) ?? {};
  const tail = (d.mapsMs ?? 0) + (d.syncMs ?? 0) + (d.commitMs ?? 0);
  // The commit: maps, sync and commit run in the engine thread, which serves no fault
  // meanwhile, so the probe's next write to a clean page waits for all of it. Its gap
  // ends when the engine is back (E); the client's answer comes a little later (socket,
  // process exit): the largest gap of at least half the commit's time ending in the
  // 300 ms before the answer.
  let commit;
  for (const g of probe.gaps) {
    if (g.end <= snap.tClientDone && g.end >= snap.tClientDone - msToNs(300) && Number(g.len) / 1e6 >= tail / 2
      && (!commit || g.len > commit.len)) commit = g;
  }
  // The freeze, placed from E backwards with the engine's own clock: copy_ms runs from the
  // start of the engine's freeze (R) to the end of the copy, then the commit: R = E − tail
  // − copy_ms (late by however long the probe took to run again after the commit, a few
  // ms at most). The program was stopped at the tracer's interrupt, `stop` + `regs` +
  // `engine` (which includes the hop to the engine thread) before R at the earliest: the
  // freeze gap is the longest gap starting in [R − stop − regs − engine − 10 ms, R + 2 ms].
  // (A short copy can leave the program's first write after the resume waiting for the
  // whole commit: then it is one gap, counted for both.) No engine timings (their debug
  // lines were lost, see docs/BENCHMARKS.md): NaN.
  let freezeGapMs = NaN;
  if (kind !== 'pending' && commit && d.copyMs !== undefined && d.stopMs !== undefined) {
    const r = commit.end - msToNs(tail + snap.stats.copy_ms);
    const lo = r - msToNs(d.stopMs + d.regsMs + d.engineMs + 10);
    const hi = r + msToNs(2);
    for (const g of probe.gaps) {
      const start = g.end - g.len;
      if (start >= lo && start <= hi) freezeGapMs = Number.isNaN(freezeGapMs) ? Number(g.len) / 1e6 : Math.max(freezeGapMs, Number(g.len) / 1e6);
    }
  }
  const commitGapMs = commit ? Number(commit.len) / 1e6 : 0;
  // The probe's longest gaps on the bench's clock, ms since the request: [end, length].
  const rel = (t) => Number(t - snap.tReq) / 1e6;
  const timeline = { gaps: probe.gaps.map((g) => [rel(g.end), Number(g.len) / 1e6]).sort((a, b) => a[0] - b[0]),
    clientDone: rel(snap.tClientDone), ...(snap.sawFreeze ? { frozenSeen: rel(snap.tFrozen) } : {}),
    ...(commit && d.stopMs !== undefined ? { freezeStartEstimate: rel(commit.end) - tail - snap.stats.copy_ms } : {}) };
  const { gaps, reportT, ...p } = probe;
  return { kind, id: snap.id, stats: snap.stats, debug: d, clientMs: snap.clientMs, probe: p, freezeGapMs, commitGapMs, timeline, ...rest };
}

/**
 * The VM backs guest memory lazily (and takes back what the guest frees): the first write
 * to a page of RAM not touched for a while costs ~11 µs here instead of ~1 µs
 * (bench/fresh_memory.c). A snapshot copies into newly allocated backing pages, so without
 * this its throughput would measure the hypervisor. Writes and frees `bytes` of tmpfs
 * first, so that the session's pages land on memory the VM has backed again.
 */
function warmVmMemory(bytes) {
  const file = path.join('/dev/shm', `numactlx-snapbench-warm-${process.pid}`);
  const mib = Math.floor(bytes / 2 ** 20);
  const t0 = performance.now();
  try {
    runSync(['dd', 'if=/dev/zero', `of=${file}`, 'bs=1M', `count=${mib}`, 'status=none']);
  } finally {
    fs.rmSync(file, { force: true });
  }
  log(`  warmed ${fmt(mib / 1024, 1)} GiB of VM memory in ${fmt(performance.now() - t0, 0)} ms`);
}

async function runSession(ctx, size, placement) {
  warmVmMemory(Math.min(os.freemem() - 3 * 2 ** 30, 9 * sizeBytes(size)));
  const small = sizeBytes(size) <= 2 ** 30;
  const dir = fs.mkdtempSync(path.join(small ? '/dev/shm' : os.tmpdir(), 'numactlx-snapbench-'));
  const runtimeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'numactlx-snapbench-rt-'));
  ctx.cleanup.add(dir);
  ctx.cleanup.add(runtimeDir);
  // Eight times SIZE: every full snapshot takes SIZE of new frames, and a program that keeps
  // writing during a snapshot leaves every page dirty for the next (unmeasured) one too.
  const backingSize = `${Math.ceil((sizeBytes(size) * 8) / 2 ** 30)}g`;
  const s = new Session({
    numactlx: ctx.numactlx, backing: path.join(dir, 'node3.img'), backingSize, size, probe: ctx.probe,
    pin: placement.pin, runtimeDir, pollMs: POLL_MS,
  });
  ctx.sessions.add(s);
  const cpu0 = cpuStart();
  const samples = [];
  const tag = `${size} ${placement.name}`;
  try {
    await s.start();
    log(`session ${tag}: ready after ${fmt(s.fillMs, 0)} ms (first touch of ${size} through numactlx)`);
    // Baseline: the write loop with no snapshot.
    await s.cmd('loop all', /^looping/);
    await s.cmd('mark', /^marked/);
    await sleep(200);
    const { gaps: _g, reportT: _t, ...baseline } = await s.report();

    await s.cmd('loop all', /^looping/);
    samples.push(await measured(s, 'full-first'));
    await s.cmd('loop none', /^looping/);
    const dirtyAll = parseKv(await s.cmd('dirty all', /^dirtied/));
    await s.cmd('loop all', /^looping/);
    samples.push(await measured(s, 'full-rewrite'));
    // The copy alone: every page dirty, the program idle (no write competes with the copier).
    await s.cmd('loop none', /^looping/);
    await s.snapshot(); // flush what the loop left dirty
    await s.cmd('dirty all', /^dirtied/);
    samples.push(await measured(s, 'full-idle'));
    samples.at(-1).dirtyMs = dirtyAll.ms;

    for (let round = 0; round < ctx.incRounds; round++) {
      for (const pattern of rotate(['runs64k', 'scattered4k'], round)) {
        await s.cmd('loop none', /^looping/);
        await s.snapshot(); // flush: what the previous loop left dirty
        const dirtied = parseKv(await s.cmd(`dirty ${pattern}`, /^dirtied/));
        await s.cmd(`loop ${pattern}`, /^looping/);
        const m = await measured(s, pattern);
        m.dirtyMs = dirtied.ms;
        m.dirtyPages = dirtied.pages;
        samples.push(m);
      }
    }

    // Writes to pages not copied yet: the probe starts its walk down at the freeze.
    await s.cmd('loop none', /^looping/);
    const dirtyAll2 = parseKv(await s.cmd('dirty all', /^dirtied/));
    const snap = await s.snapshot({ onFreeze: () => { s.send('loop all down'); s.send('mark'); } });
    await s.out.next(/^looping/);
    await s.out.next(/^marked/);
    const pending = await s.report();
    samples.push({ kind: 'pending', snap, probe: pending, dirtyMs: dirtyAll2.ms,
      markAfterFreezeMs: snap.sawFreeze ? Number(pending.reportT - snap.tFrozen) / 1e6 - pending.elapsed_ms : NaN });
    // Writes to clean write-protected pages (the dirty-tracking fault, no copy): the walk
    // goes on over pages a flush snapshot has just made clean.
    await s.cmd('loop none', /^looping/);
    await s.snapshot();
    await s.cmd('mark', /^marked/);
    await s.cmd('loop all', /^looping/);
    await sleep(300);
    const { gaps: _g2, reportT: _t2, ...tracking } = await s.report();
    await s.cmd('loop none', /^looping/);
    const end = await s.quit();
    if (end.status !== 0) throw new Error(`session ${tag} ended with ${end.status ?? end.signal}`);
    const cpu = cpuEnd(cpu0);
    const engine = s.engineTimings();
    const done = samples.map((x) => finalize(x, engine.byId));
    for (const x of done) {
      log(`  ${tag} ${x.kind}: pause ${fmt(x.stats.pause_ms, 2)} ms (stop ${fmt(x.debug.stopMs, 2)}, scan ${fmt(x.debug.scanMs, 2)}, ` +
        `protect ${fmt(x.debug.protectMs, 2)} for ${x.debug.frozenPages} pages/${x.debug.runs} runs), probe gap at freeze ` +
        `${fmt(x.freezeGapMs, 2)} ms, max gap ${fmt(x.probe.max_gap_us / 1000, 2)} ms (commit ${fmt(x.commitGapMs, 1)} ms); ` +
        `copy ${fmt(x.stats.copy_ms, 0)} ms for ${fmt(x.stats.bytes_written / 2 ** 20, 1)} MiB, maps ${fmt(x.debug.mapsMs, 0)}, ` +
        `sync ${fmt(x.debug.syncMs, 0)}, commit ${fmt(x.debug.commitMs, 0)} ms; p99 write ${fmt(x.probe.p99_write_us, 2)} µs`);
    }
    log(`  ${tag} tracking: p50 ${tracking.p50_write_us} µs p99 ${tracking.p99_write_us} µs over ${tracking.writes} writes; ` +
      `others took ${fmt(cpu.foreign * 100, 0)}% of a CPU`);
    if (engine.other.length) log(`  ${tag} other numactlx lines: ${engine.other.slice(0, 5).join(' | ')}`);
    return { size, placement: placement.name, backing: small ? 'tmpfs' : 'file', backingSize, fillMs: s.fillMs, baseline, tracking,
      samples: done, cpu, faultLines: s.faultLines, otherLines: engine.other.slice(0, 20) };
  } finally {
    s.kill();
    ctx.sessions.delete(s);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(runtimeDir, { recursive: true, force: true });
    ctx.cleanup.delete(dir);
    ctx.cleanup.delete(runtimeDir);
  }
}

async function runFork(ctx, size, placement) {
  const cpu0 = cpuStart();
  const r = await runAsync([ctx.probe, '--fork', String(FORKS_PER_RUN), size], { pin: placement.pin });
  if (r.status !== 0) throw new Error(`pause_probe --fork: exit ${r.status}: ${r.stderr}`);
  const forksMs = [...r.stdout.matchAll(/^fork_us=([\d.]+)/gm)].map((m) => Number(m[1]) / 1000);
  const cpu = cpuEnd(cpu0);
  log(`  ${size} ${placement.name} fork(): ${forksMs.map((x) => fmt(x, 1)).join(', ')} ms (others ${fmt(cpu.foreign * 100, 0)}% of a CPU)`);
  return { size, placement: placement.name, forksMs, forkMs: median(forksMs), cpu };
}

/** The kernel's floor: UFFDIO_WRITEPROTECT of the same dirty memory in-process (bench/wp_baseline.c). */
async function runWp(ctx, size, placement) {
  const cpu0 = cpuStart();
  const r = await runAsync([ctx.wp, size, String(FORKS_PER_RUN)], { pin: placement.pin });
  if (r.status !== 0) throw new Error(`wp_baseline: exit ${r.status}: ${r.stderr}`);
  const rounds = [...r.stdout.matchAll(/^wp_us=([\d.]+) unwp_us=([\d.]+) fork_us=([\d.]+)/gm)]
    .map((m) => ({ wpMs: Number(m[1]) / 1000, unwpMs: Number(m[2]) / 1000, forkMs: Number(m[3]) / 1000 }));
  const cpu = cpuEnd(cpu0);
  log(`  ${size} ${placement.name} UFFDIO_WRITEPROTECT in-process: ${rounds.map((x) => fmt(x.wpMs, 1)).join(', ')} ms; ` +
    `fork() in the same process: ${rounds.map((x) => fmt(x.forkMs, 1)).join(', ')} ms (others ${fmt(cpu.foreign * 100, 0)}% of a CPU)`);
  return { size, placement: placement.name, wpRounds: rounds, wpMs: median(rounds.map((x) => x.wpMs)), cpu };
}

function criuCheck(ctx) {
  const out = { policy: runSync(['apt-cache', 'policy', 'criu'], { allowFail: true }).stdout.trim() };
  const which = runSync(['sh', '-c', 'command -v criu'], { allowFail: true }).stdout.trim();
  if (!which) {
    out.note = 'criu is not installed: `criu dump` not tried';
    return out;
  }
  out.version = runSync(['criu', '--version'], { allowFail: true }).stdout.trim().replace(/\n/g, '; ');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'numactlx-criu-'));
  ctx.cleanup.add(dir);
  // A probe of 256 MiB that loops forever, in its own session, stdio on files.
  const pid = Number(runSync(['sh', '-c', `setsid ${ctx.probe} --forever 256m all </dev/null >${dir}/probe.out 2>&1 & echo $!`]).stdout.trim());
  try {
    runSync(['sleep', '1']);
    const t0 = process.hrtime.bigint();
    const r = runSync(['criu', 'dump', '-t', String(pid), '-D', dir, '--leave-running', '--shell-job', '-o', 'dump.log', '-v4'],
      { allowFail: true, timeoutMs: 120_000 });
    out.command = `criu dump -t PID -D DIR --leave-running --shell-job -o dump.log -v4`;
    out.status = r.status;
    out.wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const logText = readOr(path.join(dir, 'dump.log'));
    out.errors = logText.split('\n').filter((l) => /Error|error|fail/i.test(l)).slice(0, 8);
    out.tail = logText.split('\n').slice(-4);
    out.stillRunning = fs.existsSync(`/proc/${pid}`);
  } finally {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    fs.rmSync(dir, { recursive: true, force: true });
    ctx.cleanup.delete(dir);
  }
  log(`criu: exit ${out.status}; ${out.errors?.[0] ?? out.tail?.join(' | ')}`);
  return out;
}

// ---- report -----------------------------------------------------------------------------

const by = (xs, f) => xs.filter(f);
const finite = (xs) => xs.filter((x) => typeof x === 'number' && Number.isFinite(x));
/** JSON has no NaN (it becomes null): back to NaN, so that ratios skip it. */
const num = (v) => (typeof v === 'number' ? v : NaN);
const S = (xs, d = 1) => (finite(xs).length ? cell(summary(finite(xs)), d) : '—');
const med = (xs) => (finite(xs).length ? median(finite(xs)) : NaN);

function render(raw) {
  const info = raw.machine;
  const out = [];
  out.push(`Machine: Linux ${info.kernel}, ${info.cpus} vCPUs (${info.cpu}), ${info.memGiB} GiB, THP \`${info.thp}\`, ` +
    `clocksource ${info.clocksource}, Node ${info.node}; numactlx ${info.numactlxCommit}; ${info.date}${raw.quick ? '; --quick' : ''}.`);
  const lw = raw.loadWait;
  out.push(`Load before measuring: 1-minute load average ${lw.load}${lw.quiet ? ` (below ${raw.maxLoad} after ${Math.round(lw.waitedS)} s)`
    : ` — **never below ${raw.maxLoad} in ${Math.round(lw.waitedS)} s: measured anyway**`}. ` +
    `${raw.reps} repetitions (4 GiB: ${raw.reps4g}), every variant once per repetition in a rotated order. Cells: median (min–max).`);
  out.push('');
  const sessions = raw.runs.filter((r) => r.samples);
  const sessionSrcs = new Set(sessions.map((r) => r.src));
  const forks = raw.runs.filter((r) => r.forksMs && sessionSrcs.has(r.src));
  const sizes = [...new Set(raw.runs.map((r) => r.size))];
  const placements = [...new Set(raw.runs.map((r) => r.placement))];
  const keys = sizes.flatMap((size) => placements.map((pl) => ({ size, pl })));
  const samplesOf = (size, pl, kind) => sessions.filter((r) => r.size === size && r.placement === pl)
    .flatMap((r) => r.samples.filter((x) => x.kind === kind).map((x) => ({ ...x, rep: r.rep })));

  // 1. Full snapshot vs fork().
  out.push('**1. Full snapshot (every page dirty): the pause vs fork() of the same memory**');
  out.push('');
  const rows1 = [];
  for (const { size, pl } of keys) {
    const f = forks.filter((r) => r.size === size && r.placement === pl);
    if (!f.length) continue;
    const forkByRep = new Map(f.map((r) => [r.rep, r.forkMs]));
    for (const kind of ['full-first', 'full-rewrite', 'full-idle']) {
      const xs = samplesOf(size, pl, kind);
      const paired = xs.filter((x) => forkByRep.has(x.rep));
      const ratio = summary(pairedRatios(paired.map((x) => x.stats.pause_ms), paired.map((x) => forkByRep.get(x.rep))));
      const gapRatio = summary(finite(pairedRatios(paired.map((x) => num(x.freezeGapMs)), paired.map((x) => forkByRep.get(x.rep)))));
      rows1.push([size, pl, { 'full-first': 'first snapshot', 'full-rewrite': 'all pages rewritten', 'full-idle': 'all dirty, program idle' }[kind], S(f.flatMap((r) => r.forksMs)),
        S(xs.map((x) => x.stats.pause_ms)), S(xs.map((x) => x.freezeGapMs)), S(xs.map((x) => x.probe.max_gap_us / 1000)),
        cell(ratio, 2), cell(gapRatio, 2), ratio.median <= 1 ? 'met (≤ 1)' : 'missed (> 1)']);
    }
  }
  out.push(table(['size', 'placement', 'snapshot', 'fork() ms', 'numactlx pause_ms', 'program\'s gap at the freeze, ms',
    'program\'s max gap, ms', 'pause ÷ fork', 'gap at freeze ÷ fork', 'target pause ≤ fork'], rows1));
  out.push('');
  out.push('Where the pause goes (NUMACTLX_DEBUG, medians, ms). Before it, with the program running: prepare = the ' +
    'engine write-protecting the dirty pages in steps between faults (pages staged per pass). In it: stop = ' +
    'PTRACE_INTERRUPT to every thread stopped; regs = reading them; scan = finding the pages written during the prepare; ' +
    'protect = their UFFDIO_WRITEPROTECT; maps = reading /proc/PID/maps; engine = the tracer\'s wait for the engine (scan + ' +
    'protect + maps + the hops between threads); resume.');
  out.push('');
  const rowsB = [];
  for (const { size, pl } of keys) {
    for (const kind of ['full-first', 'full-rewrite', 'full-idle', 'runs64k', 'scattered4k']) {
      const xs = samplesOf(size, pl, kind);
      if (!xs.length) continue;
      const d = (k) => fmt(med(xs.map((x) => x.debug[k] ?? NaN)), 2);
      const passes = xs[Math.floor(xs.length / 2)].debug.stagedPasses ?? [];
      rowsB.push([size, pl, kind, fmt(med(xs.map((x) => x.debug.frozenPages)), 0), d('prepareMs'), passes.join(' / '),
        fmt(med(xs.map((x) => x.debug.runs)), 0), d('stopMs'), d('regsMs'), d('scanMs'), d('protectMs'), d('freezeMapsMs'),
        d('engineMs'), d('resumeMs'), fmt(med(xs.map((x) => x.stats.pause_ms)), 2)]);
    }
  }
  out.push(table(['size', 'placement', 'snapshot', 'pages in the snapshot\'s copy', 'prepare', 'staged per pass',
    'runs protected in the pause', 'stop', 'regs', 'scan', 'protect', 'maps', 'engine (all)', 'resume', 'pause_ms'], rowsB));
  out.push('');

  // 1c. The kernel's floor.
  const wps = raw.runs.filter((r) => r.wpRounds);
  if (wps.length) {
    out.push('The kernel\'s floor (`bench/wp_baseline.c`, natively): UFFDIO_WRITEPROTECT of the same dirty memory from inside ' +
      'its own process, and fork() in that process, alternating round by round; numactlx\'s own `protect` (all its full ' +
      'snapshots) for comparison.');
    out.push('');
    const rowsW = [];
    for (const { size, pl } of keys) {
      const w = wps.filter((r) => r.size === size && r.placement === pl);
      if (!w.length) continue;
      const rounds = w.flatMap((r) => r.wpRounds);
      const nxProtect = ['full-first', 'full-rewrite', 'pending'].flatMap((k) => samplesOf(size, pl, k)).map((x) => x.debug.protectMs);
      rowsW.push([size, pl, S(rounds.map((x) => x.wpMs)), S(rounds.map((x) => x.unwpMs)), S(rounds.map((x) => x.forkMs)),
        S(pairedRatios(rounds.map((x) => x.wpMs), rounds.map((x) => x.forkMs)), 2), S(nxProtect)]);
    }
    out.push(table(['size', 'placement', 'UFFDIO_WRITEPROTECT ms', 'un-protect ms', 'fork() ms (same process)', 'WP ÷ fork',
      'numactlx `protect` ms'], rowsW));
    out.push('');
  }

  // 2. Incremental.
  out.push('**2. Incremental snapshot: 1% of the pages dirty**');
  out.push('');
  const rows2 = [];
  for (const { size, pl } of keys) {
    for (const kind of ['runs64k', 'scattered4k']) {
      const xs = samplesOf(size, pl, kind);
      if (!xs.length) continue;
      const p = summary(xs.map((x) => x.stats.pause_ms));
      const target = kind === 'runs64k' ? (p.median <= 1 ? 'met (≤ 1 ms)' : 'missed (> 1 ms)') : '(report)';
      rows2.push([size, pl, kind === 'runs64k' ? '64 KiB runs' : 'scattered 4 KiB', fmt(med(xs.map((x) => x.stats.new_pages)), 0),
        cell(p, 2), S(xs.map((x) => x.freezeGapMs), 2), S(xs.map((x) => x.probe.max_gap_us / 1000), 1),
        S(xs.map((x) => x.debug.mapsMs + x.debug.syncMs + x.debug.commitMs), 0), S(xs.map((x) => x.commitGapMs), 1),
        S(xs.map((x) => x.clientMs), 0), target]);
    }
  }
  out.push(table(['size', 'placement', 'dirty 1%', 'pages copied', 'numactlx pause_ms', 'program\'s gap at the freeze, ms',
    'program\'s max gap, ms', 'maps + sync + commit, ms', 'program\'s stall at the commit, ms', '`snapshot --wait` wall ms', 'target'], rows2));
  out.push('');

  // 3. Copy throughput.
  out.push('**3. Copy throughput: full snapshots with the program idle ("idle": the copier alone), and with the program ' +
    'writing every page during the copy ("writing": first, rewrite and pending snapshots, which compete with the copier for ' +
    'the CPU and turn copies into copy-before-write faults)**');
  out.push('');
  const rows3 = [];
  for (const { size, pl } of keys) for (const mode of ['idle', 'writing']) {
    const xs = mode === 'idle' ? samplesOf(size, pl, 'full-idle')
      : [...samplesOf(size, pl, 'full-first'), ...samplesOf(size, pl, 'full-rewrite'), ...samplesOf(size, pl, 'pending')];
    if (!xs.length) continue;
    const backing = sessions.find((r) => r.size === size)?.backing;
    const gbs = xs.map((x) => x.stats.bytes_written / x.stats.copy_ms / 1e6);
    const readv = xs.map((x) => x.stats.bytes_written / x.debug.readvMs / 1e6);
    const toCommit = xs.map((x) => x.stats.copy_ms + x.debug.mapsMs + x.debug.syncMs + x.debug.commitMs);
    const gbsCommit = xs.map((x, i) => x.stats.bytes_written / toCommit[i] / 1e6);
    const target = backing !== 'tmpfs' ? '(file backing: report)' : mode === 'writing' ? '(report)'
      : median(gbs) >= 1 ? 'met (≥ 1 GB/s)' : 'missed (< 1 GB/s)';
    rows3.push([size, pl, mode, backing, fmt(med(xs.map((x) => x.stats.bytes_written / 2 ** 20)), 0), S(xs.map((x) => x.stats.copy_ms), 0),
      S(gbs, 2), S(readv, 1), S(xs.map((x) => x.debug.mapsMs), 0), S(xs.map((x) => x.debug.syncMs), 0),
      S(xs.map((x) => x.debug.commitMs), 0), S(gbsCommit, 2), target]);
  }
  out.push(table(['size', 'placement', 'program', 'backing', 'MiB written', 'copy_ms', 'bytes_written ÷ copy_ms, GB/s',
    'process_vm_readv alone, GB/s', 'maps ms', 'sync ms', 'commit ms', 'GB/s resume → committed', 'target'], rows3));
  out.push('');

  // 4. Writes during a snapshot.
  out.push('**4. Writes during a full snapshot whose copy the program races (every page frozen, the program walking ' +
    'down while the copier goes up): all writes in the window, and the ones that faulted (> 1 µs: a copy-before-write, ' +
    'or a tracking fault once the walk has passed the copier); then writes to clean write-protected pages**');
  out.push('');
  const rows4 = [];
  for (const { size, pl } of keys) {
    const ss = sessions.filter((r) => r.size === size && r.placement === pl);
    const xs = samplesOf(size, pl, 'pending');
    if (!xs.length) continue;
    const base = ss.map((r) => r.baseline.p99_write_us);
    const slowP99 = xs.map((x) => x.probe.p99_slow_us);
    const target = pl === 'pinned' ? (median(slowP99) <= 50 ? 'met (≤ 50 µs)' : 'missed (> 50 µs)') : '(report)';
    rows4.push([size, pl, S(base, 3), fmt(med(xs.map((x) => x.probe.writes)), 0), S(xs.map((x) => x.probe.p50_write_us), 1),
      S(xs.map((x) => x.probe.p99_write_us), 1), S(xs.map((x) => x.probe.p999_write_us), 0),
      fmt(med(xs.map((x) => x.probe.slow_writes)), 0), S(slowP99, 1), S(xs.map((x) => x.probe.max_gap_us / 1000), 1),
      S(ss.map((r) => r.tracking.p50_write_us), 1), fmt(med(ss.map((r) => r.tracking.slow_writes)), 0),
      S(ss.map((r) => r.tracking.p99_slow_us), 1), target]);
  }
  out.push(table(['size', 'placement', 'plain store p99, µs', 'writes in the window', 'p50, µs', 'p99, µs', 'p99.9, µs',
    'writes that faulted', 'their p99, µs', 'longest stall, ms', 'clean protected page: p50, µs', 'faulted', 'their p99, µs', 'target (pinned)'], rows4));
  out.push('');

  // Load.
  const fs_ = raw.runs.map((r) => r.cpu.foreign * 100);
  const st = raw.runs.map((r) => r.cpu.steal * 100);
  out.push(`Other processes on the VM during the runs: median ${fmt(med(fs_), 0)}%, max ${fmt(Math.max(...fs_), 0)}% of one CPU; ` +
    `steal median ${fmt(med(st), 1)}%, max ${fmt(Math.max(...st), 1)}%; 1-minute load average at the start of a run: median ` +
    `${fmt(med(raw.runs.map((r) => r.cpu.loadStart)), 2)}, max ${fmt(Math.max(...raw.runs.map((r) => r.cpu.loadStart)), 2)}.`);
  out.push('');

  if (raw.criu) {
    const c = raw.criu;
    out.push('**5. CRIU**');
    out.push('');
    const pol = /Installed: (.*)\n\s*Candidate: (.*)/.exec(c.policy);
    out.push(`\`apt-cache policy criu\`: installed ${pol?.[1] ?? '?'}, candidate ${pol?.[2] ?? '?'}.` +
      (c.version ? ` \`criu --version\`: ${c.version}.` : ''));
    if (c.command) {
      out.push(`\`${c.command}\` on \`pause_probe --forever 256m\`: exit ${c.status} after ${fmt(c.wallMs, 0)} ms; ` +
        `the program ${c.stillRunning ? 'kept running' : 'was gone'}. Error lines of dump.log:`);
      out.push('');
      out.push('```');
      out.push(...(c.errors.length ? c.errors : c.tail));
      out.push('```');
    } else {
      out.push(c.note);
    }
    out.push('');
  }
  return out.join('\n');
}

function usage(msg) {
  process.stderr.write(`snapshot.mjs: ${msg}\nusage: node bench/snapshot.mjs [--quick] [--sizes 1g,4g] [--reps N] [--reps-4g N] ` +
    '[--placement pinned|unpinned|both] [--numactlx PATH] [--json FILE] [--md FILE] [--from-json FILE] [--max-load L] ' +
    '[--load-wait S] [--no-criu] [--variants fork,wp,session]\n');
  process.exit(2);
}

async function main() {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        quick: { type: 'boolean', default: false },
        sizes: { type: 'string' },
        reps: { type: 'string' },
        'reps-4g': { type: 'string' },
        placement: { type: 'string', default: 'both' },
        numactlx: { type: 'string', default: path.join(repo, 'bin', 'numactlx') },
        json: { type: 'string', default: '/tmp/numactlx-snapshot-bench.json' },
        md: { type: 'string' },
        'from-json': { type: 'string' },
        'max-load': { type: 'string', default: '0.7' },
        'load-wait': { type: 'string', default: '1200' },
        'no-criu': { type: 'boolean', default: false },
        variants: { type: 'string' },
      },
    });
  } catch (err) {
    usage(err.message);
  }
  const o = parsed.values;
  if (o['from-json']) {
    // Several files (comma-separated): their runs together, the first file's machine.
    const raws = o['from-json'].split(',').map((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
    // Runs are tagged with their file: section 1 pairs a session with the fork() run of
    // the same repetition of the same file.
    const raw = { ...raws[0], runs: raws.flatMap((r, i) => r.runs.map((run) => ({ ...run, src: i }))),
      criu: raws.map((r) => r.criu).find(Boolean) };
    const md = render(raw);
    process.stdout.write(`${md}\n`);
    if (o.md) fs.writeFileSync(o.md, `${md}\n`);
    return;
  }
  if (process.getuid() !== 0) usage('run as root (numactlx needs userfaultfd and ptrace)');
  const sizes = (o.sizes ?? (o.quick ? '256m' : '1g,4g')).split(',');
  for (const s of sizes) sizeBytes(s);
  const reps = Number(o.reps ?? (o.quick ? 2 : 5));
  const reps4g = Number(o['reps-4g'] ?? (o.quick ? 1 : 3));
  if (!(Number.isInteger(reps) && reps > 0) || !(Number.isInteger(reps4g) && reps4g > 0)) usage('bad --reps');
  const pinModes = { pinned: [{ name: 'pinned', pin: 0 }], unpinned: [{ name: 'unpinned', pin: undefined }] };
  pinModes.both = [...pinModes.pinned, ...pinModes.unpinned];
  if (!pinModes[o.placement]) usage(`bad --placement '${o.placement}'`);
  const numactlx = path.resolve(o.numactlx);

  const variants = (o.variants ?? 'fork,wp,session').split(',');
  for (const v of variants) if (!['fork', 'wp', 'session'].includes(v)) usage(`bad --variants '${o.variants}' (fork, wp, session)`);
  const ctx = { numactlx, probe: build('pause_probe'), wp: build('wp_baseline'), incRounds: o.quick ? 1 : INC_ROUNDS, cleanup: new Set(), sessions: new Set() };
  const cleanUp = () => {
    for (const s of ctx.sessions) s.kill();
    for (const d of ctx.cleanup) fs.rmSync(d, { recursive: true, force: true });
  };
  process.on('exit', cleanUp);
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

  const maxLoad = Number(o['max-load']);
  const loadWait = await waitLoad(maxLoad, Number(o['load-wait']));
  log(`load average ${loadWait.load}${loadWait.quiet ? '' : ` — never below ${maxLoad}: measuring anyway`}`);
  const raw = { machine: machine(numactlx), quick: o.quick, reps, reps4g, maxLoad, loadWait, runs: [] };
  log(`numactlx ${raw.machine.numactlxCommit}, Linux ${raw.machine.kernel}, ${raw.machine.cpus} CPUs`);
  const save = () => fs.writeFileSync(o.json, `${JSON.stringify(raw, (k, v) => (typeof v === 'bigint' ? String(v) : v), 2)}\n`);

  const maxReps = Math.max(...sizes.map((s) => (sizeBytes(s) > 2 ** 30 ? reps4g : reps)));
  for (let rep = 0; rep < maxReps; rep++) {
    for (const size of sizes) {
      if (rep >= (sizeBytes(size) > 2 ** 30 ? reps4g : reps)) continue;
      for (const placement of rotate(pinModes[o.placement], rep)) {
        for (const variant of rotate(variants, rep)) {
          log(`rep ${rep + 1}: ${size} ${placement.name} ${variant} (load ${loadAvg()})`);
          const run = { fork: runFork, wp: runWp, session: runSession }[variant];
          const r = await run(ctx, size, placement);
          raw.runs.push({ rep, ...r });
          save();
        }
      }
    }
  }
  if (!o['no-criu']) {
    raw.criu = criuCheck(ctx);
    save();
  }
  const md = render(raw);
  process.stdout.write(`${md}\n`);
  if (o.md) fs.writeFileSync(o.md, `${md}\n`);
  log(`raw results: ${o.json}`);
}

main().catch((err) => {
  process.stderr.write(`snapshot.mjs: ${err.stack ?? err}\n`);
  process.exit(1);
});
