// Cron schedules for snapshots (--schedule, "schedules" in --config), over node-cron 4.
//
// Expressions have 5 fields (minute hour day-of-month month day-of-week) or 6 with a
// leading seconds field; names (jan, mon), steps, ranges, L/W/# and the nicknames
// (@hourly, @daily…) are node-cron's. Times are the machine's local time.
//
// node-cron 4 notes: cron.schedule() starts the task at once and adds it to a module-wide
// registry, which only destroy() leaves (stop() alone would keep it listed forever). Its
// timer is re-armed at most a day ahead; `unref: true` makes every re-armed timer unref'd,
// so schedules never keep the process alive — the session lasts as long as its program,
// as the control server does. stop() clears the timers.
//
// node-cron is loaded only by a run that has schedules (loadCron): its import is
// 30–50 ms of every numactlx start-up here otherwise (docs/BENCHMARKS.md §4). It is
// imported (ESM), never required: a createRequire copy would be a second CommonJS
// instance with a task registry of its own.
import type { Logger, ScheduledTask } from 'node-cron';

type Cron = typeof import('node-cron').default;
let loaded: Cron | undefined;

/** Loads node-cron; before checkCronExpression or startSchedules (launcher/main.ts, session.ts). */
export async function loadCron(): Promise<void> {
  loaded ??= (await import('node-cron')).default;
}

function cronModule(): Cron {
  if (!loaded) throw new Error('node-cron is not loaded (loadCron)');
  return loaded;
}

export interface Schedule {
  expr: string;
  /** The label the schedule's snapshots get (null: unlabelled, pruned by --keep). */
  label: string | null;
}

/** A cron expression node-cron does not accept. */
export class ScheduleError extends Error {
  readonly expr: string;
  /** What is wrong, without the expression (for messages that quote it already). */
  readonly why: string;

  constructor(expr: string, why: string) {
    super(`invalid schedule '${expr}': ${why}`);
    this.name = 'ScheduleError';
    this.expr = expr;
    this.why = why;
  }
}

/** node-cron's field keys: the name in CRON_FORMAT and what the field accepts. */
const FIELDS: Record<string, [name: string, valid: string]> = {
  second: ['second', '0-59'],
  minute: ['minute', '0-59'],
  hour: ['hour', '0-23'],
  dayOfMonth: ['day-of-month', '1-31, L, nW'],
  month: ['month', '1-12 or jan-dec'],
  dayOfWeek: ['day-of-week', '0-7 or sun-sat, nL, n#k'],
};

export const CRON_FORMAT = '[second] minute hour day-of-month month day-of-week';

/** Throws a ScheduleError, quoting the expression and saying which field is wrong, unless valid. */
export function checkCronExpression(expr: string): void {
  if (expr.trim() === '') throw new ScheduleError(expr, `empty (fields: ${CRON_FORMAT})`);
  let result: ReturnType<Cron['validateDetailed']>;
  try {
    result = cronModule().validateDetailed(expr);
  } catch (err) {
    throw new ScheduleError(expr, `${(err as Error).message} (fields: ${CRON_FORMAT})`);
  }
  if (result.valid) return;
  const err = result.errors[0];
  const field = err && Object.hasOwn(FIELDS, err.field) ? FIELDS[err.field] : undefined;
  if (!err || !field) throw new ScheduleError(expr, `${err?.message ?? 'not a cron expression'} (fields: ${CRON_FORMAT})`);
  if (/impossible day of month/.test(err.message)) {
    throw new ScheduleError(expr, `day of month '${err.value}' never occurs in the months given`);
  }
  throw new ScheduleError(expr, `bad ${field[0]} field '${err.value}' (valid: ${field[1]}; fields: ${CRON_FORMAT})`);
}

export interface ScheduleOptions {
  /** node-cron's warnings and errors; default: dropped. */
  onWarning?: (message: string) => void;
  /** A tick node-cron could not run on time (its event loop was busy). */
  onMissed?: (expr: string, label: string | null) => void;
}

export interface RunningSchedules {
  /** Stops every schedule; no tick comes after it, and no timer is left. */
  stop(): void;
}

/**
 * Starts one cron task per schedule; each tick calls onTick(expr, label). Every expression
 * is checked before any task starts, so a bad one leaves nothing running.
 */
export function startSchedules(schedules: readonly (string | Schedule)[],
  onTick: (expr: string, label: string | null) => void, opts: ScheduleOptions = {}): RunningSchedules {
  const specs = schedules.map((s): Schedule => (typeof s === 'string' ? { expr: s, label: null } : s));
  for (const { expr } of specs) checkCronExpression(expr);
  const warn = (message: string | Error): void => opts.onWarning?.(message instanceof Error ? message.message : message);
  const logger: Logger = { info: () => {}, debug: () => {}, warn, error: warn };
  let stopped = false;
  const tasks: ScheduledTask[] = specs.map(({ expr, label }) => {
    const task = cronModule().schedule(expr, () => {
      if (!stopped) onTick(expr, label);
    }, { unref: true, logger });
    // With a listener node-cron reports a missed tick here instead of warning about it.
    task.on('execution:missed', () => { if (!stopped) opts.onMissed?.(expr, label); });
    return task;
  });
  return {
    stop: () => {
      stopped = true;
      // Inline tasks stop and destroy synchronously (only background tasks, which run a
      // file in a child process, return a promise).
      for (const task of tasks.splice(0)) void task.destroy();
    },
  };
}
