// Verbs: a first argument that names one runs it instead of a program
// (`numactlx -- NAME` runs a program called NAME). Each verb declares its options and
// usage (./parse.ts parses them the same way for all). A verb's module is loaded only
// when it runs: a launch (numactlx … -- program) loads none of them.
import type { Verb } from './parse.js';

export type { Verb } from './parse.js';

// A Map, not an object: a program named `constructor` is not a verb.
const LOADERS: ReadonlyMap<string, () => Promise<Verb>> = new Map<string, () => Promise<Verb>>([
  ['doctor', async () => (await import('./doctor.js')).doctorCommand],
  ['status', async () => (await import('./status.js')).statusCommand],
  ['ps', async () => (await import('./ps.js')).psCommand],
  ['snapshot', async () => (await import('./snapshot.js')).snapshotCommand],
  ['snapshots', async () => (await import('./snapshots.js')).snapshotsCommand],
  ['verify', async () => (await import('./verify.js')).verifyCommand],
  ['export', async () => (await import('./export.js')).exportCommand],
  ['diff', async () => (await import('./diff.js')).diffCommand],
  ['rm', async () => (await import('./rm.js')).rmCommand],
  ['repair', async () => (await import('./repair.js')).repairCommand],
  ['format', async () => (await import('./format.js')).formatCommand],
]);

/** The verbs' names, in the order the usage lists them. */
export const VERB_NAMES: readonly string[] = [...LOADERS.keys()];

/** The verb called `name`, loaded; undefined when `name` is not a verb. */
export function loadVerb(name: string | undefined): Promise<Verb> | undefined {
  return name === undefined ? undefined : LOADERS.get(name)?.();
}

/** Verbs of the design that this build does not have yet: refused, never run as programs. */
export const PLANNED_VERBS = new Set(['rollback']);
