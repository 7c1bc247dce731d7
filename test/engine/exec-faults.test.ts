// Each exec'd process's first faults are served in the turn they are read. Exec's stack
// holds argv and envp before numactlx registers it; fault-ahead around main's first
// stack fault runs into them, and UFFDIO_COPY stops there with a short copy — which the
// ioctl reports as EAGAIN, the errno of a changing mm. Taken for that, the fault was put
// off to the engine's next poll (up to 1 ms for every process a shell script starts).
// fault-service.ts goes on past the mapped page instead; events.retried counts the faults
// that still wait for a later turn.
import { node3, onVirtualNode } from '../helpers/virtual.js';
import { removeTmpDirs } from '../helpers/tmp.js';

afterAll(removeTmpDirs);

const RUNS = 20;

test('a shell starting programs: no first fault of an exec\'d process waits for a later turn', async () => {
  const script = `n=0; for i in $(seq ${RUNS}); do /bin/true && n=$((n + 1)); done; echo "ran $n"`;
  const { result, stats } = await onVirtualNode(['sh', '-c', script], { size: '64m' });
  expect(result.stderr).toBe('');
  expect(result.stdout).toBe(`ran ${RUNS}`);
  // Every /bin/true had its stack (and its libraries' .bss) served from node 3.
  expect(stats.processes.filter((p) => p.exited).length).toBeGreaterThanOrEqual(RUNS);
  expect(node3(stats).pages_placed).toBeGreaterThan(RUNS * 4);
  expect(stats.events.retried).toBe(0);
});
