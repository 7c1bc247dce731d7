// NUMACTLX_DEBUG, in a module of its own: entry.ts's first imports
// (early-workers.ts) ask it before anything loads koffi.

/** NUMACTLX_DEBUG=1: stack traces and the engine's failed kernel calls on stderr; never otherwise. */
export function debugging(): boolean {
  return process.env.NUMACTLX_DEBUG === '1';
}
