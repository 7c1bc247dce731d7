// The channels between numactlx's threads, both ends, without the threads' own code:
// each test plays one end on the test thread and, where the channel blocks (the tracer's
// synchronous call), the other end on a worker thread.
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { Worker } from 'node:worker_threads';
import { CHANNEL_BYTES, EngineClient, TracerChannel, TracerChannelServer, TracerOp } from '../../src/channels/tracer-engine.js';
import { NoteKind, type Note } from '../../src/channels/tracer-notes.js';
import { MainMailbox, MainRequest } from '../../src/channels/engine-mailbox.js';
import { Doorbell, DOORBELL_BYTES, MAX_THREADS } from '../../src/channels/doorbell.js';
import { ChecksumQueue, ChecksumRingReader, checksumShared } from '../../src/channels/checksum-ring.js';
import { FrameCrcs } from '../../backing/frame-crcs.js';
import { eventfd, eventfdDrain, closeFd, poll, POLLFD_SIZE, POLLIN, EFD_CLOEXEC, EFD_NONBLOCK } from '../../src/sys/eventfd.js';
import { bufferAddress, mmap, munmap, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/sys/mman.js';
import { USER_REGS_SIZE } from '../../src/sys/arch/index.js';
import { ROOT } from '../helpers/numactlx.js';

const { ENOENT } = os.constants.errno;

/** Waits (in poll, not a sleep) until the eventfd is signalled, then drains it. */
async function awaitSignal(fd: number): Promise<void> {
  const fds = Buffer.alloc(POLLFD_SIZE);
  fds.writeInt32LE(fd, 0);
  fds.writeInt16LE(POLLIN, 4);
  while (poll(fds, 1, 5) === 0) await new Promise((resolve) => setImmediate(resolve));
  eventfdDrain(fd);
}

describe('TracerChannel (tracer → engine, synchronous)', () => {
  test('a call blocks the tracer until the engine replies; arguments and the policy cross intact', async () => {
    const efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    const sab = new SharedArrayBuffer(CHANNEL_BYTES);
    // The tracer's end, on its own thread (a call blocks in Atomics.wait).
    const tracer = new Worker(`
      const { parentPort, workerData } = require('node:worker_threads');
      import(${JSON.stringify(path.join(ROOT, 'dist/src/channels/tracer-engine.js'))}).then(({ EngineClient, TracerChannel }) => {
        const client = new EngineClient(new TracerChannel(workerData.sab, workerData.efd));
        const r1 = client.register(4242, 0x7f0000001000n, 0x20000n, { mode: 2, nodes: [3, 5] });
        const r2 = client.queryAddress(4242, 0x7f0000003000n);
        parentPort.postMessage({ r1, r2 });
      });`, { eval: true, workerData: { sab, efd } });
    const answer = new Promise<{ r1: number; r2: unknown }>((resolve) => tracer.once('message', resolve));

    const engine = new TracerChannelServer(sab);
    await awaitSignal(efd);
    expect(engine.pending()).toBe(TracerOp.Register);
    const a = engine.args;
    expect([a[0], a[1], a[2], a[3], a[4], a[5], a[6]]).toEqual([4242, 0x7f0000001000, 0x20000, 2, 2, 3, 5]);
    engine.reply(-ENOENT);

    await awaitSignal(efd);
    expect(engine.pending()).toBe(TracerOp.QueryAddress);
    expect([a[0], a[1]]).toEqual([4242, 0x7f0000003000]);
    // The engine's answer goes back in the same argument area: mode, n, nodes…, node.
    [a[0], a[1], a[2], a[3]] = [1, 1, 3, 3];
    engine.reply(0);

    expect(await answer).toEqual({ r1: -ENOENT, r2: { policy: { mode: 1, nodes: [3] }, node: 3 } });
    expect(engine.pending()).toBe(0);
    await tracer.terminate();
    closeFd(efd);
  });
});

describe('TracerNotes (tracer → engine, not waited for)', () => {
  test('notes cross in order, intact, and the ring says when it is full; nothing wakes the engine', () => {
    const efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    const sab = new SharedArrayBuffer(CHANNEL_BYTES);
    const tracer = new EngineClient(new TracerChannel(sab, efd));
    const engine = new TracerChannelServer(sab);
    const policy = { mode: 2, nodes: [3, 5] };
    expect(tracer.notes.begin(policy)).toBe(true);
    tracer.notes.put(4242, 0x7f0000001000, 0x20000, policy);
    tracer.notes.end();
    tracer.ended(4243);
    tracer.exitStop(4244, true); // not busy: an Exited note, no command
    tracer.exitStop(4245, false); // an exec with no snapshot active: nothing at all
    const fds = Buffer.alloc(POLLFD_SIZE);
    fds.writeInt32LE(efd, 0);
    fds.writeInt16LE(POLLIN, 4);
    expect(poll(fds, 1, 0)).toBe(0);
    expect(engine.pending()).toBe(0);
    const seen: Note[] = [];
    engine.notes.drain((n) => seen.push(n));
    expect(seen).toEqual([
      { kind: NoteKind.Registered, pid: 4242, start: 0x7f0000001000, len: 0x20000, policy },
      { kind: NoteKind.LeftMm, pid: 4243 },
      { kind: NoteKind.Exited, pid: 4244 },
    ]);
    engine.notes.drain(() => { throw new Error('read twice'); });
    // A policy too long for a note, and a full ring, go to the synchronous channel.
    expect(tracer.notes.begin({ mode: 2, nodes: Array.from({ length: 11 }, (_, i) => i) })).toBe(false);
    let written = 0;
    while (tracer.notes.putEnd(NoteKind.LeftMm, written)) written++;
    expect(written).toBe(1024);
    expect(tracer.notes.begin(policy)).toBe(false);
    let read = 0;
    engine.notes.drain((n) => { expect(n).toEqual({ kind: NoteKind.LeftMm, pid: read++ }); });
    expect(read).toBe(1024);
    expect(tracer.notes.begin(policy)).toBe(true);
    tracer.notes.end();
    closeFd(efd);
  });

  test('while the engine is busy the tracer registers through the channel, and an exit is a command', () => {
    const sab = new SharedArrayBuffer(CHANNEL_BYTES);
    const tracer = new TracerChannel(sab, -1).notes;
    const engine = new TracerChannelServer(sab).notes;
    engine.setBusy(true, () => { throw new Error('no registration is in progress'); });
    expect(tracer.begin({ mode: 2, nodes: [3] })).toBe(false);
    expect(tracer.putEnd(NoteKind.Exited, 7)).toBe(false);
    expect(tracer.putEnd(NoteKind.LeftMm, 7)).toBe(true);
    engine.setBusy(false, () => undefined);
    expect(tracer.begin({ mode: 2, nodes: [3] })).toBe(true);
    // The engine turning busy now waits for the registration begun to end.
    let waited = 0;
    engine.setBusy(true, () => { if (++waited === 3) tracer.end(); });
    expect(waited).toBe(3);
    expect(tracer.begin({ mode: 2, nodes: [3] })).toBe(false);
  });
});

describe('MainMailbox (main → engine)', () => {
  test('requests are bits, coalesced until the engine takes them; Prune carries its value; the eventfd is signalled', async () => {
    const efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    const main = new MainMailbox(new SharedArrayBuffer(8), efd);
    const engine = new MainMailbox(main.sab);
    main.post(MainRequest.Stats);
    main.post(MainRequest.Stats);
    main.post(MainRequest.Prune, 7);
    await awaitSignal(efd);
    const bits = engine.take();
    expect(bits).toBe((1 << MainRequest.Stats) | (1 << MainRequest.Prune));
    expect(engine.value()).toBe(7);
    expect(engine.take()).toBe(0); // taken once
    closeFd(efd);
  });
});

describe('Doorbell (main → tracer → engine)', () => {
  test('a ring with no process published is withdrawn (one outcome: the caller\'s failure); a request is taken once, with its label', () => {
    const bell = new Doorbell(new SharedArrayBuffer(DOORBELL_BYTES));
    expect(bell.ring(5, 'lost')).toBe(false);
    // Withdrawn: a tracer at an exit stop, or at the end of its run, must not answer it too.
    expect(bell.take()).toBeUndefined();
    expect(bell.waitRequest(0)).toBeUndefined();
    // No waker published: nothing is sent, the request waits to be taken.
    bell.publishPid(process.pid);
    expect(bell.ring(6, 'before-upgrade')).toBe(true);
    expect(bell.take()).toEqual({ id: 6, label: 'before-upgrade' });
    expect(bell.take()).toBeUndefined();
    expect(bell.label()).toBe('before-upgrade'); // the engine reads it for the record
  });

  test('the threads\' registers cross from the tracer to the engine, capped at MAX_THREADS', () => {
    const bell = new Doorbell(new SharedArrayBuffer(DOORBELL_BYTES));
    const threads = [1, 2, 3].map((i) => ({ tgid: 100, tid: 100 + i, regs: Buffer.alloc(USER_REGS_SIZE, i) }));
    bell.writeThreads(threads);
    expect(bell.readThreads()).toEqual(threads);
    const many = Array.from({ length: MAX_THREADS + 3 }, (_, i) => ({ tgid: 1, tid: i + 1, regs: Buffer.alloc(USER_REGS_SIZE) }));
    bell.writeThreads(many);
    expect(bell.readThreads()).toHaveLength(MAX_THREADS);
  });

  test('the end of the session: the tracer sees it, and a wait for a request at an exit stop returns at once', () => {
    const bell = new Doorbell(new SharedArrayBuffer(DOORBELL_BYTES));
    expect(bell.endRequested).toBe(false);
    bell.requestEnd(); // no pid published: nothing to kill
    expect(bell.endRequested).toBe(true);
    expect(bell.waitRequest(10 * 60_000)).toBeUndefined(); // had it waited, the test would time out
  });
});

describe('checksum ring (engine → checksum worker)', () => {
  const FRAMES = 300;
  function rig(): { frames: Buffer; queue: ChecksumQueue; shared: ReturnType<typeof checksumShared> } {
    const frames = Buffer.alloc(FRAMES * 4096);
    for (let f = 0; f < FRAMES; f++) frames.fill((f * 7) & 0xff, f * 4096, f * 4096 + 4096 - (f % 13));
    const shared = checksumShared([{ frameBase: Number(bufferAddress(frames)), frameCount: FRAMES, sync: { path: '', kind: 'file', frameBase: 0, mapLength: 0, fd: -1 } }]);
    return { frames, queue: new ChecksumQueue(shared), shared };
  }
  const crcOf = (frames: Buffer, f: number): number => zlib.crc32(frames.subarray(f * 4096, (f + 1) * 4096));

  test('the worker\'s end computes every queued frame\'s CRC; the engine sees them settled', () => {
    const { frames, queue, shared } = rig();
    const reader = new ChecksumRingReader(shared);
    expect(queue.hasWorker).toBe(true); // the reader says it runs
    for (let f = 0; f < FRAMES; f++) queue.written(0, f);
    expect(queue.settled).toBe(false);
    expect(queue.pending).toBe(FRAMES);
    const queued = reader.waitForWork(0);
    expect(queued).toBe(FRAMES);
    reader.take(queued, new FrameCrcs(shared.nodes));
    expect(queue.settled).toBe(true);
    for (let f = 0; f < FRAMES; f++) expect(queue.crc(0, f)).toBe(crcOf(frames, f));
    reader.stopped();
    expect(queue.hasWorker).toBe(false);
  });

  test('without a worker the engine settles the queue itself, in steps', () => {
    const { frames, queue } = rig();
    for (let f = 0; f < FRAMES; f++) queue.written(0, f);
    expect(queue.settleSome(100)).toBe(FRAMES - 100);
    expect(queue.settleSome()).toBe(0);
    expect(queue.settled).toBe(true);
    for (let f = 0; f < FRAMES; f++) expect(queue.crc(0, f)).toBe(crcOf(frames, f));
  });

  test('a sync request is answered once; a failed sync is reported to the engine', () => {
    const { queue, shared } = rig();
    const reader = new ChecksumRingReader(shared);
    expect(reader.syncRequested()).toBe(0);
    const gen = queue.requestSync();
    expect(reader.syncRequested()).toBe(gen);
    expect(queue.synced(gen)).toBe(false);
    reader.syncDone(gen, false);
    expect(queue.synced(gen)).toBe(true);
    expect(reader.syncRequested()).toBe(0);
    const gen2 = queue.requestSync();
    reader.syncDone(gen2, true);
    expect(() => queue.synced(gen2)).toThrow(/sync on the checksum worker failed/);
  });

  test('stop: the worker stops taking entries at the next multiple of 64 and says it stopped', () => {
    const { frames, queue, shared } = rig();
    const reader = new ChecksumRingReader(shared);
    for (let f = 0; f < FRAMES; f++) queue.written(0, f);
    let computed = 0;
    queue.stop(0); // asks; the reader has not stopped yet, so this waits 0 ms and returns
    expect(reader.stopRequested).toBe(true);
    const crcs = new FrameCrcs(shared.nodes);
    reader.take(FRAMES, { compute: (slots, fs, n, out) => { computed += n; return crcs.compute(slots, fs, n, out); } });
    expect(computed).toBe(64);
    expect(queue.crc(0, 63)).toBe(crcOf(frames, 63));
    reader.stopped();
    expect(queue.hasWorker).toBe(false);
  });

  test('a frame that cannot be read (a truncated backing): CRC 0, its slot named, the others computed', () => {
    // Two nodes: frames of slot 1 are mapped, then unmapped (as a truncation unmaps a
    // file's pages past its end): reading one is EFAULT for the kernel's copy.
    const { frames } = rig();
    const gone = mmap(0n, 2n * 4096n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0n);
    munmap(gone, 2n * 4096n);
    const sync = { path: '', kind: 'file' as const, frameBase: 0, mapLength: 0, fd: -1 };
    const shared = checksumShared([{ frameBase: Number(bufferAddress(frames)), frameCount: FRAMES, sync },
      { frameBase: Number(gone), frameCount: 2, sync }]);
    const queue = new ChecksumQueue(shared);
    const reader = new ChecksumRingReader(shared);
    for (const [slot, f] of [[0, 1], [1, 1], [0, 2], [0, 3]]) queue.written(slot, f);
    expect(queue.unreadable).toBe(-1);
    reader.take(reader.waitForWork(0), new FrameCrcs(shared.nodes));
    expect(queue.settled).toBe(true);
    expect(queue.unreadable).toBe(1);
    expect([queue.crc(0, 1), queue.crc(1, 1), queue.crc(0, 2), queue.crc(0, 3)]).toEqual([crcOf(frames, 1), 0, crcOf(frames, 2), crcOf(frames, 3)]);
  });
});
