// Running numactlx and the suite's programs in the guest: one-shot commands, sessions
// (a numactlx with its program, talked to over stdin/stdout), the two backings, and the
// checks of an exported snapshot's contents.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { CheckError, assert, withTimeout } from './harness.mjs';

export const PROJECT = process.env.PROJECT ?? path.resolve(new URL('../../..', import.meta.url).pathname);
export const NUMACTLX = path.join(PROJECT, 'bin/numactlx');
/** The C fixtures, compiled on the host by run-suite.sh. */
export const BIN = process.env.GUEST_BIN ?? path.join(process.env.GUEST_SHARE ?? '.', 'bin');
export const MEMHOLD = path.join(BIN, 'memhold');
export const PAGECHECK = path.join(BIN, 'pagecheck');
export const SANDBOXED = path.join(BIN, 'sandboxed');
export const SANDBOXED_DENYLIST = path.join(BIN, 'sandboxed_denylist');
export const CLONE_VM = path.join(BIN, 'clone_vm');
export const SPARSE_TOUCH = path.join(BIN, 'sparse_touch');
export const FORK_RACE = path.join(BIN, 'fork_race');

/**
 * The two backings of node 3: the devdax device, and a file on the guest's ext4 disk (it
 * survives a power-off, unlike /tmp). `fresh` backings: run-suite boots each group on new
 * images, so a group starts with an empty device and no file.
 */
export const BACKINGS = {
  dax: { name: 'dax', path: '/dev/dax0.0', remap: '3,/dev/dax0.0' },
  file: { name: 'file', path: `${process.env.GUEST_DISK || '/srv'}/node3.img`, remap: `3,${process.env.GUEST_DISK || '/srv'}/node3.img,size=1g` },
};

/** The backings a group runs on: $GUEST_BACKINGS (a comma list) or both. */
export function backings() {
  const names = (process.env.GUEST_BACKINGS ?? 'dax,file').split(',').filter(Boolean);
  return names.map((n) => {
    assert(BACKINGS[n], `unknown backing '${n}' in GUEST_BACKINGS (dax, file)`);
    return BACKINGS[n];
  });
}

/**
 * On a group's fresh images (run-suite.sh sets GUEST_FRESH=1 for the boots that start from
 * new ones), makes /dev/dax0.0 a numactlx backing: `numactlx format` writes its
 * superblock. numactlx never writes a device it was not told to, so a session on the
 * blank device must be refused first, in one line naming the verb. A file backing needs
 * nothing: a session creates it. Later boots on the same images (persist-2, -3) find the
 * device formatted, with what the earlier boots left on it.
 */
export async function prepareFreshBackings(g) {
  if (process.env.GUEST_FRESH !== '1' || !backings().some((b) => b.name === 'dax')) return;
  await g.check('dax: a session on the blank device is refused in one line naming `numactlx format`', async () => {
    const r = await run(NUMACTLX, ['--remap=3,/dev/dax0.0', '--membind=3', '--', '/bin/true']);
    const lines = r.stderr.split('\n').filter(Boolean);
    assert(r.code !== 0 && lines.length === 1 && /numactlx format/.test(lines[0]),
      `expected a failure with one line naming numactlx format; ${describeExit(r.code, r.signal)}, stderr: ${JSON.stringify(r.stderr)}`);
  });
  await g.check('dax: numactlx format /dev/dax0.0', async () => {
    await numactlx(['format', '/dev/dax0.0']);
  });
}

/**
 * What to quote of a failed command's stderr: numactlx's own line and the exception behind
 * it (`numactlx: the tracer failed…` says less than `SysError: UFFDIO_API … EINVAL`), or a
 * program's FAIL line, or the last line.
 */
export function why(stderr) {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  // V8's own abort prints `FATAL ERROR: …` or `# Fatal error in …` / `# Check failed: …`.
  const fatal = lines.filter((l) => /^FATAL ERROR|^# (Fatal|Check)/.test(l)).join(' ');
  const picked = [lines.find((l) => /^numactlx: /.test(l)), lines.find((l) => /^\w*Error: /.test(l)), lines.find((l) => /^FAIL /.test(l)), fatal]
    .filter(Boolean);
  return picked.length > 0 ? picked.join(' / ') : lines[lines.length - 1] ?? '(nothing on stderr)';
}

const describeExit = (code, signal) => (signal ? `killed by ${signal}` : `exit status ${code}`);

/** Runs a command to its end; resolves to { code, signal, stdout, stderr, ms }. Never rejects. */
export function run(file, args, { input, env, timeoutMs = 600_000 } = {}) {
  const start = Date.now();
  return new Promise((resolve) => {
    const child = spawn(file, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => { stderr += String(err); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - start });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}

/** `numactlx ARGS`, which must succeed: resolves to its stdout, or fails the check quoting stderr. */
export async function numactlx(args, options) {
  const r = await run(NUMACTLX, args, options);
  assert(r.code === 0, () => `numactlx ${args.join(' ')}: ${describeExit(r.code, r.signal)}: ${why(r.stderr)}`);
  return r.stdout;
}

/** `numactlx ARGS --json`, parsed. */
export async function numactlxJson(args, options) {
  const out = await numactlx([...args, '--json'], options);
  try {
    return JSON.parse(out);
  } catch {
    throw new CheckError(`numactlx ${args.join(' ')} --json printed no JSON: ${out.slice(0, 200)}`);
  }
}

/** The committed snapshots of a backing (`numactlx snapshots PATH --json`), by ascending id. */
export async function snapshotList(backing) {
  const list = await numactlxJson(['snapshots', backing.path]);
  return [...list].sort((a, b) => a.id - b.id);
}

/**
 * A numactlx session running a program, started at once. Its stdout is read line by line
 * (`line(re)` waits for a matching one), stdin stays open for commands (`send`), stderr is
 * kept for the messages of failures.
 */
export class Session {
  constructor(args, { env } = {}) {
    this.args = args;
    this.stdout = '';
    this.stderr = '';
    this.child = spawn(NUMACTLX, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    this.pid = this.child.pid;
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code, signal) => resolve({ code, signal }));
    });
    this.exited.then((e) => { this.exit = e; });
    this.child.stdout.on('data', (d) => { this.stdout += d; });
    this.child.stderr.on('data', (d) => { this.stderr += d; });
    this.child.stdin.on('error', () => {});
  }

  /** Waits for a line of the program's stdout matching `re`; resolves to the match. */
  line(re, what, timeoutMs = 600_000) {
    const find = () => this.stdout.split('\n').map((l) => l.match(re)).find(Boolean);
    return withTimeout(what, timeoutMs, new Promise((resolve, reject) => {
      const check = () => {
        const m = find();
        if (m) { this.child.stdout.off('data', check); resolve(m); }
        return m;
      };
      if (check()) return;
      this.child.stdout.on('data', check);
      // 'close' comes after the last of stdout: nothing more can match
      this.exited.then(({ code, signal }) => {
        if (check()) return;
        this.child.stdout.off('data', check);
        reject(new CheckError(`numactlx ended (${describeExit(code, signal)}) before ${what}: ${why(this.stderr)}`));
      });
    }));
  }

  send(text) {
    this.child.stdin.write(text);
  }

  /** Closes the program's stdin and waits for numactlx to end; resolves to { code, signal }. */
  async finish(what = 'the session to end', timeoutMs = 600_000) {
    this.child.stdin.end();
    return withTimeout(what, timeoutMs, this.exited);
  }

  kill(signal = 'SIGKILL') {
    if (!this.exit) this.child.kill(signal);
  }

  /** The pids of numactlx's children (the program). */
  children() {
    try {
      return fs.readdirSync(`/proc/${this.pid}/task`).flatMap((t) =>
        fs.readFileSync(`/proc/${this.pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
    } catch {
      return [];
    }
  }
}

/** Starts memhold SIZE SEED on node 3 of `backing` and waits for `ready`; resolves to { session, addr, pages }. */
export async function startMemhold(backing, size, seed, { extra = [], statsFile } = {}) {
  const args = [`--remap=${backing.remap}`, '--membind=3', ...(statsFile ? ['--stats', statsFile] : []), ...extra,
    '--', MEMHOLD, size, String(seed)];
  const session = new Session(args);
  const m = await session.line(/^ready (0x[0-9a-f]+) (\d+)$/, `memhold ${size} ${seed} on ${backing.path} to be ready`);
  return { session, addr: BigInt(m[1]), pages: Number(m[2]) };
}

/**
 * Exports snapshot `id` of `backing` raw into a new directory under /tmp and checks the
 * program's region with pagecheck: every page of SEED's pattern (or SEED2's on every K-th).
 * Resolves to pagecheck's line; fails the check on a missing page or a wrong word.
 */
export async function checkSnapshotPages(backing, id, { addr, pages }, seed, every) {
  const dir = fs.mkdtempSync('/tmp/raw-');
  try {
    await numactlx(['export', backing.path, String(id), '--format', 'raw', '-o', path.join(dir, 'out')]);
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'out/index.json'), 'utf8'));
    const proc = index.processes[0];
    const end = addr + BigInt(pages) * 4096n;
    const seg = proc.runs.find((r) => BigInt(r.addr) <= addr && addr < BigInt(r.addr) + BigInt(r.pages) * 4096n);
    assert(seg, `snapshot ${id}: the region at 0x${addr.toString(16)} is not in the export (runs: ${proc.runs.map((r) => `${r.addr}+${r.pages}p`).join(', ')})`);
    assert(BigInt(seg.addr) + BigInt(seg.pages) * 4096n >= end,
      `snapshot ${id}: only part of the region at 0x${addr.toString(16)} (${pages} pages) is in the export: run ${seg.addr}+${seg.pages}p`);
    const offset = BigInt(seg.offset) + (addr - BigInt(seg.addr));
    const args = [path.join(dir, 'out/pages.bin'), String(offset), String(pages), String(seed), ...(every ? [String(every.k), String(every.seed)] : [])];
    const r = await run(PAGECHECK, args);
    assert(r.code === 0, `snapshot ${id}: ${why(r.stderr)}`);
    return r.stdout.trim();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** pattern word `word` of page `page` for `seed` (../../fixtures/fixture.h), as a BigInt. */
export function patternWord(seed, page, word) {
  const M = (1n << 64n) - 1n;
  let x = (BigInt(seed) * 0x9e3779b97f4a7c15n + (BigInt(page) + 1n) * 0xbf58476d1ce4e5b9n) & M;
  x ^= x >> 30n; x = (x * 0xbf58476d1ce4e5b9n) & M;
  x ^= x >> 27n; x = (x * 0x94d049bb133111ebn) & M;
  x ^= x >> 31n;
  if (x === 0n) x = 1n;
  let v = 0n;
  for (let i = 0; i <= word; i++) {
    x ^= (x << 13n) & M; x ^= x >> 7n; x ^= (x << 17n) & M;
    v = x;
  }
  return v;
}

/** Reads the JSON a session wrote with --stats FILE. */
export function readStats(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CheckError(`--stats ${file}: ${err.code ?? err.message}`);
  }
}
