#!/usr/bin/env node
// Where the CPU time of one run goes, per thread: `perf record -a -g` while a command
// runs, keeping only the samples of the command and its descendants (other work on the
// machine stays out), each put in one bucket by its call chain (kernel UFFDIO_COPY,
// ptrace, poll, JS, V8's compiler threads, ...). This is how the explanations in
// docs/BENCHMARKS.md were measured.
//
// System-wide (per-CPU) recording, filtered afterwards by the fork tree, because
// per-task recording (`perf record -- CMD`) adds perf's own work to every context switch
// of the traced tasks, and numactlx's fault service is made of context switches: it
// slowed the 4 KiB fault benchmark by 40–100 %.
//
//   node bench/profile.mjs [--freq HZ] [--js] -- COMMAND [ARGS...]
//     --js    run Node with --perf-basic-prof so JIT frames have names (slower)
//
// Example (fault service, no fault-ahead, pinned):
//   node bench/profile.mjs -- taskset -c 0 bin/numactlx --remap=3,/tmp/n3.img,size=2g \
//     --membind=3 --fault-ahead 4k -- bench/bin/touch 1g
// Needs perf (linux-perf) and root. Samples are cpu-clock at HZ (default 4000) per CPU,
// so samples / HZ is CPU seconds; perf's own overhead slows the run a little.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const BUCKETS = [
  ['mfill_atomic', 'kernel: UFFDIO_COPY (page alloc + copy + map)'],
  ['userfaultfd_register', 'kernel: UFFDIO_REGISTER'],
  ['userfaultfd_unregister', 'kernel: UFFDIO_UNREGISTER'],
  ['userfaultfd_ioctl', 'kernel: other uffd ioctl (wake)'],
  ['userfaultfd_read', 'kernel: read(uffd)'],
  ['userfaultfd_event_wait_completion', 'kernel: waiting for the handler (uffd event)'],
  ['handle_userfault', 'kernel: faulting thread in handle_userfault'],
  ['ptrace', 'kernel: ptrace'],
  ['do_wait', 'kernel: waitpid'],
  ['syscall_trace_enter', 'kernel: seccomp/ptrace syscall entry'],
  ['syscall_exit_work', 'kernel: ptrace syscall exit'],
  ['futex', 'kernel: futex (Atomics.wait/notify, locks)'],
  ['do_sys_poll', 'kernel: poll'],
  ['eventfd', 'kernel: eventfd'],
  ['fallocate', 'kernel: fallocate (backing frames)'],
  ['process_vm_r', 'kernel: process_vm_readv'],
  ['__x64_sys_munmap', 'kernel: munmap'],
  ['__x64_sys_mmap', 'kernel: mmap'],
  ['exc_page_fault', 'kernel: page fault (native)'],
  ['schedule', 'kernel: context switch'],
];

function bucket(chain) {
  const all = chain.join(' ');
  for (const [key, name] of BUCKETS) if (all.includes(key)) return name;
  const leaf = chain[0] ?? '?';
  if (leaf.includes('[kernel')) return 'kernel: other';
  if (all.includes('v8::internal::compiler') || all.includes('maglev')) return 'V8: optimizing compiler';
  if (/Heap|Scaveng|MarkCompact|Sweeper|Mark(ing|er)/.test(all)) return 'V8: GC';
  if (leaf.startsWith('JS:')) return 'JS (JIT code)';
  if (leaf.includes('koffi')) return 'koffi';
  if (leaf.startsWith('Builtins_') || leaf.includes('perf-')) return 'V8: builtins / unnamed JIT code';
  return 'user: other native (node, libc, the program)';
}

/** perf's own tid and every task forked from it (the workload; perf's own threads are dropped by comm). */
function workloadTids(text, perfPid) {
  const tids = new Set([String(perfPid)]);
  const parentOf = new Map();
  for (const line of text.split('\n')) {
    const m = /PERF_RECORD_FORK\((\d+):(\d+)\):\((\d+):(\d+)\)/.exec(line);
    if (m) parentOf.set(m[2], m[4]);
  }
  // Forks come in time order, so one pass in insertion order finds every descendant.
  for (const [child, parent] of parentOf) if (tids.has(parent)) tids.add(child);
  return tids;
}

function parseScript(text) {
  const samples = [];
  let cur;
  for (const line of text.split('\n')) {
    if (line.includes('PERF_RECORD_')) continue;
    if (!line.trim()) {
      if (cur) samples.push(cur);
      cur = undefined;
      continue;
    }
    if (!line.startsWith('\t')) {
      const m = /^\s*(.*?)\s+(\d+)\s+([\d.]+):/.exec(line);
      if (m) cur = { comm: m[1], tid: m[2], chain: [] };
      continue;
    }
    const sp = line.trim().indexOf(' ');
    if (cur && sp > 0) cur.chain.push(line.trim().slice(sp + 1));
  }
  if (cur) samples.push(cur);
  return samples;
}

function main() {
  const args = process.argv.slice(2);
  let freq = 4000;
  let js = false;
  while (args.length && args[0] !== '--') {
    const a = args.shift();
    if (a === '--freq') freq = Number(args.shift());
    else if (a === '--js') js = true;
    else { process.stderr.write(`profile.mjs: unknown option ${a}\n`); process.exit(2); }
  }
  args.shift();
  if (args.length === 0) {
    process.stderr.write('usage: node bench/profile.mjs [--freq HZ] [--js] -- COMMAND [ARGS...]\n');
    process.exit(2);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'numactlx-profile-'));
  const data = path.join(dir, 'perf.data');
  try {
    const env = { ...process.env };
    if (js) env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --perf-basic-prof`.trim();
    const rec = spawnSync('perf', ['record', '-q', '-a', '-g', '-e', 'cpu-clock', '-F', String(freq), '-o', data, '--', ...args],
      { stdio: ['inherit', 'inherit', 'inherit'], env });
    if (rec.status !== 0) process.stderr.write(`profile.mjs: the command or perf exited with ${rec.status ?? rec.signal}\n`);
    const script = spawnSync('perf', ['script', '-i', data, '--show-task-events', '-F', 'comm,tid,time,ip,sym,dso'],
      { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] });
    const mine = workloadTids(script.stdout, rec.pid);
    const samples = parseScript(script.stdout).filter((s) => mine.has(s.tid) && s.comm !== 'perf');
    const byThread = new Map();
    for (const s of samples) {
      const key = `${s.comm} ${s.tid}`;
      if (!byThread.has(key)) byThread.set(key, new Map());
      const m = byThread.get(key);
      const b = bucket(s.chain);
      m.set(b, (m.get(b) ?? 0) + 1);
    }
    const total = samples.length;
    process.stdout.write(`\n${total} samples = ${(total / freq).toFixed(3)} CPU s at ${freq} Hz\n`);
    const threads = [...byThread].map(([k, m]) => [k, m, [...m.values()].reduce((a, b) => a + b, 0)])
      .sort((a, b) => b[2] - a[2]);
    for (const [k, m, n] of threads) {
      if (n < total * 0.01) continue;
      process.stdout.write(`\n${k}: ${(n / freq * 1000).toFixed(0)} ms CPU (${(100 * n / total).toFixed(1)}% of samples)\n`);
      for (const [b, c] of [...m].sort((x, y) => y[1] - x[1])) {
        if (c < n * 0.01) continue;
        process.stdout.write(`  ${(c / freq * 1000).toFixed(0).padStart(7)} ms  ${(100 * c / n).toFixed(1).padStart(5)}%  ${b}\n`);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main();
