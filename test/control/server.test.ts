// The control server in this process (its socket is DIR/<jest's pid>.sock), talked to over
// raw sockets; the access tests run clients (and a session) under other uids with setpriv.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { execa } from 'execa';
import { startControlServer, type ControlServer } from '../../src/control/server.js';
import { peerCredOf } from '../../src/control/peercred.js';
import type { SessionStats } from '../../src/channels/session-stats.js';
import { killFakeSessions, startFakeSession } from '../helpers/fake-sessions.js';
import { waitFor } from '../helpers/proc.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

const STATS: SessionStats = {
  nodes: [{ node: 3, backing: '/b', kind: 'file', size_bytes: 4096, pages_placed: 1, pages_resident: 1, faults: 2,
    fault_ahead_pages: 0, pages_fallback: 0, sigbus: 0, frames_in_use: 1 }],
  processes: [],
  events: { fork: 0, remap: 0, unmap: 0, remove: 0, stale: 0, growth: 0, outside_vma: 0 },
  fault_ahead_pages_window: 16,
};
const INFO = {
  numactlx_pid: process.pid, program_pid: 99999, program: ['prog', 'a b'], started: '2024-01-02T03:04:05.000Z',
  uid: 0, virtual_nodes: [{ node: 3, backing: '/b', kind: 'file', size_bytes: 4096 }],
};

const servers: ControlServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await killFakeSessions();
});
afterAll(removeTmpDirs);

async function start(dir?: string): Promise<ControlServer> {
  const server = await startControlServer({
    info: () => INFO,
    handlers: {
      status: async () => STATS,
      echo: async (req) => ({ got: req }),
      boom: async () => { throw new Error('it broke\nbadly'); },
    },
    ...(dir === undefined ? {} : { dir }),
  });
  servers.push(server);
  return server;
}

/** A raw connection that collects answer lines. */
async function connect(socketPath: string): Promise<{ socket: net.Socket; send(text: string): void; next(): Promise<unknown>; closed: Promise<void> }> {
  const socket = net.createConnection(socketPath);
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
  socket.setEncoding('utf8');
  const lines: string[] = [];
  let buf = '';
  socket.on('data', (chunk: string) => {
    buf += chunk;
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    lines.push(...parts);
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return {
    socket,
    send: (text) => socket.write(text),
    next: async () => JSON.parse(await waitFor('an answer line', () => lines.shift())),
    closed,
  };
}

test('the socket is DIR/PID.sock, mode 0600, in a directory created 0700; the umask is restored', async () => {
  const dir = path.join(tmpDir(), 'run', 'numactlx');
  const old = process.umask(0o022);
  const saved = process.env.NUMACTLX_RUNTIME_DIR;
  process.env.NUMACTLX_RUNTIME_DIR = dir;
  try {
    const server = await start();
    expect(process.umask(0o022)).toBe(0o022);
    expect(server.path).toBe(path.join(dir, `${process.pid}.sock`));
    const st = fs.lstatSync(server.path);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o7777).toBe(0o600);
    expect(fs.lstatSync(dir).mode & 0o7777).toBe(0o700);
  } finally {
    process.umask(old);
    if (saved === undefined) delete process.env.NUMACTLX_RUNTIME_DIR;
    else process.env.NUMACTLX_RUNTIME_DIR = saved;
  }
});

// The socket is bound and listening as PID.new, then renamed to PID.sock: a client that
// sees PID.sock can connect (bound at PID.sock, the file was there before listen(2), and a
// client quick off the mark was refused). One left by a killed session is replaced.
test('the socket appears as PID.sock only listening: PID.new is its bound name, a stale one replaced, none left', async () => {
  const dir = tmpDir();
  fs.chmodSync(dir, 0o700);
  const stale = path.join(dir, `${process.pid}.new`);
  fs.writeFileSync(stale, 'left by a killed session');
  const server = await start(dir);
  expect(fs.readdirSync(dir)).toEqual([`${process.pid}.sock`]);
  const c = await connect(server.path);
  c.send('{"id":1,"op":"hello"}\n');
  expect(await c.next()).toMatchObject({ id: 1, ok: true });
  c.socket.destroy();
});

test('hello answers the session info with the socket filled in; status adds the stats', async () => {
  const server = await start(tmpDir());
  const c = await connect(server.path);
  c.send('{"id":1,"op":"hello"}\n');
  expect(await c.next()).toEqual({ id: 1, ok: true, result: { ...INFO, socket: server.path } });
  c.send('{"id":2,"op":"status"}\n');
  expect(await c.next()).toEqual({ id: 2, ok: true, result: { ...INFO, socket: server.path, stats: STATS } });
  c.socket.destroy();
});

test('a bad request gets an error response and the connection stays usable', async () => {
  const server = await start(tmpDir());
  const c = await connect(server.path);
  c.send('{"id":1,"op":\n');
  expect(await c.next()).toEqual({ id: null, ok: false, error: expect.stringMatching(/^malformed request: .*JSON/) });
  c.send('{"id":2}\n');
  expect(await c.next()).toEqual({ id: 2, ok: false, error: 'malformed request: "op" must be a string' });
  c.send('{"id":3,"op":"frobnicate"}\n');
  expect(await c.next()).toEqual({ id: 3, ok: false, error: "unknown op 'frobnicate' (valid: hello, status, echo, boom)" });
  c.send('{"id":4,"op":"toString"}\n');
  expect(await c.next()).toEqual({ id: 4, ok: false, error: expect.stringMatching(/^unknown op 'toString'/) });
  c.send('{"id":5,"op":"boom"}\n');
  expect(await c.next()).toEqual({ id: 5, ok: false, error: 'boom: it broke badly' });
  c.send('\n{"id":6,"op":"hello"}\n');
  expect(await c.next()).toMatchObject({ id: 6, ok: true });
  c.socket.destroy();
});

test('an op added as a handler gets the whole request; pipelined requests are all answered', async () => {
  const server = await start(tmpDir());
  const c = await connect(server.path);
  c.send('{"id":7,"op":"echo","label":"x","wait":true}\n{"id":8,"op":"hello"}\n');
  const answers = [await c.next(), await c.next()] as { id: number }[];
  expect(answers.sort((a, b) => a.id - b.id)).toEqual([
    { id: 7, ok: true, result: { got: { id: 7, op: 'echo', label: 'x', wait: true } } },
    expect.objectContaining({ id: 8, ok: true }),
  ]);
  c.socket.destroy();
});

test('a line over 1 MiB is refused and the connection closed', async () => {
  const server = await start(tmpDir());
  const c = await connect(server.path);
  c.send('x'.repeat((1 << 20) + 10));
  expect(await c.next()).toEqual({ id: null, ok: false, error: 'malformed request: line longer than 1048576 bytes' });
  await c.closed;
});

test('close() removes the socket file, ends open connections and is idempotent', async () => {
  const server = await start(tmpDir());
  const c = await connect(server.path);
  await server.close();
  expect(fs.existsSync(server.path)).toBe(false);
  await c.closed;
  await server.close();
  await expect(connect(server.path)).rejects.toMatchObject({ code: 'ENOENT' });
});

test('a session already answering on the path is an error; a stale socket is replaced', async () => {
  const dir = tmpDir();
  const first = await start(dir);
  await expect(start(dir)).rejects.toThrow(`control socket ${first.path} is in use by a running session`);
  expect(fs.existsSync(first.path)).toBe(true);
  await first.close();

  // A socket file nobody listens on, as a session killed by SIGKILL leaves it.
  const leftover = path.join(dir, `${process.pid}.sock`);
  await execa(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(leftover)}, () => process.kill(process.pid, 'SIGKILL'))`], { reject: false });
  expect(fs.lstatSync(leftover).isSocket()).toBe(true);
  const server = await start(dir);
  const c = await connect(server.path);
  c.send('{"id":1,"op":"hello"}\n');
  expect(await c.next()).toMatchObject({ id: 1, ok: true });
  c.socket.destroy();
});

test('something that is not a socket at the path is left alone', async () => {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, `${process.pid}.sock`), 'keep');
  await expect(start(dir)).rejects.toThrow(/exists and is not a socket; refusing to replace it$/);
  expect(fs.readFileSync(path.join(dir, `${process.pid}.sock`), 'utf8')).toBe('keep');
});

test('peerCredOf reads SO_PEERCRED: this process, uid and gid', async () => {
  const dir = tmpDir();
  const sockPath = path.join(dir, 'p.sock');
  const seen = new Promise<unknown>((resolve) => {
    const srv = net.createServer((s) => { resolve(peerCredOf(s)); s.destroy(); srv.close(); }).listen(sockPath);
  });
  const c = net.createConnection(sockPath);
  c.on('error', () => {});
  expect(await seen).toEqual({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
  c.destroy();
});

// A client as `uid` that sends hello and prints what it receives until the first full line.
const helloAs = (uid: number, socketPath: string) => execa('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups',
  process.execPath, '-e', `const s = require('net').createConnection(process.argv[1]);
s.on('connect', () => s.write('{"id":1,"op":"hello"}\\n'));
s.on('data', (d) => { process.stdout.write(d); if (String(d).includes('\\n')) s.end(); });
s.on('error', (e) => { console.error(e.code); process.exit(2); });`, socketPath], { reject: false, cwd: '/', stripFinalNewline: false, timeout: 10000 });

test('a client of another uid gets one permission error line and no data', async () => {
  const dir = tmpDir();
  const server = await start(dir);
  // The directory and socket modes already keep uid 65534 out; loosen them so the
  // connection gets through and SO_PEERCRED is what refuses it.
  fs.chmodSync(dir, 0o711);
  fs.chmodSync(server.path, 0o666);
  const r = await helloAs(65534, server.path);
  expect(r.stderr).toBe('');
  expect(r.stdout).toBe('{"id":null,"ok":false,"error":"permission denied: uid 65534 is not the session\'s owner"}\n');
  expect(r.exitCode).toBe(0);
  // Without the loosening the socket file's own modes refuse it.
  fs.chmodSync(server.path, 0o600);
  const blocked = await helloAs(65534, server.path);
  expect(blocked.stderr).toBe('EACCES\n');
  expect(blocked.stdout).toBe('');
});

test('a session of uid 65534 answers its own uid and root, and refuses uid 65533', async () => {
  const parent = tmpDir();
  fs.chmodSync(parent, 0o711);
  const dir = path.join(parent, 'numactlx');
  fs.mkdirSync(dir, { mode: 0o700 });
  fs.chownSync(dir, 65534, 65534);
  const session = await startFakeSession({ dir, prefix: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] });
  expect(fs.lstatSync(dir).uid).toBe(65534);
  expect(fs.lstatSync(session.socket).uid).toBe(65534);

  const own = await helloAs(65534, session.socket);
  expect(JSON.parse(own.stdout)).toMatchObject({ id: 1, ok: true, result: { numactlx_pid: session.numactlx_pid, uid: 65534 } });

  const root = await helloAs(0, session.socket);
  expect(JSON.parse(root.stdout)).toMatchObject({ id: 1, ok: true, result: { numactlx_pid: session.numactlx_pid } });

  fs.chmodSync(dir, 0o711);
  fs.chmodSync(session.socket, 0o666);
  const other = await helloAs(65533, session.socket);
  expect(other.stdout).toBe('{"id":null,"ok":false,"error":"permission denied: uid 65533 is not the session\'s owner"}\n');
  await session.stop();
  expect(fs.existsSync(session.socket)).toBe(false);
});

test('the server does not keep the process alive; the socket goes when the process exits', async () => {
  const dir = tmpDir();
  const session = await startFakeSession({ dir, flags: ['--no-program'] });
  let timer: NodeJS.Timeout | undefined;
  const ended = await Promise.race([session.proc, new Promise((r) => { timer = setTimeout(() => r('still running'), 5000); })]);
  clearTimeout(timer);
  expect(ended).toMatchObject({ exitCode: 0 });
  expect(fs.existsSync(session.socket)).toBe(false);
});
