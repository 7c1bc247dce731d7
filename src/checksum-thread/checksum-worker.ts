// The checksum worker thread's entry point. It owns nothing but its CRC results and the
// durability of the frames it is asked to sync: CRC32 of the frames a snapshot writes,
// msync + fsync of the backings, off the engine thread (checksum-loop.ts; the ring is
// src/channels/checksum-ring.ts). Started by the main thread once the engine has mapped
// the backings; stopped by the engine before it unmaps them.
import { workerData } from 'node:worker_threads';
import type { ChecksumShared } from '../channels/checksum-ring.js';
import { runChecksumLoop } from './checksum-loop.js';

runChecksumLoop(workerData as ChecksumShared);
