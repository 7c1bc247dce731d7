// The records the catalog stores, one per snapshot per virtual node (each node's backing
// holds its own pages), and the interface the offline verbs read them through. The id is
// the session's (1, 2, …) and the same on every node of one snapshot. These are the
// on-media format's types: the engine fills them in, backing/catalog-record-codec.ts lays
// them out, and src/snapshot/types.ts re-exports them for the layers above.

/** A page of the snapshot: its address in the process and the frame holding its bytes. */
export interface SnapshotPage {
  /** Page-aligned virtual address (< 2^47: exact as a number). */
  addr: number;
  frame: number;
  /** CRC32 (zlib.crc32) of the frame's 4096 bytes when it was written. */
  crc: number;
}

/** One line of /proc/PID/maps at the freeze. */
export interface Vma {
  start: number;
  end: number;
  perms: string;
  offset: number;
  path: string;
}

/** A thread's registers at the freeze: struct user_regs_struct (x86_64, 216 bytes). */
export interface ThreadRegs {
  tid: number;
  regs: Buffer;
}

export interface SnapshotProcess {
  pid: number;
  exe: string;
  command: string[];
  vmas: Vma[];
  threads: ThreadRegs[];
  /** Sorted by address. Every page of the process on this node, clean or copied. */
  pages: SnapshotPage[];
}

export interface SnapshotStats {
  /** Pages in the snapshot (all processes). */
  pages: number;
  /** Pages copied into new frames for it (the rest are shared with older snapshots). */
  new_pages: number;
  bytes_written: number;
  /** How long the program was stopped. */
  pause_ms: number;
  /** From the resume to every copied frame being durable (the commit of the record follows). */
  copy_ms: number;
  /**
   * Pages no virtual node holds (written library data, shared and real-node memory),
   * copied while the program was stopped, and the part of the pause that took. In the
   * first node's record; absent in records written before numactlx copied them.
   */
  extra_pages?: number;
  extra_ms?: number;
}

export interface SnapshotRecord {
  id: number;
  label: string | null;
  /** ISO 8601, the freeze. */
  time: string;
  /** The session's program (argv). */
  program: string[];
  node: number;
  processes: SnapshotProcess[];
  stats: SnapshotStats;
}

/**
 * Committed snapshots read out of a backing, for the offline verbs (snapshots, verify,
 * export, diff). backing/catalog-source.ts implements it over the on-media catalog; the
 * verbs only see this interface, so they can be tested over an in-memory source.
 */
export interface SnapshotSource {
  /** The backing's path. */
  readonly path: string;
  /** Committed snapshots, ascending id. A consistent view: taken once at open. */
  snapshots(): SnapshotRecord[];
  /** The 4096 bytes of a frame (into `out` when given). */
  readFrame(frame: number, out?: Buffer): Buffer;
  close(): void;
  /** Snapshots the catalog lists whose records cannot be read (a backing's source). */
  readonly damaged?: ReadonlyArray<{ id: number; reason: string }>;
  /** The two superblock copies as found (a backing's source; absent for other sources). */
  readonly superblocks?: { copies: Array<{ slot: string; generation: string | null; state: string; reason?: string }>; damage?: string };
}
