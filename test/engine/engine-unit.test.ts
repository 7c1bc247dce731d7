// The engine without the binary: an Engine and a SnapshotEngine built in the test,
// serving a real userfaultfd registered over the test's own memory. A worker thread of
// this process plays the program: its writes fault, and the test thread, as the engine
// thread would, polls the uffd and serves them. (The writer must be another thread: a
// fault is answered by whoever reads the uffd, so a thread cannot serve its own.)
//
// No EVENT_FORK here: jest spawns children, and a fork of a process whose uffd asked for
// fork events waits until someone reads the event.
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { Engine, type Mm } from '../../src/engine-thread/engine.js';
import { SnapshotEngine } from '../../src/engine-thread/snapshot-engine.js';
import { dropStaleNow } from '../../src/engine-thread/uffd-events.js';
import { eventPieces } from '../../src/engine-thread/reused-addresses.js';
import { ABSENT, DIRTY, PAGE, PENDING } from '../../src/engine-thread/page-table.js';
import { ChecksumQueue, checksumShared } from '../../src/channels/checksum-ring.js';
import { BackingStore } from '../../backing/store.js';
import { inspectBacking } from '../../backing/inspect.js';
import { loadCatalog } from '../../backing/catalog.js';
import { SnapshotCatalog } from '../../backing/catalog-commit.js';
import { openSnapshotSource } from '../../backing/catalog-source.js';
import { MPOL_BIND } from '../../src/sys/mempolicy.js';
import { copyFromAddress, mmap, munmap, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/sys/mman.js';
import { poll, POLLFD_SIZE, POLLIN, closeFd } from '../../src/sys/eventfd.js';
import { O_CLOEXEC, O_NONBLOCK, UFFD_FEATURE } from '../../src/sys/userfaultfd-uapi.js';
import { uffdioApi, userfaultfd } from '../../src/sys/userfaultfd-calls.js';
import { ROOT } from '../helpers/numactlx.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

const NODE = 3;
const PAGES = 64;
const FEATURES = UFFD_FEATURE.PAGEFAULT_FLAG_WP | UFFD_FEATURE.EVENT_REMOVE | UFFD_FEATURE.EVENT_UNMAP | UFFD_FEATURE.THREAD_ID;

/** The "program": a worker thread that fills pages of this process's memory on request. */
class Writer {
  private readonly worker = new Worker(`
    const { parentPort } = require('node:worker_threads');
    import(${JSON.stringify(path.join(ROOT, 'dist/src/sys/mman.js'))}).then(({ copyToAddress, madvise, MADV_DONTNEED }) => {
      parentPort.on('message', ({ addr, byte, len, discard }) => {
        if (discard) madvise(BigInt(addr), BigInt(len), MADV_DONTNEED);
        else copyToAddress(BigInt(addr), Buffer.alloc(len, byte));
        parentPort.postMessage('done');
      });
      parentPort.postMessage('ready');
    });`, { eval: true });
  readonly ready = new Promise<void>((resolve) => this.worker.once('message', () => resolve()));

  /** Writes `byte` over [addr, addr+len); resolves once the write has returned. */
  fill(addr: number, len: number, byte: number): Promise<void> {
    return new Promise((resolve) => {
      this.worker.once('message', () => resolve());
      this.worker.postMessage({ addr, byte, len });
    });
  }

  /** madvise(MADV_DONTNEED) over [addr, addr+len); resolves once it has returned. */
  discard(addr: number, len: number): Promise<void> {
    return new Promise((resolve) => {
      this.worker.once('message', () => resolve());
      this.worker.postMessage({ addr, len, discard: true });
    });
  }

  stop(): Promise<number> {
    return this.worker.terminate();
  }
}

/** Serving longer than this means the engine answers without serving (a hang guard, not a timing). */
const SERVE_LIMIT_MS = 20_000;

/** What engine-worker.ts's loop does for one uffd, until `done` settles. */
async function serveUntil<T>(engine: Engine, mm: Mm, done: Promise<T>): Promise<T> {
  let finished = false;
  void done.then(() => { finished = true; });
  const fds = Buffer.alloc(POLLFD_SIZE);
  fds.writeInt32LE(mm.uffd, 0);
  fds.writeInt16LE(POLLIN, 4);
  const since = performance.now();
  while (!finished) {
    if (performance.now() - since > SERVE_LIMIT_MS) throw new Error(`the writer still waits in a fault after ${SERVE_LIMIT_MS} ms of serving`);
    if (poll(fds, 1, 5) > 0) engine.service(mm);
    if (engine.hasRetries) engine.retryPending();
    await new Promise((resolve) => setImmediate(resolve)); // the writer's answer arrives here
  }
  return done;
}

/** The rig's uffd features (a describe block may take some away). */
let features = FEATURES;

interface Rig { file: string; engine: Engine; mm: Mm; store: BackingStore; base: number; uffd: number; writer: Writer; checksums: ChecksumQueue }
let rig: Rig;

beforeEach(async () => {
  const file = path.join(tmpDir(), 'node3.img');
  const store = BackingStore.open(inspectBacking(file, 64n << 20n));
  const loaded = loadCatalog(store);
  const engine = new Engine([{
    node: NODE, backing: file, kind: 'file', store, catalog: new SnapshotCatalog(store, loaded), refs: loaded.refs,
  }], 4);
  const uffd = userfaultfd(O_CLOEXEC | O_NONBLOCK);
  uffdioApi(uffd, features);
  engine.addMm(process.pid, uffd, process.execPath);
  const base = Number(mmap(0n, BigInt(PAGES * PAGE), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0n));
  expect(engine.register(process.pid, base, PAGES * PAGE, { mode: MPOL_BIND, nodes: [NODE] })).toBe(0);
  const checksums = new ChecksumQueue(checksumShared([{ frameBase: Number(store.frameBase), frameCount: store.frameCount, sync: store.syncTarget() }]));
  const writer = new Writer();
  await writer.ready;
  rig = { file, engine, mm: engine.mmOf(process.pid)!, store, base, uffd, writer, checksums };
});

afterEach(async () => {
  // The uffd goes first: closing it wakes a writer a failed test left waiting in a fault.
  rig.engine.leaveMm(process.pid);
  closeFd(rig.uffd);
  await rig.writer.stop();
  munmap(BigInt(rig.base), BigInt(PAGES * PAGE));
  rig.store.close();
});

afterAll(() => removeTmpDirs());

const frameBytes = (store: BackingStore, frame: number): Buffer => copyFromAddress(BigInt(store.frameAddr(frame)), PAGE);

/** The program here is this test process: its whole heap would be read as pages no virtual node holds. */
const NO_EXTRA_PAGES = { extraPages: false };

test('a missing fault on the virtual node places the page and its fault-ahead run in frames of the backing', async () => {
  const { engine, mm, base, writer, store } = rig;
  await serveUntil(engine, mm, writer.fill(base + 10 * PAGE, PAGE, 0x5a));

  const stats = engine.nodeStats[0];
  expect(stats.faults).toBeGreaterThanOrEqual(1);
  // The faulting page plus up to 4 fault-ahead pages after it, all in frames.
  expect(stats.pages_placed).toBeGreaterThanOrEqual(1);
  expect(stats.pages_placed).toBeLessThanOrEqual(5);
  expect(store.framesInUse).toBe(stats.pages_placed);
  const entry = mm.table.get(base + 10 * PAGE);
  expect(entry).toBeGreaterThan(0); // f + 1: on the virtual node, frame f
  expect(mm.table.get(base)).toBe(0); // before the fault: never placed
  // The write landed: the page holds it (present now: reading it cannot fault).
  expect(copyFromAddress(BigInt(base + 10 * PAGE), PAGE).equals(Buffer.alloc(PAGE, 0x5a))).toBe(true);
});

test('the snapshot phases: freeze protects, a write to a frozen page is copied first, the commit records the frozen bytes', async () => {
  const { engine, mm, base, writer, store, checksums } = rig;
  await serveUntil(engine, mm, writer.fill(base, 8 * PAGE, 0x11));
  const snaps = new SnapshotEngine(engine, checksums, [], NO_EXTRA_PAGES);
  expect(snaps.copying).toBeUndefined();
  expect(mm.table.flagsOf(base) & DIRTY).toBe(DIRTY);

  const frozen = snaps.freeze({ id: 1, label: 'unit', program: ['jest'] }, [], (tid) => tid);
  expect(frozen).toBeGreaterThanOrEqual(8);
  expect(snaps.copying?.req.id).toBe(1);
  expect(snaps.active).toBe(true);
  expect(mm.table.flagsOf(base) & PENDING).toBe(PENDING);

  // The program writes a frozen page before the copier reached it: the fault copies the
  // page's frozen content first, then lets the write through.
  await serveUntil(engine, mm, writer.fill(base + 3 * PAGE, PAGE, 0x22));
  expect(copyFromAddress(BigInt(base + 3 * PAGE), PAGE)[0]).toBe(0x22);

  snaps.setPause(0);
  let result;
  for (let turns = 0; !result && turns < 100_000; turns++) {
    snaps.step();
    result = snaps.commitStep();
  }
  expect(result?.id).toBe(1);
  expect(snaps.copying).toBeUndefined();
  expect(snaps.active).toBe(false);
  const pages = result!.records[0].processes[0].pages;
  const written = pages.filter((p) => p.addr >= base && p.addr < base + 8 * PAGE);
  expect(written.map((p) => p.addr)).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((i) => base + i * PAGE));
  // Every page as it was at the freeze (0x11), page 3 included, though it now holds 0x22.
  for (const p of written) expect(frameBytes(store, p.frame).equals(Buffer.alloc(PAGE, 0x11))).toBe(true);
  // Committed: the backing read from the file, as `numactlx verify` reads it, lists it
  // with the frozen bytes.
  const source = openSnapshotSource(rig.file);
  try {
    expect(source.snapshots().map((r) => [r.id, r.label])).toEqual([[1, 'unit']]);
    for (const p of written) expect(source.readFrame(p.frame).equals(Buffer.alloc(PAGE, 0x11))).toBe(true);
  } finally {
    source.close();
  }
});

test('after a snapshot a write fault only unprotects and marks the page dirty (nothing copied outside a snapshot)', async () => {
  const { engine, mm, base, writer, checksums } = rig;
  await serveUntil(engine, mm, writer.fill(base, 2 * PAGE, 0x33));
  const snaps = new SnapshotEngine(engine, checksums, [], NO_EXTRA_PAGES);
  snaps.freeze({ id: 1, label: null, program: ['jest'] }, [], (tid) => tid);
  snaps.setPause(0);
  while (!snaps.commitStep()) snaps.step();
  const inUse = rig.store.framesInUse;
  expect(mm.table.flagsOf(base) & DIRTY).toBe(0); // clean and protected again after the commit

  await serveUntil(engine, mm, writer.fill(base, 1, 0x44));
  expect(mm.table.flagsOf(base) & DIRTY).toBe(DIRTY);
  expect(mm.table.flagsOf(base + PAGE) & DIRTY).toBe(0);
  expect(rig.store.framesInUse).toBe(inUse);
});

test('a program rewriting in order opens ever larger runs: one write-protect fault per run, not per page', async () => {
  const { engine, mm, base, writer, checksums } = rig;
  await serveUntil(engine, mm, writer.fill(base, 32 * PAGE, 0x55));
  const snaps = new SnapshotEngine(engine, checksums, [], NO_EXTRA_PAGES);
  snaps.freeze({ id: 1, label: null, program: ['jest'] }, [], (tid) => tid);
  snaps.setPause(0);
  while (!snaps.commitStep()) snaps.step();
  // Every page clean and protected again. Rewrite 5 pages in order, one at a time, from
  // a page aligned to 8 pages (runs are aligned to their size).
  const s0 = (8 - ((base / PAGE) % 8)) % 8;
  for (let i = 0; i <= 4; i++) await serveUntil(engine, mm, writer.fill(base + (s0 + i) * PAGE, 8, 0x66));
  const dirty = Array.from({ length: 16 }, (_, i) => (mm.table.flagsOf(base + (s0 + i) * PAGE) & DIRTY) !== 0);
  // Runs opened: [0,1) [0,2) [0,4) — page 3 was writable already — then [0,8) at page 4.
  expect(dirty).toEqual([...Array(8).fill(true), ...Array(8).fill(false)]);
  for (let i = 0; i < s0; i++) expect(mm.table.flagsOf(base + i * PAGE) & DIRTY).toBe(0);
});

// The kernel zaps a discarded range after its REMOVE event has been read
// (recently-removed.ts): a page the engine placed there in between would be taken by the
// zap while the table kept it.
test('fault-ahead stays out of a range the program has just discarded; a fault inside it is served', async () => {
  const { engine, mm, base, writer } = rig;
  // A fault-ahead window is 4 pages here, aligned to 4 pages: window [w, w+4).
  const w = base + ((4 - ((base / PAGE) % 4)) % 4) * PAGE;
  await serveUntil(engine, mm, writer.discard(w + PAGE, 3 * PAGE));
  expect(engine.events.remove).toBe(1);
  await serveUntil(engine, mm, writer.fill(w, 8, 0x77));
  expect(mm.table.get(w)).toBeGreaterThan(0);
  expect([1, 2, 3].map((i) => mm.table.get(w + i * PAGE))).toEqual([ABSENT, ABSENT, ABSENT]);

  await serveUntil(engine, mm, writer.fill(w + 2 * PAGE, 8, 0x78));
  expect(mm.table.get(w + 2 * PAGE)).toBeGreaterThan(0);
  expect(copyFromAddress(BigInt(w + 2 * PAGE), 9).equals(Buffer.from([...Array(8).fill(0x78), 0]))).toBe(true);
});

describe('a uffd without REMOVE events: the kernel zaps pages the table still holds', () => {
  beforeAll(() => { features = FEATURES & ~UFFD_FEATURE.EVENT_REMOVE; });
  afterAll(() => { features = FEATURES; });

  // The state the zap after a read REMOVE leaves (above), made at will: without REMOVE
  // events, MADV_DONTNEED zaps and the engine hears nothing.
  test('a missing fault on a page the table holds and the program lacks is served again, not answered with a bare wake', async () => {
    const { engine, mm, base, writer, store } = rig;
    const page = base + 5 * PAGE;
    const placed = (): number => Array.from({ length: PAGES }, (_, i) => mm.table.get(base + i * PAGE)).filter((e) => e > 0).length;
    await serveUntil(engine, mm, writer.fill(page, PAGE, 0x5a));
    const [frames, pages] = [store.framesInUse, placed()];
    await writer.discard(page, PAGE);
    expect(mm.table.get(page)).toBeGreaterThan(0); // the table still names it

    await serveUntil(engine, mm, writer.fill(page, 8, 0x5b));
    expect(engine.events.stale).toBe(1);
    expect(copyFromAddress(BigInt(page), PAGE).equals(Buffer.concat([Buffer.alloc(8, 0x5b), Buffer.alloc(PAGE - 8)]))).toBe(true);
    expect(mm.table.get(page)).toBeGreaterThan(0);
    // The stale page's frame was given back and a new one taken: one frame for each page
    // placed since, no more (the fault may serve neighbours too: fault-ahead.ts, whose
    // window around the page depends on where the mapping starts).
    expect(store.framesInUse - frames).toBe(placed() - pages);
  });
});

describe('a uffd without UNMAP events: the engine misses that a mapping went away', () => {
  beforeAll(() => { features = FEATURES & ~UFFD_FEATURE.EVENT_UNMAP; });
  afterAll(() => { features = FEATURES; });

  // The state a missed or mis-claimed UNMAP leaves (seen in the churn test once in ~100
  // sessions), made at will: the table and the last snapshot's map still name pages whose
  // VMA is gone. A snapshot is the freeze's instant: only mapped pages are in it.
  test('a snapshot leaves out pages no VMA covers at its freeze, and counts them', async () => {
    const { engine, mm, base, writer, checksums } = rig;
    await serveUntil(engine, mm, writer.fill(base, 8 * PAGE, 0x61));
    const snaps = new SnapshotEngine(engine, checksums, [], NO_EXTRA_PAGES);
    const take = (id: number): number[] => {
      snaps.freeze({ id, label: null, program: ['jest'] }, [], (tid) => tid);
      snaps.setPause(0);
      let result;
      while (!(result = snaps.commitStep())) snaps.step();
      return result.records[0].processes[0].pages.map((p) => p.addr).filter((a) => a >= base && a < base + PAGES * PAGE);
    };
    const first = take(1); // the 8 pages written and the fault-ahead run after them
    expect(first.slice(0, 8)).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((i) => base + i * PAGE));
    munmap(BigInt(base + 4 * PAGE), BigInt((PAGES - 4) * PAGE)); // no event tells the engine
    expect(mm.table.get(base + 4 * PAGE)).toBeGreaterThan(0);

    expect(take(2)).toEqual([0, 1, 2, 3].map((i) => base + i * PAGE));
    expect(engine.events.outside_vma).toBe(first.length - 4);
    // Out of the map the next snapshot starts from, too.
    expect(take(3)).toEqual([0, 1, 2, 3].map((i) => base + i * PAGE));
    expect(engine.events.outside_vma).toBe(first.length - 4);
  });
});

// An address reused before the engine read the unmap of what was there
// (reused-addresses.ts): the earlier mapping's UNMAP must leave the new range alone, and
// the new range's own UNMAP, even within PREDROP_MS, must drop all of it. Noting the
// whole new range as dropped early shielded the part no earlier mapping covered, and
// left its pages in the table after their VMA was gone (the churn test's outside_vma).
test('a range registered over part of an earlier mapping: its own UNMAP drops every page of it', () => {
  const { engine, mm, base } = rig;
  const start = base + 60 * PAGE; // the rig's range ends at base + 64 pages
  const end = base + 68 * PAGE;
  dropStaleNow(engine, mm, start, end);
  mm.track(start, end, { mode: MPOL_BIND, nodes: [NODE] });
  // the earlier mapping's event: [base, base + 64 pages) — the new range's part is left alone
  expect(eventPieces(mm, base, base + 64 * PAGE)).toEqual([[base, start]]);
  // the new range's own munmap, right after: all of it
  expect(eventPieces(mm, start, end)).toEqual([[start, end]]);
});
