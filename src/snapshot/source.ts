// Reading committed snapshots out of a backing, for the offline verbs (snapshots,
// verify, export, diff). The interface is the backing's (backing/record-types.ts),
// implemented over its on-media catalog (backing/catalog-source.ts).
export type { SnapshotSource } from '../../backing/record-types.js';
