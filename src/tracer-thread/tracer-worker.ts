// The tracer thread (src/tracer-thread/): its entry point.
//
// Owns, and is the only thread to touch: the program's processes and threads (every
// ptrace call and every waitpid), the injected syscalls, the seccomp stops, and the
// freeze (stopping every thread for a snapshot). It calls the engine synchronously
// (src/channels/tracer-engine.ts), hears snapshot requests through the doorbell
// (src/channels/doorbell.ts) and reports to the main thread (tracer-messages.ts).
//
// The tracer worker is the one thread that owns the program's process. It takes on the
// program's memory policy and CPU affinity (both per thread, both inherited by the
// child through posix_spawn's clone), spawns the program and waits for it.
//
// Two modes: a program on real nodes only is spawned and waited for, exactly as
// numactl would have exec'd it; with --remap the program runs under the Tracer
// (tracer.ts), which seizes it and follows it.
//
// Invariant: no other thread calls waitpid for the program (libuv never sees it: it
// was not spawned through child_process), so every state change arrives here.
import { isMainThread, workerData } from 'node:worker_threads';
import { setMempolicy, MPOL_F_NUMA_BALANCING } from '../sys/mempolicy.js';
import { schedSetaffinity } from '../sys/sched.js';
import { spawnProgram } from '../sys/spawn.js';
import {
  waitpid, WUNTRACED, WCONTINUED, WIFEXITED, WEXITSTATUS, WIFSIGNALED, WTERMSIG, WCOREDUMP,
  WIFSTOPPED, WSTOPSIG, WIFCONTINUED,
} from '../sys/wait.js';
import { MODE_NUMBER } from '../../policy/placement.js';
import { postToMain as post, type TracedSetup, type TracerStart } from '../channels/tracer-messages.js';
import { Tracer } from './tracer.js';
import { EngineClient, TracerChannel } from '../channels/tracer-engine.js';
import { Doorbell } from '../channels/doorbell.js';
import { EvictChannel } from '../channels/evict-request.js';

if (isMainThread) throw new Error('tracer-worker must run as a worker thread');

function fail(what: string, err: unknown): void {
  const e = err as { code?: string; errno?: number };
  post({ type: 'setup-failed', what, errno: e.errno ?? 0, code: e.code ?? String(err) });
}

/**
 * The command that starts the program. posix_spawn can reset a signal to its default
 * but cannot make it ignored, and Node un-ignored everything numactlx inherited: when
 * signals must arrive ignored (nohup, `cmd &`), a shell sets them and execs the program.
 */
function startCommand(start: TracerStart): { file: string; argv: string[] } {
  if (start.ignoredSignals.length === 0) return { file: start.program[0], argv: start.program };
  const script = `trap '' ${start.ignoredSignals.join(' ')}; exec "$@"`;
  return { file: '/bin/sh', argv: ['sh', '-c', script, 'numactlx', ...start.program] };
}

/** Takes on the program's real-node policy and CPU affinity; false (reported) on failure. */
function applyPlacement(start: TracerStart): boolean {
  const policy = start.kernelPolicy;
  if (policy) {
    const flags = policy.balancing ? MPOL_F_NUMA_BALANCING : 0;
    try {
      setMempolicy(MODE_NUMBER[policy.mode] | flags, policy.nodes);
    } catch (err) {
      // libnuma's numa_set_membind_balancing: a kernel without NUMA balancing for
      // MPOL_BIND says EINVAL, and numactl then binds without it.
      if (!(flags && (err as { code?: string }).code === 'EINVAL')) {
        fail(`set_mempolicy(${policy.mode}, nodes ${policy.nodes.join(',') || 'none'})`, err);
        return false;
      }
      try {
        setMempolicy(MODE_NUMBER[policy.mode], policy.nodes);
      } catch (err2) {
        fail(`set_mempolicy(${policy.mode}, nodes ${policy.nodes.join(',')})`, err2);
        return false;
      }
    }
  }
  if (start.cpus) {
    try {
      schedSetaffinity(0, start.cpus);
    } catch (err) {
      fail(`sched_setaffinity(cpus ${start.cpus.join(',')})`, err);
      return false;
    }
  }
  return true;
}

function spawn(start: TracerStart): number | undefined {
  try {
    return spawnProgram({ ...startCommand(start), env: start.env, searchPath: true,
      defaultSignals: start.defaultSignals });
  } catch (err) {
    fail(`execution of '${start.program[0]}'`, err);
    return undefined;
  }
}

function waitLoop(pid: number): void {
  for (;;) {
    const { status } = waitpid(pid, WUNTRACED | WCONTINUED);
    if (WIFEXITED(status)) return post({ type: 'exited', code: WEXITSTATUS(status) });
    if (WIFSIGNALED(status)) return post({ type: 'killed', signal: WTERMSIG(status), core: WCOREDUMP(status) });
    if (WIFSTOPPED(status)) post({ type: 'stopped', signal: WSTOPSIG(status) });
    else if (WIFCONTINUED(status)) post({ type: 'continued' });
  }
}

function runTraced(start: TracerStart, traced: TracedSetup): void {
  const tracer = new Tracer({
    program: start.program, env: start.env, defaultSignals: start.defaultSignals,
    ignoredSignals: start.ignoredSignals, policy: traced.policy, virtualNodes: traced.virtualNodes,
    allowedReal: traced.allowedReal,
    doorbell: new Doorbell(traced.doorbell), snapshotOnExit: traced.snapshotOnExit,
    evict: traced.evict ? new EvictChannel(traced.evict) : undefined,
    engine: new EngineClient(new TracerChannel(traced.channel, traced.eventFd)), post,
  });
  try {
    tracer.start();
  } catch (err) {
    fail(`starting '${start.program[0]}' under ptrace`, err);
    return;
  }
  try {
    tracer.run();
  } catch (err) {
    tracer.killAll();
    post({ type: 'tracer-failed', message: (err as Error).stack ?? String(err) });
  }
}

const start = workerData as TracerStart;
if (applyPlacement(start)) {
  if (start.traced) {
    runTraced(start, start.traced);
  } else {
    const pid = spawn(start);
    if (pid !== undefined) {
      post({ type: 'spawned', pid });
      waitLoop(pid);
    }
  }
}
