// Group "programs": numactlx doctor, and real programs with all their memory on virtual
// node 3 — python3 and redis-server — on each backing, their results checked against the
// same program run without numactlx, and the node's statistics showing the memory there;
// programs in seccomp sandboxes (a deny-list, a whitelist) keeping their --max-resident limit on 6.1;
// processes on their parent's mm (clone CLONE_VM) and a reservation touched sparsely, with
// their memory on the node.
import { Group, assert } from '../lib/harness.mjs';
import { CLONE_VM, FORK_RACE, NUMACTLX, SANDBOXED, SANDBOXED_DENYLIST, SPARSE_TOUCH, Session, backings, prepareFreshBackings, readStats, run, why } from '../lib/programs.mjs';

const g = new Group('programs');

await g.check('doctor: no feature numactlx needs is missing', async () => {
  const r = await run(NUMACTLX, ['doctor', '--json']);
  let report;
  try {
    report = JSON.parse(r.stdout);
  } catch {
    throw new Error(`numactlx doctor --json printed no JSON (exit status ${r.code}): ${why(r.stderr)}`);
  }
  const missing = report.checks.filter((c) => c.status === 'missing');
  assert(r.code === 0 && missing.length === 0,
    `numactlx doctor: exit status ${r.code}, missing: ${missing.map((c) => `${c.name} (${c.detail})`).join('; ')}`);
  // What this kernel lacks and numactlx falls back for (6.1: POISON, WP_ASYNC, …), in the log.
  const degraded = report.checks.filter((c) => c.status === 'degraded').map((c) => c.feature);
  console.log(`doctor: degraded on ${process.env.GUEST_KERNEL}: ${degraded.join(', ') || 'none'}`);
});

await prepareFreshBackings(g);

// 24 MiB of a bytearray, a dict of 100k strings: the heap (brk) and anonymous mmaps.
const PYTHON = `
import hashlib
n = 24 << 20
b = bytearray(n)
for i in range(0, n, 4096):
    b[i] = (i // 4096) % 251
d = {i: str(i) * 3 for i in range(100000)}
h = hashlib.sha256(b)
h.update(''.join(d[i] for i in range(0, 100000, 7)).encode())
print(h.hexdigest(), len(d))
`;

const native = await run('/usr/bin/python3', ['-c', PYTHON]);

for (const b of backings()) {
  const t = (s) => `${b.name}: ${s}`;

  await g.check(t('python3 with all its memory on node 3 gives the same result'), async () => {
    assert(native.code === 0, `python3 without numactlx failed: ${why(native.stderr)}`);
    const stats = `/tmp/python-${b.name}.json`;
    const r = await run(NUMACTLX, [`--remap=${b.remap}`, '--membind=3', '--stats', stats, '--', '/usr/bin/python3', '-c', PYTHON]);
    assert(r.code === 0, `numactlx … python3: exit status ${r.code}${r.signal ? ` (${r.signal})` : ''}: ${why(r.stderr)}`);
    assert(r.stdout === native.stdout, `python3 printed ${JSON.stringify(r.stdout)}, without numactlx ${JSON.stringify(native.stdout)}`);
    const node = readStats(stats).nodes[0];
    assert(node.pages_placed * 4096 >= 24 << 20, `node 3 got ${node.pages_placed} pages, fewer than python3's 24 MiB bytearray`);
    assert(node.pages_fallback === 0, `${node.pages_fallback} pages fell back to ordinary memory under --membind=3`);
  });

  await g.check(t('redis-server with all its memory on node 3 serves its data'), async () => {
    const port = b.name === 'dax' ? '6391' : '6392';
    const stats = `/tmp/redis-${b.name}.json`;
    const cli = (...args) => run('/usr/bin/redis-cli', ['-p', port, ...args]);
    const s = new Session([`--remap=${b.remap}`, '--membind=3', '--stats', stats, '--', '/usr/bin/redis-server',
      '--port', port, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', '/tmp',
      '--enable-debug-command', 'local', '--logfile', '']);
    g.onEnd(() => s.kill());
    await s.line(/Ready to accept connections/, 'redis-server to accept connections');
    const populate = await cli('DEBUG', 'POPULATE', '200000', 'key');
    assert(populate.stdout.trim() === 'OK', `DEBUG POPULATE: ${populate.stdout.trim()} ${why(populate.stderr)}`);
    assert((await cli('SET', 'greeting', 'hello from node 3')).stdout.trim() === 'OK', 'SET greeting failed');
    const size = (await cli('DBSIZE')).stdout.trim();
    assert(size === '200001', `DBSIZE is ${size}, not 200001`);
    for (const k of ['0', '4242', '199999']) {
      const v = (await cli('GET', `key:${k}`)).stdout.trim();
      assert(v === `value:${k}`, `GET key:${k} gave '${v}', not 'value:${k}'`);
    }
    const greeting = (await cli('GET', 'greeting')).stdout.trim();
    assert(greeting === 'hello from node 3', `GET greeting gave '${greeting}'`);
    const used = Number((await cli('INFO', 'memory')).stdout.match(/^used_memory:(\d+)/m)?.[1]);
    await cli('SHUTDOWN', 'NOSAVE');
    const exit = await s.finish('redis-server to shut down');
    assert(exit.code === 0, `numactlx … redis-server: exit status ${exit.code}${exit.signal ? ` (${exit.signal})` : ''}: ${why(s.stderr)}`);
    const node = readStats(stats).nodes[0];
    assert(used > 10 << 20, `redis used_memory is ${used}: the keys did not take memory`);
    assert(node.pages_placed * 4096 >= used, `node 3 got ${node.pages_placed} pages (${node.pages_placed * 4096} bytes), less than redis's used_memory ${used}`);
    assert(node.pages_fallback === 0, `${node.pages_fallback} pages fell back to ordinary memory under --membind=3`);
  });

  // A clone with exit signal SIGCHLD is reported as a fork whatever its flags: a CLONE_VM
  // child's mappings are trapped on its parent's mm (src/tracer-thread/new-tasks.ts cloneKind).
  await g.check(t('children on their parent\'s mm (clone CLONE_VM) map fresh memory: every page on node 3'), async () => {
    const stats = `/tmp/clone_vm-${b.name}.json`;
    const r = await run(NUMACTLX, [`--remap=${b.remap}`, '--membind=3', '--stats', stats, '--', CLONE_VM, '8', '2m']);
    assert(r.code === 0 && r.stdout.trim() === 'clone_vm ok 8', `numactlx … clone_vm 8 2m: exit status ${r.code}, printed ${JSON.stringify(r.stdout)}: ${why(r.stderr)}`);
    const node = readStats(stats).nodes[0];
    assert(node.pages_placed >= 8 * 512, `node 3 got ${node.pages_placed} pages, fewer than the children's 8 × 512`);
  });

  // Threads of one process forking at once: each child's mm is named with its own pid (the
  // engine names FORKs in the order the tracer's notes come). Child i makes 16 × (i + 1)
  // faults of its own; a child named with a sibling's pid has them counted under that pid.
  await g.check(t('4 threads forking at once, 20 rounds: each child\'s own faults are counted under its pid'), async () => {
    const stats = `/tmp/fork_race-${b.name}.json`;
    const r = await run(NUMACTLX, [`--remap=${b.remap}`, '--membind=3', '--stats', stats, '--', FORK_RACE, '4', '20']);
    assert(r.code === 0 && r.stdout.includes('fork_race ok 80'), `numactlx … fork_race 4 20: exit status ${r.code}, printed ${JSON.stringify(r.stdout.slice(-200))}: ${why(r.stderr)}`);
    const processes = readStats(stats).processes;
    const wrong = [...r.stdout.matchAll(/^child (\d+) (\d+)$/gm)].flatMap(([, pid, touches]) => {
      const faults = processes.filter((p) => p.pid === Number(pid)).reduce((n, p) => n + p.faults, 0);
      return faults >= Number(touches) && faults < Number(touches) + 16 ? [] : [`child ${pid}: ${faults} faults, its own ${touches}`];
    });
    assert(wrong.length === 0, wrong.slice(0, 5).join('; '));
  });

  // A process that dropped root may open neither userfaultfd(2) nor /dev/userfaultfd:
  // numactlx hands it the device (src/tracer-thread/handed-device.ts).
  await g.check(t('python3 that dropped root (setpriv --reuid 65534): its memory on node 3, nothing said'), async () => {
    const stats = `/tmp/python-dropped-${b.name}.json`;
    const r = await run(NUMACTLX, [`--remap=${b.remap}`, '--membind=3', '--stats', stats, '--',
      'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '/usr/bin/python3', '-c', PYTHON]);
    assert(r.code === 0 && r.stderr === '', `numactlx … setpriv … python3: exit status ${r.code}: ${why(r.stderr)}`);
    assert(r.stdout === native.stdout, `python3 printed ${JSON.stringify(r.stdout)}, without numactlx ${JSON.stringify(native.stdout)}`);
    const node = readStats(stats).nodes[0];
    assert(node.pages_placed * 4096 >= 24 << 20, `node 3 got ${node.pages_placed} pages, fewer than python3's 24 MiB bytearray`);
  });

  // (A user namespace of its own is checked on the host only, test/tracer/credentials.test.ts:
  // `unshare -U -r true` fails with EPERM in this guest without numactlx.)

  // Fault-ahead grows with what is placed next to a fault (src/engine-thread/fault-ahead.ts).
  // Two pages touched each time (the one written, the next read as zero): a 16-page first run
  // each, two when they straddle a 64 KiB block.
  await g.check(t('1,024 pages touched one per 256 MiB of a 256 GiB reservation: 32 pages placed a touch at most, no SIGBUS'), async () => {
    const stats = `/tmp/sparse-${b.name}.json`;
    const r = await run(NUMACTLX, [`--remap=${b.remap}`, '--membind=3', '--stats', stats, '--', SPARSE_TOUCH, '256g', '256m']);
    assert(r.code === 0 && r.stdout.trim() === 'sparse_touch ok 1024', `numactlx … sparse_touch: exit status ${r.code}${r.signal ? ` (${r.signal})` : ''}, printed ${JSON.stringify(r.stdout)}: ${why(r.stderr)}`);
    const node = readStats(stats).nodes[0];
    assert(node.pages_placed < 1024 * 32 + 4096, `node 3 got ${node.pages_placed} pages for 1,024 touched`);
  });

  // numactlx (root) reads the program's filters and runs them on the drop it injects
  // (src/tracer-thread/filter-verdict.ts): PTRACE_SECCOMP_GET_FILTER on this kernel too; a
  // whitelist would refuse it, and the drop is made past it (PTRACE_O_SUSPEND_SECCOMP).
  for (const [kind, bin, name] of [['deny-list', SANDBOXED_DENYLIST, 'sandboxed_denylist'], ['whitelist', SANDBOXED, 'sandboxed']]) {
    await g.check(t(`a program in a ${kind} seccomp sandbox keeps its --max-resident limit: pages evicted, nothing said`), async () => {
      const stats = `/tmp/${name}-${b.name}.json`;
      const r = await run(NUMACTLX, [`--remap=${b.remap},resident=8m`, '--membind=3', '--stats', stats, '--', bin, '32']);
      assert(r.code === 0 && r.stdout.trim() === `${name} ok ${32 * 32640}`,
        `numactlx … ${name} 32: exit status ${r.code}${r.signal ? ` (${r.signal})` : ''}, printed ${JSON.stringify(r.stdout)}: ${why(r.stderr)}`);
      assert(r.stderr === '', `numactlx said: ${why(r.stderr)}`);
      const ev = readStats(stats).nodes[0].eviction;
      assert(ev && ev.evictions > 4096, `${ev?.evictions} pages evicted: 32 MiB written twice through an 8 MiB limit evicts more than 4,096`);
    });
  }
}

process.exitCode = await g.end();
