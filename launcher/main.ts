// numactlx's entry: run(argv) does the work and returns the exit status; main() is
// what bin/numactlx calls. Nothing runs at import time.
import fs from 'node:fs';
import { describeError, SetupError, UsageError } from './errors.js';
import { hardwareReport } from './hardware.js';
import { parseLaunchArgs, type LaunchPlan } from './options.js';
import { dieBySignal, inheritedDispositions, runProgram, type ProgramEnd } from './run-program.js';
import { EngineHandle } from './engine-handle.js';
import { startControlServer } from '../src/control/server.js';
import { eventfd, EFD_CLOEXEC, EFD_NONBLOCK } from '../src/sys/eventfd.js';
import type { SessionStats } from '../src/engine/stats.js';
import type { TracerStart } from '../src/tracee/messages.js';
import { resolveProgram } from './resolve-program.js';
import { showReport } from './show.js';
import { USAGE } from './usage.js';
import { PLANNED_VERBS, VERBS } from './verbs/index.js';
import { kernelPolicy, MODE_NUMBER, virtualNodesOf } from '../policy/placement.js';
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
  return runOnVirtualNodes(plan, topo, start);
}

function finish(end: ProgramEnd): number {
  if ('signal' in end) dieBySignal(end.signal);
  return end.code;
}

/** --remap: the engine opens the backings, the tracer runs the program under ptrace. */
async function runOnVirtualNodes(plan: LaunchPlan, topo: Topology, start: TracerStart): Promise<number> {
  const { placement } = plan;
  const eventFd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  const engine = new EngineHandle(eventFd);
  await engine.start(placement.virtualNodes, plan.faultAheadPages);
  const names = virtualNodesOf(placement.memory, placement.virtualNodes).length > 0;
  let programPid: number | null = null;
  const started = new Date().toISOString();
  // The control socket (numactlx status / ps): the session's identity and the engine's counts.
  const control = await startControlServer({
    info: () => ({
      numactlx_pid: process.pid, program_pid: programPid, program: plan.program, started,
      uid: process.getuid?.() ?? 0,
      virtual_nodes: placement.virtualNodes.map((v) => ({ node: v.node, backing: v.backing.path, kind: v.backing.kind, size_bytes: Number(v.backing.size) })),
    }),
    handlers: { status: () => engine.stats() },
  });
  let end: ProgramEnd;
  try {
    end = await runProgram({
      ...start,
      traced: {
        channel: engine.channel, eventFd,
        policy: names ? { mode: MODE_NUMBER[placement.memory.mode], nodes: placement.memory.nodes } : undefined,
        virtualNodes: placement.virtualNodes.map((v) => v.node),
        allowedReal: topo.allowedNodes,
      },
    }, (pid) => { programPid = pid; });
  } finally {
    await control.close();
    const stats = await engine.shutdown();
    if (plan.statsFile && stats) writeStats(plan.statsFile, stats);
  }
  return finish(end);
}

/** --stats FILE: mode 0600 (it describes the program's memory), never through a symlink. */
function writeStats(file: string, stats: SessionStats): void {
  const { O_WRONLY, O_CREAT, O_TRUNC, O_NOFOLLOW } = fs.constants;
  let fd: number;
  try {
    fd = fs.openSync(file, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0o600);
  } catch (err) {
    throw new SetupError(`--stats ${file}: ${(err as NodeJS.ErrnoException).code ?? 'EIO'}`, { cause: err });
  }
  try {
    fs.writeSync(fd, `${JSON.stringify(stats, null, 2)}\n`);
  } finally {
    fs.closeSync(fd);
  }
}

/** Runs numactlx with the arguments after the program name; resolves to the exit status. */
export async function run(argv: string[]): Promise<number> {
  try {
    const verb = VERBS[argv[0]];
    if (verb) return await verb(argv.slice(1));
    if (PLANNED_VERBS.has(argv[0])) {
      throw new SetupError(`${argv[0]}: this verb is not available in this build (to run a program named ${argv[0]}: numactlx -- ${argv[0]})`);
    }
    const topo = readTopology();
    const plan = parseLaunchArgs(argv, topo);
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
    if (!(err instanceof UsageError || err instanceof SetupError)) {
      // A bug, not the user's input: keep the stack for the report.
      process.stderr.write(`${(err as Error).stack ?? ''}\n`);
    }
    return 1;
  }
}

/** bin/numactlx's entry point. */
export function main(argv: string[]): void {
  run(argv).then((code) => {
    process.exitCode = code;
  }, (err) => {
    process.stderr.write(`numactlx: internal error: ${describeError(err)}\n`);
    process.exitCode = 1;
  });
}
