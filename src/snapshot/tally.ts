// What became of each snapshot trigger in a session, for `numactlx status`, --stats and
// the session's end: every cron tick counted as a snapshot of its own, merged into a
// request already waiting (a snapshot was still being taken: the queue coalesces), or
// missed (node-cron could not run it on time: the event loop was busy), and each
// snapshot's phases — prepare (staging dirty pages while the program runs), pause,
// copy. The snapshot-speed issue makes them shorter; this makes them visible.
// Owned by the main thread (launcher/session.ts); pure bookkeeping.

export interface ScheduleTally {
  expr: string;
  label: string | null;
  ticks: number;
  /** Ticks that started a snapshot of their own. */
  taken: number;
  /** Ticks that joined a snapshot already waiting to start (no snapshot of their own). */
  merged: number;
  /** Ticks node-cron reported as missed. */
  missed: number;
  /** Ticks whose snapshot failed or was refused (the node was full, the backing lost). */
  failed: number;
  /** Ticks that came as the program ended: nothing was left to freeze (not failures: the schedule ends with the program). */
  ended: number;
}

export interface SnapshotTimes {
  id: number;
  label: string | null;
  prepare_ms: number;
  pause_ms: number;
  copy_ms: number;
  /** Frozen pages the program discarded before they were copied (not in the snapshot). */
  lost_pages: number;
}

/** At most this many recent snapshots are listed (a long session takes thousands). */
export const RECENT_SNAPSHOTS = 64;

export class TriggerTally {
  private readonly schedules = new Map<string, ScheduleTally>();
  private readonly recent: SnapshotTimes[] = [];
  private total = 0;

  private schedule(expr: string, label: string | null): ScheduleTally {
    const key = `${expr}\0${label ?? ''}`;
    let t = this.schedules.get(key);
    if (!t) {
      t = { expr, label, ticks: 0, taken: 0, merged: 0, missed: 0, failed: 0, ended: 0 };
      this.schedules.set(key, t);
    }
    return t;
  }

  /** A tick; `merged`: it joined a request already waiting. Returns the tally it counted in. */
  tick(expr: string, label: string | null, merged: boolean): ScheduleTally {
    const t = this.schedule(expr, label);
    t.ticks++;
    if (merged) t.merged++;
    else t.taken++;
    return t;
  }

  /** The tick's own snapshot failed or was refused: it is not a snapshot taken. */
  tickFailed(t: ScheduleTally): void {
    t.taken--;
    t.failed++;
  }

  /**
   * The tick's snapshot found no process left to freeze: the program ended as it was
   * taken. The schedule ends with the program: not a failure to report, there was
   * nothing left to snapshot (counted, not summed up at the end).
   */
  tickAtEnd(t: ScheduleTally): void {
    t.taken--;
    t.ended++;
  }

  /** A tick node-cron missed. */
  missed(expr: string, label: string | null): void {
    this.schedule(expr, label).missed++;
  }

  snapshot(times: SnapshotTimes): void {
    this.total++;
    this.recent.push(times);
    if (this.recent.length > RECENT_SNAPSHOTS) this.recent.shift();
  }

  /** For status and --stats. */
  report(): { schedules: ScheduleTally[]; taken: number; recent: SnapshotTimes[] } {
    return { schedules: [...this.schedules.values()].map((t) => ({ ...t })), taken: this.total, recent: this.recent.map((s) => ({ ...s })) };
  }

  /** One line per schedule whose ticks did not each get a snapshot (the session's end). */
  summary(): string[] {
    return [...this.schedules.values()].filter((t) => t.merged + t.missed + t.failed > 0).map((t) => {
      const parts = [`${t.taken} snapshot${t.taken === 1 ? '' : 's'}`];
      if (t.merged) parts.push(`${t.merged} merged into a snapshot already waiting`);
      if (t.missed) parts.push(`${t.missed} missed`);
      if (t.failed) parts.push(`${t.failed} failed`);
      return `schedule '${t.expr}'${t.label ? ` (label ${t.label})` : ''}: ${t.ticks} tick${t.ticks === 1 ? '' : 's'}: ${parts.join(', ')}`;
    });
  }
}
