// The tracer survives everything a program does (issue 11): tasks that start, exec,
// exit and are killed at random moments — during exec set-up, an injected syscall, a
// seccomp stop, a freeze — are dropped and the session goes on. spawn_storm (see
// test/fixtures/spawn_storm.c) runs threads, vfork, posix_spawn, fork + exec and nested
// spawns with SIGKILL at seeded random delays, and checks its own results: every child's
// status, its memory, and that every descendant ended.
//
// The seed is printed; NUMACTLX_STRESS_SEED=N repeats a run, NUMACTLX_STRESS_ITERATIONS
// changes its length.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { NUMACTLX, numactlx } from '../helpers/numactlx.js';
import { compileFixture } from '../helpers/fixtures.js';
import { node3, onVirtualNode } from '../helpers/virtual.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

afterAll(removeTmpDirs);

const SEED = Number(process.env.NUMACTLX_STRESS_SEED ?? Math.floor(Math.random() * 1e9));
const ITERATIONS = Number(process.env.NUMACTLX_STRESS_ITERATIONS ?? 1000);
process.stderr.write(`spawn_storm seed ${SEED} (NUMACTLX_STRESS_SEED=${SEED} repeats it), ${ITERATIONS} iterations a run\n`);

/** What a run may say on stderr besides nothing: the pages a killed process took with it. */
const LOST_PAGES = /^numactlx: snapshot \d+: \d+ pages? frozen in it were unmapped or discarded by the program before they could be copied: .*$/;

function expectStormOk(stdout: string, stderr: string, seed: number): void {
  expect(stderr.split('\n').filter((l) => l !== '' && !LOST_PAGES.test(l))).toEqual([]);
  expect(stdout.split('\n')[0]).toBe(`spawn_storm seed ${seed}`);
  expect(stdout).toMatch(new RegExp(`^spawn_storm ok ${ITERATIONS} iterations, \\d+ killed, \\d+ exited$`, 'm'));
}

/** How a run ended, with the end of its stderr and stdout so that a failure shows why. */
function outcome(seed: number, result: { exitCode?: number; signal?: string; stdout?: unknown; stderr?: unknown }): Record<string, unknown> {
  const tail = (s: unknown): string => String(s ?? '').split('\n').slice(-12).join('\n');
  return { seed, exitCode: result.exitCode, signal: result.signal, stderrTail: `${tail(result.stderr)}\n--- stdout ---\n${tail(result.stdout)}` };
}

let storm: string;
beforeAll(async () => {
  storm = await compileFixture('spawn_storm');
});

test.each([0, 1])('spawn_storm run %i on a virtual node: every child\'s end, the memory and every descendant as the program expects', async (run) => {
  const seed = SEED + run;
  const { result, stats } = await onVirtualNode([storm, String(seed), String(ITERATIONS)], { size: '1g', options: { timeout: 900_000 } });
  expect(outcome(seed, result)).toEqual({ seed, exitCode: 0, signal: undefined, stderrTail: outcome(seed, result).stderrTail });
  expectStormOk(String(result.stdout), String(result.stderr), seed);
  // The program's memory was on the node: its own region, its children's and threads'.
  expect(node3(stats).pages_placed).toBeGreaterThan(1024);
  expect(stats.processes.length).toBeGreaterThan(ITERATIONS / 5);
}, 900_000);

test('spawn_storm with a snapshot asked for every 250 ms: every freeze ends, the program\'s results hold, the backing verifies clean', async () => {
  const seed = SEED + 2;
  const dir = tmpDir();
  const backing = path.join(dir, 'node3.img');
  const child = execa(NUMACTLX, [`--remap=3,${backing},size=1g`, '--membind=3', '--', storm, String(seed), String(ITERATIONS)],
    { reject: false, stdin: 'ignore', timeout: 900_000 });
  // Snapshots are asked for once the program has said it runs (its first line), until it ends.
  let asked = 0;
  let timer: NodeJS.Timeout | undefined;
  child.stdout!.once('data', () => {
    timer = setInterval(() => {
      if (child.pid !== undefined && child.exitCode === null) { child.kill('SIGUSR1'); asked++; }
    }, 250);
  });
  const result = await child;
  clearInterval(timer);
  expect(outcome(seed, result)).toEqual({ seed, exitCode: 0, signal: undefined, stderrTail: outcome(seed, result).stderrTail });
  expectStormOk(String(result.stdout), String(result.stderr), seed);
  expect(asked).toBeGreaterThan(2);
  const list = await numactlx(['snapshots', backing, '--json']);
  expect(list.exitCode).toBe(0);
  expect((JSON.parse(String(list.stdout)) as unknown[]).length).toBeGreaterThan(0);
  const verify = await numactlx(['verify', backing]);
  expect(verify.stderr).toBe('');
  expect(verify.stdout).toMatch(/: clean$/m);
  expect(fs.existsSync(backing)).toBe(true);
}, 900_000);
