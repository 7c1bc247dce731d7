// The checksum thread's work: CRC32 of each frame the engine queued (read by kernel
// copies, backing/frame-copy.ts: a truncated backing is then a frame marked unreadable,
// not a SIGBUS that ends numactlx), and msync + fsync of every node's frames when
// the engine asks. Runs until the engine asks it to stop. The ring is
// src/channels/checksum-ring.ts.
import { syncFrames } from '../../backing/durability.js';
import { FrameCrcs } from '../../backing/frame-crcs.js';
import { ChecksumRingReader, type ChecksumShared } from '../channels/checksum-ring.js';

export function runChecksumLoop(shared: ChecksumShared): void {
  const ring = new ChecksumRingReader(shared);
  const frames = new FrameCrcs(shared.nodes);
  try {
    while (!ring.stopRequested) {
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
    ring.stopped();
  }
}
