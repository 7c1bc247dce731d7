// Snapshots held by a fork (NUMACTLX_SNAPSHOT_CAPTURE=fork: src/engine-thread/snapshot-capture.ts,
// src/tracer-thread/capture-fork.ts): each freeze makes every process of the program fork a
// child that never runs, the image is copied out of it, and it is killed. What the program
// must not notice, and the mappings a fork does not hold. The cut of a program writing at
// full speed is checked in precopy.test.ts.
import fs from 'node:fs';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { NUMACTLX, numactlx } from '../helpers/numactlx.js';
import { childrenOf as childrenOfAllThreads, isWaker, waitFor } from '../helpers/proc.js';
import { RawSnapshot } from '../helpers/raw-export.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';
import type { SessionStats } from '../../src/channels/session-stats.js';

afterAll(removeTmpDirs);

const PAGES = 32768; // 128 MiB: a first snapshot's copy out of the fork takes long enough to be caught
const PAGE = 4096;

// argv: 'plain' | 'dontfork' | 'wipeonfork' | 'nested'. Pages of a 16 MiB mapping hold
// their number + 1 in their first word; on 'write N' every page holds N; on 'check' the
// program says what a parent sees of its children: SIGCHLDs, waitpid(-1, WNOHANG), the
// kernel's list of its children. 'nested': a forked child holding the same memory sleeps.
// 'toggle wf' / 'toggle dc': a thread sets and clears MADV_WIPEONFORK / MADV_DONTFORK on
// the mapping without pause from then on.
const PROGRAM = `
import mmap, os, sys, signal, ctypes, threading
got = [0]
signal.signal(signal.SIGCHLD, lambda *a: got.__setitem__(0, got[0] + 1))
mode = sys.argv[1]
m = mmap.mmap(-1, ${PAGES * PAGE}, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)  # on node 3 (shared memory is not)
if mode == 'dontfork': m.madvise(mmap.MADV_DONTFORK)
if mode == 'wipeonfork': m.madvise(getattr(mmap, 'MADV_WIPEONFORK', 18))  # <asm-generic/mman-common.h>; CPython 3.11 lacks the name
for p in range(${PAGES}): m[p * 4096:p * 4096 + 8] = (p + 1).to_bytes(8, 'little')
child = 0
if mode == 'nested':
    child = os.fork()
    if child == 0:
        signal.pause()
        os._exit(0)
print('ready', ctypes.addressof(ctypes.c_char.from_buffer(m)), child, flush=True)
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == 'write':
        n = int(cmd[1]).to_bytes(8, 'little')
        for p in range(${PAGES}): m[p * 4096:p * 4096 + 8] = n
        print('written', cmd[1], flush=True)
    elif cmd[0] == 'exit':
        os._exit(0)
    elif cmd[0] == 'toggle':
        on, off = {'wf': (18, 19), 'dc': (10, 11)}[cmd[1]]  # WIPEONFORK/KEEPONFORK, DONTFORK/DOFORK
        def flip():
            while True:
                m.madvise(on)
                m.madvise(off)
        threading.Thread(target=flip, daemon=True).start()
        print('toggling', flush=True)
    elif cmd[0] == 'unmap':
        m.close()
        print('unmapped', flush=True)
    elif cmd[0] == 'dontneed':
        m.madvise(mmap.MADV_DONTNEED)
        print('dropped', flush=True)
    elif cmd[0] == 'check':
        try:
            w = str(os.waitpid(-1, os.WNOHANG))
        except ChildProcessError:
            w = 'ECHILD'
        kids = open('/proc/self/task/%d/children' % os.getpid()).read().split()
        print('check sigchld=%d waitpid=%s children=%s' % (got[0], w, ','.join(kids) or '-'), flush=True)
if child:
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
`;

interface Session {
  proc: ResultPromise<{ reject: false; buffer: false; stdin: 'pipe' }>;
  backing: string;
  dir: string;
  env: Record<string, string>;
  region: number;
  child: number;
  /** Sends a line and waits for the output line starting with `answer`. */
  ask(line: string, answer: string): Promise<string>;
}

async function start(mode: string): Promise<Session> {
  const dir = tmpDir();
  const backing = path.join(dir, 'node3.img');
  const env = { NUMACTLX_RUNTIME_DIR: tmpDir(), NUMACTLX_SNAPSHOT_CAPTURE: 'fork' };
  const proc = execa(NUMACTLX, [`--remap=3,${backing},size=1g`, '--membind=3', '--', 'python3', '-c', PROGRAM, mode],
    { env, reject: false, buffer: false, stdin: 'pipe' });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  // The whole line: with PYTHONUNBUFFERED set (CI has it) print() writes each of its
  // pieces with a write() of its own, so 'ready ' can be read before the numbers.
  const ready = /^ready (\d+) (\d+)\n/m;
  await waitFor('the program to be ready', () => ready.test(out), 20000);
  const [, region, child] = ready.exec(out)!.map(Number);
  const ask = async (line: string, answer: string): Promise<string> => {
    const from = out.length;
    proc.stdin!.write(`${line}\n`);
    let got = '';
    await waitFor(`'${answer}' from the program`, () => {
      got = out.slice(from).split('\n').find((l) => l.startsWith(answer)) ?? '';
      return got !== '';
    }, 20000);
    return got;
  };
  return { proc, backing, dir, env, region, child, ask };
}

async function snapshot(s: Session): Promise<{ exit: number; id?: number; lost?: number; stderr: string }> {
  const r = await numactlx(['snapshot', '--wait', '--json', String(s.proc.pid)], { env: s.env });
  const out = r.exitCode === 0 ? JSON.parse(String(r.stdout)) as { id: number; lost_pages?: number } : undefined;
  return { exit: r.exitCode ?? -1, id: out?.id, lost: out?.lost_pages ?? 0, stderr: String(r.stderr) };
}

async function stats(s: Session): Promise<SessionStats> {
  const r = await numactlx(['status', String(s.proc.pid), '--json'], { env: s.env });
  return (JSON.parse(String(r.stdout)) as { stats: SessionStats }).stats;
}

/** Waits until a snapshot is being copied; the pages the copier has left then. */
async function copyStarted(s: Session): Promise<number> {
  let left = 0;
  await waitFor('the copy to start', async () => {
    const c = (await stats(s)).copying;
    left = c?.pages_left ?? 0;
    return c !== undefined;
  }, 20000, 2);
  return left;
}

async function end(s: Session): Promise<void> {
  s.proc.stdin!.end();
  const r = await s.proc;
  expect(r.exitCode).toBe(0);
  expect((await numactlx(['verify', s.backing])).exitCode).toBe(0);
}

/** The first word of every page of the region in snapshot `id`, compared with `want(page)`; the first few wrong. */
async function wrongPages(s: Session, id: number, want: (p: number) => number): Promise<string[]> {
  const snap = await RawSnapshot.export(s.backing, id, s.dir);
  const wrong: string[] = [];
  for (let p = 0; p < PAGES && wrong.length < 3; p++) {
    const w = snap.word(s.region + p * PAGE);
    if (w !== BigInt(want(p))) wrong.push(`page ${p}: ${w}, not ${want(p)}`);
  }
  return wrong;
}


/** The children of `pid` and their states, from /proc. */
function childrenOf(pid: number): Array<{ pid: number; state: string }> {
  const kids = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number).filter((k) => !isWaker(k));
  return kids.map((k) => {
    try {
      return { pid: k, state: /^State:\s+(\S)/m.exec(fs.readFileSync(`/proc/${k}/status`, 'utf8'))![1] };
    } catch {
      return { pid: k, state: 'gone' };
    }
  });
}

test('the program sees nothing of its snapshots\' forks: no SIGCHLD, no child to wait for, none left; each snapshot is its instant', async () => {
  const s = await start('plain');
  const first = await snapshot(s);
  await s.ask('write 7', 'written 7');
  const second = await snapshot(s);
  expect([first, second].map((r) => ({ exit: r.exit, lost: r.lost, stderr: r.stderr }))).toEqual([
    { exit: 0, lost: 0, stderr: '' }, { exit: 0, lost: 0, stderr: '' }]);
  expect(await s.ask('check', 'check')).toBe('check sigchld=0 waitpid=ECHILD children=-');
  // The program's first process forks as numactlx's child (CLONE_PARENT): once its copy is
  // over, none is left there either.
  const program = (await stats(s)).processes[0].pid;
  await waitFor('the capture forks to be gone', () => childrenOfAllThreads(s.proc.pid!).join() === String(program), 5000, 20);
  const st = await stats(s);
  expect({ forks: st.events.capture_forks, fallbacks: st.events.capture_fallbacks ?? 0 }).toEqual({ forks: 2, fallbacks: 0 });
  expect(String((await numactlx(['status', String(s.proc.pid)], { env: s.env })).stdout)).toContain('capture forks 2 (0 copied in the pause instead)');
  await end(s);
  // Written pages of CPython's and libc's private file mappings (no virtual node holds them)
  // are read out of the forks at the commit, not in the pause: they are in both snapshots.
  const listed = JSON.parse(String((await numactlx(['snapshots', s.backing, '--json'])).stdout)) as Array<{ extra_pages: number }>;
  expect(listed.map((l) => l.extra_pages > 50)).toEqual([true, true]);
  expect(await wrongPages(s, first.id!, (p) => p + 1)).toEqual([]);
  expect(await wrongPages(s, second.id!, () => 7)).toEqual([]);
}, 120000);

test('a process the program forked: its capture fork\'s zombie is reaped once the fork is done with, and its parent gets no SIGCHLD', async () => {
  const s = await start('nested');
  expect(s.child).toBeGreaterThan(0);
  for (let i = 0; i < 3; i++) {
    expect((await snapshot(s)).exit).toBe(0);
    // Killed once its pages are copied, the fork is a zombie of the nested process until the
    // tracer reaps it there — right away, not at a later snapshot (none comes after the last).
    await waitFor(`snapshot ${i + 1}'s capture fork to be reaped`, () => childrenOf(s.child).length === 0, 10000);
  }
  expect(await s.ask('check', 'check')).toBe(`check sigchld=0 waitpid=(0, 0) children=${s.child}`);
  const st = await stats(s);
  expect(st.events.capture_forks).toBe(6); // two processes, three snapshots
  await end(s);
}, 120000);

test('pages the program drops while they are copied out of the fork are copied first: none is lost', async () => {
  const s = await start('plain');
  // The drop must land while much of the mapping is still to be copied: sent as soon as the
  // copier says more than an eighth of it is left (≥ 15 ms of copying here, and each page
  // not copied yet is one a broken copy loses). A copy seen later than that proves nothing:
  // another snapshot, up to five.
  let caught: { lost: number; id: number } | undefined;
  for (let attempt = 0; attempt < 5 && !caught; attempt++) {
    if (attempt > 0) await s.ask(`write ${attempt}`, `written ${attempt}`); // every page written again: all staged
    const asked = snapshot(s);
    const left = await copyStarted(s);
    const during = left > PAGES / 8;
    await s.ask('dontneed', 'dropped');
    const r = await asked;
    expect({ exit: r.exit, stderr: r.stderr }).toEqual({ exit: 0, stderr: '' });
    if (during) caught = { lost: r.lost ?? -1, id: r.id! };
    else process.stdout.write(`capture-fork drop: attempt ${attempt} saw ${left} pages left, too few; again\n`);
  }
  expect(caught).toBeDefined();
  expect(caught!.lost).toBe(0);
  await end(s);
  // The first attempt's image is the numbers written before it; a later one's, that attempt's.
  expect(await wrongPages(s, caught!.id, (p) => (caught!.id === 1 ? p + 1 : caught!.id - 1))).toEqual([]);
}, 180000);

test('the program exits while its snapshot is copied out of the fork: the snapshot is whole, pages outside the nodes too', async () => {
  const s = await start('plain');
  const asked = snapshot(s);
  const left = await copyStarted(s);
  s.proc.stdin!.write('exit\n');
  const [r, ended] = await Promise.all([asked, s.proc]);
  expect({ exit: r.exit, lost: r.lost, stderr: r.stderr, program: ended.exitCode }).toEqual({ exit: 0, lost: 0, stderr: '', program: 0 });
  process.stdout.write(`capture-fork exit: ${left} pages were left to copy when the exit was sent\n`);
  expect((await numactlx(['verify', s.backing])).exitCode).toBe(0);
  expect(await wrongPages(s, r.id!, (p) => p + 1)).toEqual([]);
  const listed = JSON.parse(String((await numactlx(['snapshots', s.backing, '--json'])).stdout)) as Array<{ extra_pages: number }>;
  expect(listed[0].extra_pages).toBeGreaterThan(50);
}, 120000);

// The engine hears of the munmap before the commit reads the fork's pages outside the nodes:
// which VMAs those are is the freeze's answer, not the ranges left then (the whole mapping was
// read again as memory outside the nodes; above 256 MiB that failed the snapshot: stress-ng's end).
test('the program unmaps its node mapping while its snapshot is copied out of the fork: the snapshot is whole, the mapping not counted outside the nodes', async () => {
  const s = await start('plain');
  const asked = snapshot(s);
  const left = await copyStarted(s);
  await s.ask('unmap', 'unmapped');
  const r = await asked;
  expect({ exit: r.exit, lost: r.lost, stderr: r.stderr }).toEqual({ exit: 0, lost: 0, stderr: '' });
  process.stdout.write(`capture-fork unmap: ${left} pages were left to copy when the unmap was sent\n`);
  await end(s);
  expect(await wrongPages(s, r.id!, (p) => p + 1)).toEqual([]);
  const listed = JSON.parse(String((await numactlx(['snapshots', s.backing, '--json'])).stdout)) as Array<{ extra_pages: number }>;
  expect(listed[0].extra_pages).toBeGreaterThan(50);
  expect(listed[0].extra_pages).toBeLessThan(PAGES / 2);
}, 120000);

test('a MADV_DONTFORK mapping: the prepare finds it, so that mm is pre-copied (no fork made, nothing copied in the pause), and each snapshot is whole', async () => {
  const s = await start('dontfork');
  const first = await snapshot(s);
  await s.ask('write 9', 'written 9');
  const second = await snapshot(s);
  expect([first, second].map((r) => ({ exit: r.exit, lost: r.lost }))).toEqual([{ exit: 0, lost: 0 }, { exit: 0, lost: 0 }]);
  const st = await stats(s);
  expect({ forks: st.events.capture_forks ?? 0, fallbacks: st.events.capture_fallbacks ?? 0 }).toEqual({ forks: 0, fallbacks: 0 });
  await end(s);
  expect(await wrongPages(s, first.id!, (p) => p + 1)).toEqual([]);
  expect(await wrongPages(s, second.id!, () => 9)).toEqual([]);
}, 120000);

test('a MADV_WIPEONFORK mapping: the prepare finds it, so that mm is pre-copied and the first snapshot is whole', async () => {
  const s = await start('wipeonfork');
  const first = await snapshot(s);
  expect({ exit: first.exit, lost: first.lost, stderr: first.stderr }).toEqual({ exit: 0, lost: 0, stderr: '' });
  await s.ask('write 7', 'written 7');
  const second = await snapshot(s);
  expect({ exit: second.exit, lost: second.lost }).toEqual({ exit: 0, lost: 0 });
  expect((await stats(s)).events.capture_forks ?? 0).toBe(0);
  await end(s);
  expect(await wrongPages(s, first.id!, (p) => p + 1)).toEqual([]);
  expect(await wrongPages(s, second.id!, () => 7)).toEqual([]);
}, 120000);

// Set and cleared without pause, the flag may be off at the prepare and on at the freeze:
// then the fork lacks the mapping (DONTFORK: copied in the pause) or holds it empty
// (WIPEONFORK: the snapshot fails saying so). Whichever comes, no snapshot is wrong.
test.each(['wf', 'dc'])('the program toggling %s on its mapping all along: every snapshot is whole, or fails saying why', async (flag) => {
  const s = await start('plain');
  await s.ask(`toggle ${flag}`, 'toggling');
  const results = [];
  for (let i = 0; i < 5; i++) results.push(await snapshot(s));
  const why = /^numactlx: .*is not in the fork that holds its image \(a mapping of it is empty in its forks \(MADV_WIPEONFORK\)\), set after the snapshot looked for such mappings: nothing is lost, take it again\n?$/;
  for (const r of results) {
    if (r.exit === 0) expect(r.lost).toBe(0);
    else expect({ exit: r.exit, why: why.test(r.stderr), flag }).toEqual({ exit: 1, why: true, flag: 'wf' });
  }
  const whole = results.filter((r) => r.exit === 0);
  const { events } = await stats(s);
  console.log(`toggling ${flag}: ${whole.length} of 5 snapshots whole, ${5 - whole.length} failed with the reason; ` +
    `${events.capture_forks ?? 0} held by a fork, ${events.capture_fallbacks ?? 0} copied in the pause instead`);
  await end(s);
  for (const r of whole) expect(await wrongPages(s, r.id!, (p) => p + 1)).toEqual([]);
}, 180000);

test.each([
  [{ NUMACTLX_SNAPSHOT_CAPTURE: 'cow' }, "numactlx: NUMACTLX_SNAPSHOT_CAPTURE: unknown value 'cow' (known: auto, fork, precopy)"],
  [{ NUMACTLX_SNAPSHOT_CAPTURE: 'fork', NUMACTLX_DIRTY_TRACKING: 'sync' },
    'numactlx: NUMACTLX_SNAPSHOT_CAPTURE=fork: it needs asynchronous dirty tracking (WP_ASYNC and PAGEMAP_SCAN, Linux 6.7), and this session tracks synchronously; unset NUMACTLX_SNAPSHOT_CAPTURE or set it to precopy'],
])('%j: one line, exit 1, nothing started', async (env, line) => {
  const dir = tmpDir();
  const marker = path.join(dir, 'ran');
  const r = await numactlx([`--remap=3,${path.join(dir, 'node3.img')},size=16m`, '--membind=3', '--', 'touch', marker], { env });
  expect({ exit: r.exitCode, stderr: String(r.stderr), ran: fs.existsSync(marker), backing: fs.existsSync(path.join(dir, 'node3.img')) })
    .toEqual({ exit: 1, stderr: line, ran: false, backing: false });
});
