// numactlx's entry: run(argv) does the work and returns the exit status; main() is
// what bin/numactlx calls. Nothing runs at import time.
//
// launcher/ is the main thread's code. It owns the command line and the verbs. A program
// on real nodes only is exec'd in numactlx's own process, as numactl does
// (exec-program.ts). With a virtual node it runs a session (session.ts): the control
// socket, signals to numactlx, cron schedules, the snapshot queue (src/snapshot/), the
// exit status; it starts the other threads and talks to them through src/channels/
// (engine-handle.ts, run-program.ts are its ends). What only one path needs (the
// session, each verb) is loaded when that path runs, for start-up time.
import fs from 'node:fs';
import os from 'node:os';
import { debugging, describeError, SetupError, UsageError } from './errors.js';
import { parseLaunchArgs, type LaunchPlan } from './options.js';
import { execProgram } from './exec-program.js';
import { inheritedDispositions, programEnv, readInherited, type Inherited } from './inherited.js';
import { resolveProgram } from './resolve-program.js';
import { USAGE } from './usage.js';
import { loadVerb, PLANNED_VERBS } from './verbs/index.js';
import { releaseHeld, underV8Profiler } from './early-signals.js';
import { endOnOutputError } from './ending.js';
import { markStdoutClosed, OutputError, printErr, printOut } from './output.js';
import { setSignalDisposition } from '../src/sys/signal.js';
import { exitNow } from '../src/sys/process.js';
import { kernelPolicy } from '../policy/placement.js';
import { readTopology, type Topology } from '../policy/topology.js';
import { loadCron } from '../src/snapshot/schedule.js';
import { endUnused } from './early-workers.js';
import { PACKAGE_JSON } from './own-files.js';
import { PAUSE_PAGES_ENV, pausePages } from '../src/snapshot/pause-limit.js';
import { SNAPSHOT_NICE_ENV, snapshotNice } from '../src/snapshot/background-nice.js';
import { WARM_FRAMES_ENV, warmFrames } from '../src/snapshot/warm-frames.js';

export const VERSION = JSON.parse(fs.readFileSync(PACKAGE_JSON, 'utf8')).version as string;

/**
 * numactlx will not start a program (a verb, --show, an error): the signals held since its
 * first line act now, and those it inherited ignored are ignored again (so that, as for
 * any tool, a closed pipe is EPIPE rather than SIGPIPE when SIGPIPE came in ignored).
 */
function settleSignals(inherited: Inherited): void {
  releaseHeld(new Set(inherited.ignored));
  for (const sig of inherited.ignored) setSignalDisposition(sig, 'ignore');
}

async function launch(plan: LaunchPlan, topo: Topology, inherited: Inherited): Promise<number> {
  const { placement } = plan;
  resolveProgram(plan.program[0]);
  const real = kernelPolicy(placement.memory, placement.virtualNodes);
  // A policy left with no real node (--membind=3) leaves the kernel's policy alone.
  const policy = plan.policyGiven && (real.nodes.length > 0 || real.mode === 'local') ? real : undefined;
  // No virtual node: numactl's semantics, the program replaces numactlx (same pid).
  if (placement.virtualNodes.length === 0) return execProgram({ kernelPolicy: policy, cpus: placement.cpus, program: plan.program }, inherited);
  // A virtual node: the session (engine, tracer, control socket), loaded only for it. A bad
  // NUMACTLX_PAUSE_PAGES, NUMACTLX_SNAPSHOT_NICE or NUMACTLX_WARM_FRAMES is one line before anything starts.
  const pauseLimit = pausePages(process.env[PAUSE_PAGES_ENV]);
  snapshotNice(process.env[SNAPSHOT_NICE_ENV]); // read again by the workers
  warmFrames(process.env[WARM_FRAMES_ENV]); // read again by the engine worker
  const { runOnVirtualNodes } = await import('./session.js');
  const { dieBySignal } = await import('./ending.js');
  const end = await runOnVirtualNodes(plan, topo, pauseLimit, {
    kernelPolicy: policy,
    cpus: placement.cpus,
    program: plan.program,
    env: programEnv(process.env),
    ...inheritedDispositions(inherited),
  });
  return 'signal' in end ? dieBySignal(end.signal) : end.code;
}

/** Runs numactlx with the arguments after the program name; resolves to the exit status. */
export async function run(argv: string[]): Promise<number> {
  const inherited = readInherited(process.env);
  if (inherited.fds && !inherited.fds.includes(1)) markStdoutClosed();
  try {
    const verb = loadVerb(argv[0]);
    if (verb) {
      settleSignals(inherited);
      const { runVerb } = await import('./verbs/parse.js');
      return await runVerb(await verb, argv.slice(1));
    }
    if (PLANNED_VERBS.has(argv[0])) {
      throw new SetupError(`${argv[0]}: this verb is not available in this build (to run a program named ${argv[0]}: numactlx -- ${argv[0]})`);
    }
    // --schedule, --config (or any unique prefix of them): cron expressions to check.
    if (argv.some((a) => /^--(sc|co)/.test(a))) await loadCron();
    const topo = readTopology();
    const plan = parseLaunchArgs(argv, topo);
    switch (plan.action) {
      case 'help': printOut(USAGE); return 0;
      case 'version': printOut(`${VERSION}\n`); return 0;
      case 'show': {
        const { showReport } = await import('./show.js');
        printOut(showReport(plan.placement, plan.policyGiven, topo));
        return 0;
      }
      case 'hardware': {
        const { hardwareReport } = await import('./hardware.js');
        printOut(hardwareReport(topo, plan.placement.virtualNodes, plan.cpuCompress));
        return 0;
      }
      case 'run': return await launch(plan, topo, inherited);
    }
  } catch (err) {
    if (err instanceof OutputError) return endOnOutputError(err, inherited.ignored.includes(os.constants.signals.SIGPIPE));
    printErr(`numactlx: ${describeError(err)}\n`);
    if (err instanceof UsageError) printErr(USAGE);
    // Not the user's input but a bug: the stack, for the report, only when asked for.
    if (!(err instanceof UsageError || err instanceof SetupError) && debugging()) {
      printErr(`${(err as Error).stack ?? ''}\n`);
    }
    return 1;
  } finally {
    // A run that never started its program (an error, --show): signals sent meanwhile
    // act now, as they would have on a numactlx that had not held them.
    settleSignals(inherited);
  }
}

/** bin/numactlx's entry point. */
export function main(argv: string[]): void {
  process.on('uncaughtException', onStray);
  // exitNow (process.exit without Node's teardown of the workers: src/sys/process.ts), not
  // exitCode: leaving the event loop to drain would close Node's
  // signal handles, and libuv then restores SIG_DFL; a SIGTERM sent to numactlx in that
  // last stretch (a supervisor stopping the job just as the program ended) would kill
  // numactlx with 143 instead of the program's status. Everything numactlx writes is
  // written synchronously by then (stdout/stderr are files, pipes or terminals).
  // Early workers no session took end first (early-workers.ts): exiting while one still
  // loads koffi would abort Node.
  run(argv).then((code) => endUnused().then(() => leave(code)), (err) => {
    printErr(`numactlx: internal error: ${describeError(err)}\n`);
    void endUnused().then(() => leave(1));
  });
}

/** numactlx's exit: exitNow, or Node's own exit under V8's profilers, which write their files in it. */
function leave(code: number): never {
  return underV8Profiler() ? process.exit(code) : exitNow(code);
}

/**
 * The last resort for a throw no caller caught (an event handler's): one line, as for any
 * other failure; the stack only with NUMACTLX_DEBUG=1. The program, if any, goes with
 * numactlx (PTRACE_O_EXITKILL).
 */
function onStray(err: Error): void {
  printErr(`numactlx: internal error: ${describeError(err)}\n`);
  if (debugging()) printErr(`${err.stack ?? ''}\n`);
  void endUnused().then(() => leave(1));
}
