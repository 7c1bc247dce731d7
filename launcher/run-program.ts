// Running the program on a virtual node: the tracer worker spawns it; this thread
// forwards signals, mirrors job-control stops, and ends numactlx the way the program
// ended, so that numactlx is as transparent as numactl's exec. (On real nodes only there
// is nothing to forward: numactlx execs the program, exec-program.ts.)
import fs from 'node:fs';
import os from 'node:os';
import { startWorker } from './worker.js';
import { FORWARDED_SIGNALS, takeHeld } from './early-signals.js';
import { SetupError } from './errors.js';
import { kill } from '../src/sys/signal.js';
import { onTracerEvent, type TracerEvent, type TracerStart } from '../src/channels/tracer-messages.js';
import { errnoText, SysError } from '../src/sys/libc.js';
import { debugging } from './errors.js';

const S = os.constants.signals;

export { FORWARDED_SIGNALS };

/** How the program ended. */
export type ProgramEnd = { code: number } | { signal: number; core: boolean };

/** Spawns the program through the tracer worker and resolves when it has ended. */
export interface RunHooks {
  onSpawned?: (pid: number) => void;
  /** Tracer events the session handles (frozen, exit-snapshot). */
  onEvent?: (ev: TracerEvent) => void;
  /** Signals numactlx keeps for itself (the snapshot signal). */
  notForwarded?: NodeJS.Signals[];
}

const TRACER_WORKER = new URL('../src/tracer-thread/tracer-worker.js', import.meta.url);

export function runProgram(start: TracerStart, hooks: RunHooks = {}): Promise<ProgramEnd> {
  const { onSpawned, onEvent, notForwarded = [] } = hooks;
  return new Promise((resolve, reject) => {
    const worker = startWorker(TRACER_WORKER, start);
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
    worker.on('error', (err) => {
      cleanUp();
      reject(new SetupError('tracer thread failed', { cause: err }));
    });
  });
}
