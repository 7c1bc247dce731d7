// The checksum worker's idle work: reading the frames the engine asks to have warmed
// (src/channels/warm-goals.ts; why in backing/frame-warmer.ts), a step at a time, at nice
// 19 — below the program, so that it takes only CPU time the program leaves — and back at
// the worker's own priority before anything else (a CRC, a sync, a sleep). A worker that
// could not take its priority back (no CAP_SYS_NICE, a low RLIMIT_NICE) does not warm: its
// CRCs at nice 19 would hold up the commits of a busy program.
import { FrameWarmer } from '../../backing/frame-warmer.js';
import { WarmWork } from '../channels/warm-goals.js';
import type { ChecksumShared } from '../channels/checksum-ring.js';
import { setThreadNice, threadNice } from '../sys/sched.js';
import { mayTakeNice } from '../sys/thread-priority.js';

const IDLE_NICE = 19;

export class IdleWarming {
  private readonly work: WarmWork;
  private readonly warmers: Array<FrameWarmer | undefined>;
  /** Per slot: still worth reading (a regular file that has not ended short). */
  private readonly usable: boolean[];
  private readonly own = threadNice();
  private lowered = false;

  constructor(shared: ChecksumShared) {
    this.work = new WarmWork(shared.warm);
    const allowed = mayTakeNice(this.own);
    this.warmers = shared.nodes.map((n) => (allowed && n.warm ? openWarmer(n.sync.fd, n.warm.dataOffset) : undefined));
    this.usable = this.warmers.map((w) => w !== undefined);
  }

  /** One step of warming, at IDLE_NICE; false when there is none to take. */
  step(): boolean {
    const next = this.work.next(this.usable);
    if (!next) return false;
    const [slot, from, count] = next;
    if (!this.lowered && setThreadNice(IDLE_NICE) === 0) this.lowered = true;
    const read = this.warmers[slot]!.read(from, count);
    if (read > 0) this.work.advance(slot, read);
    else this.usable[slot] = false; // the file ended or failed: the engine finds out at its next copy
    return true;
  }

  /** The worker stops: the warmers' descriptors are closed. */
  close(): void {
    for (const w of this.warmers) w?.close();
  }

  /** Back at the worker's own priority (before a CRC, a sync or a sleep). */
  rest(): void {
    if (!this.lowered) return;
    this.lowered = false;
    if (setThreadNice(this.own) !== 0) this.usable.fill(false); // not expected: mayTakeNice said it could
  }
}

/** A node's warmer, or none where its file cannot be opened again (it is then not warmed). */
function openWarmer(fd: number, dataOffset: number): FrameWarmer | undefined {
  try {
    return new FrameWarmer(fd, dataOffset);
  } catch {
    return undefined;
  }
}
