// Snapshot settings: the --config FILE schema, the values shared with the command line
// (--keep, --snapshot-signal, labels), and how the two are merged.
//
// --config FILE is a JSON object; every key is optional, any other key is an error:
//
//   {
//     "schedules": ["*/5 * * * *",                        cron expressions (5 fields, or
//                   {"cron": "0 * * * *", "label": "hourly"}], 6 with seconds first); an
//                                                          object gives the schedule's
//                                                          snapshots a label ("label": null
//                                                          or absent: unlabelled)
//     "keep": 12,                                          retention: a positive integer
//     "snapshot_signal": "SIGUSR1",                        a name (SIGUSR1, USR1, usr1) or a
//                                                          number (10)
//     "snapshot_on_exit": true                             true or false
//   }
//
// The command line adds to and overrides the file: --schedule adds to "schedules";
// --keep, --snapshot-signal and --snapshot-on-exit win over their keys. Errors name the
// file and the key: `/etc/sim.json: schedules[1].label: must be a string, got 3`.
import fs from 'node:fs';
import os from 'node:os';
import { signalName } from '../sys/signal.js';
import { labelProblem } from './labels.js';
import { checkCronExpression, type Schedule } from './schedule.js';

const S = os.constants.signals;

/** The settings as the session uses them (LaunchPlan.snapshots). */
export interface SnapshotSettings {
  schedules: Schedule[];
  /** --keep: unlabelled snapshots kept; undefined keeps them all. */
  keep?: number;
  /** The signal that asks for a snapshot (a number of os.constants.signals). */
  signal: number;
  /** Take a snapshot when the program ends. */
  onExit: boolean;
}

/** Settings from one source (the file or the command line); absent ones are not set there. */
export interface PartialSnapshotSettings {
  schedules: Schedule[];
  keep?: number;
  signal?: number;
  onExit?: boolean;
}

export const DEFAULT_SNAPSHOT_SIGNAL = S.SIGUSR1;

/** A bad --config file: unreadable, not JSON, or a key with a wrong value. */
export class ConfigError extends Error {
  readonly file: string;

  constructor(file: string, message: string, options?: { cause?: unknown }) {
    super(`${file}: ${message}`, options);
    this.name = 'ConfigError';
    this.file = file;
  }
}

/** Signals that cannot ask for a snapshot, and why. */
const REFUSED_SIGNALS: Partial<Record<string, string>> = {
  SIGKILL: 'cannot be caught',
  SIGSTOP: 'cannot be caught',
  // Sent by the kernel for a fault in numactlx itself: Node cannot run a handler safely.
  SIGSEGV: 'reports a fault in numactlx itself and cannot be caught safely',
  SIGBUS: 'reports a fault in numactlx itself and cannot be caught safely',
  SIGFPE: 'reports a fault in numactlx itself and cannot be caught safely',
  SIGILL: 'reports a fault in numactlx itself and cannot be caught safely',
  SIGTRAP: 'reports a fault in numactlx itself and cannot be caught safely',
  SIGCHLD: "tells numactlx about its own children's ends",
};

/** The signals a snapshot can be asked for with, by name without SIG. */
export function snapshotSignalChoices(): string[] {
  const names = new Set(Object.values(S).map((n) => signalName(n)));
  return [...names].filter((name) => !REFUSED_SIGNALS[name]).map((name) => name.slice(3));
}

/**
 * A snapshot signal: a name (SIGUSR1, USR1, usr1) or a number, checked against
 * os.constants.signals. Throws an Error saying why, with the valid choices.
 */
export function parseSnapshotSignal(value: string | number): number {
  const valid = `valid: ${snapshotSignalChoices().join(', ')}, or their numbers`;
  let signal: number | undefined;
  if (typeof value === 'number' || /^\d+$/.test(value)) {
    const n = Number(value);
    signal = Object.values(S).includes(n) ? n : undefined;
  } else {
    const upper = value.toUpperCase();
    const name = (upper.startsWith('SIG') ? upper : `SIG${upper}`) as NodeJS.Signals;
    signal = Object.hasOwn(S, name) ? S[name] : undefined;
  }
  if (signal === undefined) throw new Error(`unknown signal '${value}' (${valid})`);
  const name = signalName(signal);
  const refused = REFUSED_SIGNALS[name];
  if (refused) throw new Error(`${name} ${refused} (${valid})`);
  return signal;
}

/** A --keep value: a positive decimal integer. */
export function parseKeep(text: string): number {
  const keep = /^[1-9]\d*$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(keep)) throw new Error('a positive integer (how many unlabelled snapshots to keep)');
  return keep;
}

const KEYS = ['schedules', 'keep', 'snapshot_signal', 'snapshot_on_exit'];
const SCHEDULE_KEYS = ['cron', 'label'];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** What a JSON value is, for "must be …, got …". */
function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return JSON.stringify(v);
}

function parseSchedule(v: unknown, at: string, fail: (key: string, msg: string) => never): Schedule {
  let expr: unknown = v;
  let label: unknown = null;
  if (isObject(v)) {
    for (const key of Object.keys(v)) {
      if (!SCHEDULE_KEYS.includes(key)) fail(`${at}.${key}`, `unknown key (valid: ${SCHEDULE_KEYS.join(', ')})`);
    }
    if (!Object.hasOwn(v, 'cron')) fail(at, 'a schedule object needs "cron"');
    expr = v.cron;
    label = v.label ?? null;
    if (label !== null) {
      if (typeof label !== 'string') fail(`${at}.label`, `must be a string, got ${kindOf(label)}`);
      const problem = labelProblem(label);
      if (problem) fail(`${at}.label`, `invalid label ${JSON.stringify(label)}: ${problem}`);
    }
  }
  const exprAt = isObject(v) ? `${at}.cron` : at;
  if (typeof expr !== 'string') fail(exprAt, `must be a cron expression string${isObject(v) ? '' : ' or {"cron", "label"}'}, got ${kindOf(expr)}`);
  try {
    checkCronExpression(expr);
  } catch (err) {
    fail(exprAt, (err as Error).message);
  }
  return { expr, label: label as string | null };
}

/** Parses and checks a --config file's text; `file` names it in errors. */
export function parseSnapshotConfig(text: string, file: string): PartialSnapshotSettings {
  const fail = (key: string, msg: string): never => {
    throw new ConfigError(file, `${key}: ${msg}`);
  };
  let value: unknown;
  try {
    value = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new ConfigError(file, `not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (!isObject(value)) throw new ConfigError(file, `must be a JSON object, got ${kindOf(value)}`);
  for (const key of Object.keys(value)) {
    if (!KEYS.includes(key)) fail(key, `unknown key (valid: ${KEYS.join(', ')})`);
  }
  const out: PartialSnapshotSettings = { schedules: [] };
  const { schedules, keep, snapshot_signal: signal, snapshot_on_exit: onExit } = value;
  if (schedules !== undefined) {
    if (!Array.isArray(schedules)) fail('schedules', `must be an array, got ${kindOf(schedules)}`);
    out.schedules = (schedules as unknown[]).map((s, i) => parseSchedule(s, `schedules[${i}]`, fail));
  }
  if (keep !== undefined) {
    if (typeof keep !== 'number' || !Number.isSafeInteger(keep) || keep < 1) fail('keep', `must be a positive integer, got ${kindOf(keep)}`);
    out.keep = keep as number;
  }
  if (signal !== undefined) {
    if (typeof signal !== 'string' && typeof signal !== 'number') fail('snapshot_signal', `must be a signal name or number, got ${kindOf(signal)}`);
    try {
      out.signal = parseSnapshotSignal(signal as string | number);
    } catch (err) {
      fail('snapshot_signal', (err as Error).message);
    }
  }
  if (onExit !== undefined) {
    if (typeof onExit !== 'boolean') fail('snapshot_on_exit', `must be true or false, got ${kindOf(onExit)}`);
    out.onExit = onExit as boolean;
  }
  return out;
}

/** A --config file larger than this is refused unread (a settings file is a few hundred bytes). */
export const CONFIG_MAX_BYTES = 1 << 20;

/**
 * Reads and checks a --config file. Only a regular file of at most CONFIG_MAX_BYTES:
 * opened O_NONBLOCK (a FIFO must not block numactlx before the check) and judged by
 * fstat on that descriptor, so /dev/zero, a FIFO or a directory is one line, not a
 * hang or an unbounded read.
 */
export function loadSnapshotConfig(file: string): PartialSnapshotSettings {
  let text: string;
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const st = fs.fstatSync(fd);
    if (st.isDirectory()) throw new ConfigError(file, 'cannot read it: EISDIR');
    if (!st.isFile()) throw new ConfigError(file, 'not a regular file');
    if (st.size > CONFIG_MAX_BYTES) throw new ConfigError(file, `${st.size} bytes, more than a settings file may hold (${CONFIG_MAX_BYTES})`);
    const buf = Buffer.alloc(st.size);
    const n = fs.readSync(fd, buf, 0, st.size, 0);
    text = buf.subarray(0, n).toString('utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(file, `cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
  return parseSnapshotConfig(text, file);
}

/** The file's settings overridden and extended by the command line's. */
export function mergeSnapshotSettings(file: PartialSnapshotSettings | undefined, cli: PartialSnapshotSettings): SnapshotSettings {
  return {
    schedules: [...(file?.schedules ?? []), ...cli.schedules],
    keep: cli.keep ?? file?.keep,
    signal: cli.signal ?? file?.signal ?? DEFAULT_SNAPSHOT_SIGNAL,
    onExit: cli.onExit ?? file?.onExit ?? false,
  };
}
