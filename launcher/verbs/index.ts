// Verbs: a first argument that names one runs it instead of a program
// (`numactlx -- NAME` runs a program called NAME). Each verb declares its options and
// usage (./parse.ts parses them the same way for all).
import { diffCommand } from './diff.js';
import { doctorCommand } from './doctor.js';
import { exportCommand } from './export.js';
import { formatCommand } from './format.js';
import type { Verb } from './parse.js';
import { psCommand } from './ps.js';
import { snapshotCommand } from './snapshot.js';
import { rmCommand } from './rm.js';
import { repairCommand } from './repair.js';
import { snapshotsCommand } from './snapshots.js';
import { statusCommand } from './status.js';
import { verifyCommand } from './verify.js';

export type { Verb } from './parse.js';

/** The verbs by name (a Map: a program named `constructor` is not a verb). */
export const VERBS: ReadonlyMap<string, Verb> = new Map([doctorCommand, statusCommand, psCommand, snapshotCommand, snapshotsCommand,
  verifyCommand, exportCommand, diffCommand, rmCommand, repairCommand, formatCommand].map((v) => [v.spec.name, v]));

/** Verbs of the design that this build does not have yet: refused, never run as programs. */
export const PLANNED_VERBS = new Set(['rollback']);
