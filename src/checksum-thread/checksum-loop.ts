// The checksum thread's work: CRC32 of each frame the engine queued (read by kernel
// copies, backing/frame-copy.ts: a truncated backing is then a frame marked unreadable,
// not a SIGBUS that ends numactlx), and msync + fsync of every node's frames when
// the engine asks; when it has neither, the frames the engine wants warmed, a step at a
// time at the lowest priority (idle-warming.ts). Runs until the engine asks it to stop.
// The ring is src/channels/checksum-ring.ts.
import { syncFrames } from '../../backing/durability.js';
import { FrameCrcs } from '../../backing/frame-crcs.js';
import { ChecksumRingReader, type ChecksumShared } from '../channels/checksum-ring.js';
import { IdleWarming } from './idle-warming.js';

export function runChecksumLoop(shared: ChecksumShared): void {
  const ring = new ChecksumRingReader(shared);
  const frames = new FrameCrcs(shared.nodes);
  const warming = new IdleWarming(shared);
  try {
    while (!ring.stopRequested) {
      if (ring.queued === 0 && ring.syncRequested() === 0 && warming.step()) continue;
      warming.rest();
      const gen = ring.syncRequested();
      if (gen > 0) {
        let failed = false;
        try {
          for (const n of shared.nodes) syncFrames(n.sync);
        } catch {
          failed = true;
        }
        ring.syncDone(gen, failed);
      }
      const queued = ring.waitForWork(1000);
      if (queued > 0) ring.take(queued, frames);
    }
  } finally {
    warming.rest();
    warming.close();
    ring.stopped();
  }
}
