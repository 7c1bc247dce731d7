// Fault-ahead's window (src/engine-thread/fault-ahead.ts), pure logic: a program's
// accesses replayed over a set of placed pages, each fault placing the absent pages of
// its window as the fault service does.
import { aheadWindow, FIRST_RUN_PAGES } from '../../src/engine-thread/fault-ahead.js';

const PAGE = 4096;
const MAX = 256; // the default --fault-ahead, 1 MiB

/** Replays touches of page numbers; returns the faults taken and the pages placed. */
function replay(touches: number[], range: [number, number], max = MAX): { faults: number; placed: number } {
  const placed = new Set<number>();
  let faults = 0;
  for (const p of touches) {
    const addr = p * PAGE;
    if (placed.has(addr)) continue;
    faults++;
    const [start, end] = aheadWindow(addr, range[0] * PAGE, range[1] * PAGE, max, (a) => placed.has(a));
    expect(start).toBeLessThanOrEqual(addr);
    expect(end).toBeGreaterThan(addr);
    expect(end - start).toBeLessThanOrEqual(max * PAGE);
    // The absent run around addr inside the window, as fault-service.ts walks it.
    let lo = addr;
    while (lo - PAGE >= start && !placed.has(lo - PAGE)) lo -= PAGE;
    for (let a = lo; a < end && !placed.has(a); a += PAGE) placed.add(a);
  }
  return { faults, placed: placed.size };
}

const seq = (from: number, n: number, step = 1): number[] => Array.from({ length: n }, (_, i) => from + i * step);

test('a region filled in order reaches the whole window within five faults more than a fixed window takes', () => {
  const pages = 262144; // 1 GiB
  const { faults, placed } = replay(seq(0, pages), [0, pages]);
  expect(placed).toBe(pages);
  expect(faults).toBeLessThanOrEqual(pages / MAX + 5);
});

test('a region filled downwards (a stack) grows its window the same way', () => {
  const pages = 4096;
  const { faults, placed } = replay(seq(pages - 1, pages, -1), [0, pages]);
  expect(placed).toBe(pages);
  expect(faults).toBeLessThanOrEqual(pages / MAX + 6);
});

test('sparse touches, one page per MiB: each is served its first run, not the whole window', () => {
  const touches = seq(0, 1024, 256);
  const { faults, placed } = replay(touches, [0, 1024 * 256]);
  expect(faults).toBe(1024);
  expect(placed).toBe(1024 * FIRST_RUN_PAGES); // a fixed window: 1024 × 256
});

test('a thread stack touched at its top and 32 KiB below it: under 128 KiB placed, not 1 MiB', () => {
  const top = 2048; // an 8 MiB stack
  const touches = [top - 1, ...seq(top - 2, 8, -1)];
  const { placed } = replay(touches, [0, top]);
  expect(placed).toBeLessThanOrEqual(32);
});

test('--fault-ahead 4k: one page a fault, whatever is placed around it', () => {
  const { faults, placed } = replay(seq(0, 64), [0, 64], 1);
  expect({ faults, placed }).toEqual({ faults: 64, placed: 64 });
});

test('the window stays inside the range', () => {
  expect(aheadWindow(10 * PAGE, 9 * PAGE, 12 * PAGE, MAX, () => false)).toEqual([9 * PAGE, 12 * PAGE]);
  expect(aheadWindow(10 * PAGE, 0, 12 * PAGE, MAX, (a) => a < 10 * PAGE)).toEqual([10 * PAGE, 12 * PAGE]);
});
