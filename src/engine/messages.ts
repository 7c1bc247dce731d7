// Messages between the main thread and the engine worker.
import type { BackingTarget } from '../../backing/inspect.js';
import type { SessionStats } from './stats.js';

export interface EngineStart {
  nodes: Array<{ node: number; target: BackingTarget }>;
  faultAheadPages: number;
  channel: SharedArrayBuffer;
  mailbox: SharedArrayBuffer;
  eventFd: number;
}

export type EngineEvent =
  | { type: 'ready' }
  | { type: 'init-failed'; message: string }
  | { type: 'stats'; stats: SessionStats }
  | { type: 'closed' }
  | { type: 'failed'; message: string };
