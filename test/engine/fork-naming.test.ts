// A forked child is named to the engine by a note, not a round trip (tracer-notes.ts):
// the child runs before the engine has read the note. On one CPU the note often comes
// between the engine's read of the parent's UFFD_EVENT_FORK and its handling (the read
// lets the forker go on, and the forker runs first): the name must wait for the FORK.
// A child may also get the pid of a process whose end is noted in the same batch: the
// end must not take the new child's name away.
import { compileFixture } from '../helpers/fixtures.js';
import { removeTmpDirs } from '../helpers/tmp.js';
import { node3, onVirtualNode } from '../helpers/virtual.js';

afterAll(() => removeTmpDirs());

const PAGE = 4096;

test('children forked on one CPU, some with an ended child\'s pid: each one\'s own pages are trapped and counted under its pid', async () => {
  const bin = await compileFixture('fork_reuse');
  const rounds = 40;
  const grow = 1024;
  const { result, stats } = await onVirtualNode([bin, String(rounds), String(grow * PAGE)], { size: '64m', pinCpu: 0 });
  expect(result.stderr).toBe('');
  expect(result.exitCode).toBe(0);
  const out = String(result.stdout);
  const children = [...out.matchAll(/^child (\d+) (reused|new)$/gm)].map((m) => Number(m[1]));
  expect(children).toHaveLength(rounds);
  const reused = Number(/^fork_reuse ok (\d+)$/m.exec(out)?.[1]);
  // Nothing else on the machine forks between the write of ns_last_pid and the fork, as a rule.
  expect(reused).toBeGreaterThanOrEqual(rounds / 2);
  // A child the engine never named (or lost the name of) has its new mapping left
  // ordinary memory, or closed under it: its faults are not counted under its pid. A
  // fault serves at most the fault-ahead window.
  const least = Math.ceil(grow / stats.fault_ahead_pages_window);
  for (const pid of children) {
    const faults = stats.processes.filter((p) => p.pid === pid).reduce((n, p) => n + p.faults, 0);
    if (faults < least) throw new Error(`child ${pid}: ${faults} faults counted under its pid, want ≥ ${least} (its own ${grow} new pages)`);
  }
  expect(node3(stats).pages_fallback).toBe(0);
}, 120000);

// A CLONE_VM child (what vfork's and posix_spawn's children are until they exec) is named
// on its parent's mm by a note too: what it maps is registered under its name.
test('children on their parent\'s mm (clone CLONE_VM) map fresh memory: every page of it is on the node', async () => {
  const bin = await compileFixture('clone_vm');
  const children = 8;
  const pages = 512;
  const { result, stats } = await onVirtualNode([bin, String(children), String(pages * PAGE)], { size: '64m' });
  expect({ exit: result.exitCode, out: result.stdout, err: result.stderr }).toEqual({ exit: 0, out: `clone_vm ok ${children}`, err: '' });
  // Each child's mapping stays (the mm is the parent's): children × pages distinct pages.
  expect(node3(stats).pages_placed).toBeGreaterThanOrEqual(children * pages);
  expect(node3(stats).pages_fallback).toBe(0);
}, 120000);

// Threads of one process that fork at the same instant: the engine names each FORK's mm
// in the order the tracer's notes come (oldest unnamed first). Each child makes a number
// of faults of its own that no other child makes (16, 32, … 128): a child named with a
// sibling's pid has its faults counted under that pid. With the names taken newest
// first (planted), 20 of 400 children unpinned and 101 of 400 pinned were counted wrong.
test.each([['unpinned', undefined], ['pinned to one CPU', 0]])('8 threads forking at once, %s: each child\'s own faults are counted under its pid', async (_how, pinCpu) => {
  const bin = await compileFixture('fork_race', ['-pthread']);
  const threads = 8;
  const rounds = 50;
  const { result, stats } = await onVirtualNode([bin, String(threads), String(rounds)], { size: '1g', pinCpu });
  expect({ exit: result.exitCode, err: result.stderr }).toEqual({ exit: 0, err: '' });
  const out = String(result.stdout);
  expect(out).toContain(`fork_race ok ${threads * rounds}`);
  const children = [...out.matchAll(/^child (\d+) (\d+)$/gm)].map((m) => ({ pid: Number(m[1]), touches: Number(m[2]) }));
  expect(children).toHaveLength(threads * rounds);
  const wrong = children.flatMap(({ pid, touches }) => {
    const faults = stats.processes.filter((p) => p.pid === pid).reduce((n, p) => n + p.faults, 0);
    // Its touches, 2 MiB apart (a fault each), and fewer than 16 others (its stack).
    return faults >= touches && faults < touches + 16 ? [] : [`child ${pid}: ${faults} faults, its own ${touches}`];
  });
  expect(wrong).toEqual([]);
}, 120000);
