// Lost pages, forced (reliability issue, item 4): pages frozen for a snapshot that the
// program discards before numactlx has copied them are missing from that snapshot, and
// numactlx must say so — once per session on stderr, per snapshot in `snapshot --wait`,
// `status` and `--stats` (lost_pages) — while the snapshot holds everything else and
// verifies clean. The fixture discards the top of its memory at the very freeze (it sees
// the freeze's PTRACE_INTERRUPT as EINTR in a thread: test/fixtures/discard_on_freeze.c),
// and the copy reaches the top last: every discarded page is lost, not one copied.
// That is synchronous dirty tracking (copy-before-write after the freeze). A pre-copy
// snapshot (asynchronous tracking, src/engine-thread/precopy.ts) has copied every page
// by the end of the pause: the discard loses nothing, and the snapshot holds the pages.
import fs from 'node:fs';
import path from 'node:path';
import { compileFixture } from '../helpers/fixtures.js';
import { patternWord } from '../helpers/pattern.js';
import { RawSnapshot } from '../helpers/raw-export.js';
import { killSessions, startSession } from '../helpers/live-session.js';
import { numactlx } from '../helpers/numactlx.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';
import type { SessionStats } from '../../src/channels/session-stats.js';

afterEach(killSessions);
afterAll(removeTmpDirs);

const DISCARD_MIB = 64;
const DISCARDED = (DISCARD_MIB << 20) / 4096;

test('pages discarded right after the freeze: lost_pages counts each, the line comes once, the snapshots verify clean', async () => {
  const bin = await compileFixture('discard_on_freeze');
  const statsFile = path.join(tmpDir(), 'stats.json');
  const s = startSession([bin, '512m'], { size: '1536m', extra: ['--stats', statsFile], env: { NUMACTLX_DIRTY_TRACKING: 'sync' } });
  await s.waitOut(/^ready /m, 120_000);

  const lostLine = /^numactlx: snapshot 1: 16384 pages frozen in it were unmapped or discarded by the program before they could be copied: the snapshot holds the rest \(said once; numactlx status and --stats count them per snapshot\)$/m;
  for (const id of [1, 2]) {
    if (id === 2) {
      s.send('rewrite 2'); // every page dirty again, the discarded ones placed again
      await s.waitLine('rewrote 2');
    }
    s.send(`arm ${DISCARD_MIB}`);
    await s.waitLine('armed', id);
    const r = await numactlx(['snapshot', '--wait', '--json', String(s.pid)], { env: s.env });
    expect({ exit: r.exitCode, stderr: r.stderr }).toEqual({ exit: 0, stderr: '' });
    const done = JSON.parse(String(r.stdout)) as { id: number; lost_pages: number };
    expect({ id: done.id, lost_pages: done.lost_pages }).toEqual({ id, lost_pages: DISCARDED });
    expect(s.out().split('\n').filter((l) => l === `discarded ${DISCARDED}`)).toHaveLength(id);
    // Said once per session, at the first snapshot that lost pages.
    expect(s.err()).toMatch(lostLine);
    expect(s.err().split('\n').filter((l) => l.includes('frozen in it were unmapped or discarded'))).toHaveLength(1);
  }
  const recent = (await s.status()).stats.triggers?.recent ?? [];
  expect(recent.map((t) => [t.id, t.lost_pages])).toEqual([[1, DISCARDED], [2, DISCARDED]]);

  s.closeInput(); // the fixture checks every page (discarded ones read as zeros) and ends
  const end = await s.done;
  expect({ exit: end.exitCode, ok: /^discard_on_freeze ok \d+$/m.test(s.out()) }).toEqual({ exit: 0, ok: true });
  const stats = JSON.parse(fs.readFileSync(statsFile, 'utf8')) as SessionStats;
  expect(stats.triggers?.recent.map((t) => [t.id, t.lost_pages])).toEqual([[1, DISCARDED], [2, DISCARDED]]);
  const verify = await numactlx(['verify', s.backing]);
  expect(verify.stdout).toMatch(/: 2 snapshots, .*: clean$/);
  expect(verify.exitCode).toBe(0);
}, 600_000);


test('a pre-copy snapshot (asynchronous dirty tracking): the pages discarded right after the freeze are in it, none lost', async () => {
  const bin = await compileFixture('discard_on_freeze');
  const dir = tmpDir();
  const s = startSession([bin, '512m'], { size: '1536m', env: { NUMACTLX_DIRTY_TRACKING: 'async' } });
  const region = Number((await s.waitOut(/^ready (0x[0-9a-f]+)$/m, 120_000))[1]);
  expect((await s.status()).stats.dirty_tracking).toBe('async');
  for (const id of [1, 2]) {
    if (id === 2) {
      s.send('rewrite 2');
      await s.waitLine('rewrote 2');
    }
    s.send(`arm ${DISCARD_MIB}`);
    await s.waitLine('armed', id);
    const r = await numactlx(['snapshot', '--wait', '--json', String(s.pid)], { env: s.env });
    expect({ exit: r.exitCode, stderr: r.stderr }).toEqual({ exit: 0, stderr: '' });
    const done = JSON.parse(String(r.stdout)) as { id: number; lost_pages: number };
    expect({ id: done.id, lost_pages: done.lost_pages }).toEqual({ id, lost_pages: 0 });
    await s.waitLine(`discarded ${DISCARDED}`, id);
  }
  expect(s.err()).not.toContain('frozen in it were unmapped or discarded');
  s.closeInput();
  const end = await s.done;
  expect({ exit: end.exitCode, ok: /^discard_on_freeze ok \d+$/m.test(s.out()) }).toEqual({ exit: 0, ok: true });
  expect((await numactlx(['verify', s.backing])).exitCode).toBe(0);
  // The discarded top of the region, in snapshot 2: the pattern of seed 2 (every 64th page, first and last word).
  const snap = await RawSnapshot.export(s.backing, 2, dir);
  const first = (512 << 20) / 4096 - DISCARDED;
  const wrong: string[] = [];
  for (let p = first; p < first + DISCARDED; p += 64) {
    for (const w of [0, 511]) {
      const got = snap.word(region + p * 4096 + w * 8);
      if (got !== patternWord(2, p, w)) wrong.push(`page ${p} word ${w}: ${got}`);
    }
  }
  expect(wrong.slice(0, 5)).toEqual([]);
}, 600_000);
