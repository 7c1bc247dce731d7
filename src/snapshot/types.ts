// What a snapshot is, as the engine records it and the catalog stores it. The types are
// the on-media format's and live with it in backing/record-types.ts; they are re-exported
// here for the engine, the tracer and the verbs.
export type {
  SnapshotPage, SnapshotProcess, SnapshotRecord, SnapshotStats, ThreadRegs, Vma,
} from '../../backing/record-types.js';
