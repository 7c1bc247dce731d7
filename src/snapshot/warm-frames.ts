// NUMACTLX_WARM_FRAMES: whether the checksum worker reads a file backing's frames in idle
// time before a snapshot's copy writes them (backing/frame-warmer.ts says why;
// src/engine-thread/frame-warming.ts which frames). On by default (1); 0 turns it off —
// the page cache it fills is then filled by the copies, with the program stopped at a
// snapshot's end. Read once by the main thread (a bad value is one line) and by the engine
// worker, which inherits the environment.

export const WARM_FRAMES_ENV = 'NUMACTLX_WARM_FRAMES';

/** Whether `value` asks for warming (unset or empty: yes); throws the one line (without `numactlx: `) for a bad value. */
export function warmFrames(value: string | undefined): boolean {
  if (value === undefined || value === '' || value === '1') return true;
  if (value === '0') return false;
  throw new Error(`${WARM_FRAMES_ENV}: '${value}' is neither 0 (off) nor 1 (on, the default)`);
}
