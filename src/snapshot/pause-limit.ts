// NUMACTLX_PAUSE_PAGES: the most pages a pre-copy snapshot's pause may copy (asynchronous
// dirty tracking; QEMU's downtime-limit, in pages). Past it, the pre-copy ends in slices
// that stop the program briefly (src/engine-thread/precopy-slices.ts) until what is left
// fits. Read once by the main thread when a session starts (a bad value is one line), and
// sent to the engine in EngineStart.

export const PAUSE_PAGES_ENV = 'NUMACTLX_PAUSE_PAGES';
/** 4 MiB: ≈ 5–10 ms of copying into fresh frames on this project's VM. */
export const DEFAULT_PAUSE_PAGES = 1024;

/** The limit `value` sets (unset or empty: the default); throws the one line (without `numactlx: `) for a bad value. */
export function pausePages(value: string | undefined): number {
  if (value === undefined || value === '') return DEFAULT_PAUSE_PAGES;
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) throw new Error(`${PAUSE_PAGES_ENV}: '${value}' is not a number of pages (0 or more; default ${DEFAULT_PAUSE_PAGES})`);
  return n;
}
