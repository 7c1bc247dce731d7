// Group "kill9": numactlx is killed with SIGKILL while a snapshot of 128 MiB of changed
// pages is being copied. The kernel must kill the program with it (PTRACE_O_EXITKILL),
// `verify` must be clean, the snapshot committed before must be intact to the byte, the
// one being copied must not appear, and the backing must be usable by the next session.
import fs from 'node:fs';
import { Group, assert, waitUntil } from '../lib/harness.mjs';
import {
  MEMHOLD, NUMACTLX, backings, checkSnapshotPages, numactlx, numactlxJson, prepareFreshBackings, run, snapshotList, startMemhold, why,
} from '../lib/programs.mjs';

const g = new Group('kill9');
await prepareFreshBackings(g);
const SIZE = '128m';

for (const b of backings()) {
  const t = (s) => `${b.name}: ${s}`;
  let held;
  let before;
  let killed;
  let program;

  const first = t('a snapshot of memhold 128m is committed');
  await g.check(first, async () => {
    held = await startMemhold(b, SIZE, 1);
    g.onEnd(() => held.session.kill());
    before = await numactlxJson(['snapshot', '--label', 'before', '--wait', String(held.session.pid)]);
  });

  const kill = t('kill -9 of numactlx while the next snapshot is being copied');
  await g.check(kill, async () => {
    held.session.send('fill 2\n');
    await held.session.line(/^filled 2$/, 'memhold to rewrite every page');
    [program] = held.session.children();
    assert(program, 'numactlx has no child process (the program)');
    // `numactlx snapshot` without --wait answers once the program is frozen and resumed:
    // the 32768 changed pages are then being copied.
    killed = await numactlxJson(['snapshot', '--label', 'killed', String(held.session.pid)]);
    held.session.kill('SIGKILL');
    const exit = await held.session.exited;
    assert(exit.signal === 'SIGKILL', `numactlx ended with ${JSON.stringify(exit)} instead of being killed`);
  }, { needs: [first] });

  await g.check(t('the program dies with numactlx'), async () => {
    const gone = () => {
      try {
        return fs.readFileSync(`/proc/${program}/stat`, 'utf8').split(') ')[1].startsWith('Z');
      } catch {
        return true;
      }
    };
    await waitUntil(`program ${program} to be killed by the kernel`, 60_000, async () => gone(), 100);
  }, { needs: [kill] });

  await g.check(t('verify is clean after the kill'), async () => {
    await numactlx(['verify', b.path]);
  }, { needs: [kill] });

  await g.check(t('the snapshot being copied was not committed, the one before is listed'), async () => {
    const ids = (await snapshotList(b)).map((s) => s.id);
    assert(ids.includes(before.id), `snapshot ${before.id} (before the kill) is missing: snapshots ${ids.join(', ')}`);
    assert(!ids.includes(killed.id), `snapshot ${killed.id} was committed before the kill landed: the kill was not mid-copy`);
  }, { needs: [kill] });

  await g.check(t('the snapshot before the kill holds exactly its pages'), async () => {
    return checkSnapshotPages(b, before.id, held, 1);
  }, { needs: [kill] });

  await g.check(t('the next session on the backing works and snapshots at exit'), async () => {
    const r = await run(NUMACTLX, [`--remap=${b.remap}`, '--membind=3', '--snapshot-on-exit', '--', MEMHOLD, '1m', '5']);
    assert(r.code === 0, `numactlx … memhold 1m 5: exit status ${r.code}: ${why(r.stderr)}`);
    const list = await snapshotList(b);
    assert(list.length === 2 && list[1].id > before.id, `snapshots after the session: ${list.map((s) => s.id).join(', ')}`);
    await numactlx(['verify', b.path]);
  }, { needs: [kill] });
}

process.exitCode = await g.end();
