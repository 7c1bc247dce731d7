// The engine thread serves userfaultfd faults; a snapshot's commit must not make it wait
// for the disk. Its msync and fsync (the frames, the catalog's record and root, the new
// superblock, and --keep's deletions) run on the checksum worker while the engine goes on
// serving faults (src/engine-thread/snapshot-commit.ts syncOnWorker, backing/catalog-
// commit.ts publishSteps). An fsync here took 10–300 ms; on the engine it stopped every
// fault for that long.
//
// Checked from outside, with strace attached to a running session: the thread that makes
// the UFFDIO_COPY calls (the engine: the program keeps first-touching memory) makes no
// fsync, fdatasync or msync during a snapshot, while another thread makes them. Until the
// checksum worker has loaded (it starts at the first snapshot) the engine syncs itself,
// so the test takes snapshots three at a time (under --keep 1: a deletion among them)
// until a round is synced elsewhere (at most 10 rounds), and requires that round to hold
// no sync on the engine thread. Before the change, every commit
// made two fsyncs and an msync on the engine thread.
import fs from 'node:fs';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { NUMACTLX, numactlx } from '../helpers/numactlx.js';
import { childrenOf, waitFor } from '../helpers/proc.js';
import { needTool } from '../helpers/tools.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

afterAll(removeTmpDirs);

// Keeps 64 MiB in 1 MiB private anonymous mappings, replacing one every few ms: each new
// mapping's pages are first touches, served by the engine (UFFDIO_COPY). (Not bytearrays:
// glibc's malloc soon serves 1 MiB from memory it already has.)
const CHURN = [
  'import mmap, time',
  'flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS',
  'bufs = [None] * 64',
  'i = 0',
  'while True:',
  '    m = mmap.mmap(-1, 1 << 20, flags=flags); m.write(b"y" * (1 << 20))',
  '    old, bufs[i % 64] = bufs[i % 64], m',
  '    if old: old.close()',
  '    if i == 64: print("ready", flush=True)',
  '    i += 1; time.sleep(0.002)',
].join('\n');

const SYNCS = new Set(['fsync', 'fdatasync', 'msync']);

/** strace -o lines → the syncs each thread made, and the UFFDIO_COPY calls each made. */
function readTrace(file: string): { syncsBy: Map<number, number>; copiesBy: Map<number, number> } {
  const syncsBy = new Map<number, number>();
  const copiesBy = new Map<number, number>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^(\d+)\s+(\w+)\(/.exec(line); // "<... resumed>" lines are the same calls again
    if (!m) continue;
    const [tid, name] = [Number(m[1]), m[2]];
    if (SYNCS.has(name)) syncsBy.set(tid, (syncsBy.get(tid) ?? 0) + 1);
    if (name === 'ioctl' && line.includes('UFFDIO_COPY')) copiesBy.set(tid, (copiesBy.get(tid) ?? 0) + 1);
  }
  return { syncsBy, copiesBy };
}

test('a snapshot\'s commit makes no fsync or msync on the thread that serves faults (the checksum worker does)', async () => {
  await needTool('strace', 'this test watches numactlx\'s threads with it');
  const dir = tmpDir();
  const env = { NUMACTLX_RUNTIME_DIR: tmpDir() };
  const session = execa(NUMACTLX, [`--remap=3,${path.join(dir, 'n3.img')},size=512m`, '--membind=3', '--keep', '1', '--', 'python3', '-c', CHURN],
    { env, reject: false, buffer: false, stdin: 'ignore' });
  let out = '';
  session.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  let strace: ResultPromise | undefined;
  try {
    await waitFor('the program to be ready', () => out.includes('ready'), 30_000);
    const nxPid = session.pid!;
    const program = childrenOf(nxPid)[0];
    expect(program).toBeGreaterThan(0);
    let found: { engine: number; syncsBy: Map<number, number> } | undefined;
    const seen: string[] = [];
    for (let attempt = 1; attempt <= 10 && !found; attempt++) {
      const trace = path.join(dir, `strace-${attempt}.txt`);
      strace = execa('strace', ['-f', '-p', String(nxPid), '-e', 'trace=fsync,fdatasync,msync,ioctl', '-o', trace],
        { reject: false, buffer: false, stdin: 'ignore' });
      // "strace: Process N attached with T threads", once every thread is attached.
      let said = '';
      strace.stderr!.on('data', (d: Buffer) => { said += d.toString(); });
      await waitFor('strace to attach to every thread of numactlx', () => /attached/.test(said), 10_000);
      // Three: --keep 1 deletes the first after the second is durable, and the third starts
      // only once that is done (the queue prunes between snapshots): the trace holds a
      // deletion's commit too.
      for (let n = 0; n < 3; n++) {
        const snap = await numactlx(['snapshot', String(program), '--wait'], { env });
        expect({ exit: snap.exitCode, stderr: snap.stderr }).toEqual({ exit: 0, stderr: '' });
      }
      strace.kill('SIGINT');
      await strace;
      strace = undefined;
      const { syncsBy, copiesBy } = readTrace(trace);
      // The engine: the thread that serves the program's first touches (the tracer may place
      // a few pages too, at a fork or an exit).
      const [engine, copies] = [...copiesBy].reduce((a, b) => (b[1] > a[1] ? b : a), [0, 0]);
      expect(copies).toBeGreaterThan(0);
      seen.push(`round ${attempt}: engine ${engine} (${copies} UFFDIO_COPY), syncs by thread ${JSON.stringify([...syncsBy])}, ` +
        `UFFDIO_COPY by thread ${JSON.stringify([...copiesBy])}`);
      const elsewhere = [...syncsBy].some(([tid, n]) => tid !== engine && n > 0);
      if (elsewhere) found = { engine, syncsBy };
    }
    process.stdout.write(`${seen.join('\n')}\n`);
    expect(found).toBeDefined(); // the checksum worker loaded and synced within 10 rounds
    expect({ engineSyncs: found!.syncsBy.get(found!.engine) ?? 0 }).toEqual({ engineSyncs: 0 });
  } finally {
    strace?.kill('SIGKILL');
    session.kill('SIGKILL');
    await session;
  }
}, 180_000);
