// numactlx status / ps against a real session: a program holding 64 MiB on node 3.
import { execa } from 'execa';
import { NUMACTLX, numactlx } from '../helpers/numactlx.js';
import { compileFixture } from '../helpers/fixtures.js';
import { waitFor } from '../helpers/proc.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';
import type { StatusReply } from '../../src/control/protocol.js';

afterAll(removeTmpDirs);

test('status and ps report a running session: its pids, its node and the memory on it', async () => {
  const bin = await compileFixture('pattern');
  const dir = tmpDir();
  const env = { NUMACTLX_RUNTIME_DIR: tmpDir() };
  const session = execa(NUMACTLX, [`--remap=3,${dir}/n3.img,size=256m`, '--membind=3', bin, 'hold', '64m', '5'],
    { env, reject: false, buffer: false, stdin: 'pipe' });
  let out = '';
  session.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  await waitFor('the program to hold its memory', () => out.includes('ready'), 20000);

  const byNumactlx = await numactlx(['status', String(session.pid), '--json'], { env });
  expect(byNumactlx.exitCode).toBe(0);
  const reply = JSON.parse(String(byNumactlx.stdout)) as StatusReply;
  expect(reply.numactlx_pid).toBe(session.pid);
  expect(reply.program).toEqual([bin, 'hold', '64m', '5']);
  expect(reply.virtual_nodes).toEqual([{ node: 3, backing: `${dir}/n3.img`, kind: 'file', size_bytes: 256 << 20 }]);
  const node = reply.stats.nodes[0];
  expect(node.pages_resident).toBeGreaterThanOrEqual(64 * 256);
  expect(reply.stats.processes.find((p) => p.pid === reply.program_pid)?.pages_resident).toBeGreaterThanOrEqual(64 * 256);

  const byProgram = await numactlx(['status', String(reply.program_pid), '--json'], { env });
  expect(JSON.parse(String(byProgram.stdout)).numactlx_pid).toBe(session.pid);

  const human = await numactlx(['status'], { env });
  expect(human.exitCode).toBe(0);
  expect(human.stdout).toContain(`${dir}/n3.img`);

  const ps = await numactlx(['ps'], { env });
  expect(ps.stdout.split('\n')[1]).toMatch(new RegExp(`^${session.pid}\\s+${reply.program_pid}\\s+3\\s`));

  session.stdin!.end();
  const r = await session;
  expect(r.exitCode).toBe(0);
  const after = await numactlx(['status'], { env });
  expect(after.exitCode).toBe(1);
  expect(after.stderr).toBe('numactlx: status: no numactlx session is running');
}, 60000);
