// The control protocol: JSON lines over a session's unix stream socket.
//
//   request   {"id":1,"op":"status"}                    one JSON object per line, any extra
//                                                       fields are the op's parameters
//   response  {"id":1,"ok":true,"result":{…}}           id echoes the request's
//             {"id":1,"ok":false,"error":"one line"}    id is null when the request had none
//                                                       (malformed) or the connection was refused
//
// A client may send several requests on one connection without waiting; responses carry
// the id and may come back in any order. Adding an op is one entry in `Ops` below (its
// parameters and result, for the client's types) and one handler in the session.
import type { SessionStats } from '../channels/session-stats.js';
import type { SnapshotStats } from '../snapshot/types.js';

export interface VirtualNodeInfo {
  node: number;
  backing: string;
  kind: string;
  size_bytes: number;
}

/** What `hello` answers: who the session is. */
export interface SessionInfo {
  numactlx_pid: number;
  /** null until the program has been started. */
  program_pid: number | null;
  program: string[];
  /** When the session started, ISO 8601. */
  started: string;
  uid: number;
  virtual_nodes: VirtualNodeInfo[];
  /** The control socket's path. */
  socket: string;
}

export type StatusReply = SessionInfo & { stats: SessionStats };

/**
 * What `snapshot` answers: the id and label as soon as the program has been frozen and
 * resumed; with `wait`, once the snapshot is durable, also its time and stats.
 */
export interface SnapshotReply {
  id: number;
  label: string | null;
  /** ISO 8601, the freeze (with wait). */
  time?: string;
  stats?: SnapshotStats;
}

/** Each op's parameters (the request's fields besides id and op) and result. */
export interface Ops {
  hello: { params: Record<string, never>; result: SessionInfo };
  status: { params: Record<string, never>; result: StatusReply };
  /** Take a snapshot (src/snapshot/queue.ts: snapshotOp). */
  snapshot: { params: { label?: string; wait?: boolean }; result: SnapshotReply };
}

export type OpName = keyof Ops;

export interface Request {
  id: number;
  op: string;
  [param: string]: unknown;
}

export type Response =
  | { id: number | null; ok: true; result: unknown }
  | { id: number | null; ok: false; error: string };

/** A line longer than this ends the connection (after an error response). */
export const MAX_LINE_BYTES = 1 << 20;

/** A control failure: a bad message, a session that cannot be reached or refused a request. */
export class ControlError extends Error {
  /** The errno name of a failed socket call (ECONNREFUSED, ENOENT…), when that is the cause. */
  readonly code?: string;

  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(message, options);
    this.name = 'ControlError';
    if (options?.code !== undefined) this.code = options.code;
  }
}

/** One message as a line. */
export function encodeLine(message: Request | Response): string {
  return `${JSON.stringify(message)}\n`;
}

/** An error's message as one line, for an error response. */
export function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim() || 'unknown error';
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses a request line; throws a ControlError carrying the request's id when it has one. */
export function parseRequest(line: string): Request {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    throw new ControlError(`malformed request: ${oneLine(err)}`);
  }
  if (!isObject(value)) throw new ControlError('malformed request: not a JSON object');
  if (typeof value.id !== 'number' || !Number.isSafeInteger(value.id)) {
    throw new ControlError('malformed request: "id" must be an integer');
  }
  if (typeof value.op !== 'string') throw new ControlError('malformed request: "op" must be a string');
  return value as Request;
}

/** The id of a request line, if it has a usable one (for the error response to a bad request). */
export function requestIdOf(line: string): number | null {
  try {
    const v: unknown = JSON.parse(line);
    return isObject(v) && typeof v.id === 'number' && Number.isSafeInteger(v.id) ? v.id : null;
  } catch {
    return null;
  }
}

/** Parses a response line. */
export function parseResponse(line: string): Response {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    throw new ControlError(`malformed response: ${oneLine(err)}`);
  }
  if (!isObject(value) || typeof value.ok !== 'boolean' || !(value.id === null || typeof value.id === 'number')) {
    throw new ControlError('malformed response: not {"id","ok",…}');
  }
  if (!value.ok && typeof value.error !== 'string') throw new ControlError('malformed response: "error" must be a string');
  return value as Response;
}

/**
 * Splits a UTF-8 text stream (a socket with setEncoding('utf8'), so characters are never
 * cut) into lines. `push` returns the complete lines, or throws once the unfinished line
 * is longer than `maxBytes`.
 */
export class LineSplitter {
  private partial = '';

  constructor(private readonly maxBytes: number = MAX_LINE_BYTES) {}

  push(chunk: string): string[] {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    if (Buffer.byteLength(this.partial) > this.maxBytes) {
      this.partial = '';
      throw new ControlError(`line longer than ${this.maxBytes} bytes`);
    }
    return parts;
  }
}
