// Running the program on a virtual node: the tracer worker spawns it; this thread
// forwards signals, mirrors job-control stops, and ends numactlx the way the program
// ended, so that numactlx is as transparent as numactl's exec. (On real nodes only there
// is nothing to forward: numactlx execs the program, exec-program.ts.)
import fs from 'node:fs';
import os from 'node:os';
import { workerFor } from './early-workers.js';
import { TRACER_WORKER } from './own-files.js';
import { FORWARDED_SIGNALS, takeHeld } from './early-signals.js';
import { SetupError } from './errors.js';
import { kill } from '../src/sys/signal.js';
import { onTracerEvent, TracerGate, type TracerEvent, type TracerStart } from '../src/channels/tracer-messages.js';
import type { Worker } from 'node:worker_threads';
import { errnoText, SysError } from '../src/sys/libc.js';
import { debugging } from './errors.js';

const S = os.constants.signals;

export { FORWARDED_SIGNALS };

/** How the program ended. */
export type ProgramEnd = { code: number } | { signal: number; core: boolean };

/** What runProgram tells the session. */
export interface RunHooks {
  onSpawned?: (pid: number) => void;
  /** Tracer events the session handles (frozen, exit-snapshot). */
  onEvent?: (ev: TracerEvent) => void;
  /** Signals numactlx keeps for itself (the snapshot signal). */
  notForwarded?: NodeJS.Signals[];
}

/**
 * The tracer worker, started with the engine worker so that both load at once (or
 * earlier: early-workers.ts), waiting at its gate until runProgram opens it or quit()
 * lets it end (TracerGate).
 */
export class StartedTracer {
  readonly worker: Worker;
  private readonly gate = new TracerGate();
  private readonly exited: Promise<void>;
  /** An error of the worker before runProgram listens (it fails with it then). */
  private failure: Error | undefined;
  private onFailure: ((err: Error) => void) | undefined;

  constructor(start: Omit<TracerStart, 'gate'>) {
    this.worker = workerFor(TRACER_WORKER, { ...start, gate: this.gate.sab });
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.on('error', (err) => {
      this.failure ??= err;
      this.onFailure?.(err);
    });
  }

  /** runProgram: the program may start; `onFailure` hears the worker's errors from now on. */
  open(onFailure: (err: Error) => void): void {
    this.onFailure = onFailure;
    if (this.failure) onFailure(this.failure);
    else this.gate.open();
  }

  /** The session failed before the program started: resolves when the worker has ended by itself. */
  quit(): Promise<void> {
    this.gate.quit();
    return this.exited;
  }
}

/** Runs the program through the tracer worker (opening its gate); resolves when it has ended. */
export function runProgram(tracer: StartedTracer, hooks: RunHooks = {}): Promise<ProgramEnd> {
  const { onSpawned, onEvent, notForwarded = [] } = hooks;
  const { worker } = tracer;
  return new Promise((resolve, reject) => {
    let pid: number | undefined;
    const pending: number[] = [];
    // The listeners stay until numactlx exits: once the program has ended, a SIGTERM or
    // SIGINT sent to numactlx (a supervisor stopping the job) finds nothing to forward
    // and is dropped, instead of killing numactlx by its default action in the middle
    // of the session's end (the final snapshot, --keep, --stats).
    let ended = false;
    const cleanUp = (): void => { ended = true; };
    const forward = (sig: number): void => {
      if (ended) return;
      if (pid === undefined) { pending.push(sig); return; }
      try {
        kill(pid, sig);
      } catch (err) {
        if (!(err instanceof SysError && err.code === 'ESRCH')) throw err;
      }
    };
    for (const name of FORWARDED_SIGNALS.filter((n) => !notForwarded.includes(n))) {
      process.on(name, () => forward(S[name]));
      // Sent during start-up: the program gets it once it exists (`pending`).
      for (let n = takeHeld(name); n > 0; n--) forward(S[name]);
    }

    onTracerEvent(worker, (ev) => {
      switch (ev.type) {
        case 'spawned':
          pid = ev.pid;
          for (const sig of pending.splice(0)) forward(sig);
          onSpawned?.(ev.pid);
          break;
        case 'setup-failed':
          cleanUp();
          reject(new SetupError(ev.message ?? `${ev.what}: ${ev.code} (${errnoText(ev.errno)})`));
          break;
        case 'stopped':
          // The program stopped (Ctrl-Z, SIGSTOP): stop numactlx too so the shell sees
          // the job stopped; the SIGCONT that resumes us is forwarded to the program.
          process.kill(process.pid, 'SIGSTOP');
          break;
        case 'continued':
          break;
        case 'exited':
          cleanUp();
          resolve({ code: ev.code });
          break;
        case 'killed':
          cleanUp();
          resolve({ signal: ev.signal, core: ev.core });
          break;
        case 'frozen':
        case 'freeze-failed':
        case 'exit-snapshot':
          onEvent?.(ev);
          break;
        case 'tracer-failed':
          cleanUp();
          if (debugging()) fs.writeSync(2, `${ev.stack ?? ev.message}\n`);
          reject(new SetupError(`the tracer failed and killed the program: ${ev.message}`));
          break;
      }
    });
    tracer.open((err) => {
      cleanUp();
      reject(new SetupError('tracer thread failed', { cause: err }));
    });
  });
}
