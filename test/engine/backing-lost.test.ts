// A backing truncated or deleted under a running session (reliability issue, item 6):
// numactlx used to die of SIGBUS when the file was truncated while a snapshot was being
// copied (the checksum thread read the frames through the mapping). Now every frame
// access that can meet a truncation is a kernel copy (backing/frame-copy.ts), and the
// loss ends the session: one line naming the backing and where it was found, the program
// killed, numactlx's status 135 (128 + SIGBUS), the snapshot's requester told why.
import fs from 'node:fs';
import path from 'node:path';
import { compileFixture } from '../helpers/fixtures.js';
import { killSessions, startSession } from '../helpers/live-session.js';
import { numactlx } from '../helpers/numactlx.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

afterEach(killSessions);
afterAll(removeTmpDirs);

const LOST_STATUS = 135;
const ENDS = ': its node\'s memory cannot be kept, so the session ends: the program is killed and numactlx exits with status 135';

test('truncated while a snapshot is being copied: one line, the program killed, numactlx exits 135 (no SIGBUS of its own)', async () => {
  const bin = await compileFixture('snap_writer');
  // 1 GiB of dirty pages: its copy into a fresh file takes seconds (≈ 0.3 GB/s here,
  // docs/BENCHMARKS.md), so the truncation lands in it once status shows it started.
  // Synchronous dirty tracking: the copy follows the freeze (with asynchronous tracking a
  // pre-copy runs before it instead, and status shows no copy phase to truncate in).
  const s = startSession([bin, '1g', '7'], { size: '2g', env: { NUMACTLX_DIRTY_TRACKING: 'sync' } });
  await s.waitOut(/^ready /m, 180_000);
  const snapshot = numactlx(['snapshot', '--wait', String(s.pid)], { env: s.env });
  const copying = await s.waitStatus('the copy of snapshot 1 to start', (st) => {
    const c = st.stats.copying;
    return c !== undefined && c.id === 1 && c.pages_left < c.frozen_pages && c;
  });
  fs.truncateSync(s.backing, 0);
  const r = await s.done;
  const client = await snapshot;

  expect(copying.frozen_pages).toBeGreaterThanOrEqual(262144);
  expect({ exit: r.exitCode, signal: r.signal }).toEqual({ exit: LOST_STATUS, signal: undefined });
  const lines = s.err().split('\n').filter((l) => l !== '');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^numactlx: backing ${s.backing} was truncated to \\d+ bytes during the session ` +
    `\\(its snapshots need \\d+\\) \\(found while snapshot 1 was being copied\\)${ENDS.replace(/[()]/g, '\\$&')}$`));
  // The program never finished: it was killed, not left running.
  expect(s.out()).not.toMatch(/snap_writer ok/);
  // The requester is told the snapshot's real outcome.
  expect(client.exitCode).toBe(1);
  expect(String(client.stderr)).toMatch(/^numactlx: snapshot: .*truncated to \d+ bytes during the session/);
  expect(String(client.stderr)).not.toMatch(/\n\s+at /);
  // The truncated file afterwards: one line from verify, no stack trace.
  const v = await numactlx(['verify', s.backing]);
  expect(v.exitCode).toBe(1);
  expect(String(v.stderr).split('\n')).toHaveLength(1);
  expect(String(v.stderr)).toMatch(/^numactlx: /);
}, 300_000);

test.each([
  ['deleted', (file: string) => `rm ${file}`, 'was deleted during the session'],
  ['truncated', (file: string) => `truncate -s 2m ${file}`, 'was truncated to 2097152 bytes during the session \\(its snapshots need 67108864\\)'],
])('%s before the exit snapshot: one line, exit 135 whatever the program\'s status', async (_what, act, problem) => {
  const backing = path.join(tmpDir(), 'n3.img');
  const s = startSession(['sh', '-c', `${act(backing)} && echo survived; exit 4`], { size: '64m', backing, extra: ['--snapshot-on-exit'] });
  const r = await s.done;
  expect({ exit: r.exitCode, stdout: s.out().trim() }).toEqual({ exit: LOST_STATUS, stdout: 'survived' });
  expect(s.err()).toMatch(new RegExp(`^numactlx: backing ${s.backing} ${problem} \\(found as snapshot 1 was being frozen\\)` +
    `${ENDS.replace(/[()]/g, '\\$&')}\\n$`));
}, 60_000);

test('deleted while no snapshot is taken: said at the end of the session, exit 135', async () => {
  const backing = path.join(tmpDir(), 'n3.img');
  const s = startSession(['sh', '-c', `rm ${backing}; exit 0`], { size: '64m', backing });
  const r = await s.done;
  expect(r.exitCode).toBe(LOST_STATUS);
  expect(s.err()).toBe(`numactlx: backing ${backing} was deleted during the session (found as the session ended): its node's memory ` +
    'cannot be kept, so the session ends: numactlx exits with status 135\n');
}, 60_000);
