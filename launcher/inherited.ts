// The process state numactlx was started with, where Node has changed it by the time
// numactlx's JavaScript runs. bin/numactlx records it before Node starts (NUMACTLX_*
// variables); a program numactlx execs gets it back (exec-program.ts), and a traced
// program gets the inherited signal dispositions (run-program.ts). The variables are
// numactlx's own and never reach the program.
//
// What Node changes at start-up (measured, Node 20.20 on Linux 6.18):
// - every signal's disposition is reset, then SIGPIPE and SIGXFSZ are ignored: so a
//   signal inherited ignored (nohup, `cmd &`) is no longer ignored, and the two are;
// - the signal mask is emptied on the main thread;
// - RLIMIT_NOFILE's soft limit is raised to the hard limit;
// - FD_CLOEXEC is set on inherited descriptors (0-2 and some others: 5, 7, 10, 12 were,
//   100 and above were not), and a closed one of 0-2 is opened on /dev/null.
// Every descriptor Node, libuv and V8 open themselves is O_CLOEXEC.
import os from 'node:os';
import { ALL_SIGNALS, signalsInMask } from '../src/sys/signal.js';
import { RLIM_INFINITY } from '../src/sys/process.js';

const S = os.constants.signals;

/** The variables bin/numactlx sets (see its comment). */
export const INHERITED_ENV = ['NUMACTLX_FDS', 'NUMACTLX_SIGIGN', 'NUMACTLX_SIGBLK', 'NUMACTLX_NOFILE', 'NUMACTLX_EARLY_USR1'] as const;

export interface Inherited {
  /** Signals numactlx inherited as ignored. */
  ignored: number[];
  /** The inherited signal mask; undefined when unknown (numactlx not started by bin/numactlx). */
  blocked: number[] | undefined;
  /** The inherited soft RLIMIT_NOFILE; undefined when unknown. */
  nofile: bigint | undefined;
  /** The descriptors numactlx was given; undefined when unknown. */
  fds: number[] | undefined;
}

function hexMask(text: string | undefined): number[] | undefined {
  return text !== undefined && /^[0-9a-f]+$/i.test(text.trim()) ? signalsInMask(text) : undefined;
}

function limit(text: string | undefined): bigint | undefined {
  if (text === 'unlimited') return RLIM_INFINITY;
  return text !== undefined && /^\d+$/.test(text) ? BigInt(text) : undefined;
}

/** The inherited state as bin/numactlx recorded it in `env`. */
export function readInherited(env: NodeJS.ProcessEnv): Inherited {
  return {
    ignored: hexMask(env.NUMACTLX_SIGIGN) ?? [],
    blocked: hexMask(env.NUMACTLX_SIGBLK),
    nofile: limit(env.NUMACTLX_NOFILE),
    fds: env.NUMACTLX_FDS === undefined ? undefined
      : env.NUMACTLX_FDS.split(' ').filter((fd) => /^\d+$/.test(fd)).map(Number),
  };
}

/** The program's environment: numactlx's, without the variables bin/numactlx set. */
export function programEnv(env: NodeJS.ProcessEnv): string[] {
  const own = new Set<string>(INHERITED_ENV);
  return Object.entries(env).filter(([k]) => !own.has(k)).map(([k, v]) => `${k}=${v}`);
}

/**
 * Signals the program gets with their default action: every signal except those
 * numactlx inherited as ignored, which the program gets ignored.
 */
export function inheritedDispositions(inherited: Inherited): { defaultSignals: number[]; ignoredSignals: number[] } {
  const ignored = new Set(inherited.ignored);
  const catchable = ALL_SIGNALS.filter((sig) => sig !== S.SIGKILL && sig !== S.SIGSTOP);
  return {
    defaultSignals: catchable.filter((sig) => !ignored.has(sig)),
    ignoredSignals: catchable.filter((sig) => ignored.has(sig)),
  };
}
