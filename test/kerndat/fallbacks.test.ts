// What numactlx does where the kernel lacks a feature (src/kerndat/), run on this
// Linux 6.18 machine with the features forced absent (NUMACTLX_DISABLE_FEATURES), as
// Linux 6.1 (no UFFDIO_POISON) and a user without CAP_SYS_PTRACE (no EVENT_FORK, the
// program's userfaultfd from /dev/userfaultfd) have them. The same programs run on a
// real Linux 6.1 in the guest suite. `npm run test:linux-6.1` runs the virtual-node and
// snapshot suites the same way.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { compileFixture } from '../helpers/fixtures.js';
import { NUMACTLX, numactlx } from '../helpers/numactlx.js';
import { waitFor } from '../helpers/proc.js';
import { RawSnapshot } from '../helpers/raw-export.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';
import { node3, onVirtualNode } from '../helpers/virtual.js';

afterAll(removeTmpDirs);

const LINUX_6_1 = 'POISON,WP_UNPOPULATED,WP_ASYNC,MOVE,PAGEMAP_SCAN,PROCESS_MADVISE';
const env61 = { NUMACTLX_DISABLE_FEATURES: LINUX_6_1 };
const PAGE = 4096;

describe('a full --membind node without UFFDIO_POISON', () => {
  test('the faulting thread gets SIGBUS with the siginfo UFFDIO_POISON gives (BUS_ADRERR at the page)', async () => {
    const bin = await compileFixture('sigbus_fill');
    const native = await onVirtualNode([bin, '64m'], { size: '4m' });
    const old = await onVirtualNode([bin, '64m'], { size: '4m', options: { env: env61 } });
    for (const { result, stats } of [native, old]) {
      expect(result.exitCode).toBe(3);
      const m = /^sigbus at page (\d+) addr=(0x[0-9a-f]+) code=(\d+)$/.exec(String(result.stdout));
      expect(m).not.toBeNull();
      expect(m![3]).toBe('2'); // BUS_ADRERR
      // numactlx's one line names the page the program's handler was given.
      expect(String(result.stderr)).toContain(`gets SIGBUS under --membind`);
      expect(String(result.stderr)).toContain(`, ${m![2]}) gets SIGBUS`);
      expect(node3(stats).sigbus).toBeGreaterThanOrEqual(1);
    }
  });

  test('a program that blocks SIGBUS: the kernel forces it with UFFDIO_POISON; without, the pages go to ordinary memory', async () => {
    const bin = await compileFixture('sigbus_fill');
    const native = await onVirtualNode([bin, '16m', 'block'], { size: '4m' });
    expect(native.result.signal).toBe('SIGBUS'); // forced: blocked or not, the access kills
    const old = await onVirtualNode([bin, '16m', 'block'], { size: '4m', options: { env: env61 } });
    expect(old.result.exitCode).toBe(0);
    expect(old.result.stdout).toBe('filled 4096 pages');
    expect(node3(old.stats).pages_fallback).toBeGreaterThan(0);
    expect(node3(old.stats).sigbus).toBe(0);
    const lines = String(old.result.stderr).split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^numactlx: node 3 is full \(backing .*\): a page the program touched there \(pid \d+, 0x[0-9a-f]+\) goes to ordinary memory: its thread blocks or ignores SIGBUS/);
  });
});

describe('forks without UFFD_FEATURE_EVENT_FORK', () => {
  const FORKER = `
import ctypes, os, sys
b = bytearray(${2048 * PAGE})
addr = ctypes.addressof((ctypes.c_char * len(b)).from_buffer(b))
for p in range(2048): b[p * ${PAGE}:p * ${PAGE} + 8] = p.to_bytes(8, 'little')
pid = os.fork()
if pid == 0:
    for p in range(2048): b[p * ${PAGE}:p * ${PAGE} + 8] = (1000000 + p).to_bytes(8, 'little')
    sys.stdout.write('child %d %s\\n' % (os.getpid(), hex(addr))); sys.stdout.flush()
    sys.stdin.readline()
    os._exit(0 if all(int.from_bytes(b[p * ${PAGE}:p * ${PAGE} + 8], 'little') == 1000000 + p for p in range(2048)) else 1)
sys.stdout.write('parent %d %s\\n' % (os.getpid(), hex(addr))); sys.stdout.flush()
_, status = os.waitpid(pid, 0)
ok = all(int.from_bytes(b[p * ${PAGE}:p * ${PAGE} + 8], 'little') == p for p in range(2048))
print('done', status, ok, flush=True)
`;

  test("a forked child's pages stay on the node, and a snapshot holds parent and child apart", async () => {
    const dir = tmpDir();
    const backing = path.join(dir, 'node3.img');
    const env = { NUMACTLX_RUNTIME_DIR: tmpDir(), NUMACTLX_DISABLE_FEATURES: `EVENT_FORK,${LINUX_6_1}` };
    const session = execa(NUMACTLX, [`--remap=3,${backing},size=256m`, '--membind=3', '--stats', path.join(dir, 's.json'),
      '--', 'python3', '-c', FORKER], { env, reject: false, buffer: false, stdin: 'pipe' });
    const killer = setTimeout(() => session.kill('SIGKILL'), 60000);
    let out = '';
    session.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    // One write() a line: parent and child print at once, and print() with PYTHONUNBUFFERED
    // set (CI has it) writes each piece apart, so their lines could interleave.
    await waitFor('parent and child', () => /^child .*\n/m.test(out) && /^parent .*\n/m.test(out), 30000);
    const at = (who: string): { pid: number; addr: number } => {
      const [, pid, addr] = new RegExp(`^${who} (\\d+) (0x[0-9a-f]+)$`, 'm').exec(out)!;
      return { pid: Number(pid), addr: Number(addr) };
    };
    const snap = await numactlx(['snapshot', '--wait', '--json'], { env });
    expect(snap.exitCode).toBe(0);
    const id = JSON.parse(String(snap.stdout)).id as number;
    session.stdin!.end('go\n');
    const r = await session;
    clearTimeout(killer);
    expect({ exit: r.exitCode, done: /^done 0 True$/m.test(out) }).toEqual({ exit: 0, done: true });

    const child = at('child');
    const parent = at('parent');
    const stats = JSON.parse(fs.readFileSync(path.join(dir, 's.json'), 'utf8'));
    expect(stats.events.fork).toBeGreaterThanOrEqual(1); // python3 forks at start-up too
    for (const [who, seed] of [[child, 1000000], [parent, 0]] as const) {
      const raw = await RawSnapshot.export(backing, id, dir, who.pid);
      const wrong = [];
      for (let p = 0; p < 2048; p++) if (raw.word(who.addr + p * PAGE) !== BigInt(seed + p)) wrong.push(p);
      expect({ pid: who.pid, wrong: wrong.slice(0, 5) }).toEqual({ pid: who.pid, wrong: [] });
    }
    expect((await numactlx(['verify', backing])).exitCode).toBe(0);
  }, 90000);

  test('fork, vfork and exec run as with the event', async () => {
    const forkExec = await compileFixture('fork_exec');
    const vfork = await compileFixture('vfork');
    const env = { NUMACTLX_DISABLE_FEATURES: `EVENT_FORK,${LINUX_6_1}` };
    const a = await onVirtualNode([forkExec, '16'], { options: { env } });
    expect({ exit: a.result.exitCode, out: String(a.result.stdout).split('\n').at(-1) }).toEqual({ exit: 0, out: 'fork_exec ok 16' });
    expect(a.stats.events.fork).toBe(1);
    const b = await onVirtualNode([vfork], { options: { env } });
    expect(b.result.exitCode).toBe(0);
  });
});

describe('a feature with no fallback', () => {
  test('stops numactlx before the program starts, in one line naming the feature and the kernel that has it', async () => {
    const dir = tmpDir();
    const marker = path.join(dir, 'ran');
    const backing = path.join(dir, 'n3.img');
    const r = await numactlx([`--remap=3,${backing},size=16m`, '--membind=3', '--', 'touch', marker],
      { env: { NUMACTLX_DISABLE_FEATURES: 'WP' } });
    expect(r.stderr).toBe('numactlx: uffd WP is missing (disabled by NUMACTLX_DISABLE_FEATURES): numactlx needs it for ' +
      'write protection: every snapshot is copy-on-write; Linux 5.7 has it');
    expect(r.exitCode).toBe(1);
    expect(fs.existsSync(marker)).toBe(false);
    expect(fs.existsSync(backing)).toBe(false);
  });

  test('a program on real nodes only needs none of it', async () => {
    const r = await numactlx(['--membind=0', '--', 'sh', '-c', 'echo ran'], { env: { NUMACTLX_DISABLE_FEATURES: 'WP,USERFAULTFD,USERFAULTFD_DEVICE' } });
    expect({ exit: r.exitCode, out: r.stdout, err: r.stderr }).toEqual({ exit: 0, out: 'ran', err: '' });
  });

  test('an unknown name in NUMACTLX_DISABLE_FEATURES is one line', async () => {
    const r = await numactlx(['--remap=3,/tmp/never.img,size=16m', '--membind=3', '--', 'true'], { env: { NUMACTLX_DISABLE_FEATURES: 'POISONED' } });
    expect(r.stderr).toMatch(/^numactlx: NUMACTLX_DISABLE_FEATURES: unknown feature 'POISONED' \(known: [A-Z_, 0-9]+\)$/);
    expect(r.exitCode).toBe(1);
  });
});

describe('dirty tracking without UFFD_FEATURE_WP_ASYNC or PAGEMAP_SCAN (before Linux 6.7)', () => {
  test('by default the kernel tracks writes where it can, and numactlx serves write faults where it cannot', async () => {
    const native = await onVirtualNode(['true'], { size: '16m' });
    expect(native.stats.dirty_tracking).toBe('async');
    const old = await onVirtualNode(['true'], { size: '16m', options: { env: env61 } });
    expect(old.stats.dirty_tracking).toBe('sync');
    expect(old.result.stderr).toBe('');
    const forced = await onVirtualNode(['true'], { size: '16m', options: { env: { NUMACTLX_DIRTY_TRACKING: 'sync' } } });
    expect(forced.stats.dirty_tracking).toBe('sync');
  });

  test.each([['WP_ASYNC', 'uffd WP_ASYNC'], ['PAGEMAP_SCAN', 'PAGEMAP_SCAN']])(
    'NUMACTLX_DIRTY_TRACKING=async without %s: one line naming it, exit 1, the program not started', async (feature, label) => {
      const dir = tmpDir();
      const marker = path.join(dir, 'ran');
      const r = await numactlx([`--remap=3,${path.join(dir, 'node3.img')},size=16m`, '--membind=3', '--', 'touch', marker],
        { env: { NUMACTLX_DISABLE_FEATURES: feature, NUMACTLX_DIRTY_TRACKING: 'async' } });
      expect(r.exitCode).toBe(1);
      expect(String(r.stderr)).toBe(`numactlx: NUMACTLX_DIRTY_TRACKING=async: ${label} is missing, and asynchronous dirty ` +
        'tracking needs it (Linux 6.7 has it); unset NUMACTLX_DIRTY_TRACKING or set it to sync');
      expect(fs.existsSync(marker)).toBe(false);
    });

  test('a node with a resident limit keeps synchronous dirty tracking (eviction sees writes as faults); forcing async is one line', async () => {
    const evicting = await onVirtualNode(['true'], { size: '16m', extra: ['--max-resident', '4m'] });
    expect(evicting.stats.dirty_tracking).toBe('sync');
    const dir = tmpDir();
    const marker = path.join(dir, 'ran');
    const r = await numactlx([`--remap=3,${path.join(dir, 'node3.img')},size=16m,resident=4m`, '--membind=3', '--', 'touch', marker],
      { env: { NUMACTLX_DIRTY_TRACKING: 'async' } });
    expect({ exit: r.exitCode, stderr: String(r.stderr), ran: fs.existsSync(marker) }).toEqual({ exit: 1, ran: false,
      stderr: 'numactlx: NUMACTLX_DIRTY_TRACKING=async: a node with a resident limit (--max-resident, resident=) needs synchronous ' +
        'dirty tracking; unset NUMACTLX_DIRTY_TRACKING or set it to sync' });
  });

  test('NUMACTLX_DIRTY_TRACKING with an unknown value: one line, exit 1', async () => {
    const dir = tmpDir();
    const r = await numactlx([`--remap=3,${path.join(dir, 'node3.img')},size=16m`, '--membind=3', '--', 'true'],
      { env: { NUMACTLX_DIRTY_TRACKING: 'fast' } });
    expect(r.exitCode).toBe(1);
    expect(String(r.stderr)).toBe("numactlx: NUMACTLX_DIRTY_TRACKING: unknown value 'fast' (known: sync, async)");
  });
});
