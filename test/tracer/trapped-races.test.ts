// Trapped calls racing (issue 11, item 3): the tracer registers a new range itself and
// notes it to the engine without waiting for it, so the order in which the engine reads
// those notes and the uffd's messages is what places a range's first fault. map_race
// (test/fixtures/map_race.c) maps, remaps at the same address, unmaps, grows the break
// and forks from several threads, touching every new range at once, and checks its
// data. Every fault must have found its range known to the engine: a fault outside
// every known range is counted as `growth` (only mremap growth may cause one, and
// map_race never mremaps), a page that went to ordinary memory as a fallback.
import { compileFixture } from '../helpers/fixtures.js';
import { node3, onVirtualNode } from '../helpers/virtual.js';
import { removeTmpDirs } from '../helpers/tmp.js';
import { testSeed } from '../helpers/random.js';

afterAll(removeTmpDirs);

const ITERATIONS = 3000;

test.each([['unpinned', undefined], ['pinned to CPU 0', 0]])('threads mapping, remapping, unmapping and forking, %s: every first fault finds its range', async (_name, pinCpu) => {
  const bin = await compileFixture('map_race');
  const seed = testSeed('map_race');
  const { result, stats } = await onVirtualNode([bin, String(ITERATIONS), String(seed)], {
    size: '1g', options: { timeout: 600_000 }, pinCpu,
  });
  expect(result.stderr).toBe('');
  expect(result.exitCode).toBe(0);
  expect(result.stdout).toBe(`map_race ok ${ITERATIONS}`);
  expect(stats.events.growth).toBe(0);
  expect(node3(stats).pages_fallback).toBe(0);
  // Each mapper iteration's fault, the break's pages and the children's own.
  expect(node3(stats).faults).toBeGreaterThan(3 * ITERATIONS);
  expect(stats.events.unmap).toBeGreaterThanOrEqual(3 * ITERATIONS);
  expect(stats.events.fork).toBeGreaterThanOrEqual(ITERATIONS / 8);
});
