// Programs no one here wrote (issue 11): CPython's own test suites for subprocesses,
// threads, mmap and signals, each run whole under numactlx on a virtual node, must pass
// as they pass without it. test_subprocess starts and kills children at every moment of
// their start-up, switches them to another user (whose userfaultfd numactlx makes from
// the /dev/userfaultfd it hands over: nothing said), and closes or inherits fds around exec.
//
// Debian's python3 keeps its test package apart: libpython3.X-testsuite.
import { execa } from 'execa';
import { node3, onVirtualNode } from '../helpers/virtual.js';
import { removeTmpDirs } from '../helpers/tmp.js';

afterAll(removeTmpDirs);

const PYTHON = '/usr/bin/python3';

beforeAll(async () => {
  const probe = await execa(PYTHON, ['-c', 'import sys, test.support, test.test_subprocess; print("%d.%d" % sys.version_info[:2])'], { reject: false });
  if (probe.exitCode !== 0) {
    const version = (await execa(PYTHON, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], { reject: false })).stdout;
    throw new Error(`${PYTHON} has no test package (CPython's test suite): apt-get install libpython${version}-testsuite`);
  }
});

test.each(['test_subprocess', 'test_threading', 'test_mmap', 'test_signal'])('python3 -m test %s passes on a virtual node', async (suite) => {
  const { result, stats } = await onVirtualNode([PYTHON, '-m', 'test', suite], { size: '4g', options: { timeout: 1_500_000 } });
  expect({ suite, exitCode: result.exitCode, signal: result.signal }).toEqual({ suite, exitCode: 0, signal: undefined });
  expect(result.stdout).toMatch(/^Tests result: SUCCESS$/m);
  const ours = String(result.stderr).split('\n').filter((l) => l.startsWith('numactlx:'));
  expect(ours).toEqual([]);
  // The interpreter's memory, and its children's, was on the node.
  expect(node3(stats).pages_placed).toBeGreaterThan(1000);
}, 1_500_000);
