// NUMACTLX_DEBUG: engine loop turns that kept faults waiting. A fault that arrives while
// the engine works on a snapshot step waits until the turn ends and the loop polls its
// userfaultfds again; a turn of LONG_TURN_MS or more is reported with where its time went
// ("numactlx-engine: turn of 18.2 ms without polling: faults 0.1, prepare 18.1, ..."),
// so a stall a program feels can be traced to the step that made it (docs/BENCHMARKS.md,
// "Fault service during a pre-copy").
import fs from 'node:fs';

const LONG_TURN_MS = 8;

export class TurnTimer {
  private readonly on = process.env.NUMACTLX_DEBUG === '1';
  private marks: Array<[string, number]> = [];

  /** The loop has just polled. */
  start(): void {
    if (this.on) this.marks = [['poll', performance.now()]];
  }

  /** The part of the turn called `name` has ended. */
  mark(name: string): void {
    if (this.on && this.marks.length > 0) this.marks.push([name, performance.now()]);
  }

  /** The turn ends with its part `name`: reported when it was long. */
  end(name: string): void {
    this.mark(name);
    const m = this.marks;
    if (!this.on || m.length < 2 || m[m.length - 1][1] - m[0][1] < LONG_TURN_MS) return;
    const parts = m.slice(1).map(([part, t], i) => `${part} ${(t - m[i][1]).toFixed(1)}`).join(', ');
    fs.writeSync(2, `numactlx-engine: turn of ${(m[m.length - 1][1] - m[0][1]).toFixed(1)} ms without polling: ${parts}\n`);
  }
}
