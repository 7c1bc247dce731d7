// Group "persist", three boots on the same NVDIMM image and disk (run-suite.sh):
//
//   persist.mjs 1   memhold 16m on node 3 of each backing; a snapshot with --wait (durable),
//                   then the guest is powered off hard at once, the sessions still running
//   persist.mjs 2   `snapshots`, `verify` and `export` show that snapshot with its exact
//                   contents; then memhold 128m, a snapshot made durable, every page
//                   rewritten, a second snapshot asked for, and the guest powered off while
//                   that one is being copied
//   persist.mjs 3   every snapshot committed before is there with its exact contents, the
//                   one being copied is not, and verify is clean
//
// What a boot must tell the next one (addresses, ids, seeds) is in persist-state.json in
// the shared directory, which is the host's and outlives the guest.
import fs from 'node:fs';
import path from 'node:path';
import { Group, assert } from '../lib/harness.mjs';
import { backings, checkSnapshotPages, numactlx, numactlxJson, prepareFreshBackings, snapshotList, startMemhold } from '../lib/programs.mjs';

const phase = Number(process.argv[2]);
const g = new Group(`persist-${phase}`);
await prepareFreshBackings(g);
const STATE = path.join(process.env.GUEST_SHARE ?? '.', 'persist-state.json');
const state = fs.existsSync(STATE) ? JSON.parse(fs.readFileSync(STATE, 'utf8')) : {};
// written with fsync: the next thing may be a power-off (the share is 9p: the host has it then)
const save = () => {
  const fd = fs.openSync(STATE, 'w');
  fs.writeSync(fd, JSON.stringify(state, null, 2));
  fs.fsyncSync(fd);
  fs.closeSync(fd);
};
const region = (r) => ({ addr: BigInt(r.addr), pages: r.pages });

// A snapshot listed after a power-off, with its exact pages.
async function checkKept(b, what, s) {
  const listed = (await snapshotList(b)).find((x) => x.id === s.id);
  assert(listed, `${what} (snapshot ${s.id}) is not listed by numactlx snapshots`);
  assert(listed.label === s.label, `snapshot ${s.id} is labelled ${JSON.stringify(listed.label)}, not ${JSON.stringify(s.label)}`);
  return checkSnapshotPages(b, s.id, region(s), s.seed, s.every);
}

if (phase === 1) {
  const sessions = [];
  for (const b of backings()) {
    await g.check(`${b.name}: a snapshot made durable (snapshot --wait)`, async () => {
      const held = await startMemhold(b, '16m', 11);
      sessions.push(held.session);
      held.session.send('every 7 13\n');
      await held.session.line(/^every 7 13 \d+$/, 'memhold to rewrite every 7th page');
      const s = await numactlxJson(['snapshot', '--label', 'durable', '--wait', String(held.session.pid)]);
      state[b.name] = { durable: { id: s.id, label: 'durable', addr: `0x${held.addr.toString(16)}`, pages: held.pages, seed: 11, every: { k: 7, seed: 13 } } };
      save();
    });
  }
  if (Object.keys(state).length > 0) g.powerOff('right after the snapshots were durable');
  for (const s of sessions) s.kill();
}

if (phase === 2) {
  const crashing = [];
  for (const b of backings()) {
    const t = (s) => `${b.name}: ${s}`;
    const kept = state[b.name]?.durable;
    const listed = t('after a hard power-off, the durable snapshot is listed and exports exactly');
    await g.check(listed, async () => {
      assert(kept, 'persist-1 left no durable snapshot to look for');
      return checkKept(b, 'the durable snapshot', kept);
    });
    await g.check(t('after a hard power-off, verify is clean'), async () => {
      await numactlx(['verify', b.path]);
    }, { needs: [listed] });

    await g.check(t('memhold 128m: a durable snapshot, every page rewritten, the next snapshot started'), async () => {
      const held = await startMemhold(b, '128m', 21);
      g.onEnd(() => held.session.kill());
      const before = await numactlxJson(['snapshot', '--label', 'before-crash', '--wait', String(held.session.pid)]);
      state[b.name] = { ...state[b.name], beforeCrash: { id: before.id, label: 'before-crash', addr: `0x${held.addr.toString(16)}`, pages: held.pages, seed: 21 } };
      save();
      held.session.send('fill 22\n');
      await held.session.line(/^filled 22$/, 'memhold to rewrite every page');
      crashing.push({ b, held });
    });
  }
  if (crashing.length > 0) {
    // Both copies started together; the answer comes after the freeze, while they copy.
    await g.check('power off while the snapshots are being copied', async () => {
      const answers = await Promise.all(crashing.map(({ held }) => numactlxJson(['snapshot', '--label', 'in-copy', String(held.session.pid)])));
      crashing.forEach(({ b }, i) => { state[b.name].inCopy = { id: answers[i].id }; });
      save();
    });
    g.powerOff('while snapshots were being copied');
  }
}

if (phase === 3) {
  for (const b of backings()) {
    const t = (s) => `${b.name}: ${s}`;
    const mine = state[b.name] ?? {};
    await g.check(t('after a power-off during a copy, verify is clean'), async () => {
      assert(mine.inCopy, 'persist-2 did not power off during a copy on this backing');
      await numactlx(['verify', b.path]);
    });
    await g.check(t('after a power-off during a copy, every earlier snapshot is intact'), async () => {
      assert(mine.durable && mine.beforeCrash, `persist-1 and persist-2 left ${Object.keys(mine).join(', ') || 'nothing'}`);
      const a = await checkKept(b, 'the durable snapshot of the first boot', mine.durable);
      const c = await checkKept(b, 'the durable snapshot of the second boot', mine.beforeCrash);
      return `${a}; ${c}`;
    });
    await g.check(t('the snapshot being copied at the power-off is not committed'), async () => {
      assert(mine.inCopy, 'persist-2 did not power off during a copy on this backing');
      const ids = (await snapshotList(b)).map((s) => s.id);
      assert(!ids.includes(mine.inCopy.id), `snapshot ${mine.inCopy.id} is listed: its copy had ended before the power-off`);
    });
  }
}

process.exitCode = await g.end();
