// A session's control server: the unix socket the verbs (status, ps, snapshot…) talk to.
// Runs on the session's main thread; the handlers fetch what they need from the engine.
//
// Access: the socket directory is 0700 (./paths.ts) and the socket 0600; on top of that
// every connection's SO_PEERCRED uid must be the session's uid or root, so a socket
// reached some other way (a copied fd, a directory someone loosened) still answers no one
// else. The server never keeps the process alive (unref): the session lasts as long as
// its program, not as long as someone is connected.
import fs from 'node:fs';
import net from 'node:net';
import type { SessionStats } from '../channels/session-stats.js';
import { ensureRuntimeDir, socketPath } from './paths.js';
import { peerCredOf } from './peercred.js';
import {
  ControlError, encodeLine, LineSplitter, oneLine, parseRequest, requestIdOf,
  type Request, type Response, type SessionInfo, type StatusReply,
} from './protocol.js';

/** An op's handler: gets the whole request (its parameters are the extra fields). */
export type Handler = (req: Request) => Promise<unknown>;

/**
 * `status` is required (the stats come from the engine); any other key adds an op of that
 * name. `hello` and `status` are answered by the server itself (info, plus the stats).
 */
export type ControlHandlers = { status(): Promise<SessionStats> } & Record<string, Handler>;

export interface ControlServerOptions {
  /** Who the session is; `socket` is filled in by the server. */
  info: () => Omit<SessionInfo, 'socket'>;
  handlers: ControlHandlers;
  /** The socket directory; default: runtimeDir(), created and checked. */
  dir?: string;
}

export interface ControlServer {
  path: string;
  close(): Promise<void>;
}

const errnoOf = (err: unknown): string | undefined => (err as NodeJS.ErrnoException).code;

/** Resolves true when something accepts a connection on `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createConnection(path);
    probe.once('connect', () => { probe.destroy(); resolve(true); });
    probe.once('error', () => resolve(false));
  });
}

/**
 * Clears the way for our socket: a socket file left by a dead process that had our pid
 * (nobody accepts on it: ECONNREFUSED) is removed; one that a live server answers on, or
 * anything that is not a socket, is an error.
 */
async function clearStaleSocket(path: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(path);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return;
    throw new ControlError(`control socket ${path}: lstat failed: ${errnoOf(err)}`, { cause: err });
  }
  if (!st.isSocket()) throw new ControlError(`control socket ${path} exists and is not a socket; refusing to replace it`);
  if (await answers(path)) throw new ControlError(`control socket ${path} is in use by a running session`);
  fs.rmSync(path, { force: true });
}

/** Binds and listens on `bindPath` with the socket file created 0600; errors name `path`. */
function listen(server: net.Server, bindPath: string, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(new ControlError(`control socket ${path}: listen failed: ${errnoOf(err) ?? oneLine(err)}`, { cause: err }));
    };
    server.once('error', onError);
    // bind(2) creates the socket file with 0777 & ~umask. The umask is process-wide (every
    // thread's), so it is narrowed only around the listen() call, which binds synchronously;
    // a file another thread creates in that instant gets 0600 too. The chmod below makes
    // the mode certain either way.
    const old = process.umask(0o177);
    try {
      server.listen(bindPath, () => {
        server.off('error', onError);
        resolve();
      });
    } finally {
      process.umask(old);
    }
  });
}

/** Starts the session's control server on `<dir>/<pid>.sock`. */
export async function startControlServer(opts: ControlServerOptions): Promise<ControlServer> {
  const dir = opts.dir ?? ensureRuntimeDir();
  const path = socketPath(process.pid, dir);
  await clearStaleSocket(path);

  const connections = new Set<net.Socket>();
  const owner = process.getuid?.() ?? 0;
  const info = (): SessionInfo => ({ ...opts.info(), socket: path });
  const ops: Record<string, Handler> = {
    hello: async () => info(),
    status: async (): Promise<StatusReply> => ({ ...info(), stats: await opts.handlers.status() }),
  };
  for (const [op, handler] of Object.entries(opts.handlers)) {
    if (!Object.hasOwn(ops, op)) ops[op] = handler;
  }
  const valid = Object.keys(ops).join(', ');

  const send = (socket: net.Socket, response: Response): void => {
    if (socket.writable) socket.write(encodeLine(response));
  };

  const serve = async (socket: net.Socket, line: string): Promise<void> => {
    let req: Request;
    try {
      req = parseRequest(line);
    } catch (err) {
      send(socket, { id: requestIdOf(line), ok: false, error: oneLine(err) });
      return;
    }
    if (!Object.hasOwn(ops, req.op)) {
      send(socket, { id: req.id, ok: false, error: `unknown op '${req.op}' (valid: ${valid})` });
      return;
    }
    try {
      send(socket, { id: req.id, ok: true, result: await ops[req.op](req) });
    } catch (err) {
      send(socket, { id: req.id, ok: false, error: `${req.op}: ${oneLine(err)}` });
    }
  };

  // The refused peer gets its error line and a FIN; whatever it sent is read and dropped so
  // that its own write does not fail with EPIPE before it has read the answer. One that
  // does not close its end in a second is cut off.
  const refuse = (socket: net.Socket, error: string): void => {
    socket.removeAllListeners('data');
    socket.resume();
    socket.end(encodeLine({ id: null, ok: false, error }));
    setTimeout(() => socket.destroy(), 1000).unref();
  };

  const server = net.createServer((socket) => {
    socket.unref();
    socket.on('error', () => { /* the client went away; nothing to answer */ });
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
    let uid: number;
    try {
      uid = peerCredOf(socket).uid;
    } catch (err) {
      refuse(socket, oneLine(err));
      return;
    }
    if (uid !== owner && uid !== 0) {
      refuse(socket, `permission denied: uid ${uid} is not the session's owner`);
      return;
    }
    socket.setEncoding('utf8');
    const lines = new LineSplitter();
    socket.on('data', (chunk: string) => {
      let complete: string[];
      try {
        complete = lines.push(chunk);
      } catch (err) {
        refuse(socket, `malformed request: ${oneLine(err)}`);
        return;
      }
      for (const line of complete) {
        if (line.trim() !== '') void serve(socket, line);
      }
    });
  });

  // Bound and listening under a name no client looks for, then renamed into place (a unix
  // socket is reached through its inode: renamed, it listens on): a client that sees
  // `<pid>.sock` can connect. Bound at that name, the file appeared between bind(2) and
  // listen(2), and a client quick off the mark was refused (ECONNREFUSED; seen by
  // test/snapshot/early-request.test.ts, which connects as soon as the file is there).
  const bound = path.replace(/\.sock$/, '.new');
  fs.rmSync(bound, { force: true }); // one a killed session of this pid left
  await listen(server, bound, path);
  fs.chmodSync(bound, 0o600);
  fs.renameSync(bound, path);
  server.unref();
  // A failed accept (EMFILE) is emitted here; the session must not die of it, and the
  // client that was not accepted sees its own error.
  server.on('error', () => {});

  // A session that ends without close() (process.exit) still removes its socket; death by
  // a signal leaves it, and clients remove it as stale.
  const removeSocket = (): void => fs.rmSync(path, { force: true });
  process.on('exit', removeSocket);

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      process.off('exit', removeSocket);
      for (const socket of connections) socket.destroy();
      server.close(() => {
        removeSocket();
        resolve();
      });
    });
    return closing;
  };
  return { path, close };
}
