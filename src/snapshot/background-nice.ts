// NUMACTLX_SNAPSHOT_NICE: how far below numactlx's own priority (nice steps, 0–19) the
// engine takes a snapshot's background steps — the pre-copy, copy, commit and --keep steps
// between fault service — with asynchronous dirty tracking, for the first 2 s of each
// snapshot (src/engine-thread/background-priority.ts). Opt-in (default 0): it lets a
// latency-bound program come first — redis-server's slowest request during five snapshots,
// free placement, 51–64 ms against 81–88 ms at 0 (BGSAVE's: 26–41 ms) — but a program that
// keeps the CPUs busy gets its snapshot later: a writer pinned with numactlx to one CPU
// waited 12.7 s for it instead of 7.1 s (docs/BENCHMARKS.md "Snapshot work below the
// program's priority"). Fault service, the freeze and whatever the program waits on run at
// numactlx's priority. Read once by the main thread (a bad value is one line) and by the
// engine worker, which inherits the environment.

export const SNAPSHOT_NICE_ENV = 'NUMACTLX_SNAPSHOT_NICE';
export const DEFAULT_SNAPSHOT_NICE = 0;

/** The nice steps `value` asks for (unset or empty: the default); throws the one line (without `numactlx: `) for a bad value. */
export function snapshotNice(value: string | undefined): number {
  if (value === undefined || value === '') return DEFAULT_SNAPSHOT_NICE;
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= 0 && n <= 19)) throw new Error(`${SNAPSHOT_NICE_ENV}: '${value}' is not a number of nice steps from 0 to 19 (default ${DEFAULT_SNAPSHOT_NICE}: as numactlx)`);
  return n;
}
