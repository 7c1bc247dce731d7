// The tracer thread (src/tracer-thread/): its entry point.
//
// Owns, and is the only thread to touch: the program's processes and threads (every
// ptrace call and every waitpid), the injected syscalls, the seccomp stops, and the
// freeze (stopping every thread for a snapshot). It calls the engine synchronously
// (src/channels/tracer-engine.ts), hears snapshot requests through the doorbell
// (src/channels/doorbell.ts) and reports to the main thread (tracer-messages.ts).
//
// The tracer worker is the one thread that owns the program's process. It takes on the
// program's real-node memory policy and CPU affinity (src/placement/take-placement.ts:
// both per thread, both inherited by the child through posix_spawn's clone), then runs
// the program under the Tracer (tracer.ts), which spawns it, seizes it and follows it.
// (A program with no virtual node never comes here: the main thread execs it in
// numactlx's own process, as numactl does — launcher/exec-program.ts.)
//
// Invariant: no other thread calls waitpid for the program (libuv never sees it: it
// was not spawned through child_process), so every state change arrives here.
import { raiseToService } from '../sys/thread-priority.js';
import { isMainThread } from 'node:worker_threads';
import { PlacementError, takePlacement } from '../placement/take-placement.js';
import { postToMain as post, TracerGate, type TracedSetup, type TracerStart } from '../channels/tracer-messages.js';
import { Tracer } from './tracer.js';
import { ForeignTracerError } from './limits.js';
import { EngineClient, TracerChannel } from '../channels/tracer-engine.js';
import { Doorbell } from '../channels/doorbell.js';
import { EvictChannel } from '../channels/evict-request.js';
import { workerStart } from '../channels/worker-start.js';

if (isMainThread) throw new Error('tracer-worker must run as a worker thread');

function fail(what: string, err: unknown): void {
  const e = err as { code?: string; errno?: number };
  const message = err instanceof ForeignTracerError ? `${what}: ${err.message}` : undefined;
  post({ type: 'setup-failed', what, errno: e.errno ?? 0, code: e.code ?? String(err), message });
}

/** Takes on the program's real-node policy and CPU affinity; false (reported) on failure. */
function applyPlacement(start: TracerStart): boolean {
  try {
    takePlacement(start.kernelPolicy, start.cpus);
    return true;
  } catch (err) {
    if (!(err instanceof PlacementError)) throw err;
    fail(err.what, err);
    return false;
  }
}

function runTraced(start: TracerStart, traced: TracedSetup): void {
  const tracer = new Tracer({
    program: start.program, env: start.env, defaultSignals: start.defaultSignals,
    ignoredSignals: start.ignoredSignals, policy: traced.policy, virtualNodes: traced.virtualNodes,
    allowedReal: traced.allowedReal,
    doorbell: new Doorbell(traced.doorbell), snapshotOnExit: traced.snapshotOnExit,
    evict: traced.evict ? new EvictChannel(traced.evict) : undefined,
    engine: new EngineClient(new TracerChannel(traced.channel, traced.eventFd)), post, features: traced.features, capture: traced.capture,
  });
  try {
    tracer.start();
  } catch (err) {
    fail(`starting '${start.program[0]}' under ptrace`, err);
    return;
  }
  // Above the program from here, where numactlx may: it started at numactlx's own nice,
  // which a fork inherits (src/sys/thread-priority.ts).
  raiseToService();
  try {
    tracer.run();
  } catch (err) {
    tracer.killAll();
    post({ type: 'tracer-failed', message: (err as Error).message ?? String(err), stack: (err as Error).stack });
  }
}

const start = await workerStart<TracerStart>();
// Loaded (koffi too, through the imports above) while the engine opens the backings; the
// program starts once the session is ready for it (tracer-messages.ts TracerGate).
if (new TracerGate(start.gate).pass() && applyPlacement(start)) runTraced(start, start.traced);
