// Snapshots for the catalog tests: pages written into frames with seeded patterns
// (CRIU zdtm datagen style) and records built around them.
import zlib from 'node:zlib';
import { patternPage } from './pattern.js';
import type { BackingStore } from '../../backing/store.js';
import type { SnapshotPage, SnapshotRecord } from '../../src/snapshot/types.js';

/** Writes page 0 of `seed`'s pattern (./pattern.ts) into a new frame of `store`: the page of a snapshot at `addr`. */
export function writePage(store: BackingStore, addr: number, seed: number): SnapshotPage {
  const frame = store.allocFrame();
  if (frame < 0) throw new Error(`no free frame in ${store.path}`);
  const data = patternPage(seed);
  data.copy(store.frameView(frame));
  return { addr, frame, crc: zlib.crc32(data) };
}

export function makeRecord(id: number, pages: SnapshotPage[], label: string | null = `snap ${id}`): SnapshotRecord {
  const regs = Buffer.alloc(216, id & 0xff);
  return {
    id, label, time: new Date(Date.UTC(2025, 0, 1, 0, 0, id)).toISOString(), program: ['app', String(id)], node: 1,
    processes: [{
      pid: 1000 + id, exe: '/usr/bin/app', command: ['app', String(id)],
      vmas: [{ start: 0x10000, end: 0x10000 + 4096 * 1024, perms: 'rw-p', offset: 0, path: '' }],
      threads: [{ tid: 1000 + id, regs }],
      pages,
    }],
    stats: { pages: pages.length, new_pages: pages.length, bytes_written: pages.length * 4096, pause_ms: 1, copy_ms: 2 },
  };
}

/** `count` pages at 0x10000 in two runs, each written into a new frame. */
export function writePages(store: BackingStore, id: number, count: number): SnapshotPage[] {
  const pages: SnapshotPage[] = [];
  for (let i = 0; i < count; i++) pages.push(writePage(store, 0x10000 + (i < count / 2 ? i : i + 7) * 4096, id * 1000 + i));
  return pages;
}

/** The pages of a record whose frame no longer holds what was written (empty: verify clean). */
export function badPages(rec: SnapshotRecord, read: (frame: number) => Buffer): string[] {
  const bad: string[] = [];
  for (const p of rec.processes) {
    for (const page of p.pages) {
      if (zlib.crc32(read(page.frame)) !== page.crc) bad.push(`snapshot ${rec.id} page 0x${page.addr.toString(16)}`);
    }
  }
  return bad;
}
