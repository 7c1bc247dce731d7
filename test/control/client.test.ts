// The client against fake sessions (test/helpers/fake-session.mjs, each its own process).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { execa } from 'execa';
import { findSession, listSessions, pidAlive, request } from '../../src/control/client.js';
import { ControlError } from '../../src/control/protocol.js';
import { killFakeSessions, startFakeSession } from '../helpers/fake-sessions.js';
import { procState, waitFor } from '../helpers/proc.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

afterEach(killFakeSessions);
afterAll(removeTmpDirs);

/** A pid that was just used and is now dead (and reaped). */
async function deadPid(): Promise<number> {
  const r = await execa('sh', ['-c', 'echo $$']);
  return Number(r.stdout);
}

/** A socket file nobody listens on, as a session killed by SIGKILL leaves it. */
async function staleSocket(file: string): Promise<void> {
  await execa(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(file)}, () => process.kill(process.pid, 'SIGKILL'))`], { reject: false });
  expect(fs.lstatSync(file).isSocket()).toBe(true);
}

test('listSessions says hello to every session, sorted by numactlx pid', async () => {
  const dir = tmpDir();
  const a = await startFakeSession({ dir });
  const b = await startFakeSession({ dir, config: { program: ['sleep', '999'] } });
  fs.writeFileSync(path.join(dir, 'README'), 'not a socket name: ignored');
  const sessions = await listSessions({ dir });
  expect(sessions.map((s) => [s.numactlx_pid, s.program_pid, s.program, s.socket]))
    .toEqual([a, b].sort((x, y) => x.numactlx_pid - y.numactlx_pid)
      .map((s) => [s.numactlx_pid, s.program_pid, ['sleep', s === a ? '1000' : '999'], s.socket]));
  expect(sessions[0]).toMatchObject({ uid: process.getuid!(), virtual_nodes: [{ node: 2, kind: 'file' }] });
  expect(Number.isNaN(Date.parse(sessions[0].started))).toBe(false);
});

test('listSessions: no directory, or an empty one, is no sessions; an unsafe one is an error', async () => {
  const dir = tmpDir();
  expect(await listSessions({ dir: path.join(dir, 'missing') })).toEqual([]);
  expect(await listSessions({ dir })).toEqual([]);
  fs.chmodSync(dir, 0o755);
  await expect(listSessions({ dir })).rejects.toThrow(/has mode 0755, group or others have access/);
});

test('listSessions removes the stale socket of a dead pid, keeps that of a live pid and reports it', async () => {
  const dir = tmpDir();
  const live = await startFakeSession({ dir });
  const dead = path.join(dir, `${await deadPid()}.sock`);
  await staleSocket(dead);
  const mine = path.join(dir, `${process.pid}.sock`); // this process is alive but does not listen there
  await staleSocket(mine);
  const problems: [number, string][] = [];
  const sessions = await listSessions({ dir, onError: (pid, err) => problems.push([pid, err.message]) });
  expect(sessions.map((s) => s.numactlx_pid)).toEqual([live.numactlx_pid]);
  expect(fs.existsSync(dead)).toBe(false);
  expect(fs.existsSync(mine)).toBe(true);
  expect(problems).toEqual([[process.pid, `session ${process.pid}: connect(${mine}) failed: ECONNREFUSED`]]);
});

test('findSession: by numactlx pid, by program pid, or the only one', async () => {
  const dir = tmpDir();
  const a = await startFakeSession({ dir });
  expect((await findSession(undefined, { dir })).numactlx_pid).toBe(a.numactlx_pid);
  const b = await startFakeSession({ dir });
  expect((await findSession(b.numactlx_pid, { dir })).numactlx_pid).toBe(b.numactlx_pid);
  expect((await findSession(a.program_pid!, { dir })).numactlx_pid).toBe(a.numactlx_pid);
  expect((await findSession(b.program_pid!, { dir })).numactlx_pid).toBe(b.numactlx_pid);
});

test('findSession errors: none running, several running, no such pid', async () => {
  const dir = tmpDir();
  await expect(findSession(undefined, { dir })).rejects.toThrow(new ControlError('no numactlx session is running'));
  const a = await startFakeSession({ dir });
  const b = await startFakeSession({ dir });
  const pids = [a.numactlx_pid, b.numactlx_pid].sort((x, y) => x - y).join(', ');
  await expect(findSession(undefined, { dir })).rejects.toThrow(
    new ControlError(`2 sessions are running; name one: numactlx status PID (pids: ${pids})`));
  await expect(findSession(undefined, { dir, verb: 'snapshot' })).rejects.toThrow(/name one: numactlx snapshot PID/);
  await expect(findSession(process.pid, { dir })).rejects.toThrow(new ControlError(`no numactlx session with pid ${process.pid}`));
});

test('request: the result, an error response as one line, a timeout, a missing socket', async () => {
  const dir = tmpDir();
  const s = await startFakeSession({ dir });
  const ref = { numactlx_pid: s.numactlx_pid, socket: s.socket };
  const status = await request(ref, 'status');
  expect(status.stats.nodes[0]).toMatchObject({ node: 2, faults: 4321 });
  expect(await request(ref, 'echo', { label: 'x' })).toEqual({ id: 1, op: 'echo', label: 'x' });
  await expect(request(ref, 'boom')).rejects.toThrow(new ControlError(`session ${s.numactlx_pid}: boom: boom second line`));
  await expect(request(ref, 'nope')).rejects.toThrow(`session ${s.numactlx_pid}: unknown op 'nope' (valid: hello, status, echo, boom)`);

  // A session that never answers: the request's own timeout (0.3 s) ends it, with a message saying so.
  const hung = await startFakeSession({ dir, flags: ['--hang'] });
  await expect(request({ numactlx_pid: hung.numactlx_pid, socket: hung.socket }, 'status', undefined, { timeoutMs: 300 }))
    .rejects.toThrow(new ControlError(`session ${hung.numactlx_pid} did not answer within 0.3 s`));

  const missing = path.join(dir, '1.sock');
  await expect(request({ numactlx_pid: 1, socket: missing }, 'hello')).rejects.toMatchObject({
    message: `session 1: connect(${missing}) failed: ENOENT`, code: 'ENOENT',
  });
});

test('request: a session that closes without answering', async () => {
  const dir = tmpDir();
  const file = path.join(dir, '77.sock');
  const server = net.createServer((c) => c.destroy()).listen(file);
  await new Promise((r) => server.once('listening', r));
  try {
    await expect(request({ numactlx_pid: 77, socket: file }, 'hello')).rejects.toThrow(/^session 77 closed the connection without answering( \((EPIPE|ECONNRESET)\))?$/);
  } finally {
    server.close();
  }
});

test('pidAlive: this process yes, a dead pid no, a zombie no', async () => {
  expect(pidAlive(process.pid)).toBe(true);
  expect(pidAlive(await deadPid())).toBe(false);
  // A child that exits while its parent never waits stays a zombie. The parent is python3,
  // which never reaps on its own (a shell may reap a background job before it execs: that
  // made this test time out once under load); its sleep keeps it there until the test kills it.
  const sh = execa('python3', ['-c', 'import os, time\npid = os.fork()\nif pid == 0: os._exit(0)\nprint(pid, flush=True)\ntime.sleep(1000)'],
    { reject: false, buffer: false });
  try {
    const zombie = await new Promise<number>((resolve) => sh.stdout.once('data', (d: Buffer) => resolve(Number(String(d).trim()))));
    await waitFor(`pid ${zombie} to be a zombie`, () => procState(zombie) === 'Z', 10000);
    expect(pidAlive(zombie)).toBe(false);
  } finally {
    sh.kill('SIGKILL');
    await sh;
  }
});
