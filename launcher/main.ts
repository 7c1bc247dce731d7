// numactlx's entry: run(argv) does the work and returns the exit status; main() is
// what bin/numactlx calls. Nothing runs at import time.
//
// launcher/ is the main thread's code. It owns the command line and the verbs, and in a
// session (session.ts): the control socket, signals to numactlx, cron schedules, the
// snapshot queue (src/snapshot/), the exit status. It starts the other threads and talks
// to them through src/channels/ (engine-handle.ts, run-program.ts are its ends).
import fs from 'node:fs';
import { debugging, describeError, SetupError, UsageError } from './errors.js';
import { hardwareReport } from './hardware.js';
import { parseLaunchArgs, type LaunchPlan } from './options.js';
import { dieBySignal, inheritedDispositions, runProgram, type ProgramEnd } from './run-program.js';
import { runOnVirtualNodes } from './session.js';
import type { TracerStart } from '../src/channels/tracer-messages.js';
import { resolveProgram } from './resolve-program.js';
import { showReport } from './show.js';
import { USAGE } from './usage.js';
import { PLANNED_VERBS, VERBS } from './verbs/index.js';
import { runVerb } from './verbs/parse.js';
import { releaseHeld } from './early-signals.js';
import { kernelPolicy } from '../policy/placement.js';
import { readTopology, type Topology } from '../policy/topology.js';

export const VERSION = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version as string;

/** The environment variable bin/numactlx uses to hand over the inherited SigIgn mask. */
const SIGIGN_ENV = 'NUMACTLX_SIGIGN';

async function launch(plan: LaunchPlan, topo: Topology): Promise<number> {
  const { placement } = plan;
  resolveProgram(plan.program[0]);
  const env = Object.entries(process.env).filter(([k]) => k !== SIGIGN_ENV).map(([k, v]) => `${k}=${v}`);
  const real = kernelPolicy(placement.memory, placement.virtualNodes);
  const start: TracerStart = {
    // A policy left with no real node (--membind=3) leaves the kernel's policy alone.
    kernelPolicy: plan.policyGiven && (real.nodes.length > 0 || real.mode === 'local') ? real : undefined,
    cpus: placement.cpus,
    program: plan.program,
    env,
    ...inheritedDispositions(process.env[SIGIGN_ENV]),
  };
  if (placement.virtualNodes.length === 0) return finish(await runProgram(start));
  return finish(await runOnVirtualNodes(plan, topo, start));
}

function finish(end: ProgramEnd): number {
  if ('signal' in end) dieBySignal(end.signal);
  return end.code;
}

/** Runs numactlx with the arguments after the program name; resolves to the exit status. */
export async function run(argv: string[]): Promise<number> {
  try {
    const verb = VERBS.get(argv[0]);
    if (verb) {
      releaseHeld();
      watchStdout();
      return await runVerb(verb, argv.slice(1));
    }
    if (PLANNED_VERBS.has(argv[0])) {
      throw new SetupError(`${argv[0]}: this verb is not available in this build (to run a program named ${argv[0]}: numactlx -- ${argv[0]})`);
    }
    const topo = readTopology();
    const plan = parseLaunchArgs(argv, topo);
    if (plan.action !== 'run') watchStdout();
    switch (plan.action) {
      case 'help': process.stdout.write(USAGE); return 0;
      case 'version': process.stdout.write(`${VERSION}\n`); return 0;
      case 'show': process.stdout.write(showReport(plan.placement, plan.policyGiven, topo)); return 0;
      case 'hardware': process.stdout.write(hardwareReport(topo, plan.placement.virtualNodes, plan.cpuCompress)); return 0;
      case 'run': return await launch(plan, topo);
    }
  } catch (err) {
    process.stderr.write(`numactlx: ${describeError(err)}\n`);
    if (err instanceof UsageError) process.stderr.write(USAGE);
    // Never a stack trace for the user: one line says what failed. NUMACTLX_DEBUG=1 shows where.
    if (debugging() && !(err instanceof UsageError)) process.stderr.write(`${(err as Error).stack ?? ''}\n`);
    return 1;
  } finally {
    // A run that never started its program (an error, --show): signals sent meanwhile
    // act now, as they would have on a numactlx that had not held them.
    releaseHeld();
  }
}

/**
 * numactlx's own output goes to stdout only from the verbs and --help, --version, --show,
 * --hardware: those watch for its reader going away. A session never touches
 * process.stdout: creating the stream makes fd 1 O_NONBLOCK — a file description the
 * program shares (launcher/worker.ts).
 */
let stdoutWatched = false;
function watchStdout(): void {
  stdoutWatched = true;
  process.stdout.on('error', (err) => stray(err, 'writing to stdout'));
}

/**
 * The last resort for what no caller caught: one line, never a stack trace (those come
 * with NUMACTLX_DEBUG=1). A reader of numactlx's output that went away (`… | head -1`)
 * is EPIPE on stdout, said once, exit status 1. Written with fs.writeSync(2): stderr is
 * not made a stream here either.
 */
let straySaid = false;
function stray(err: Error & { code?: string }, where: string): never {
  if (!straySaid) {
    straySaid = true;
    const what = err.code === 'EPIPE' ? 'EPIPE (the reader of numactlx\'s output went away)' : describeError(err);
    try {
      fs.writeSync(2, `numactlx: ${where}: ${what}\n`);
      if (debugging()) fs.writeSync(2, `${err.stack ?? ''}\n`);
    } catch {
      // stderr is gone too
    }
  }
  process.exit(1);
}

/** bin/numactlx's entry point. */
export function main(argv: string[]): void {
  process.on('uncaughtException', (err) => stray(err, 'internal error'));
  // process.exit, not exitCode: leaving the event loop to drain would close Node's
  // signal handles, and libuv then restores SIG_DFL; a SIGTERM sent to numactlx in that
  // last stretch (a supervisor stopping the job just as the program ended) would kill
  // numactlx with 143 instead of the program's status. Everything numactlx writes is
  // written synchronously by then (stdout/stderr are files, pipes or terminals), but a
  // write that failed says so in an 'error' event still to come: looked at here.
  run(argv).then((code) => {
    const failed = stdoutWatched ? process.stdout.errored : null;
    if (failed) stray(failed, 'writing to stdout');
    process.exit(code);
  }, (err) => stray(err as Error, 'internal error'));
}
