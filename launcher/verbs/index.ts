// Verbs: a first argument that names one runs it instead of a program
// (`numactlx -- NAME` runs a program called NAME).
import { runDoctor } from './doctor.js';
import { runPs } from './ps.js';
import { runStatus } from './status.js';

export type Verb = (argv: string[]) => Promise<number>;

export const VERBS: Record<string, Verb> = {
  doctor: runDoctor,
  status: runStatus,
  ps: runPs,
};

/** Verbs of the design that this build does not have yet: refused, never run as programs. */
export const PLANNED_VERBS = new Set(['snapshot', 'snapshots', 'export', 'verify',
  'diff', 'rm', 'rollback']);
