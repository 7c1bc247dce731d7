// The checksum thread's work: CRC32 of each frame the engine queued (read through this
// thread's own mapping of the backing), and msync + fsync of every node's frames when
// the engine asks. Runs until the engine asks it to stop. The ring is
// src/channels/checksum-ring.ts.
import zlib from 'node:zlib';
import { syncFrames } from '../../backing/durability.js';
import { ChecksumRingReader, NodeFrames, type ChecksumShared } from '../channels/checksum-ring.js';

export function runChecksumLoop(shared: ChecksumShared): void {
  const ring = new ChecksumRingReader(shared);
  const frames = new NodeFrames(shared.nodes);
  const crcOf = (slot: number, frame: number): number => zlib.crc32(frames.view(slot, frame));
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
      if (queued > 0) ring.take(queued, crcOf);
    }
  } finally {
    ring.stopped();
  }
}
