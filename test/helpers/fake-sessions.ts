// Starting test/helpers/fake-session.mjs (a control server with fixed stats in its own
// process) and stopping it. It runs the built dist/: `npx tsc` first. (Not named
// fake-session.ts: jest would resolve fake-session.js to the .mjs.)
import fs from 'node:fs';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { ROOT } from './numactlx.js';

const SCRIPT = path.join(ROOT, 'test/helpers/fake-session.mjs');
const BUILT = path.join(ROOT, 'dist/src/control/server.js');

export interface FakeSession {
  socket: string;
  numactlx_pid: number;
  program_pid: number | null;
  proc: ResultPromise;
  /** SIGTERM (the server closes, the program ends) and wait for the exit. */
  stop(): Promise<void>;
}

export interface FakeSessionOptions {
  /** The socket directory (NUMACTLX_RUNTIME_DIR). */
  dir: string;
  /** Flags for the script: --no-program, --hang. */
  flags?: string[];
  config?: Record<string, unknown>;
  /** A command prefix, e.g. setpriv to run as another uid. */
  prefix?: string[];
}

const running = new Set<ResultPromise>();
const programs = new Set<number>();

export async function startFakeSession(opts: FakeSessionOptions): Promise<FakeSession> {
  if (!fs.existsSync(BUILT)) throw new Error(`${BUILT} is missing: build with npx tsc -p tsconfig.json first`);
  const argv = [...(opts.prefix ?? []), process.execPath, SCRIPT, ...(opts.flags ?? []),
    ...(opts.config ? [JSON.stringify(opts.config)] : [])];
  const proc = execa(argv[0], argv.slice(1), {
    reject: false, stdin: 'ignore', buffer: false, cwd: '/', env: { NUMACTLX_RUNTIME_DIR: opts.dir },
  });
  running.add(proc);
  void proc.then(() => running.delete(proc));
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    let err = '';
    proc.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    proc.stderr.on('data', (chunk: Buffer) => { err += chunk.toString(); });
    void proc.then((r) => reject(new Error(`fake session exited (${r.exitCode ?? r.signal}) before it was ready: ${err}`)));
  });
  if (!line.startsWith('ready ')) throw new Error(`fake session said: ${line}`);
  const ready = JSON.parse(line.slice('ready '.length)) as Pick<FakeSession, 'socket' | 'numactlx_pid' | 'program_pid'>;
  if (ready.program_pid !== null) programs.add(ready.program_pid);
  return {
    ...ready,
    proc,
    stop: async () => {
      proc.kill('SIGTERM');
      await proc;
    },
  };
}

/** Kills every fake session still running and their programs (afterEach/afterAll). */
export async function killFakeSessions(): Promise<void> {
  const all = [...running];
  for (const p of all) p.kill('SIGKILL');
  await Promise.all(all);
  for (const pid of programs) {
    try {
      // Only if the pid is still a sleep (never a recycled pid of someone else).
      if (fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep') process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  programs.clear();
}
