#!/usr/bin/env node
// Eviction to the backing (--max-resident) side by side with the kernel swapping
// (docs/BENCHMARKS.md, "Eviction"). Both run bench/evict_bench.c with the same working
// set and the same memory limit, on the same filesystem:
//   swap      the program in a cgroup v1 memory group limited to LIMIT
//             (memory.limit_in_bytes), a swapfile on the filesystem of --dir swapped on
//             for the run (and off after);
//   numactlx  numactlx --remap=3,DIR/node3.img,size=…,resident=LIMIT --membind=3, no
//             cgroup (the program's own pages are bounded by the limit; numactlx's frames
//             are page cache of the backing file);
//   numactlx-cg  the same with the whole session in a memory group of LIMIT + --overhead
//             (numactlx's own memory and the backing's page cache under a limit too).
//
//   node bench/evict.mjs [--limit 1g] [--sizes 2g,4g] [--patterns seq,uniform,zipf]
//                        [--passes 2] [--dir /var/tmp/numactlx-evict] [--overhead 512m]
//                        [--systems swap,numactlx,numactlx-cg] [--json FILE] [--md FILE]
//
// ACCESSES = passes × pages of the working set. Needs root (cgroup, swapon), cc. The
// machine is shared: the load average before each run is recorded with it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runSync } from './lib/proc.mjs';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const repo = path.dirname(benchDir);
const { values: opt } = parseArgs({
  options: {
    limit: { type: 'string', default: '1g' },
    sizes: { type: 'string', default: '2g,4g' },
    patterns: { type: 'string', default: 'seq,uniform,zipf' },
    passes: { type: 'string', default: '2' },
    dir: { type: 'string', default: '/var/tmp/numactlx-evict' },
    overhead: { type: 'string', default: '512m' },
    systems: { type: 'string', default: 'swap,numactlx,numactlx-cg' },
    numactlx: { type: 'string', default: path.join(repo, 'bin/numactlx') },
    json: { type: 'string', default: '/tmp/numactlx-evict-bench.json' },
    md: { type: 'string' },
  },
});

const bytes = (s) => {
  const m = /^(\d+)([kmg]?)$/.exec(s);
  if (!m) throw new Error(`bad size ${s}`);
  return Number(m[1]) * { '': 1, k: 1024, m: 1 << 20, g: 1 << 30 }[m[2]];
};
const CG_ROOT = '/sys/fs/cgroup/memory';
const cgroup = path.join(CG_ROOT, `numactlx-evict-${process.pid}`);
const swapfile = path.join(opt.dir, 'swapfile');
const loadavg = () => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

function build() {
  const bin = path.join(benchDir, 'bin', 'evict_bench');
  fs.mkdirSync(path.dirname(bin), { recursive: true });
  runSync(['cc', '-O2', '-o', bin, path.join(benchDir, 'evict_bench.c')]);
  return bin;
}

function parseLine(out) {
  const line = out.split('\n').find((l) => l.startsWith('mode='));
  if (!line) throw new Error(`no result line in: ${out}`);
  return Object.fromEntries(line.split(' ').map((kv) => kv.split('=')).map(([k, v]) => [k, Number.isNaN(Number(v)) ? v : Number(v)]));
}

function makeCgroup(limit) {
  fs.mkdirSync(cgroup, { recursive: true });
  fs.writeFileSync(path.join(cgroup, 'memory.limit_in_bytes'), String(limit));
}

function removeCgroup() {
  try { fs.rmdirSync(cgroup); } catch { /* gone or busy */ }
}

/** argv run inside the memory group (the shell moves itself in, then execs). */
const inCgroup = (argv) => ['sh', '-c', `echo $$ > ${cgroup}/cgroup.procs && exec "$@"`, 'sh', ...argv];

/**
 * What a run killed before its end left: its swapfile still on (fallocate then fails with
 * ETXTBSY) and its memory group. A killed run cannot clean up (runSync blocks its signals).
 */
function removeLeftovers() {
  runSync(['swapoff', swapfile], { allowFail: true });
  for (const name of fs.existsSync(CG_ROOT) ? fs.readdirSync(CG_ROOT) : []) {
    const pid = /^numactlx-evict-(\d+)$/.exec(name)?.[1];
    if (pid && !fs.existsSync(`/proc/${pid}`)) {
      try { fs.rmdirSync(path.join(CG_ROOT, name)); } catch { /* still has processes */ }
    }
  }
}

function swapOn(size) {
  fs.mkdirSync(opt.dir, { recursive: true });
  removeLeftovers();
  runSync(['fallocate', '-l', String(size), swapfile]);
  fs.chmodSync(swapfile, 0o600);
  runSync(['mkswap', swapfile]);
  runSync(['swapon', swapfile]);
}

function swapOff() {
  runSync(['swapoff', swapfile], { allowFail: true });
  fs.rmSync(swapfile, { force: true });
}

function runOne(system, bin, pattern, ws, limit) {
  const pages = ws / 4096;
  const args = [bin, pattern, String(ws), String(Number(opt.passes) * pages), '7'];
  const load = loadavg();
  if (system === 'swap') {
    makeCgroup(limit);
    try {
      const r = runSync(inCgroup(args), { timeoutMs: 3_600_000 });
      const failcnt = Number(fs.readFileSync(path.join(cgroup, 'memory.failcnt'), 'utf8'));
      return { ...parseLine(r.stdout), wall_s: r.wallMs / 1000, load, failcnt };
    } finally {
      removeCgroup();
    }
  }
  const backing = path.join(opt.dir, 'node3.img');
  const stats = path.join(opt.dir, 'stats.json');
  fs.rmSync(backing, { force: true });
  fs.rmSync(stats, { force: true });
  const nx = [opt.numactlx, `--remap=3,${backing},size=${ws + (256 << 20)},resident=${limit}`, '--membind=3', '--stats', stats, '--', ...args];
  if (system === 'numactlx-cg') makeCgroup(limit + bytes(opt.overhead));
  try {
    const r = runSync(system === 'numactlx-cg' ? inCgroup(nx) : nx, { timeoutMs: 3_600_000 });
    const ev = JSON.parse(fs.readFileSync(stats, 'utf8')).nodes[0].eviction;
    return { ...parseLine(r.stdout), wall_s: r.wallMs / 1000, load, eviction: ev };
  } finally {
    if (system === 'numactlx-cg') removeCgroup();
    fs.rmSync(backing, { force: true });
  }
}

function report(results) {
  const rows = ['| working set | access | system | accesses/s | MB/s touched | ratio numactlx / swap | fill s | VmHWM | load (1/5/15 min) |',
    '|---|---|---|---|---|---|---|---|---|'];
  for (const r of results) {
    const base = results.find((x) => x.size === r.size && x.pattern === r.pattern && x.system === 'swap');
    const ratio = base && r.system !== 'swap' ? (r.accesses_per_s / base.accesses_per_s).toFixed(2) : '—';
    rows.push(`| ${r.size} | ${r.pattern} | ${r.system} | ${Math.round(r.accesses_per_s)} | ${r.mb_per_s} | ${ratio} | ${r.fill_s} | ${(r.hwm_kb / 1024).toFixed(0)} MiB | ${r.load} |`);
  }
  const ev = ['', '| working set | access | system | evictions | rounds | evict µs/page | pause ms/round | refaults (faults) | read MB | written MB | µs per access |',
    '|---|---|---|---|---|---|---|---|---|---|---|'];
  for (const r of results.filter((x) => x.eviction)) {
    const e = r.eviction;
    ev.push(`| ${r.size} | ${r.pattern} | ${r.system} | ${e.evictions} | ${e.rounds} | ${(1000 * e.evict_ms / Math.max(1, e.evictions)).toFixed(1)} | ` +
      `${(e.pause_ms / Math.max(1, e.rounds)).toFixed(2)} | ${e.refaults} (${e.refault_faults}) | ${(e.bytes_read / 1048576).toFixed(0)} | ` +
      `${(e.bytes_written / 1048576).toFixed(0)} | ${(1e6 / r.accesses_per_s).toFixed(2)} |`);
  }
  return [...rows, ...ev].join('\n') + '\n';
}

const bin = build();
fs.mkdirSync(opt.dir, { recursive: true }); // the backing's directory (swapOn makes it only for swap)
const limit = bytes(opt.limit);
const sizes = opt.sizes.split(',');
const systems = opt.systems.split(',');
const results = [];
if (systems.includes('swap')) swapOn(Math.max(...sizes.map(bytes)) + (1 << 30));
try {
  for (const size of sizes) {
    for (const pattern of opt.patterns.split(',')) {
      for (const system of systems) {
        const r = { size, pattern, system, ...runOne(system, bin, pattern, bytes(size), limit) };
        results.push(r);
        console.log(JSON.stringify(r));
        fs.writeFileSync(opt.json, JSON.stringify({ host: os.hostname(), kernel: os.release(), limit: opt.limit, results }, null, 2));
      }
    }
  }
} finally {
  if (systems.includes('swap')) swapOff();
  removeCgroup();
}
const md = report(results);
process.stdout.write(md);
if (opt.md) fs.writeFileSync(opt.md, md);
