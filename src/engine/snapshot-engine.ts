// Driving a snapshot through the engine: freeze (called while the tracer holds every
// thread stopped), copy in batches between fault service, write faults on frozen
// pages, then sync and commit. The page states and the invariants are in snapshot.ts.
import fs from 'node:fs';
import { DIRTY, PAGE, PENDING } from './page-table.js';
import { RemoteCopier, MAX_IOV } from './remote-copy.js';
import { frameCrc, SnapshotRun, takePending, vmasOf, type MmPart, type SnapshotRequest } from './snapshot.js';
import type { Engine, Mm } from './engine.js';
import type { SnapshotPage, SnapshotRecord, ThreadRegs } from '../snapshot/types.js';

/** Pages copied per step before the engine looks at its userfaultfds again. */
const BATCH_PAGES = 256;

export interface SnapshotResult {
  id: number;
  records: SnapshotRecord[];
}

export class SnapshotEngine {
  private readonly copier = new RemoteCopier();
  /** Time spent in process_vm_readv for the snapshot being copied (NUMACTLX_DEBUG). */
  private readvNs = 0;

  /** Committed snapshots of the backings, oldest first (for --keep). */
  private readonly committed: Array<{ id: number; label: string | null }>;

  constructor(private readonly engine: Engine, existing: Array<{ id: number; label: string | null }> = []) {
    engine.writeFault = (mm, addr) => this.onWriteFault(mm, addr);
    this.committed = [...existing].sort((a, b) => a.id - b.id);
  }

  /**
   * --keep N: deletes the oldest unlabelled snapshots beyond N from every node and
   * drops their references (a frame no snapshot and no live page holds is freed).
   */
  prune(keep: number): number[] {
    const unlabelled = this.committed.filter((s) => s.label === null);
    const ids = unlabelled.slice(0, Math.max(0, unlabelled.length - keep)).map((s) => s.id);
    if (ids.length === 0) return [];
    this.engine.nodes.forEach((node, slot) => {
      const removed = node.catalog?.remove(ids) ?? [];
      for (const r of removed) for (const p of r.processes) for (const page of p.pages) this.engine.unref(slot, page.frame);
    });
    const gone = new Set(ids);
    this.committed.splice(0, this.committed.length, ...this.committed.filter((s) => !gone.has(s.id)));
    return ids;
  }

  get active(): boolean {
    return this.engine.run !== undefined;
  }

  /** The id of the snapshot being copied (0 when none). */
  get currentId(): number {
    return this.engine.run?.req.id ?? 0;
  }

  /**
   * The freeze. Every thread of the program is stopped. Write-protects the dirty pages
   * of every address space and records what the snapshot will hold; returns the
   * number of pages frozen for copying.
   */
  freeze(req: SnapshotRequest, threads: ThreadRegs[], tgidOf: (tid: number) => number): number {
    const engine = this.engine;
    if (engine.run) throw new Error(`snapshot ${engine.run.req.id} is still being taken`);
    const run = new SnapshotRun(req);
    let frozen = 0;
    for (const mm of new Set(engine.mms.values())) {
      const pid = mm.pids.values().next().value;
      if (pid === undefined) continue; // an unclaimed fork: not a process yet
      const t0 = process.hrtime.bigint();
      const { runs, count } = this.freezeDirty(mm);
      const t1 = process.hrtime.bigint();
      for (let i = 0; i < runs.length; i += 2) {
        const r = engine.protect(mm, runs[i], runs[i + 1] - runs[i]);
        if (r !== 0) throw new Error(`UFFDIO_WRITEPROTECT of pid ${pid} failed: errno ${-r}`);
      }
      const t2 = process.hrtime.bigint();
      if (process.env.NUMACTLX_DEBUG === '1') {
        fs.writeSync(2, `numactlx-engine: freeze pid ${pid}: scan ${Number(t1 - t0) / 1e6} ms (${count} pages, ${runs.length / 2} runs), protect ${Number(t2 - t1) / 1e6} ms\n`);
      }
      frozen += count;
      const part: MmPart = {
        pid: mm.ownerPid || pid, exe: mm.exe, command: mm.command, vmas: readVmas(pid),
        threads: threads.filter((t) => mm.pids.has(tgidOf(t.tid))),
        runs, run: 0, next: 0, left: count, copied: new Map(), lost: new Set(), prev: mm.snap, drops: mm.drops,
      };
      mm.drops = [];
      mm.dirty = [];
      mm.scanAll = false;
      run.parts.set(mm, part);
    }
    engine.run = run;
    return frozen;
  }

  /** The DIRTY pages of an mm, now PENDING, as ascending runs. */
  private freezeDirty(mm: Mm): { runs: number[]; count: number } {
    if (mm.scanAll) return mm.table.freezeDirty(DIRTY, PENDING);
    const out: number[] = [];
    for (const addr of mm.dirty) {
      if (mm.table.get(addr) > 0 && mm.table.flagsOf(addr) & DIRTY) {
        mm.table.setFlags(addr, PENDING); // a duplicate in the list is no longer DIRTY
        out.push(addr);
      }
    }
    out.sort((a, b) => a - b);
    const runs: number[] = [];
    for (const a of out) {
      if (runs.length && runs[runs.length - 1] === a) runs[runs.length - 1] = a + PAGE;
      else runs.push(a, a + PAGE);
    }
    return { runs, count: out.length };
  }

  /** A write to a write-protected page: copy it first if frozen, then let the write go. */
  private onWriteFault(mm: Mm, addr: number): void {
    const flags = mm.table.flagsOf(addr);
    const entry = mm.table.get(addr);
    if (entry > 0 && flags & PENDING) {
      const part = this.engine.run?.parts.get(mm);
      if (part) this.copyPages(mm, part, [addr]);
    }
    if (entry > 0 && !(mm.table.flagsOf(addr) & DIRTY)) {
      mm.table.setFlags(addr, DIRTY);
      mm.dirty.push(addr);
    }
    this.engine.unprotect(mm, addr, PAGE);
  }

  /** Copies up to a batch of pending pages; true while pages remain. */
  step(): boolean {
    const run = this.engine.run;
    if (!run) return false;
    let budget = BATCH_PAGES;
    for (const [key, part] of run.parts) {
      const mm = key as Mm;
      while (budget > 0 && part.left > 0) {
        const taken = takePending(part, Math.min(budget, MAX_IOV));
        const batch = taken.filter((addr) => mm.table.get(addr) > 0 && mm.table.flagsOf(addr) & PENDING);
        if (batch.length > 0) this.copyPages(mm, part, batch);
        budget -= taken.length || 1;
      }
      if (budget <= 0) return true;
    }
    return run.remaining > 0;
  }

  /**
   * Copies pending pages of one mm into frames: in place when no committed snapshot
   * holds the page's frame, else into a new one. After this the pages are clean and
   * still write-protected.
   */
  private copyPages(mm: Mm, part: MmPart, addrs: number[]): void {
    const engine = this.engine;
    const run = engine.run!;
    const dest: Array<{ addr: number; slot: number; frame: number; old: number }> = [];
    this.copier.reset();
    for (const addr of addrs) {
      const slot = mm.table.nodeOf(addr);
      const old = mm.table.get(addr) - 1;
      const node = engine.nodes[slot];
      let frame = old;
      if (node.refs[old] > 1) {
        frame = node.store.allocFrame();
        if (frame < 0) {
          run.failed ??= `backing ${node.backing}: no free frame for snapshot ${run.req.id} (the node is full)`;
          part.lost.add(addr);
          mm.table.setFlags(addr, DIRTY); // copied by a later snapshot
          mm.dirty.push(addr);
          continue;
        }
        node.refs[frame] = 1;
      }
      dest.push({ addr, slot, frame, old });
      this.copier.add(node.store.frameAddr(frame), addr, PAGE);
    }
    const pid = mm.pids.values().next().value;
    const tr = process.hrtime.bigint();
    const n = pid === undefined ? -3 : this.copier.run(pid);
    this.readvNs += Number(process.hrtime.bigint() - tr);
    const copied = n < 0 ? 0 : Math.floor(n / PAGE);
    dest.forEach((d, i) => {
      const node = engine.nodes[d.slot];
      if (i >= copied) {
        // The process is gone or the page was unmapped under us: lost to this snapshot.
        part.lost.add(d.addr);
        if (d.frame !== d.old) engine.unref(d.slot, d.frame);
        if (mm.table.get(d.addr) > 0) mm.table.setFlags(d.addr, DIRTY);
        return;
      }
      if (d.frame !== d.old) {
        mm.table.set(d.addr, d.frame + 1, d.slot, 0);
        engine.unref(d.slot, d.old);
      } else {
        mm.table.setFlags(d.addr, 0);
      }
      part.copied.set(d.addr, { frame: d.frame, crc: frameCrc(node.store.frameView(d.frame)), slot: d.slot });
      run.newPages++;
    });
  }

  /**
   * Every pending page is copied: make the frames durable, then commit a record per
   * node. Returns the records; throws (the snapshot failed, earlier ones intact).
   */
  finish(): SnapshotResult {
    const engine = this.engine;
    const run = engine.run!;
    engine.run = undefined;
    const tFinish = process.hrtime.bigint();
    // Whether or not the commit succeeds, each mm's pages now live in the frames this
    // run left them in: the next snapshot must start from this map, not the older one.
    for (const [key, part] of run.parts) (key as Mm).snap = SnapshotRun.pagesOf(part, -1).map;
    if (run.failed) throw new Error(run.failed);
    const tSync = process.hrtime.bigint();
    engine.nodes.forEach((node) => node.store.sync());
    const tSynced = process.hrtime.bigint();
    // copy_ms: from the resume to the frames being durable (the record is committed next).
    const copyMs = Number(tSynced - run.resumedAt) / 1e6;
    const records: SnapshotRecord[] = [];
    engine.nodes.forEach((node, slot) => {
      const pagesByPart = new Map<MmPart, SnapshotPage[]>();
      for (const part of run.parts.values()) pagesByPart.set(part, SnapshotRun.pagesOf(part, slot).pages);
      const record = run.record(node.node, slot, pagesByPart, copyMs);
      node.catalog?.commit(record);
      // The snapshot now holds a reference on each of its frames.
      for (const p of record.processes) for (const page of p.pages) node.refs[page.frame]++;
      records.push(record);
    });
    if (process.env.NUMACTLX_DEBUG === '1') {
      fs.writeSync(2, `numactlx-engine: snapshot ${run.req.id}: copy ${copyMs.toFixed(1)} ms (process_vm_readv ${(this.readvNs / 1e6).toFixed(1)}), maps ${Number(tSync - tFinish) / 1e6} ms, sync ${Number(tSynced - tSync) / 1e6} ms, commit ${Number(process.hrtime.bigint() - tSynced) / 1e6} ms\n`);
    }
    this.readvNs = 0;
    this.committed.push({ id: run.req.id, label: run.req.label });
    return { id: run.req.id, records };
  }

  /** Copies every frozen page of pid's mm now (the process is about to lose its memory). */
  flushProcess(pid: number): void {
    const mm = this.engine.mmOf(pid);
    const part = mm && this.engine.run?.parts.get(mm);
    if (!mm || !part) return;
    while (part.left > 0) {
      const batch = takePending(part, MAX_IOV).filter((addr) => mm.table.get(addr) > 0 && mm.table.flagsOf(addr) & PENDING);
      if (batch.length) this.copyPages(mm, part, batch);
    }
  }

  /** Records the pause the tracer measured (interrupt to resume). */
  setPause(ms: number): void {
    if (this.engine.run) {
      this.engine.run.pauseMs = ms;
      this.engine.run.pauseKnown = true;
      this.engine.run.resumedAt = process.hrtime.bigint();
    }
  }

  /** Every frozen page is copied (the commit may still wait for the pause). */
  get copied(): boolean {
    return (this.engine.run?.remaining ?? 0) === 0;
  }

  /** Copied, and the pause is known: ready to commit. */
  get complete(): boolean {
    const run = this.engine.run;
    return run !== undefined && run.pauseKnown && run.remaining === 0;
  }
}

function readVmas(pid: number): ReturnType<typeof vmasOf> {
  try {
    return vmasOf(fs.readFileSync(`/proc/${pid}/maps`, 'utf8'));
  } catch {
    return [];
  }
}
