// The seccomp filter numactlx installs in programs (src/tracer-thread/seccomp-filter.ts),
// evaluated by the kernel: test/fixtures/filter_probe.c installs it with no tracer, so a
// call the filter traps fails with ENOSYS and every other call runs. brk(0) only asks
// where the break is and runs untrapped (two ptrace stops less for every process: ld.so
// and malloc ask); any other brk, with any bit of its address set, is trapped.
import { execa } from 'execa';
import { compileFixture } from '../helpers/fixtures.js';
import { memoryTrapFilter } from '../../src/tracer-thread/seccomp-filter.js';

test('the kernel runs the filter as numactlx means it: brk(0) and unrelated calls run, memory-placing calls are trapped', async () => {
  const bin = await compileFixture('filter_probe');
  const r = await execa(bin, [], { input: memoryTrapFilter(), reject: false });
  expect(r.stderr).toBe('');
  expect(r.stdout.split('\n')).toEqual([
    'brk(0) ok',
    'brk(grow) trapped',
    'brk(1<<32) trapped',
    'mmap(private anonymous) trapped',
    'mmap(shared anonymous) ok',
    'getpid ok',
    'set_mempolicy trapped',
    'userfaultfd trapped',
    'ptrace(PTRACE_TRACEME) trapped',
  ]);
});
