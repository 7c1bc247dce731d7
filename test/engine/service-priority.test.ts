// The threads that serve the program — the tracer and the engine — run at nice -20 where
// numactlx may set it (root here: CAP_SYS_NICE), so that a program with more busy threads
// than CPUs does not starve what its trapped calls and faults wait on
// (src/sys/thread-priority.ts). The program itself starts at the nice numactlx was
// started with, as numactl's exec'd program does, and so do numactlx's other threads.
// (Without the capability nothing is raised: test/kerndat/unprivileged.test.ts.)
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { NUMACTLX } from '../helpers/numactlx.js';
import { childrenOf, waitFor } from '../helpers/proc.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';
import { readProcStat } from '../../src/sys/procfs.js';
import { hasCapability } from '../../src/sys/process.js';

afterAll(removeTmpDirs);

/** The nice of each thread of `pid` (field 19 of /proc/PID/task/TID/stat). */
function threadNices(pid: number): number[] {
  return fs.readdirSync(`/proc/${pid}/task`).map((tid) => Number(readProcStat(`${pid}/task/${tid}`).field(19)));
}

test('started at nice 5: the program and numactlx\'s other threads at 5, the tracer and the engine at -20', async () => {
  if (!hasCapability(23)) throw new Error('this test needs CAP_SYS_NICE (numactlx raises its threads with it; without it: unprivileged.test.ts)');
  const dir = tmpDir();
  // The program says it runs only after its first instruction, which the tracer lets it
  // reach after raising itself; the engine raises itself before it is ready.
  const session = execa('nice', ['-n', '5', NUMACTLX, `--remap=3,${path.join(dir, 'n3.img')},size=16m`, '--membind=3', '--',
    'sh', '-c', 'echo ready; read line'], { reject: false, buffer: false, stdin: 'pipe', env: { NUMACTLX_RUNTIME_DIR: dir } });
  let out = '';
  let err = '';
  session.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  session.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  await waitFor('the program\'s "ready"', () => out.includes('ready'), 30_000);
  const nx = session.pid!;
  const program = childrenOf(nx);
  expect(program).toHaveLength(1);
  const nices = threadNices(nx);
  expect({ program: Number(readProcStat(String(program[0])).field(19)), raised: nices.filter((n) => n === -20).length, others: [...new Set(nices.filter((n) => n !== -20))] })
    .toEqual({ program: 5, raised: 2, others: [5] });
  session.stdin!.end('\n');
  const end = await session;
  expect({ exit: end.exitCode, stderr: err }).toEqual({ exit: 0, stderr: '' });
}, 60_000);
