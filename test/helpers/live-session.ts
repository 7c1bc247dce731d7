// A numactlx session running in the background for a test: the built binary with a
// fresh backing and socket directory, the program's stdin a pipe, its output collected,
// and events to wait for (a line of the program's, a state of `numactlx status`).
// killSessions() (afterEach) SIGKILLs every session still running: EXITKILL takes the
// program with it.
import path from 'node:path';
import { execa, type Result, type ResultPromise } from 'execa';
import { NUMACTLX, numactlx } from './numactlx.js';
import { waitFor } from './proc.js';
import { tmpDir } from './tmp.js';
import type { StatusReply } from '../../src/control/protocol.js';

export interface LiveSession {
  /** numactlx's pid. */
  pid: number;
  env: Record<string, string>;
  backing: string;
  out(): string;
  err(): string;
  /** The first match of `re` in the program's stdout (fails if the session ends first). */
  waitOut(re: RegExp, ms?: number): Promise<RegExpMatchArray>;
  /** Waits until `line` is a whole line of the program's stdout `count` times. */
  waitLine(line: string, count?: number, ms?: number): Promise<void>;
  /** A line on the program's stdin. */
  send(line: string): void;
  /** Closes the program's stdin (EOF). */
  closeInput(): void;
  /** `numactlx status PID --json`. */
  status(): Promise<StatusReply>;
  /** Polls status until `probe` returns a value (fails if the session ends first). */
  waitStatus<T>(what: string, probe: (s: StatusReply) => T | undefined | false, ms?: number): Promise<T>;
  /** The session's end (never rejects). */
  done: Promise<Result>;
}

const running = new Set<ResultPromise>();

/** Starts `numactlx --remap=3,<fresh backing>,size=SIZE --membind=3 EXTRA -- PROGRAM`. */
export function startSession(program: string[], opts: { size: string; extra?: string[]; backing?: string; env?: Record<string, string> }): LiveSession {
  const env = { NUMACTLX_RUNTIME_DIR: tmpDir(), ...opts.env };
  const backing = opts.backing ?? path.join(tmpDir(), 'n3.img');
  const proc = execa(NUMACTLX, [`--remap=3,${backing},size=${opts.size}`, '--membind=3', ...(opts.extra ?? []), '--', ...program],
    { env, reject: false, buffer: false, stdin: 'pipe' });
  running.add(proc);
  let out = '';
  let err = '';
  let ended = false;
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  proc.stdin!.on('error', () => undefined); // EPIPE once the program is gone
  const done = (proc as Promise<Result>).finally(() => { ended = true; running.delete(proc); });
  const whileRunning = <T>(what: string, probe: () => T | undefined | false, ms: number): Promise<T> =>
    waitFor(what, () => {
      const v = probe();
      if (v !== undefined && v !== false) return v;
      if (ended) throw new Error(`the session ended before ${what}: stdout ${JSON.stringify(out.slice(-300))}, stderr ${JSON.stringify(err)}`);
      return undefined;
    }, ms);
  const status = async (): Promise<StatusReply> => {
    const r = await numactlx(['status', String(proc.pid), '--json'], { env });
    if (r.exitCode !== 0) throw new Error(`status: exit ${r.exitCode}: ${r.stderr}`);
    return JSON.parse(String(r.stdout)) as StatusReply;
  };
  return {
    pid: proc.pid!, env, backing, done, status,
    out: () => out,
    err: () => err,
    waitOut: (re, ms = 60_000) => whileRunning(`${re} in the program's output`, () => re.exec(out) ?? undefined, ms),
    waitLine: async (line, count = 1, ms = 60_000) => {
      await whileRunning(`'${line}' ${count} times in the program's output`, () => out.split('\n').filter((l) => l === line).length >= count, ms);
    },
    send: (line) => { proc.stdin!.write(`${line}\n`); },
    closeInput: () => { proc.stdin!.end(); },
    waitStatus: async (what, probe, ms = 60_000) => {
      const deadline = Date.now() + ms;
      for (;;) {
        if (ended) throw new Error(`the session ended before ${what}: stderr ${JSON.stringify(err)}`);
        const v = probe(await status());
        if (v !== undefined && v !== false) return v;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      }
    },
  };
}

/** SIGKILLs every session still running and waits for their ends (afterEach). */
export async function killSessions(): Promise<void> {
  const all = [...running];
  for (const p of all) p.kill('SIGKILL');
  await Promise.all(all.map((p) => p.catch(() => undefined)));
}
