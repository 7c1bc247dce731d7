// The verbs' side of the control socket: finding sessions and asking them things.
//
// Sessions are found by listing the socket directory and saying hello on every
// `<pid>.sock`. A socket nobody accepts on (ECONNREFUSED) belongs to a session that died
// without closing (killed by a signal); when its pid is gone too, the file is removed.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { checkRuntimeDir, pidOfSocketName, sessionDirs, socketPath } from './paths.js';
import { procState, readProcStat } from '../sys/procfs.js';
import {
  ControlError, encodeLine, LineSplitter, parseResponse, type OpName, type Ops, type SessionInfo,
} from './protocol.js';

/** Enough of a session to talk to it. */
export type SessionRef = Pick<SessionInfo, 'numactlx_pid' | 'socket'>;

export interface ClientOptions {
  /** The socket directory; default runtimeDir(). */
  dir?: string;
  /** How long a session has to answer each request; default 5000 ms. */
  timeoutMs?: number;
}

export interface ListOptions extends ClientOptions {
  /** Told about a session that exists but did not answer properly (it is left out). */
  onError?: (pid: number, err: ControlError) => void;
}

export interface FindOptions extends ClientOptions {
  /** The verb named in "name one: numactlx VERB PID"; default 'status'. */
  verb?: string;
}

export const DEFAULT_TIMEOUT_MS = 5000;

type Params<Op extends string> = Op extends OpName ? Ops[Op]['params'] : Record<string, unknown>;
type Result<Op extends string> = Op extends OpName ? Ops[Op]['result'] : unknown;

const seconds = (ms: number): string => `${Number((ms / 1000).toFixed(3))} s`;

/** Sends one request to `session` and resolves to its result; a refused request throws. */
export function request<Op extends string>(session: SessionRef, op: Op, params?: Params<Op>,
  opts: ClientOptions = {}): Promise<Result<Op>> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const who = `session ${session.numactlx_pid}`;
  const id = 1;
  // Stopped with its program (job control): it cannot answer until it is continued.
  if (procState(session.numactlx_pid) === 'T') {
    return Promise.reject(new ControlError(`${who} is stopped, as its program is (Ctrl-Z, SIGSTOP): ` +
      `continue it (fg, or kill -CONT ${session.numactlx_pid}) and ask again`));
  }
  return new Promise<Result<Op>>((resolve, reject) => {
    const socket = net.createConnection(session.socket);
    let settled = false;
    const settle = (err: ControlError | undefined, value?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(value as Result<Op>);
    };
    const timer = setTimeout(() => settle(new ControlError(`${who} did not answer within ${seconds(timeoutMs)}`)), timeoutMs);
    socket.setEncoding('utf8');
    let connected = false;
    socket.once('connect', () => {
      connected = true;
      socket.write(encodeLine({ ...params, id, op }));
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // After connect, EPIPE or ECONNRESET: the session closed on us (it ended, or refused us
      // and its answer is still on its way: then 'data' comes first and settles).
      settle(connected
        ? new ControlError(`${who} closed the connection without answering (${err.code ?? err.message})`, { cause: err })
        : new ControlError(`${who}: connect(${session.socket}) failed: ${err.code ?? err.message}`, { cause: err, code: err.code }));
    });
    socket.once('close', () => settle(new ControlError(`${who} closed the connection without answering`)));
    const lines = new LineSplitter();
    socket.on('data', (chunk: string) => {
      try {
        for (const line of lines.push(chunk)) {
          const res = parseResponse(line);
          if (res.id !== id && res.id !== null) continue;
          if (res.ok) settle(undefined, res.result);
          else settle(new ControlError(`${who}: ${res.error}`));
        }
      } catch (err) {
        settle(new ControlError(`${who}: ${(err as Error).message}`, { cause: err }));
      }
    });
  });
}

/** Whether a process with this pid exists (another user's counts; a zombie does not). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // A zombie still takes signal 0 but will never answer: it is as dead as a session gets.
    return readProcStat(pid).state !== 'Z';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOENT'; // gone since, or /proc hidden (hidepid)
  }
}

/** Hello to one socket; undefined when it is stale (then removed if its pid is dead) or gone. */
async function hello(pid: number, socket: string, opts: ListOptions): Promise<SessionInfo | undefined> {
  try {
    return await request({ numactlx_pid: pid, socket }, 'hello', undefined, opts);
  } catch (err) {
    const code = (err as ControlError).code;
    if (code === 'ENOENT') return undefined; // ended between readdir and connect
    if (code === 'ECONNREFUSED' && !pidAlive(pid)) {
      fs.rmSync(socket, { force: true });
      return undefined;
    }
    opts.onError?.(pid, err as ControlError);
    return undefined;
  }
}

/** Every session that answers, by numactlx pid; stale sockets of dead pids are removed. */
export async function listSessions(opts: ListOptions = {}): Promise<SessionInfo[]> {
  const dirs = opts.dir ? (checkRuntimeDir(opts.dir) ? [opts.dir] : []) : sessionDirs();
  const found = await Promise.all(dirs.flatMap((dir) => fs.readdirSync(dir).map((name) => {
    const pid = pidOfSocketName(name);
    return pid === undefined ? undefined : hello(pid, path.join(dir, name), opts);
  })));
  return found.filter((s): s is SessionInfo => s !== undefined).sort((a, b) => a.numactlx_pid - b.numactlx_pid);
}

/**
 * The session named by `pid` (its numactlx pid or its program's pid), or with no pid the
 * only one running. Throws a ControlError saying which it could not find.
 */
export async function findSession(pid?: number, opts: FindOptions = {}): Promise<SessionInfo> {
  const dirs = opts.dir ? (checkRuntimeDir(opts.dir) ? [opts.dir] : []) : sessionDirs();
  for (const dir of pid !== undefined ? dirs : []) {
    const own = socketPath(pid!, dir);
    if (fs.existsSync(own)) {
      // Named by its numactlx pid: a session that does not answer is an error, not "absent".
      const session = await hello(pid!, own, { ...opts, onError: (_, err) => { throw err; } });
      if (session) return session;
    }
  }
  const sessions = await listSessions(opts);
  if (pid !== undefined) {
    const match = sessions.find((s) => s.numactlx_pid === pid || s.program_pid === pid);
    if (!match) throw new ControlError(`no numactlx session with pid ${pid}`);
    return match;
  }
  if (sessions.length === 0) throw new ControlError('no numactlx session is running');
  if (sessions.length > 1) {
    throw new ControlError(`${sessions.length} sessions are running; name one: numactlx ${opts.verb ?? 'status'} PID `
      + `(pids: ${sessions.map((s) => s.numactlx_pid).join(', ')})`);
  }
  return sessions[0];
}
