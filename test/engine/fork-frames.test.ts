// Forked children on a virtual node, as on a real one: an inherited page shares its
// parent's frame (a fork charges the node nothing; the frames are told apart only when
// a snapshot must store two contents), and a full --membind node answers a child's new
// pages with SIGBUS, never with ordinary memory.
import path from 'node:path';
import { execa } from 'execa';
import { NUMACTLX, numactlx } from '../helpers/numactlx.js';
import { compileFixture } from '../helpers/fixtures.js';
import { waitFor } from '../helpers/proc.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';
import type { SessionStats } from '../../src/channels/session-stats.js';
import { probeKernel } from '../../src/kerndat/probe.js';

afterAll(() => removeTmpDirs());

const PAGE = 4096;

async function sessionStats(pid: number, env: Record<string, string>): Promise<SessionStats | undefined> {
  const r = await numactlx(['status', String(pid), '--json'], { env });
  return r.exitCode === 0 ? (JSON.parse(String(r.stdout)) as { stats: SessionStats }).stats : undefined;
}

function session(size: string, args: string[], bin: string) {
  const dir = tmpDir();
  const backing = path.join(dir, 'node3.img');
  const env = { NUMACTLX_RUNTIME_DIR: tmpDir() };
  const child = execa(NUMACTLX, [`--remap=3,${backing},size=${size}`, '--membind=3', '--', bin, ...args],
    { env, reject: false, buffer: false, stdin: 'pipe' });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  return { child, env, backing, out: () => out, err: () => err };
}

test('4 children inherit 16 MiB: the node holds it once (frames shared); a snapshot stores none of it again', async () => {
  // Without UFFD_FEATURE_EVENT_FORK (NUMACTLX_DISABLE_FEATURES=EVENT_FORK: the path of a user
  // without CAP_SYS_PTRACE) the tracer makes each child's uffd after the fork, and the kernel
  // has dropped the write protection of the child's inherited pages by then (a VMA that
  // loses its uffd at fork loses its uffd-wp bits): they are DIRTY in the child, and each
  // snapshot stores them again. The sharing asserted here needs the fork event.
  if (!probeKernel().EVENT_FORK.present) throw new Error('this test needs UFFD_FEATURE_EVENT_FORK (Linux 4.11; the fallback without it stores the children\'s pages again)');
  const bin = await compileFixture('fork_share');
  const s = session('64m', ['16m', '4'], bin);
  const pages = (16 << 20) / PAGE;
  const snapshot = async (): Promise<{ id: number; stats: { new_pages: number; pages: number } }> => {
    const r = await numactlx(['snapshot', String(s.child.pid), '--wait', '--json'], { env: s.env });
    expect(r.exitCode).toBe(0);
    return JSON.parse(String(r.stdout));
  };
  await waitFor('the parent to fill its 16 MiB', () => s.out().includes('filled\n'), 60000);
  // Its pages now have their content in their frames, write-protected: clean.
  const first = await snapshot();
  expect(first.stats.new_pages).toBeGreaterThanOrEqual(pages);
  s.child.stdin!.write('fork\n');
  await waitFor('4 children to check their inherited copy', () => {
    if (s.child.exitCode !== null) throw new Error(`the session ended: ${s.out()} ${s.err()}`);
    return (s.out().match(/^child \d ok$/gm) ?? []).length === 4;
  }, 60000);
  const stats = (await sessionStats(s.child.pid!, s.env))!;
  const node = stats.nodes[0];
  // 16 MiB once (+ the snapshot's copies of what changed, stacks and libc data); five
  // copies would be 5 × 4096 frames.
  expect(node.frames_in_use).toBeLessThan(pages + 1024);
  expect(node.pages_fallback).toBe(0);
  // The children's inherited pages are clean (the kernel kept their write protection):
  // the next snapshot holds five processes' 16 MiB and copies only what was written.
  const second = await snapshot();
  expect(second.stats.pages).toBeGreaterThanOrEqual(5 * pages);
  expect(second.stats.new_pages).toBeLessThan(1024);
  s.child.stdin!.end('go\n');
  const r = await s.child;
  expect(r.exitCode).toBe(0);
  expect(s.out()).toMatch(/child 0 exit 0\nchild 1 exit 0\nchild 2 exit 0\nchild 3 exit 0\nfork_share ok\n$/);
  expect((await numactlx(['verify', s.backing])).exitCode).toBe(0);
}, 120000);

test('--membind on a full node: a child\'s own new pages get SIGBUS, none goes to ordinary memory', async () => {
  const bin = await compileFixture('fork_share');
  // The parent's 12 MiB fit; two children that each inherit them (free) and map 12 MiB
  // more do not both fit in 32 MiB.
  const s = session('32m', ['12m', '2', '12m'], bin);
  await waitFor('the parent to fill its 12 MiB', () => s.out().includes('filled\n'), 60000);
  s.child.stdin!.write('fork\n');
  await waitFor('both children to end their growth (ok, or killed by SIGBUS)', async () => {
    if (s.child.exitCode !== null) throw new Error(`the session ended: ${s.out()} ${s.err()}`);
    const st = await sessionStats(s.child.pid!, s.env);
    const ok = (s.out().match(/^child \d ok$/gm) ?? []).length;
    return st !== undefined && ok + Math.min(st.nodes[0].sigbus, 2 - ok) === 2 && st.nodes[0].sigbus > 0;
  }, 60000);
  const stats = (await sessionStats(s.child.pid!, s.env))!;
  expect(stats.nodes[0].pages_fallback).toBe(0);
  s.child.stdin!.end('go\n');
  const r = await s.child;
  expect(r.exitCode).toBe(0);
  expect(s.out()).toMatch(/child \d signal 7/);
  expect(s.out()).toContain('fork_share ok');
  expect(s.err()).toMatch(/numactlx: node 3 is full .* gets SIGBUS under --membind/);
}, 120000);
