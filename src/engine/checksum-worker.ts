// The checksum worker (checksums.ts): CRC32 of the frames a snapshot writes, off the
// engine thread. Started by the main thread once the engine has mapped the backings;
// stopped by the engine before it unmaps them.
import { workerData } from 'node:worker_threads';
import { runChecksumWorker, type ChecksumShared } from './checksums.js';

runChecksumWorker(workerData as ChecksumShared);
