// --max-resident with real programs whose data is several times their node's resident
// limit (issue 12): sqlite3 with an in-memory database larger than the limit, and
// redis-server with more keys than fit. Each checks every row or key it wrote, in an order
// that scatters the accesses, and --stats must show the node's pages going to the backing
// and coming back while the resident pages stayed within the limit.
import { execa } from 'execa';
import fs from 'node:fs';
import path from 'node:path';
import { NUMACTLX } from '../helpers/numactlx.js';
import { waitFor } from '../helpers/proc.js';
import { prng, testSeed } from '../helpers/random.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';
import { node3, onVirtualNode } from '../helpers/virtual.js';
import type { SessionStats } from '../../src/channels/session-stats.js';

afterAll(removeTmpDirs);

const MIB = 1024 * 1024;
/** The resident limit of both tests, and what the node may hold beyond it (one fault-ahead window and a drop's worth). */
const LIMIT = '8m';
const LIMIT_PAGES = 8 * MIB / 4096;
const SLACK_PAGES = 512;

function checkEviction(stats: SessionStats, dataBytes: number): void {
  const ev = node3(stats).eviction!;
  expect(ev.max_resident_bytes).toBe(8 * MIB);
  // The data is several times the limit: most of it went to the backing and came back.
  expect(ev.evictions * 4096).toBeGreaterThan(dataBytes / 2);
  expect(ev.refaults).toBeGreaterThan(0);
  expect(ev.peak_resident_pages).toBeLessThanOrEqual(LIMIT_PAGES + SLACK_PAGES);
}

test('sqlite3: an in-memory database 4x the resident limit, every row checked in table and scattered index order, updated, integrity ok', async () => {
  const which = await execa('sh', ['-c', 'command -v sqlite3'], { reject: false });
  if (which.exitCode !== 0) throw new Error('sqlite3 is needed (Debian package sqlite3)');
  const ROWS = 100_000;
  // Row i: v = "<i*7>:" and 290 times the letter of i % 26; a random-looking walk by index
  // (row a looks up row (a*7919) % ROWS + 1, a permutation) touches the pages scattered.
  const row = "printf('%d:%.290s', id * MUL, replace(printf('%0290d', 0), '0', char(65 + id % 26)))";
  const bad = (mul: string): string => `SELECT count(*) FROM t WHERE CAST(substr(v, 1, instr(v, ':') - 1) AS INTEGER) != id * (${mul}) `
    + 'OR substr(v, instr(v, \':\') + 1, 1) != char(65 + id % 26) OR length(v) != instr(v, \':\') + 290;';
  const sql = [
    'CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v TEXT);',
    `WITH RECURSIVE c(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM c WHERE id < ${ROWS}) `
      + `INSERT INTO t SELECT id, printf('key-%08d', id), ${row.replace('MUL', '7')} FROM c;`,
    'CREATE INDEX tk ON t(k);',
    'SELECT page_count * page_size FROM pragma_page_count, pragma_page_size;',
    bad('7'),
    `SELECT count(*) FROM t AS a JOIN t AS b ON b.k = printf('key-%08d', (a.id * 7919) % ${ROWS} + 1) `
      + 'WHERE CAST(substr(b.v, 1, instr(b.v, \':\') - 1) AS INTEGER) = b.id * 7;',
    `UPDATE t SET v = ${row.replace('MUL', 'CASE WHEN id % 4 = 0 THEN 11 ELSE 7 END')};`,
    bad('CASE WHEN id % 4 = 0 THEN 11 ELSE 7 END'),
    'PRAGMA integrity_check;',
  ].join('\n');
  const { result, stats } = await onVirtualNode(['sqlite3', ':memory:'], { size: `512m,resident=${LIMIT}`, options: { input: sql } });
  expect(result.stderr).toBe('');
  expect(result.exitCode).toBe(0);
  const [dbBytes, ...rest] = String(result.stdout).split('\n');
  // The database alone is over four times the limit.
  expect(Number(dbBytes)).toBeGreaterThan(4 * 8 * MIB);
  expect(rest).toEqual(['0', String(ROWS), '0', 'ok']);
  checkEviction(stats, Number(dbBytes));
}, 600000);

const PORT = 7393;

async function redisCli(args: string[], input?: string): Promise<string> {
  const r = await execa('redis-cli', ['-h', '127.0.0.1', '-p', String(PORT), ...args], { input, reject: false });
  if (r.exitCode !== 0) throw new Error(`redis-cli ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

test('redis-server: 300k keys (several times the resident limit) set, then every one read back in a seeded random order', async () => {
  const which = await execa('sh', ['-c', 'command -v redis-server redis-cli'], { reject: false });
  if (which.exitCode !== 0) throw new Error('redis-server and redis-cli are needed (Debian packages redis-server, redis-tools)');
  const KEYS = 300_000;
  const value = (i: number): string => `value-${i * 7}-${String.fromCharCode(97 + (i % 26)).repeat(40 + (i % 60))}`;
  const dir = tmpDir();
  const statsFile = path.join(dir, 'stats.json');
  const server = execa(NUMACTLX, [`--remap=3,${dir}/node3.img,size=1g,resident=${LIMIT}`, '--membind=3', '--stats', statsFile, '--',
    'redis-server', '--port', String(PORT), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
  { reject: false });
  let log = '';
  server.stdout!.on('data', (d: Buffer) => { log += d.toString(); });
  let usedMemory = 0;
  try {
    await waitFor('redis-server to log "Ready to accept connections"', () => {
      if (server.exitCode !== null) throw new Error(`redis-server ended (exit ${server.exitCode}) before it was ready`);
      return log.includes('Ready to accept connections');
    }, 60000).catch((err: Error) => { throw new Error(`${err.message}; its log: ${log}`); });
    const commands = Array.from({ length: KEYS }, (_, i) => `SET key:${i} ${value(i)}\r\n`).join('');
    expect(await redisCli(['--pipe'], commands)).toContain(`errors: 0, replies: ${KEYS}`);
    expect(await redisCli(['dbsize'])).toBe(String(KEYS));
    usedMemory = Number(/used_memory:(\d+)/.exec(await redisCli(['info', 'memory']))![1]);
    // Every key, in an order drawn from the seed, 10k per MGET.
    const rng = prng(testSeed('redis under eviction'));
    const order = Array.from({ length: KEYS }, (_, i) => i);
    for (let i = KEYS - 1; i > 0; i--) {
      const j = rng.below(i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (let at = 0; at < KEYS; at += 10_000) {
      const batch = order.slice(at, at + 10_000);
      const got = (await redisCli(['mget', ...batch.map((i) => `key:${i}`)])).split('\n');
      const wrong = batch.filter((i, n) => got[n] !== value(i));
      expect(wrong).toEqual([]);
    }
    await redisCli(['shutdown', 'nosave']).catch(() => '');
  } finally {
    server.kill('SIGTERM');
  }
  const r = await server;
  expect(r.exitCode).toBe(0);
  // redis's data alone is several times the limit.
  expect(usedMemory).toBeGreaterThan(3 * 8 * MIB);
  checkEviction(JSON.parse(fs.readFileSync(statsFile, 'utf8')) as SessionStats, usedMemory);
}, 600000);
