// What the tracer is started with (tracer-worker.ts builds it from the session's set-up).
import type { PagePolicy } from '../../policy/placement.js';
import type { EngineClient } from '../channels/tracer-engine.js';
import type { TracerEvent } from '../channels/tracer-messages.js';
import type { Doorbell } from '../channels/doorbell.js';
import type { EvictChannel } from '../channels/evict-request.js';
import type { KernelFeatures, SnapshotCapture } from '../kerndat/features.js';

export interface TracerSetup {
  /** Snapshot requests from the main thread (src/channels/doorbell.ts). */
  doorbell?: Doorbell;
  /** --max-resident: eviction stops the engine asks for (src/channels/evict-request.ts). */
  evict?: EvictChannel;
  /** Take a snapshot at the program's exit stop (--snapshot-on-exit). */
  snapshotOnExit?: boolean;
  program: string[];
  env: string[];
  defaultSignals: number[];
  ignoredSignals: number[];
  /** The launch policy when it names a virtual node (the whole policy, real nodes too). */
  policy: PagePolicy | undefined;
  virtualNodes: number[];
  allowedReal: number[];
  engine: EngineClient;
  post(ev: TracerEvent): void;
  /** The kernel features of the session (src/kerndat/). */
  features: KernelFeatures;
  /** 'fork': each freeze makes the processes fork held children (capture-fork.ts). */
  capture?: SnapshotCapture;
}
