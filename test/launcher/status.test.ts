// `numactlx status` and `numactlx ps` through the built binary, against fake sessions
// (test/helpers/fake-session.mjs: the real control server with fixed stats). Each test has
// its own socket directory (NUMACTLX_RUNTIME_DIR).
import fs from 'node:fs';
import path from 'node:path';
import type { StatusReply } from '../../src/control/protocol.js';
import { killFakeSessions, startFakeSession, type FakeSession } from '../helpers/fake-sessions.js';
import { numactlx } from '../helpers/numactlx.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

afterEach(killFakeSessions);
afterAll(removeTmpDirs);

const run = (dir: string, args: string[]) => numactlx(args, { env: { NUMACTLX_RUNTIME_DIR: dir } });

const FAKE_NODE = {
  node: 2, backing: '/tmp/fake-backing.img', kind: 'file', size_bytes: 1 << 30, pages_placed: 3072,
  pages_resident: 2048, faults: 4321, fault_ahead_pages: 1111, pages_fallback: 7, sigbus: 3, frames_in_use: 2048,
};

function expectFakeReply(reply: StatusReply, s: FakeSession): void {
  expect(reply).toEqual({
    numactlx_pid: s.numactlx_pid,
    program_pid: s.program_pid,
    program: ['sleep', '1000'],
    started: expect.any(String),
    uid: process.getuid!(),
    virtual_nodes: [{ node: 2, backing: '/tmp/fake-backing.img', kind: 'file', size_bytes: 1 << 30 }],
    socket: s.socket,
    stats: {
      nodes: [FAKE_NODE],
      processes: [
        { pid: s.program_pid, exe: '/usr/bin/sleep', command: ['sleep', '1000'], faults: 4321, pages_resident: 2048, ranges: 5 },
        { pid: 1, exe: '/usr/bin/dash', command: ['sh', '-c', 'exec sleep 1000'], faults: 12, pages_resident: 0, ranges: 2, exited: true },
      ],
      events: { fork: 1, remap: 2, unmap: 3, remove: 4, stale: 5 },
      fault_ahead_pages_window: 16,
    },
  });
}

test('status --json: the fake stats, found alone, by numactlx pid and by program pid', async () => {
  const dir = tmpDir();
  const s = await startFakeSession({ dir });
  for (const args of [['status', '--json'], ['status', String(s.numactlx_pid), '--json'], ['status', '--json', String(s.program_pid)]]) {
    const r = await run(dir, args);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expectFakeReply(JSON.parse(r.stdout) as StatusReply, s);
  }
});

test('status: the human report', async () => {
  const dir = tmpDir();
  const s = await startFakeSession({ dir });
  const r = await run(dir, ['status', String(s.numactlx_pid)]);
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  const lines = r.stdout.split('\n');
  // The fake session started 1h02m03s before it was ready.
  expect(lines[0]).toMatch(new RegExp(`^session ${s.numactlx_pid}: program ${s.program_pid}: sleep 1000 \\(up 1h0[23]m, uid ${process.getuid!()}\\)$`));
  expect(lines[1]).toBe(`socket ${s.socket}`);
  const table = (header: string): string[][] => {
    const at = lines.findIndex((l) => l.startsWith(header));
    expect(at).toBeGreaterThan(0);
    return lines.slice(at, lines.indexOf('', at)).map((l) => l.split(/ {2,}/));
  };
  expect(table('NODE')).toEqual([
    ['NODE', 'BACKING', 'KIND', 'SIZE', 'PLACED', 'RESIDENT', 'FAULTS', 'FAULT-AHEAD', 'FALLBACK', 'SIGBUS'],
    ['2', '/tmp/fake-backing.img', 'file', '1.0G', '12.0M', '8.0M', '4321', '4.3M', '28.0K', '3'],
  ]);
  expect(table('PID')).toEqual([['PID', 'EXE', 'FAULTS', 'RESIDENT', 'STATE', 'COMMAND'],
    [String(s.program_pid), '/usr/bin/sleep', '4321', '8.0M', 'live', 'sleep 1000'],
    ['1', '/usr/bin/dash', '12', '0', 'ended', "sh -c 'exec sleep 1000'"]]);
  expect(lines.at(-1)).toBe('events: fork 1, remap 2, unmap 3, remove 4, stale 5; fault-ahead window 16 pages');
});

test('ps: one line per session; ps --json the status of each', async () => {
  const dir = tmpDir();
  const a = await startFakeSession({ dir });
  const b = await startFakeSession({ dir, config: { program: ['sleep', '999'], virtual_nodes: [], stats: {
    nodes: [], processes: [], events: { fork: 0, remap: 0, unmap: 0, remove: 0, stale: 0 }, fault_ahead_pages_window: 16 } } });
  const r = await run(dir, ['ps']);
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  const rows = r.stdout.split('\n').map((l) => l.split(/ {2,}/));
  const want = [[String(a.numactlx_pid), String(a.program_pid), '2', '12.0M', '8.0M', '-', 'sleep 1000'],
    [String(b.numactlx_pid), String(b.program_pid), '-', '0', '0', '-', 'sleep 999']].sort((x, y) => Number(x[0]) - Number(y[0]));
  expect(rows).toEqual([['NUMACTLX-PID', 'PROGRAM-PID', 'NODES', 'PLACED', 'RESIDENT', 'EVICTED', 'COMMAND'], ...want]);

  const j = await run(dir, ['ps', '--json']);
  expect(j.exitCode).toBe(0);
  const replies = JSON.parse(j.stdout) as StatusReply[];
  expect(replies.map((x) => x.numactlx_pid)).toEqual(want.map((w) => Number(w[0])));
  expectFakeReply(replies.find((x) => x.numactlx_pid === a.numactlx_pid)!, a);
});

test('two sessions: status without a pid names them; an unknown pid is an error', async () => {
  const dir = tmpDir();
  const a = await startFakeSession({ dir });
  const b = await startFakeSession({ dir });
  const pids = [a.numactlx_pid, b.numactlx_pid].sort((x, y) => x - y).join(', ');
  const r = await run(dir, ['status']);
  expect(r.stderr).toBe(`numactlx: status: 2 sessions are running; name one: numactlx status PID (pids: ${pids})`);
  expect(r.stdout).toBe('');
  expect(r.exitCode).toBe(1);
  const unknown = await run(dir, ['status', String(process.pid)]);
  expect(unknown.stderr).toBe(`numactlx: status: no numactlx session with pid ${process.pid}`);
  expect(unknown.exitCode).toBe(1);
});

test('no session: status is an error, ps an empty table', async () => {
  const dir = path.join(tmpDir(), 'never-created');
  const r = await run(dir, ['status']);
  expect(r.stderr).toBe('numactlx: status: no numactlx session is running');
  expect(r.stdout).toBe('');
  expect(r.exitCode).toBe(1);
  const ps = await run(dir, ['ps']);
  expect(ps.stdout).toBe('NUMACTLX-PID  PROGRAM-PID  NODES  PLACED  RESIDENT  EVICTED  COMMAND');
  expect(ps.stderr).toBe('');
  expect(ps.exitCode).toBe(0);
  expect(fs.existsSync(dir)).toBe(false); // looking does not create it
});

test('ps removes the socket of a session killed by SIGKILL', async () => {
  const dir = tmpDir();
  const live = await startFakeSession({ dir });
  const killed = await startFakeSession({ dir });
  killed.proc.kill('SIGKILL');
  await killed.proc;
  expect(fs.existsSync(killed.socket)).toBe(true);
  const r = await run(dir, ['ps']);
  expect(r.stderr).toBe('');
  expect(r.stdout.split('\n').slice(1).map((l) => Number(l.split(' ')[0]))).toEqual([live.numactlx_pid]);
  expect(fs.readdirSync(dir)).toEqual([path.basename(live.socket)]);
});

test('a socket directory others can enter is refused', async () => {
  const dir = tmpDir();
  await startFakeSession({ dir });
  fs.chmodSync(dir, 0o755);
  const r = await run(dir, ['status']);
  expect(r.stderr).toBe(`numactlx: status: socket directory ${dir} has mode 0755, group or others have access (it must be 0700); refusing to use it`);
  expect(r.exitCode).toBe(1);
});

test('status and ps --help print their usage', async () => {
  const dir = tmpDir();
  for (const [verb, usage] of [['status', 'usage: numactlx status [PID] [--json]'], ['ps', 'usage: numactlx ps [--json]']]) {
    const r = await run(dir, [verb, '--help']);
    expect(r.stdout).toBe(usage);
    expect(r.exitCode).toBe(0);
  }
});

test.each([
  [['status', '--bogus'], "status: unknown option '--bogus' (valid: --json, --help)"],
  [['status', '-x'], "status: unknown option '-x' (valid: --json, --help)"],
  [['status', 'abc'], "status: invalid PID 'abc' (a process id: a positive integer)"],
  [['status', '0'], "status: invalid PID '0' (a process id: a positive integer)"],
  [['status', '12x'], "status: invalid PID '12x' (a process id: a positive integer)"],
  [['status', '99999999999'], "status: invalid PID '99999999999' (a process id: a positive integer)"],
  [['status', '1', '2'], "status: too many arguments: '2' (one PID at most)"],
  [['ps', '1'], "ps: unexpected argument '1' (valid: --json)"],
  [['ps', '--all'], "ps: unknown option '--all' (valid: --json, --help)"],
])('%j is a usage error', async (args, message) => {
  const r = await run(tmpDir(), args);
  const [first, ...rest] = r.stderr.split('\n');
  expect(first).toBe(`numactlx: ${message}`);
  expect(rest[0]).toMatch(/^usage: numactlx/);
  expect(r.stdout).toBe('');
  expect(r.exitCode).toBe(1);
});

test('`numactlx -- status` still runs a program named status', async () => {
  const dir = tmpDir();
  const bin = tmpDir();
  fs.writeFileSync(path.join(bin, 'status'), '#!/bin/sh\necho program-status\n', { mode: 0o755 });
  const r = await numactlx(['--', 'status'], { env: { NUMACTLX_RUNTIME_DIR: dir, PATH: `${bin}:${process.env.PATH}` } });
  expect(r.stdout).toBe('program-status');
  expect(r.exitCode).toBe(0);
});

test('--max-resident: status says what eviction did on the node, ps shows what is evicted', async () => {
  const dir = tmpDir();
  const eviction = {
    max_resident_bytes: 16 << 20, pages_evicted: 1024, evictions: 61574, refaults: 48716, refault_faults: 1900,
    bytes_read: 199540736, bytes_written: 99078144, rounds: 127, evict_ms: 6614.9, pause_ms: 3137.98, fault_waits: 17,
    peak_resident_pages: 4100,
  };
  const s = await startFakeSession({ dir, config: { stats: {
    nodes: [{ node: 3, backing: '/tmp/n3.img', kind: 'file', size_bytes: 1 << 30, pages_placed: 16384, pages_resident: 4000,
      faults: 10, fault_ahead_pages: 100, pages_fallback: 0, sigbus: 0, frames_in_use: 16384, eviction }],
    processes: [], events: { fork: 0, remap: 0, unmap: 0, remove: 0, stale: 0 }, fault_ahead_pages_window: 256 } } });
  const r = await run(dir, ['status', String(s.numactlx_pid)]);
  expect(r.exitCode).toBe(0);
  expect(r.stdout.split('\n')).toContain('node 3: resident limit 16.0M (peak 16.0M), 4.0M evicted now; 61574 pages evicted, '
    + '48716 back by 1900 faults; read 190.3M, written 94.5M; 127 rounds, 6.61s (program stopped 3.14s); 17 faults waited for room');
  const ps = await run(dir, ['ps']);
  expect(ps.stdout.split('\n')[1].split(/ {2,}/)).toEqual([String(s.numactlx_pid), String(s.program_pid), '2', '64.0M', '15.6M', '4.0M', 'sleep 1000']);
});
