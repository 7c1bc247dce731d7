// Fault-ahead on memory touched sparsely (src/engine-thread/fault-ahead.ts): each page
// served holds a frame of the node, so a fixed 1 MiB window made a program that touches
// one page per MiB hold 256 times what it touched — SIGBUS under --membind on a node
// that holds what it touched many times over, and idle threads' stacks a MiB each.
import { compileFixture } from '../helpers/fixtures.js';
import { removeTmpDirs } from '../helpers/tmp.js';
import { node3, onVirtualNode } from '../helpers/virtual.js';

afterAll(removeTmpDirs);

const PAGE = 4096;

test('1,024 pages touched one per 256 MiB of a 256 GiB reservation, on a 256 MiB node: it runs to its end, no SIGBUS', async () => {
  const bin = await compileFixture('sparse_touch');
  const { result, stats } = await onVirtualNode([bin, '256g', '256m'], { size: '256m' });
  expect({ exit: result.exitCode, signal: result.signal, out: result.stdout, err: result.stderr })
    .toEqual({ exit: 0, signal: undefined, out: 'sparse_touch ok 1024', err: '' });
  expect(node3(stats).sigbus).toBe(0);
  // Two pages touched each time (the page written, the next one read as zero): a first run
  // (16 pages) for each at most — two when they straddle a 64 KiB block (the mapping's
  // address is random) —, besides the program's own start. A fixed window: 256 each.
  expect(node3(stats).pages_placed).toBeLessThan(1024 * 32 + 4096);
}, 120000);

test('100 idle Python threads: their stacks hold tens of pages each on the node, not a fault-ahead window each', async () => {
  const program = 'import threading\nev = threading.Event()\nts = [threading.Thread(target=ev.wait) for _ in range(100)]\n'
    + '[t.start() for t in ts]; ev.set(); [t.join() for t in ts]; print("ok")';
  const { result, stats } = await onVirtualNode(['/usr/bin/python3', '-c', program], { size: '1g' });
  expect({ exit: result.exitCode, out: result.stdout, err: result.stderr }).toEqual({ exit: 0, out: 'ok', err: '' });
  // The interpreter itself places ≈ 2,000 pages; a 1 MiB window per stack was 100 × 256 more.
  expect(node3(stats).pages_placed * PAGE).toBeLessThan(32 << 20);
}, 120000);
