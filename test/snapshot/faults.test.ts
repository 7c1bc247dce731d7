// Snapshots under faults, against real sessions (the built binary, dist/): numactlx
// killed during a copy, a backing too small for the next snapshot, the program exiting
// during a snapshot, concurrent requests, a corrupted frame, --snapshot-on-exit, and the
// snapshot signal. Every session gets its own socket directory (NUMACTLX_RUNTIME_DIR)
// and backing; every process a test starts is SIGKILLed in its finally (and afterEach).
import fs from 'node:fs';
import path from 'node:path';
import { execa, type Result, type ResultPromise } from 'execa';
import { NUMACTLX, numactlx, ROOT } from '../helpers/numactlx.js';
import { compileFixture } from '../helpers/fixtures.js';
import { patternPage } from '../helpers/pattern.js';
import { procState, waitFor } from '../helpers/proc.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';
import type { SessionStats } from '../../src/channels/session-stats.js';

const PAGE = 4096;
const MiB = 1 << 20;

/** Page indexes to check in a region of `pages`: the first, second and last, and 61 spread over it. */
function samplePages(pages: number): number[] {
  const out = new Set([0, 1, pages - 1]);
  for (let i = 0; i < 61; i++) out.add(Math.floor(((i + 0.5) * pages) / 61));
  return [...out].sort((a, b) => a - b);
}

// ---------------------------------------------------------------------------------------
// Sessions.

interface Session {
  proc: ResultPromise;
  /** numactlx's pid. */
  pid: number;
  env: Record<string, string>;
  backing: string;
  dir: string;
  out(): string;
  err(): string;
  /** Resolves with the first match of `re` in the program's stdout. */
  waitOut(re: RegExp, ms?: number): Promise<RegExpMatchArray>;
  send(line: string): void;
  /** The session's end (never rejects). */
  done: Promise<Result>;
}

const sessions = new Set<ResultPromise>();
const programs = new Set<number>();

function startSession(program: string[], opts: { size: string; extra?: string[] }): Session {
  const dir = tmpDir();
  const env = { NUMACTLX_RUNTIME_DIR: tmpDir() };
  const backing = path.join(dir, 'n3.img');
  const proc = execa(NUMACTLX, [`--remap=3,${backing},size=${opts.size}`, '--membind=3', ...(opts.extra ?? []), '--', ...program],
    { env, reject: false, buffer: false, stdin: 'pipe' });
  sessions.add(proc);
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  proc.stdin!.on('error', () => undefined); // EPIPE once the program is gone
  const done = (proc as Promise<Result>).finally(() => sessions.delete(proc));
  return {
    proc, pid: proc.pid!, env, backing, dir, done,
    out: () => out,
    err: () => err,
    waitOut: async (re, ms = 60000) => {
      let ended = false;
      void done.then(() => { ended = true; });
      return waitFor(`${re} in the program's output (stdout: ${JSON.stringify(out.slice(-300))}, stderr: ${JSON.stringify(err.slice(-300))})`, () => {
        const m = re.exec(out);
        if (m) return m;
        if (ended) throw new Error(`the session ended before ${re} appeared: stdout ${JSON.stringify(out)}, stderr ${JSON.stringify(err)}`);
        return undefined;
      }, ms);
    },
    send: (line) => { proc.stdin!.write(`${line}\n`); },
  };
}

/** SIGKILLs numactlx (EXITKILL takes the program with it) and waits for its end. */
async function kill(s: Session): Promise<void> {
  if (sessions.has(s.proc)) s.proc.kill('SIGKILL');
  await s.done;
}

/** The session's stats, from `numactlx status --json`. */
async function sessionStats(s: Session): Promise<SessionStats> {
  const r = await numactlx(['status', String(s.pid), '--json'], { env: s.env });
  if (r.exitCode !== 0) throw new Error(`status: exit ${r.exitCode}: ${r.stderr}`);
  return (JSON.parse(String(r.stdout)) as { stats: SessionStats }).stats;
}

/** The program's pid, from `numactlx status --json`. */
async function programPid(s: Session): Promise<number> {
  const r = await numactlx(['status', String(s.pid), '--json'], { env: s.env });
  if (r.exitCode !== 0) throw new Error(`status: exit ${r.exitCode}: ${r.stderr}`);
  const pid = (JSON.parse(String(r.stdout)) as { program_pid: number }).program_pid;
  programs.add(pid);
  return pid;
}

const gone = (pid: number): boolean => {
  const state = procState(pid);
  return state === undefined || state === 'Z' || state === 'X';
};

afterEach(async () => {
  const all = [...sessions];
  for (const p of all) p.kill('SIGKILL');
  await Promise.all(all.map((p) => p.catch(() => undefined)));
  // A program left behind (it should not be: EXITKILL) is killed only while it is still
  // one of our fixtures, never a recycled pid.
  for (const pid of programs) {
    try {
      const comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      if (['snap_writer', 'pattern', 'sh'].includes(comm)) process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  programs.clear();
});
afterAll(removeTmpDirs);

// ---------------------------------------------------------------------------------------
// Offline verbs.

interface ListedSnapshot { id: number; label: string | null; pids: number[]; pages: number; new_pages: number }

async function listSnapshots(backing: string): Promise<ListedSnapshot[]> {
  const r = await numactlx(['snapshots', backing, '--json']);
  if (r.exitCode !== 0) throw new Error(`snapshots ${backing}: exit ${r.exitCode}: ${r.stderr}`);
  return JSON.parse(String(r.stdout)) as ListedSnapshot[];
}

interface RawIndex {
  id: number;
  processes: Array<{ pid: number; runs: Array<{ addr: string; pages: number; offset: number }> }>;
}

/** `export FILE ID --format raw -o DIR`; a page reader over the result. */
async function exportRaw(backing: string, id: number, dir: string): Promise<{
  index: RawIndex;
  /** The page at `addr` of process `pid` (the only process when omitted), or undefined when the export lacks it. */
  page(addr: number, pid?: number): Buffer | undefined;
  /** Every page of the export, in pages.bin order (for a search). */
  eachPage(): Generator<{ pid: number; addr: number; bytes: Buffer }>;
  close(): void;
}> {
  const r = await numactlx(['export', backing, String(id), '--format', 'raw', '-o', dir]);
  if (r.exitCode !== 0) throw new Error(`export ${backing} ${id}: exit ${r.exitCode}: ${r.stderr}`);
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as RawIndex;
  const fd = fs.openSync(path.join(dir, 'pages.bin'), 'r');
  const read = (offset: number): Buffer => {
    const buf = Buffer.alloc(PAGE);
    const n = fs.readSync(fd, buf, 0, PAGE, offset);
    if (n !== PAGE) throw new Error(`pages.bin: short read at ${offset} (${n} bytes)`);
    return buf;
  };
  const proc = (pid?: number) => {
    const p = pid === undefined ? index.processes[0] : index.processes.find((x) => x.pid === pid);
    if (!p) throw new Error(`export of snapshot ${id} has no process ${pid} (has ${index.processes.map((x) => x.pid).join(', ')})`);
    return p;
  };
  return {
    index,
    page: (addr, pid) => {
      for (const run of proc(pid).runs) {
        const start = Number(run.addr);
        if (addr >= start && addr < start + run.pages * PAGE) return read(run.offset + (addr - start));
      }
      return undefined;
    },
    *eachPage() {
      for (const p of index.processes) {
        for (const run of p.runs) {
          for (let i = 0; i < run.pages; i++) yield { pid: p.pid, addr: Number(run.addr) + i * PAGE, bytes: read(run.offset + i * PAGE) };
        }
      }
    },
    close: () => fs.closeSync(fd),
  };
}

/**
 * Checks that snapshot `id` of `backing` holds pattern(seed) for the `pages` pages of the
 * region at `addr` of `pid` (a sample of them); returns the pages that differ.
 */
async function patternMismatches(backing: string, id: number, pid: number, addr: number, pages: number, seed: number): Promise<string[]> {
  const out = path.join(tmpDir(), `export-${id}`);
  const ex = await exportRaw(backing, id, out);
  const bad: string[] = [];
  try {
    for (const p of samplePages(pages)) {
      const got = ex.page(addr + p * PAGE, pid);
      if (!got) bad.push(`page ${p} (0x${(addr + p * PAGE).toString(16)}): not in the export`);
      else if (!got.equals(patternPage(seed, p))) bad.push(`page ${p} (0x${(addr + p * PAGE).toString(16)}): not pattern(${seed})`);
    }
  } finally {
    ex.close();
  }
  return bad;
}

/** Runs `numactlx ARGS` with the session's environment, not waiting for it. */
function client(s: Session, args: string[]): ResultPromise {
  return execa(NUMACTLX, args, { env: s.env, reject: false, stdin: 'ignore' });
}

// ---------------------------------------------------------------------------------------

// With eviction on (--max-resident, issue 12) the program's 512 MiB are four times its
// resident limit: snapshot 1 holds frames eviction wrote, and eviction writes back and
// drops pages (redirect-on-write: new frames) while snapshot 2 is copied and at the kill.
test.each([
  ['', 'no resident limit'],
  [',resident=128m', 'eviction on: resident=128m'],
])('kill -9 of numactlx while snapshot 2 is being copied (%s: %s): the program is gone, the backing verifies, snapshot 1 is intact', async (resident) => {
  const bin = await compileFixture('snap_writer');
  const SEED = 71;
  const SIZE = 512 * MiB;
  const s = startSession([bin, '512m', String(SEED)], { size: `1200m${resident}` });
  try {
    const addr = Number((await s.waitOut(/ready (0x[0-9a-f]+)/, 120000))[1]);
    const pid = await programPid(s);

    const first = await numactlx(['snapshot', '--wait', '--json', String(s.pid)], { env: s.env });
    expect(first.stderr).toBe('');
    expect(first.exitCode).toBe(0);
    const snap1 = JSON.parse(String(first.stdout)) as { id: number; stats: { pages: number; new_pages: number } };
    expect(snap1.stats.pages).toBeGreaterThanOrEqual(SIZE / PAGE);
    const ev = (await sessionStats(s)).nodes[0].eviction;
    if (resident) {
      // Most of snapshot 1 is in frames eviction wrote (taken as they are, not copied:
      // new_pages counts what the snapshot copied).
      expect(ev!.evictions).toBeGreaterThan(SIZE / PAGE / 2);
      expect(snap1.stats.new_pages).toBeLessThan(SIZE / PAGE / 2);
    } else {
      expect(snap1.stats.new_pages).toBeGreaterThanOrEqual(SIZE / PAGE);
      expect(ev).toBeUndefined();
    }

    // Every page changes, and keeps changing while snapshot 2 is copied.
    s.send(`rewrite ${SEED + 1}`);
    await s.waitOut(new RegExp(`rewrote ${SEED + 1}`));
    s.send(`loop ${SEED + 1} 100`);
    await s.waitOut(/looping/);

    // Snapshot 2 without --wait: its id comes when the program runs again, before the
    // 512 MiB copy is done. numactlx is killed once the copy has taken frames: the
    // backing's allocated blocks grow (frames are reserved with fallocate as they are
    // handed out; the program's own pages were placed long before; with eviction on, its
    // write-backs into new frames — snapshot 1 holds the old — grow them too: the kill
    // then lands while both go on).
    const blocksBefore = fs.statSync(s.backing).blocks;
    const second = execa(NUMACTLX, ['snapshot', String(s.pid)], { env: s.env, reject: false, stdin: 'ignore', buffer: false });
    let answered = '';
    let answerErr = '';
    second.stderr!.on('data', (d: Buffer) => { answerErr += d.toString(); });
    const answeredAt = new Promise<void>((resolve) => {
      second.stdout!.on('data', (d: Buffer) => {
        answered += d.toString();
        if (answered.includes('\n')) resolve();
      });
      void second.then(() => resolve());
    });
    await answeredAt;
    await waitFor(`snapshot 2's copy to take frames (${s.backing}'s allocated blocks to grow from ${blocksBefore})`,
      () => fs.statSync(s.backing).blocks > blocksBefore, 60000);
    s.proc.kill('SIGKILL');
    const end = await s.done;
    await second;
    expect(answerErr).toBe('');
    expect(answered).toMatch(/^\d+\n$/);
    const id2 = Number(answered);
    expect(id2).toBe(snap1.id + 1);
    expect(end.signal).toBe('SIGKILL');

    // EXITKILL: the program does not outlive numactlx.
    await waitFor(`program ${pid} to be gone`, () => gone(pid), 10000);

    const verify = await numactlx(['verify', s.backing]);
    expect(verify.stdout).toMatch(/: clean\n?$/);
    expect(verify.exitCode).toBe(0);

    const listed = await listSnapshots(s.backing);
    const ids = listed.map((x) => x.id);
    expect(ids[0]).toBe(snap1.id);
    expect(ids.every((id) => id === snap1.id || id === id2)).toBe(true);
    if (ids.includes(id2)) {
      // Committed before the kill (the copy ended before the kill landed): it must be whole.
      expect(listed.find((x) => x.id === id2)!.pages).toBe(listed[0].pages);
    }

    expect(await patternMismatches(s.backing, snap1.id, pid, addr, SIZE / PAGE, SEED)).toEqual([]);

    // The lock died with numactlx: the backing opens again, and stays clean.
    const pattern = await compileFixture('pattern');
    const again = await numactlx([`--remap=3,${s.backing}`, '--membind=3', '--', pattern, 'write', '64m', '3'], { env: s.env });
    expect(again.stderr).toBe('');
    expect(again.exitCode).toBe(0);
    expect((await listSnapshots(s.backing)).map((x) => x.id)).toEqual(ids);
    expect((await numactlx(['verify', s.backing])).exitCode).toBe(0);
  } finally {
    await kill(s);
  }
}, 300000);

test('a backing too small for the next snapshot: a one-line error, the program runs on and ends well, snapshot 1 intact', async () => {
  const bin = await compileFixture('snap_writer');
  const SEED = 5;
  const SIZE = 32 * MiB;
  // 48 MiB: 47 MiB of frames for 32 MiB of pattern plus the program's other pages.
  // Snapshot 1 copies every page into its own frame; snapshot 2 needs a new frame for
  // each rewritten page (snapshot 1 keeps the old ones): ~8200 frames, ~3700 are free.
  const s = startSession([bin, '32m', String(SEED)], { size: '48m' });
  try {
    const addr = Number((await s.waitOut(/ready (0x[0-9a-f]+)/))[1]);
    const pid = await programPid(s);

    const first = await numactlx(['snapshot', '--wait', String(s.pid)], { env: s.env });
    expect(first.stderr).toBe('');
    expect(first.exitCode).toBe(0);
    const id1 = Number(first.stdout);

    s.send(`rewrite ${SEED + 1}`);
    await s.waitOut(new RegExp(`rewrote ${SEED + 1}`));

    const second = await numactlx(['snapshot', '--wait', String(s.pid)], { env: s.env });
    expect(second.stdout).toBe('');
    expect(second.exitCode).toBe(1);
    const message = String(second.stderr);
    expect(message.split('\n').filter(Boolean)).toHaveLength(1);
    expect(message).toMatch(/^numactlx: snapshot: /);
    expect(message).toContain(`backing ${s.backing}`);
    expect(message).toMatch(/no free frame|node is full/);

    // The program runs on: a check of everything it wrote, then its end.
    s.send('check');
    await s.waitOut(/check ok 8192/);
    s.send(`rewrite ${SEED + 2}`);
    await s.waitOut(new RegExp(`rewrote ${SEED + 2}`));
    expect(gone(pid)).toBe(false);
    s.proc.stdin!.end();
    const end = await s.done;
    expect(end.exitCode).toBe(0);
    expect(s.out()).toContain(`snap_writer ok ${SIZE / PAGE}`);
    expect(s.err()).not.toMatch(/FAIL|SIGBUS/);

    const verify = await numactlx(['verify', s.backing]);
    expect(verify.stdout).toMatch(/: clean\n?$/);
    expect(verify.exitCode).toBe(0);
    expect((await listSnapshots(s.backing)).map((x) => x.id)).toEqual([id1]);
    expect(await patternMismatches(s.backing, id1, pid, addr, SIZE / PAGE, SEED)).toEqual([]);
  } finally {
    await kill(s);
  }
}, 120000);

test('the program exits during a snapshot: numactlx exits with its status; the snapshot is whole or reported failed; verify is clean', async () => {
  const bin = await compileFixture('snap_writer');
  const SEED = 9;
  const SIZE = 256 * MiB;
  const s = startSession([bin, '256m', String(SEED)], { size: '600m' });
  try {
    const addr = Number((await s.waitOut(/ready (0x[0-9a-f]+)/, 120000))[1]);
    const pid = await programPid(s);

    // The first snapshot copies all 256 MiB (all of it is dirty); the program exits (with
    // status 7) as soon as the id is known, while that copy runs.
    const snap = execa(NUMACTLX, ['snapshot', String(s.pid)], { env: s.env, reject: false, stdin: 'ignore', buffer: false });
    let answered = '';
    let answerErr = '';
    snap.stderr!.on('data', (d: Buffer) => { answerErr += d.toString(); });
    await new Promise<void>((resolve) => {
      snap.stdout!.on('data', (d: Buffer) => {
        answered += d.toString();
        if (answered.includes('\n')) {
          s.send('exit 7');
          resolve();
        }
      });
      void snap.then(() => resolve());
    });
    await snap;
    expect(answerErr).toBe('');
    expect(answered).toMatch(/^\d+\n$/);
    const id = Number(answered);

    let timer: NodeJS.Timeout | undefined;
    const end = await Promise.race([s.done, new Promise<'hung'>((r) => { timer = setTimeout(() => r('hung'), 60000); })]);
    clearTimeout(timer);
    expect(end).not.toBe('hung');
    const result = end as Result;
    expect(result.signal).toBeUndefined();
    expect(result.exitCode).toBe(7);
    await waitFor(`program ${pid} to be gone`, () => gone(pid), 10000);

    const verify = await numactlx(['verify', s.backing]);
    expect(verify.stdout).toMatch(/: clean\n?$/);
    expect(verify.exitCode).toBe(0);

    const listed = await listSnapshots(s.backing);
    if (listed.some((x) => x.id === id)) {
      // Committed: the program's pages as frozen (before the exit) are all there.
      expect(s.err()).not.toContain(`snapshot ${id} failed`);
      expect(await patternMismatches(s.backing, id, pid, addr, SIZE / PAGE, SEED)).toEqual([]);
    } else {
      // Failed: said so, on one line.
      expect(listed).toEqual([]);
      expect(s.err()).toMatch(new RegExp(`^numactlx: snapshot ${id} failed: .+$`, 'm'));
    }
  } finally {
    await kill(s);
  }
}, 300000);

test('two `numactlx snapshot` at once: both answered; different labels never coalesce; every id answered is listed', async () => {
  const bin = await compileFixture('pattern');
  const s = startSession([bin, 'hold', '64m', '13'], { size: '512m' });
  try {
    await s.waitOut(/ready 0x/);
    const pid = await programPid(s);
    const ids = (r: Result): number => {
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      return Number((JSON.parse(String(r.stdout)) as { id: number }).id);
    };

    // Two labels, one client waiting for durability and one not.
    const [alpha, beta] = await Promise.all([
      client(s, ['snapshot', '--wait', '--json', '--label', 'alpha', String(s.pid)]),
      client(s, ['snapshot', '--json', '--label', 'beta', String(pid)]),
    ]);
    const alphaId = ids(alpha);
    const betaId = ids(beta);
    expect(alphaId).not.toBe(betaId);
    expect(JSON.parse(String(alpha.stdout))).toMatchObject({ id: alphaId, label: 'alpha', stats: { pages: expect.any(Number) } });
    expect(JSON.parse(String(beta.stdout))).toEqual({ id: betaId, label: 'beta' });

    // Unlabelled: they may coalesce into one snapshot, or not.
    const [waited, plain] = await Promise.all([
      client(s, ['snapshot', '--wait', String(s.pid)]),
      client(s, ['snapshot', String(s.pid)]),
    ]);
    for (const r of [waited, plain]) {
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toMatch(/^\d+$/);
    }
    const unlabelled = [...new Set([Number(waited.stdout), Number(plain.stdout)])];
    for (const u of unlabelled) expect([alphaId, betaId]).not.toContain(u);

    // One more, waited for: one snapshot at a time, so every earlier one is settled.
    const last = await numactlx(['snapshot', '--wait', String(s.pid)], { env: s.env });
    expect(last.exitCode).toBe(0);
    const lastId = Number(last.stdout);

    const listed = await listSnapshots(s.backing);
    const byId = new Map(listed.map((x) => [x.id, x]));
    expect(byId.get(alphaId)?.label).toBe('alpha');
    expect(byId.get(betaId)?.label).toBe('beta');
    for (const id of [...unlabelled, lastId]) expect(byId.get(id)?.label).toBeNull();
    expect(new Set(listed.map((x) => x.id))).toEqual(new Set([alphaId, betaId, ...unlabelled, lastId]));

    s.proc.stdin!.end();
    const end = await s.done;
    expect(end.exitCode).toBe(0);
    expect(s.out()).toMatch(/pattern ok 67108864 /);
  } finally {
    await kill(s);
  }
}, 120000);

/** Runs `node -e SCRIPT ARGS` (an ES module) with the built modules; its stdout as JSON. */
async function withDist<T>(script: string, args: string[]): Promise<T> {
  const r = await execa(process.execPath, ['--input-type=module', '-e', script, ...args], { reject: false, stdin: 'ignore' });
  if (r.exitCode !== 0) throw new Error(`node -e: exit ${r.exitCode}: ${r.stderr}`);
  return JSON.parse(String(r.stdout)) as T;
}

test('a corrupted frame: verify exits 1 and names the snapshot, the page, the pid and the frame', async () => {
  for (const f of ['dist/backing/catalog.js', 'dist/backing/format.js']) {
    if (!fs.existsSync(path.join(ROOT, f))) throw new Error(`${f} is missing: build first (npx tsc -p tsconfig.json)`);
  }
  const bin = await compileFixture('pattern');
  const SEED = 17;
  const s = startSession([bin, 'hold', '16m', String(SEED)], { size: '64m' });
  let addr: number;
  let pid: number;
  let id: number;
  try {
    addr = Number((await s.waitOut(/ready (0x[0-9a-f]+)/))[1]);
    pid = await programPid(s);
    const snap = await numactlx(['snapshot', '--wait', String(s.pid)], { env: s.env });
    expect(snap.exitCode).toBe(0);
    id = Number(snap.stdout);
    s.proc.stdin!.end();
    const end = await s.done;
    expect(end.exitCode).toBe(0);
  } finally {
    await kill(s);
  }
  const clean = await numactlx(['verify', s.backing]);
  expect(clean.exitCode).toBe(0);

  // The frame of page 5 of the pattern, as the catalog records it, and where frames start.
  const target = addr + 5 * PAGE;
  const where = await withDist<{ frame: number; pageCrc: number; dataOffset: string; expected: string }>(`
    const { openSnapshotSource } = await import(${JSON.stringify(path.join(ROOT, 'dist/backing/catalog.js'))});
    const { pickSuperblock, dataOffsetFor } = await import(${JSON.stringify(path.join(ROOT, 'dist/backing/format.js'))});
    const fs = await import('node:fs');
    const [file, id, pid, addr] = process.argv.slice(1).map((v, i) => (i === 0 ? v : Number(v)));
    const source = openSnapshotSource(file);
    const rec = source.snapshots().find((r) => r.id === id);
    const proc = rec.processes.find((p) => p.pid === pid);
    const page = proc.pages.find((p) => p.addr === addr);
    source.close();
    const head = Buffer.alloc(8192);
    const fd = fs.openSync(file, 'r');
    fs.readSync(fd, head, 0, 8192, 0);
    fs.closeSync(fd);
    const { superblock } = pickSuperblock(head.subarray(0, 4096), head.subarray(4096, 8192));
    console.log(JSON.stringify({ frame: page.frame, pageCrc: page.crc, dataOffset: String(superblock.dataOffset),
      expected: String(dataOffsetFor(4096n)) }));`, [s.backing, String(id), String(pid), String(target)]);
  expect(where.dataOffset).toBe(String(MiB));
  expect(where.expected).toBe(String(MiB));

  // The frame holds page 5 of the pattern; flip one byte of it.
  const offset = Number(where.dataOffset) + where.frame * PAGE;
  const fd = fs.openSync(s.backing, 'r+');
  try {
    const frame = Buffer.alloc(PAGE);
    fs.readSync(fd, frame, 0, PAGE, offset);
    expect(frame.equals(patternPage(SEED, 5))).toBe(true);
    const one = Buffer.from([frame[123] ^ 0xff]);
    fs.writeSync(fd, one, 0, 1, offset + 123);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }

  const verify = await numactlx(['verify', s.backing]);
  expect(verify.exitCode).toBe(1);
  const lines = String(verify.stdout).split('\n').filter(Boolean);
  expect(lines).toContain(`snapshot ${id}: page 0x${target.toString(16)} (pid ${pid}): frame ${where.frame} checksum mismatch`);
  expect(lines.filter((l) => l.startsWith('snapshot '))).toHaveLength(1);
  expect(lines.at(-1)).toMatch(/1 problem \(1 checksum mismatch, 0 other\) in 1 snapshot$/);
}, 120000);

test('--snapshot-on-exit: a program that ends by itself leaves one snapshot holding its memory', async () => {
  const bin = await compileFixture('pattern');
  const SEED = 4;
  const dir = tmpDir();
  const env = { NUMACTLX_RUNTIME_DIR: tmpDir() };
  const backing = path.join(dir, 'n3.img');
  const proc = execa(NUMACTLX, [`--remap=3,${backing},size=64m`, '--membind=3', '--snapshot-on-exit', '--', bin, 'write', '16m', String(SEED)],
    { env, reject: false, stdin: 'ignore', timeout: 30000, killSignal: 'SIGKILL' });
  sessions.add(proc);
  try {
    const r = await proc;
    expect({ timedOut: r.timedOut, exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr })
      .toEqual({ timedOut: false, exitCode: 0, stdout: expect.stringMatching(/^pattern ok 16777216 [0-9a-f]{16} /), stderr: '' });

    const listed = await listSnapshots(backing);
    expect(listed).toHaveLength(1);
    const ex = await exportRaw(backing, listed[0].id, path.join(dir, 'exit-export'));
    try {
      // pattern write prints no address: find page 0 of the pattern, then check the rest.
      const first = patternPage(SEED, 0);
      let at: { pid: number; addr: number } | undefined;
      for (const p of ex.eachPage()) if (p.bytes.equals(first)) { at = p; break; }
      expect(at).toBeDefined();
      for (const p of samplePages(16 * MiB / PAGE)) {
        expect(ex.page(at!.addr + p * PAGE, at!.pid)?.equals(patternPage(SEED, p))).toBe(true);
      }
    } finally {
      ex.close();
    }
    const verify = await numactlx(['verify', backing]);
    expect(verify.exitCode).toBe(0);
  } finally {
    proc.kill('SIGKILL');
    await proc;
    sessions.delete(proc);
  }
}, 90000);

describe('the snapshot signal', () => {
  // The program reports the signals it receives, and ends when STOP exists.
  const shProgram = (stop: string): string[] => ['sh', '-c',
    `trap 'echo got-USR1' USR1; trap 'echo got-USR2' USR2; echo ready; while [ ! -e ${stop} ]; do sleep 0.05; done; echo done`];

  test('SIGUSR1 to numactlx takes a snapshot and is not delivered to the program', async () => {
    const stop = path.join(tmpDir(), 'stop');
    const s = startSession(shProgram(stop), { size: '64m' });
    try {
      await s.waitOut(/ready/);
      await programPid(s);
      expect(await listSnapshots(s.backing)).toEqual([]);
      process.kill(s.pid, 'SIGUSR1');
      const listed = await waitForSnapshots(s.backing, 1);
      expect(listed.map((x) => x.id)).toEqual([1]);
      // SIGUSR2 is forwarded: once the program has run its trap, a forwarded SIGUSR1
      // (sent to it before the snapshot was even listed) would have run its own before.
      process.kill(s.pid, 'SIGUSR2');
      await s.waitOut(/got-USR2/);
      fs.writeFileSync(stop, '');
      const end = await s.done;
      expect(end.exitCode).toBe(0);
      expect(s.out()).toBe('ready\ngot-USR2\ndone\n');
      expect(s.err()).toBe('');
    } finally {
      await kill(s);
    }
  }, 60000);

  test('--snapshot-signal USR2: USR2 takes the snapshot, USR1 is forwarded again', async () => {
    const stop = path.join(tmpDir(), 'stop');
    const s = startSession(shProgram(stop), { size: '64m', extra: ['--snapshot-signal', 'USR2'] });
    try {
      await s.waitOut(/ready/);
      await programPid(s);
      process.kill(s.pid, 'SIGUSR2');
      expect((await waitForSnapshots(s.backing, 1)).map((x) => x.id)).toEqual([1]);
      process.kill(s.pid, 'SIGUSR1');
      await s.waitOut(/got-USR1/);
      // numactlx's listeners for SIGUSR1 all ran before it forwarded it: had one asked for
      // a snapshot, the session would show it running, waiting or taken.
      const stats = await sessionStats(s);
      expect({ snapshots: stats.snapshots, taken: stats.triggers?.taken }).toEqual({ snapshots: { running: null, waiting: [] }, taken: 1 });
      expect(await listSnapshots(s.backing)).toHaveLength(1);
      fs.writeFileSync(stop, '');
      const end = await s.done;
      expect(end.exitCode).toBe(0);
      expect(s.out()).toBe('ready\ngot-USR1\ndone\n');
      expect(s.err()).toBe('');
    } finally {
      await kill(s);
    }
  }, 60000);
});

/** Waits until `snapshots --json` lists `n` snapshots. */
async function waitForSnapshots(backing: string, n: number, ms = 20000): Promise<ListedSnapshot[]> {
  let has = 0;
  return waitFor(`${n} snapshot(s) listed in ${backing}`, async () => {
    const listed = await listSnapshots(backing);
    has = listed.length;
    return listed.length >= n ? listed : undefined;
  }, ms, 100).catch((err: Error) => { throw new Error(`${err.message} (has ${has})`); });
}
