// The program break given back and grown again (malloc's trim, git's and CPython's
// allocators do it hundreds of times a run). A shrink creates nothing to register, so
// the tracer lets it run without a syscall-exit stop (src/tracer-thread/syscalls.ts) and
// records the new break itself: every later growth must be registered from there, or its
// pages would go to ordinary memory, unseen by the node and its snapshots.
import { compileFixture } from '../helpers/fixtures.js';
import { node3, onVirtualNode } from '../helpers/virtual.js';
import { removeTmpDirs } from '../helpers/tmp.js';
import { testSeed } from '../helpers/random.js';

afterAll(removeTmpDirs);

const ROUNDS = 1500;

test('a break shrunk and grown again 1,500 times: every page grown is placed on the node, new and right', async () => {
  const bin = await compileFixture('break_zigzag');
  const seed = testSeed('break_zigzag');
  const { result, stats } = await onVirtualNode([bin, String(ROUNDS), String(seed)], { size: '256m' });
  expect(result.stderr).toBe('');
  expect(result.exitCode).toBe(0);
  const m = /^break_zigzag ok (\d+) [0-9a-f]{16}$/.exec(String(result.stdout));
  expect(m).not.toBeNull();
  const grown = Number(m![1]);
  expect(grown).toBeGreaterThan(ROUNDS);
  // Each page grown is a new page, first touched by the fixture: served by the engine, at
  // its fault or ahead of another's. A growth registered from a stale break leaves pages
  // in ordinary memory, which no fault of the engine's serves: fewer served.
  const served = node3(stats).faults + node3(stats).fault_ahead_pages;
  expect(served).toBeGreaterThanOrEqual(grown);
  expect(node3(stats).pages_fallback).toBe(0);
  expect(stats.events.growth).toBe(0);
});

// A shrink the kernel refuses (here: into pages sealed with mseal(2), Linux 6.10) leaves
// numactlx's break below the kernel's: the tracer records a shrink without its exit stop.
// The next growth is then registered from the lower break, over pages registered already,
// which must be taken: the program runs on, every page grown placed, none on ordinary memory.
test('a shrink the kernel refuses (sealed pages), then a growth: the break is right, the pages grown are on the node', async () => {
  const bin = await compileFixture('break_sealed');
  const { result, stats } = await onVirtualNode([bin], { size: '64m' });
  if (/mseal.*ENOSYS|Function not implemented/.test(String(result.stderr))) throw new Error(`this test needs mseal(2) (Linux 6.10): ${result.stderr}`);
  expect({ exit: result.exitCode, out: result.stdout, err: result.stderr }).toEqual({ exit: 0, out: 'break_sealed ok', err: '' });
  // 128 pages of break were first touched by the fixture, each served on the node.
  expect(node3(stats).faults + node3(stats).fault_ahead_pages).toBeGreaterThanOrEqual(128);
  expect(node3(stats).pages_fallback).toBe(0);
  expect(stats.events.growth).toBe(0);
});
