// A battery of bad inputs the other bad-input tests lack (test/launcher/bad-input.test.ts,
// test/snapshot/export/cli.test.ts): odd sizes and node ids, paths that are not storage,
// corrupted and truncated backings under every verb, bad snapshot ids, bad cron and
// config files. The rule for every row: exit 1; stderr's first line starts `numactlx: `
// and names the problem; no stack trace; stdout empty; and nothing written — the
// program (which would create a marker file) did not run, no file appeared in the
// temporary directory, and a backing involved is byte-for-byte what it was.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execa, type Result } from 'execa';
import { numactlx } from '../helpers/numactlx.js';
import { prng, testSeed } from '../helpers/random.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

const dir = tmpDir('numactlx-battery-');
const marker = path.join(dir, 'program-ran');
const program = ['sh', '-c', `touch ${marker}`];
/** A new backing path that must never be created. */
const fresh = path.join(dir, 'new.img');
const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A generous bound: every row must come back (a FIFO or /dev/zero must not block it). */
const RUN_TIMEOUT = 20_000;
const TEST_TIMEOUT = 30_000;

interface Case {
  name: string;
  args: string[];
  /** The first line of stderr. */
  first: RegExp;
  /** Files that must be byte-for-byte unchanged. */
  unchanged?: string[];
  /** stderr is that one line (no usage text: the options were well-formed, what they name is not). */
  oneLine?: boolean;
}

/** Every path under `root` with its type and size; symbolic links and FIFOs are not followed. */
function listing(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of fs.readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = fs.lstatSync(p);
      out.push(`${path.relative(root, p)} ${st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : st.isFIFO() ? 'fifo' : st.size}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(root);
  return out;
}

const sha256 = (file: string): string => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** Runs one row and checks the whole rule. */
async function refused({ args, first, unchanged = [], oneLine = false }: Case): Promise<Result> {
  const before = listing(dir);
  const sums = unchanged.map(sha256);
  const r = await numactlx(args, { timeout: RUN_TIMEOUT });
  const stderr = String(r.stderr);
  expect(r.timedOut).toBe(false);
  expect(stderr.split('\n')[0]).toMatch(/^numactlx: /);
  expect(stderr.split('\n')[0]).toMatch(first);
  expect(stderr).not.toMatch(/^\s+at /m);
  if (oneLine) expect(stderr.split('\n')).toHaveLength(1);
  expect(r.stdout).toBe('');
  expect(r.exitCode).toBe(1);
  expect(fs.existsSync(marker)).toBe(false);
  expect(listing(dir)).toEqual(before);
  expect(unchanged.map(sha256)).toEqual(sums);
  return r;
}

// Seeded random bytes, so a failure can be replayed: NUMACTLX_TEST_SEED=N (../helpers/random.ts).
const seed = testSeed('bad-input-battery');
const randomBytes = (n: number, s: number): Buffer => prng(s).bytes(n);

afterEach(() => fs.rmSync(marker, { force: true }));

// ---- 1. sizes --------------------------------------------------------------------------

const badSize = (x: string): RegExp =>
  new RegExp(`^numactlx: invalid --remap '3,${esc(fresh)},size=${esc(x)}': invalid size '${esc(x)}' \\(a number with an optional k, m, g or t suffix\\)$`);
const remapFresh = (size: string): string[] => [`--remap=3,${fresh},size=${size}`, '--membind=3', ...program];
const faultAhead = (x: string): string[] => [`--fault-ahead=${x}`, `--remap=3,${fresh},size=16m`, '--membind=3', ...program];

const sizes: Case[] = [
  { name: 'size=-1', args: remapFresh('-1'), first: badSize('-1') },
  { name: 'size=1.5g', args: remapFresh('1.5g'), first: badSize('1.5g') },
  { name: 'size=0x10 (hex is bytes: 16, not page-aligned)', args: remapFresh('0x10'),
    first: new RegExp(`^numactlx: invalid --remap: ${esc(fresh)}: size 16 is not a multiple of the page size \\(4096 bytes\\)$`) },
  { name: 'size=99999999999999999999t (beyond what a backing can index)', args: remapFresh('99999999999999999999t'),
    first: new RegExp(`^numactlx: invalid --remap: ${esc(fresh)}: size ${(99999999999999999999n << 40n).toString()} is too large: a backing holds at most \\d+ bytes \\(4294967295 frames of 4 KiB, 16 TiB\\)$`) },
  { name: 'size=1e9', args: remapFresh('1e9'), first: badSize('1e9') },
  { name: 'empty size=', args: remapFresh(''), first: badSize('') },
  { name: 'size=4k (too small)', args: remapFresh('4k'),
    first: new RegExp(`^numactlx: invalid --remap: ${esc(fresh)}: size 4096 is too small: a backing needs at least 1052672 bytes \\(its metadata area and one 4 KiB frame\\)$`) },
  { name: '--fault-ahead=0', args: faultAhead('0'), first: /^numactlx: invalid --fault-ahead '0': a multiple of 4k from 4k to 2m$/ },
  { name: '--fault-ahead=3m', args: faultAhead('3m'), first: /^numactlx: invalid --fault-ahead '3m': a multiple of 4k from 4k to 2m$/ },
  { name: '--fault-ahead=abc', args: faultAhead('abc'), first: /^numactlx: invalid --fault-ahead 'abc': invalid size 'abc' \(a number with an optional k, m, g or t suffix\)$/ },
  { name: '--fault-ahead=8k1', args: faultAhead('8k1'), first: /^numactlx: invalid --fault-ahead '8k1': invalid size '8k1' \(a number with an optional k, m, g or t suffix\)$/ },
];

describe('1. sizes', () => {
  test.each(sizes)('$name', async (c) => { await refused(c); }, TEST_TIMEOUT);
});

// ---- 2. node ids ------------------------------------------------------------------------

const notANode = (id: string): RegExp =>
  new RegExp(`^numactlx: invalid --remap '${esc(id)},${esc(fresh)},size=16m': '${esc(id)}' is not a node number$`);
const remapId = (id: string): string[] => [`--remap=${id},${fresh},size=16m`, ...program];

const nodeIds: Case[] = [
  { name: '--remap id -1', args: remapId('-1'), first: notANode('-1') },
  { name: '--remap id 1024', args: remapId('1024'), first: /^numactlx: invalid --remap '1024,.*': node 1024 is larger than 1023$/ },
  { name: '--remap id 99999', args: remapId('99999'), first: /^numactlx: invalid --remap '99999,.*': node 99999 is larger than 1023$/ },
  { name: '--remap id 3.0', args: remapId('3.0'), first: notANode('3.0') },
  { name: "--remap id ' 3'", args: remapId(' 3'), first: notANode(' 3') },
  { name: '--membind of an undeclared virtual node', args: [`--remap=3,${fresh},size=16m`, '--membind=5', ...program],
    first: /^numactlx: invalid node list '5' for --membind: node 5 is out of range \(nodes available: 0,3\)$/ },
];

describe('2. node ids', () => {
  test.each(nodeIds)('$name', async (c) => { await refused(c); }, TEST_TIMEOUT);
});

// ---- 3. paths as backing ----------------------------------------------------------------

const paths3 = path.join(dir, 'paths');
fs.mkdirSync(paths3);
const aDir = path.join(paths3, 'a-directory');
fs.mkdirSync(aDir);
const linkToBacking = path.join(paths3, 'link.img');
const dangling = path.join(paths3, 'dangling.img');
fs.symlinkSync(path.join(paths3, 'nowhere.img'), dangling);
const fifo = path.join(paths3, 'fifo');
const aFile = path.join(paths3, 'a-file');
fs.writeFileSync(aFile, 'x');
const roMount = path.join(paths3, 'ro');
fs.mkdirSync(roMount, { mode: 0o700 });
let mounted = false;
// A read-only bind mount of a writable directory: the directory stays writable under its
// own name, the mount point refuses writes (MNT_READONLY on the mount, not the filesystem).
const bindSource = path.join(paths3, 'bind-source');
fs.mkdirSync(bindSource, { mode: 0o700 });
const roBind = path.join(paths3, 'ro-bind');
fs.mkdirSync(roBind, { mode: 0o700 });
let bound = false;
/** Made in beforeAll by a real session: a valid backing with one snapshot. */
const real = path.join(dir, 'real.img');

beforeAll(async () => {
  const made = await numactlx([`--remap=3,${real},size=16m`, '--membind=3', '--snapshot-on-exit', '--', 'true']);
  if (made.exitCode !== 0) throw new Error(`making a real backing: ${made.stderr}`);
  fs.symlinkSync(real, linkToBacking);
  await execa('mkfifo', [fifo]);
  // A read-only tmpfs holding a valid backing: mounted writable, filled, remounted ro.
  // Needs root (mount), as the suite does.
  const m = await execa('mount', ['-t', 'tmpfs', '-o', 'size=20m,mode=0700', 'tmpfs', roMount], { reject: false });
  if (m.exitCode !== 0) throw new Error(`mount -t tmpfs: ${m.stderr}`);
  mounted = true;
  fs.copyFileSync(real, path.join(roMount, 'backing.img'));
  await execa('mount', ['-o', 'remount,ro', roMount]);
  fs.copyFileSync(real, path.join(bindSource, 'backing.img'));
  const b = await execa('mount', ['--bind', bindSource, roBind], { reject: false });
  if (b.exitCode !== 0) throw new Error(`mount --bind: ${b.stderr}`);
  bound = true;
  const ro = await execa('mount', ['-o', 'remount,bind,ro', roBind], { reject: false });
  if (ro.exitCode !== 0) throw new Error(`mount -o remount,bind,ro: ${ro.stderr}`);
  makeCorrupt();
}, 60_000);

afterAll(async () => {
  if (mounted) await execa('umount', [roMount], { reject: false });
  if (bound) await execa('umount', [roBind], { reject: false });
  removeTmpDirs();
});

const asBacking = (p: string, size?: string): string[] =>
  [`--remap=3,${p}${size === undefined ? '' : `,size=${size}`}`, '--membind=3', ...program];
const invalid = (p: string, why: string): RegExp => new RegExp(`^numactlx: invalid --remap: ${esc(p)}: ${why}$`);
const SYMLINK = 'is a symbolic link; numactlx does not follow links to a backing file';

const paths: Case[] = [
  { name: 'a directory (with size=)', args: asBacking(aDir, '16m'), first: invalid(aDir, 'is a directory: EISDIR') },
  { name: 'a symbolic link to a valid backing', args: asBacking(linkToBacking), first: invalid(linkToBacking, SYMLINK), unchanged: [real] },
  { name: 'a symbolic link to a valid backing (with size=)', args: asBacking(linkToBacking, '32m'), first: invalid(linkToBacking, SYMLINK), unchanged: [real] },
  { name: 'a dangling symbolic link', args: asBacking(dangling), first: invalid(dangling, SYMLINK) },
  { name: 'a dangling symbolic link (with size=: not created through it)', args: asBacking(dangling, '16m'), first: invalid(dangling, SYMLINK) },
  { name: 'a FIFO (must not block)', args: asBacking(fifo), first: invalid(fifo, 'not a regular file or a /dev/dax device') },
  { name: 'a FIFO with size= (must not block)', args: asBacking(fifo, '16m'), first: invalid(fifo, 'not a regular file or a /dev/dax device') },
  { name: '/dev/null with size=', args: asBacking('/dev/null', '16m'), first: invalid('/dev/null', 'a character device that is not a /dev/dax device \\(no dax entry in sysfs\\)') },
  { name: '/dev/zero', args: asBacking('/dev/zero'), first: invalid('/dev/zero', 'a character device that is not a /dev/dax device \\(no dax entry in sysfs\\)') },
  { name: '/proc/self/status', args: asBacking('/proc/self/status'), first: invalid('/proc/self/status', 'a file of the proc pseudo-filesystem, not storage: not a regular file or a /dev/dax device') },
  { name: '/proc/self/mem without size=', args: asBacking('/proc/self/mem'), first: invalid('/proc/self/mem', 'a file of the proc pseudo-filesystem, not storage: not a regular file or a /dev/dax device') },
  { name: 'a sysfs file without size=', args: asBacking('/sys/kernel/mm/transparent_hugepage/enabled'),
    first: invalid('/sys/kernel/mm/transparent_hugepage/enabled', 'a file of the sysfs pseudo-filesystem, not storage: not a regular file or a /dev/dax device') },
  { name: 'a valid backing on a read-only tmpfs', args: asBacking(path.join(roMount, 'backing.img')),
    first: new RegExp(`^numactlx: backing ${esc(path.join(roMount, 'backing.img'))}: EROFS while opening it$`), unchanged: [path.join(roMount, 'backing.img')] },
  { name: 'a new backing on a read-only tmpfs', args: asBacking(path.join(roMount, 'new.img'), '16m'),
    first: new RegExp(`^numactlx: backing ${esc(path.join(roMount, 'new.img'))}: EROFS while creating it$`) },
  { name: 'a valid backing on a read-only bind mount', args: asBacking(path.join(roBind, 'backing.img')),
    first: new RegExp(`^numactlx: backing ${esc(path.join(roBind, 'backing.img'))}: EROFS while opening it$`),
    unchanged: [path.join(bindSource, 'backing.img')] },
  { name: 'a new backing on a read-only bind mount (its directory writable elsewhere)', args: asBacking(path.join(roBind, 'new.img'), '16m'),
    first: new RegExp(`^numactlx: backing ${esc(path.join(roBind, 'new.img'))}: EROFS while creating it$`) },
  { name: 'a path whose parent is a regular file', args: asBacking(path.join(aFile, 'n.img'), '16m'),
    first: invalid(path.join(aFile, 'n.img'), 'cannot stat: ENOTDIR') },
];

describe('3. paths as backing', () => {
  test.each(paths)('$name', async (c) => { await refused({ ...c, oneLine: true }); }, TEST_TIMEOUT);
});

// ---- 4. corrupted and truncated backings ------------------------------------------------

const corruptDir = path.join(dir, 'corrupt');
fs.mkdirSync(corruptDir, { mode: 0o700 });
const out = path.join(dir, 'out.core');

interface Corruption {
  name: string;
  file: string;
  make: (file: string) => void;
  /** After `numactlx: ` for --remap. */
  remap: (file: string) => string;
  /** After `numactlx: VERB: ` for snapshots, verify, export, rm, diff. */
  verbs: (file: string) => string;
  /** After `numactlx: repair: `. */
  repair: (file: string) => string;
}

const TOO_SMALL_RECORDED = (have: number) => (f: string) => `${esc(f)}: too small: its superblock records 16777216 bytes, the medium has ${have}`;
const BAD_MAGIC_VERB = (f: string) => `${esc(f)} is not a numactlx backing \\(bad magic\\)`;
const BAD_MAGIC_REMAP = (f: string) => `invalid --remap: ${esc(f)}: not a numactlx backing \\(bad magic\\); numactlx never overwrites a file it did not create`;
const DAMAGED_SB = (f: string) => `${esc(f)}: damaged superblock \\(version field \\d+ is not a numactlx version\\)`;

const overwrite = (file: string, at: number, bytes: Buffer): void => {
  const fd = fs.openSync(file, 'r+');
  try { fs.writeSync(fd, bytes, 0, bytes.length, at); } finally { fs.closeSync(fd); }
};
const magicAndGarbage = (file: string, garbage: number, size: number): void => {
  fs.writeFileSync(file, Buffer.concat([Buffer.from('NUMACTLX', 'latin1'), randomBytes(garbage, seed + 1)]), { mode: 0o600 });
  if (size > garbage + 8) fs.truncateSync(file, size);
};

const corruptions: Corruption[] = [
  { name: 'truncated to 4096 bytes', file: 'trunc-4k.img', make: (f) => fs.truncateSync(f, 4096),
    remap: (f) => `invalid --remap: ${esc(f)}: the file's size 4096 is too small: a backing needs at least 1052672 bytes \\(its metadata area and one 4 KiB frame\\)`,
    verbs: TOO_SMALL_RECORDED(4096),
    repair: (f) => `${esc(f)}: the file's size 4096 is too small: a backing needs at least 1052672 bytes \\(its metadata area and one 4 KiB frame\\)` },
  { name: 'truncated to half', file: 'trunc-half.img', make: (f) => fs.truncateSync(f, 8 << 20),
    remap: (f) => `${esc(f)}: too small: its superblock records 16777216 bytes, the file has 8388608`,
    verbs: TOO_SMALL_RECORDED(8 << 20), repair: TOO_SMALL_RECORDED(8 << 20) },
  { name: 'first 8 KiB zeroed (both superblock copies)', file: 'zeroed.img', make: (f) => overwrite(f, 0, Buffer.alloc(8192)),
    remap: BAD_MAGIC_REMAP, verbs: BAD_MAGIC_VERB, repair: BAD_MAGIC_VERB },
  { name: 'first 8 KiB random (seeded)', file: 'random.img', make: (f) => overwrite(f, 0, randomBytes(8192, seed)),
    remap: BAD_MAGIC_REMAP, verbs: BAD_MAGIC_VERB, repair: BAD_MAGIC_VERB },
  { name: 'NUMACTLX then garbage, 16 MiB', file: 'magic-16m.img', make: (f) => magicAndGarbage(f, 65536, 16 << 20),
    remap: DAMAGED_SB, verbs: DAMAGED_SB, repair: DAMAGED_SB },
  { name: 'NUMACTLX then 100000 bytes of garbage', file: 'magic-odd.img', make: (f) => magicAndGarbage(f, 100000, 0),
    remap: (f) => `invalid --remap: ${esc(f)}: the file's size 100008 is not a multiple of the page size \\(4096 bytes\\)`,
    verbs: DAMAGED_SB,
    repair: (f) => `${esc(f)}: the file's size 100008 is not a multiple of the page size \\(4096 bytes\\)` },
];

/** Each corruption twice: one copy for every verb, one for repair alone (which may rewrite). */
function makeCorrupt(): void {
  for (const c of corruptions) {
    for (const file of [path.join(corruptDir, c.file), path.join(corruptDir, `repair-${c.file}`)]) {
      if (c.file.startsWith('magic-')) c.make(file);
      else {
        fs.copyFileSync(real, file);
        c.make(file);
      }
    }
  }
}

const corruptCases: Case[] = corruptions.flatMap((c) => {
  const f = path.join(corruptDir, c.file);
  const verb = (v: string, args: string[]): Case => ({
    name: `${c.name}: ${v}`, args: [v, ...args], unchanged: [f],
    first: new RegExp(`^numactlx: ${v}: ${c.verbs(f)}$`),
  });
  return [
    { name: `${c.name}: as --remap backing`, args: asBacking(f), unchanged: [f], first: new RegExp(`^numactlx: ${c.remap(f)}$`) },
    verb('snapshots', [f]),
    verb('verify', [f]),
    verb('export', [f, '1', '--format', 'core', '-o', out]),
    verb('rm', [f, '1']),
    verb('diff', [f, '1', '1']),
  ];
});
// repair last (its own copies): it may rewrite what it repairs, so only the rule is checked.
const repairCases: Case[] = corruptions.map((c) => {
  const f = path.join(corruptDir, `repair-${c.file}`);
  return { name: `${c.name}: repair`, args: ['repair', f], first: new RegExp(`^numactlx: repair: ${c.repair(f)}$`) };
});

describe('4. corrupted and truncated backings', () => {
  test.each(corruptCases)('$name', async (c) => { await refused({ ...c, oneLine: true }); }, TEST_TIMEOUT);
  test.each(repairCases)('$name', async (c) => { await refused({ ...c, oneLine: true }); }, TEST_TIMEOUT);
  test('the real backing they were copied from is fine (the rows above tested the copies)', async () => {
    const r = await numactlx(['verify', real]);
    expect([r.exitCode, r.stderr]).toEqual([0, '']);
    expect(String(r.stdout)).toMatch(/: 1 snapshots?, \d+ pages, \d+ frames: clean$/);
  });
});

// ---- 5. bad snapshot ids for the verbs --------------------------------------------------

const NOT_AN_ID = (v: string, id: string): RegExp =>
  new RegExp(`^numactlx: ${v}: no snapshot '${esc(id)}' in ${esc(real)} \\(not an id, and no snapshot has that label; its snapshots: 1\\)$`);
const NO_SUCH = (v: string, id: string): RegExp => new RegExp(`^numactlx: ${v}: no snapshot ${id} in ${esc(real)} \\(its snapshots: 1\\)$`);

const verbsWithId = (id: string, sep: string[] = []): Array<[string, string[]]> => [
  ['export', ['export', real, '--format', 'core', '-o', out, ...sep, id]],
  ['rm', ['rm', real, ...sep, id]],
  ['diff', ['diff', real, '1', ...sep, id]],
];

const idRows: Array<{ id: string; label: string; first: (v: string) => RegExp; sep?: string[] }> = [
  { id: '0', label: '0', first: (v) => NO_SUCH(v, '0') },
  { id: '-1', label: '-1 (read as an option)', first: (v) => new RegExp(`^numactlx: ${v}: unknown option '-1' \\(valid: .*\\)$`) },
  { id: '-1', label: '-1 after --', first: (v) => NOT_AN_ID(v, '-1'), sep: ['--'] },
  { id: '1.5', label: '1.5', first: (v) => NOT_AN_ID(v, '1.5') },
  { id: 'abc', label: 'abc (no such label)', first: (v) => NOT_AN_ID(v, 'abc') },
  // Above 2^53: Number() would round it to ...992; the message echoes the digits typed.
  { id: '9007199254740993', label: '9007199254740993 (above 2^53)', first: (v) => NO_SUCH(v, '9007199254740993') },
  // Leading zeros are not an id: a typo must not pick snapshot 1 (and rm it).
  { id: '00001', label: '00001', first: (v) => NOT_AN_ID(v, '00001') },
  { id: '', label: 'an empty string', first: (v) => NOT_AN_ID(v, '') },
];

const ids: Case[] = idRows.flatMap(({ id, label, first, sep }) =>
  verbsWithId(id, sep).map(([v, args]) => ({ name: `${v} with id ${label}`, args, first: first(v), unchanged: [real] })));

describe('5. bad snapshot ids', () => {
  test.each(ids)('$name', async (c) => { await refused(c); }, TEST_TIMEOUT);
  test('snapshot 1 is still there (no row removed it)', async () => {
    const r = await numactlx(['snapshots', '--json', real]);
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(String(r.stdout)).map((s: { id: number }) => s.id)).toEqual([1]);
  });
});

// ---- 6. bad cron and config -------------------------------------------------------------

const confDir = path.join(dir, 'config');
fs.mkdirSync(confDir);
const conf = (name: string, text: string | Buffer): string => {
  const p = path.join(confDir, name);
  fs.writeFileSync(p, text);
  return p;
};
const confFifo = path.join(confDir, 'fifo.json');
beforeAll(async () => { await execa('mkfifo', [confFifo]); });
const bigConf = conf('big.json', `{"keep": 3${' '.repeat(1 << 20)}}`);
const session = (...opts: string[]): string[] => [`--remap=3,${fresh},size=16m`, '--membind=3', ...opts, ...program];
const cronFields = '\\(fields: \\[second\\] minute hour day-of-month month day-of-week\\)';
const confErr = (p: string, why: string): RegExp => new RegExp(`^numactlx: --config ${esc(p)}: ${why}$`);
const VALID_KEYS = 'unknown key \\(valid: schedules, keep, snapshot_signal, snapshot_on_exit\\)';

const cronAndConfig: Case[] = [
  { name: "--schedule '* * *'", args: session('--schedule', '* * *'),
    first: new RegExp(`^numactlx: invalid --schedule '\\* \\* \\*': expected 5 or 6 fields but got 3 ${cronFields}$`) },
  { name: "--schedule '61 * * * *'", args: session('--schedule', '61 * * * *'),
    first: new RegExp(`^numactlx: invalid --schedule '61 \\* \\* \\* \\*': bad minute field '61' \\(valid: 0-59; fields: `) },
  { name: "--schedule '*/0 * * * *'", args: session('--schedule', '*/0 * * * *'),
    first: new RegExp(`^numactlx: invalid --schedule '\\*/0 \\* \\* \\* \\*': bad minute field '\\*/0' \\(valid: 0-59; fields: `) },
  { name: "--schedule '@reboot'", args: session('--schedule', '@reboot'),
    first: new RegExp(`^numactlx: invalid --schedule '@reboot': pattern includes illegal characters ${cronFields}$`) },
  { name: '--schedule with an empty string', args: session('--schedule', ''),
    first: new RegExp(`^numactlx: invalid --schedule '': empty ${cronFields}$`) },
  { name: '--config of a missing file', args: session('--config', path.join(confDir, 'missing.json')),
    first: confErr(path.join(confDir, 'missing.json'), 'cannot read it: ENOENT') },
  { name: '--config of a directory', args: session('--config', confDir), first: confErr(confDir, 'cannot read it: EISDIR') },
  { name: '--config of a FIFO (must not block)', args: session('--config', confFifo), first: confErr(confFifo, 'not a regular file') },
  { name: '--config /dev/zero (must not read forever)', args: session('--config', '/dev/zero'), first: confErr('/dev/zero', 'not a regular file') },
  { name: '--config of a file over 1 MiB', args: session('--config', bigConf),
    first: confErr(bigConf, `${(1 << 20) + 11} bytes, more than a settings file may hold \\(1048576\\)`) },
  { name: '--config with invalid JSON', args: session('--config', conf('invalid.json', '{"keep": 3,')),
    first: confErr(path.join(confDir, 'invalid.json'), 'not valid JSON: .+') },
  { name: '--config with an unknown key', args: session('--config', conf('unknown.json', '{"keep": 3, "bogus": 1}')),
    first: confErr(path.join(confDir, 'unknown.json'), `bogus: ${VALID_KEYS}`) },
  { name: '--config with keep: -1', args: session('--config', conf('keep-neg.json', '{"keep": -1}')),
    first: confErr(path.join(confDir, 'keep-neg.json'), 'keep: must be a positive integer, got -1') },
  { name: '--config with keep: "3"', args: session('--config', conf('keep-str.json', '{"keep": "3"}')),
    first: confErr(path.join(confDir, 'keep-str.json'), 'keep: must be a positive integer, got "3"') },
  { name: '--config with schedule: 5 (the key is schedules)', args: session('--config', conf('schedule.json', '{"schedule": 5}')),
    first: confErr(path.join(confDir, 'schedule.json'), `schedule: ${VALID_KEYS}`) },
  { name: '--config with schedules: 5', args: session('--config', conf('schedules.json', '{"schedules": 5}')),
    first: confErr(path.join(confDir, 'schedules.json'), 'schedules: must be an array, got 5') },
];

describe('6. bad cron and config', () => {
  test.each(cronAndConfig)('$name', async (c) => { await refused(c); }, TEST_TIMEOUT);
});

// ---- 7. resident limits (--max-resident, resident=) -----------------------------------

const residentOf = (r: string, size = '64m'): string[] => [`--remap=3,${fresh},size=${size},resident=${r}`, '--membind=3', ...program];
const residents: Case[] = [
  { name: 'resident=1m (below 2 MiB)', args: residentOf('1m'),
    first: /^numactlx: invalid --remap: resident=1\.0M of node 3 is below the smallest limit, 2\.0M$/ },
  { name: 'resident=128m of a 64m node', args: residentOf('128m'),
    first: /^numactlx: invalid --remap: resident=128\.0M of node 3 is larger than the node \(64\.0M\)$/ },
  { name: 'resident=12q (bad suffix)', args: residentOf('12q'),
    first: new RegExp(`^numactlx: invalid --remap '3,${esc(fresh)},size=64m,resident=12q': invalid size '12q' \\(a number with an optional k, m, g or t suffix\\)$`) },
  { name: 'resident= empty', args: residentOf(''),
    first: /^numactlx: invalid --remap '.*': invalid size '' \(a number with an optional k, m, g or t suffix\)$/ },
  { name: 'resident= given twice', args: [`--remap=3,${fresh},size=64m,resident=4m,resident=8m`, '--membind=3', ...program],
    first: /^numactlx: invalid --remap '.*': resident= given twice$/ },
  { name: '--max-resident 1k', args: ['--max-resident', '1k', `--remap=3,${fresh},size=64m`, '--membind=3', ...program],
    first: /^numactlx: invalid --remap: --max-resident 1\.0K for node 3 is below the smallest limit, 2\.0M$/ },
  { name: '--max-resident 1g of a 64m node', args: ['--max-resident=1g', `--remap=3,${fresh},size=64m`, '--membind=3', ...program],
    first: /^numactlx: invalid --remap: --max-resident 1\.0G for node 3 is larger than the node \(64\.0M\)$/ },
  { name: '--max-resident 4x', args: ['--max-resident=4x', `--remap=3,${fresh},size=64m`, '--membind=3', ...program],
    first: /^numactlx: invalid --max-resident '4x': invalid size '4x' \(a number with an optional k, m, g or t suffix\)$/ },
  { name: '--max-resident without a virtual node', args: ['--max-resident=4m', '--membind=0', ...program],
    first: /^numactlx: --max-resident needs a virtual node \(--remap=NODE,PATH\): it limits the memory of virtual nodes$/ },
];

describe('7. resident limits', () => {
  test.each(residents)('$name', async (c) => { await refused(c); }, TEST_TIMEOUT);
});

test('the marker program does run with a valid session (the marker check can fail)', async () => {
  const ok = path.join(dir, 'ok.img');
  const r = await numactlx([`--remap=3,${ok},size=16m`, '--membind=3', ...program]);
  expect(r.exitCode).toBe(0);
  expect(fs.existsSync(marker)).toBe(true);
});
