// Verbs: a first argument that names one runs it instead of a program
// (`numactlx -- NAME` runs a program called NAME).
import { runDiff } from './diff.js';
import { runDoctor } from './doctor.js';
import { runExport } from './export.js';
import { runPs } from './ps.js';
import { runSnapshot } from './snapshot.js';
import { runRm } from './rm.js';
import { runSnapshots } from './snapshots.js';
import { runStatus } from './status.js';
import { runVerify } from './verify.js';

export type Verb = (argv: string[]) => Promise<number>;

export const VERBS: Record<string, Verb> = {
  doctor: runDoctor,
  status: runStatus,
  ps: runPs,
  snapshot: runSnapshot,
  snapshots: runSnapshots,
  verify: runVerify,
  export: runExport,
  diff: runDiff,
  rm: runRm,
};

/** Verbs of the design that this build does not have yet: refused, never run as programs. */
export const PLANNED_VERBS = new Set(['rollback']);
