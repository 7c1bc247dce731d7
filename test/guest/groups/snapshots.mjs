// Group "snapshots": memhold (test/guest/fixtures) holds 32 MiB of a seeded pattern on node
// 3 of each backing while snapshots are taken by the three triggers — SIGUSR1 to numactlx,
// `numactlx snapshot`, a cron schedule — and 1 % of its pages are rewritten in between.
// Checked: each trigger's snapshot is committed; only what changed is copied (incremental
// bytes); the program's own result; `verify`; raw exports hold exactly the pattern of
// their time; gdb reads the snapshot's memory in an exported core.
import fs from 'node:fs';
import { Group, assert, waitUntil } from '../lib/harness.mjs';
import {
  MEMHOLD, backings, checkSnapshotPages, numactlx, numactlxJson, prepareFreshBackings, patternWord, readStats, run, snapshotList, startMemhold, why,
} from '../lib/programs.mjs';

const g = new Group('snapshots');
await prepareFreshBackings(g);
const SIZE = '32m';
const SEED = 1;
const SEED2 = 2;
const EVERY = 100;

// What memhold prints at the end for these commands, without numactlx.
const native = await run(MEMHOLD, [SIZE, String(SEED)], { input: `every ${EVERY} ${SEED2}\n` });

for (const b of backings()) {
  const t = (s) => `${b.name}: ${s}`;
  const stats = `/tmp/snapshots-${b.name}.json`;
  const config = `/tmp/cron-${b.name}.json`;
  // Every 10 s, labelled so that its snapshots can be told from the others.
  fs.writeFileSync(config, JSON.stringify({ schedules: [{ cron: '*/10 * * * * *', label: 'cron' }] }));
  let held;
  let bySignal;
  let beforeRewrite;
  let afterRewrite;
  let rewritten;

  const started = t('memhold runs on node 3 with a cron schedule');
  await g.check(started, async () => {
    held = await startMemhold(b, SIZE, SEED, { statsFile: stats, extra: ['--config', config] });
    g.onEnd(() => held.session.kill());
  });

  const signal = t('a snapshot by signal (SIGUSR1 to numactlx) is committed');
  await g.check(signal, async () => {
    process.kill(held.session.pid, 'SIGUSR1');
    // the signal's snapshot is the only unlabelled one
    bySignal = await waitUntil('the signal\'s snapshot in `numactlx snapshots`', 300_000,
      async () => (await snapshotList(b)).find((s) => s.label === null));
  }, { needs: [started] });

  const cli = t('a snapshot by `numactlx snapshot --wait` is committed');
  await g.check(cli, async () => {
    beforeRewrite = await numactlxJson(['snapshot', '--label', 'before', '--wait', String(held.session.pid)]);
    assert(beforeRewrite.label === 'before' && beforeRewrite.stats, `numactlx snapshot --wait answered ${JSON.stringify(beforeRewrite)}`);
    const listed = (await snapshotList(b)).find((s) => s.id === beforeRewrite.id);
    assert(listed?.label === 'before', `snapshot ${beforeRewrite.id} is not listed by numactlx snapshots`);
  }, { needs: [started] });

  const rewrite = t('a second CLI snapshot after 1 % of the pages were rewritten');
  await g.check(rewrite, async () => {
    held.session.send(`every ${EVERY} ${SEED2}\n`);
    rewritten = Number((await held.session.line(new RegExp(`^every ${EVERY} ${SEED2} (\\d+)$`), 'memhold to rewrite every 100th page'))[1]);
    afterRewrite = await numactlxJson(['snapshot', '--label', 'after', '--wait', String(held.session.pid)]);
    assert(afterRewrite.id > beforeRewrite.id, `snapshot ids did not increase: ${beforeRewrite.id}, then ${afterRewrite.id}`);
  }, { needs: [cli] });

  const cron = t('a snapshot by the cron schedule is committed');
  await g.check(cron, async () => {
    await waitUntil('a snapshot labelled cron', 300_000, async () => (await snapshotList(b)).find((s) => s.label === 'cron'));
  }, { needs: [started] });

  await g.check(t('incremental: the first snapshot copies every page, later ones only what changed'), async () => {
    const list = await snapshotList(b);
    // The cron schedule runs from the start, so a snapshot may come before memhold is ready
    // (it then holds only what existed: the stack, libc). Every page of memhold's region is
    // in some snapshot up to the signal's, the first taken after "ready"; each one after
    // that copies only what changed.
    const upToSignal = list.filter((s) => s.id <= bySignal.id);
    const later = list.filter((s) => s.id > bySignal.id);
    const first = upToSignal.reduce((n, s) => n + s.new_pages, 0);
    assert(first >= held.pages, `snapshots ${upToSignal.map((s) => s.id).join(', ')} (up to the signal's) copied ${first} pages, fewer than memhold's ${held.pages}`);
    for (const s of list) {
      assert(s.bytes_written === s.new_pages * 4096, `snapshot ${s.id}: bytes_written ${s.bytes_written} for ${s.new_pages} new pages`);
    }
    for (const s of later) {
      // 1 % of the region, plus memhold's stack and a few pages of libc
      assert(s.new_pages < rewritten + 256, `snapshot ${s.id} (${s.label ?? 'unlabelled'}) copied ${s.new_pages} pages; at most ${rewritten} changed`);
    }
    const afterIds = list.filter((s) => s.id > beforeRewrite.id && s.id <= afterRewrite.id);
    const copied = afterIds.reduce((n, s) => n + s.new_pages, 0);
    assert(copied >= rewritten, `snapshots ${afterIds.map((s) => s.id).join(', ')} copied ${copied} pages; ${rewritten} were rewritten`);
    return `${first} pages up to the signal's, then ${later.map((s) => s.new_pages).join(', ')}`;
  }, { needs: [signal, rewrite, cron] });

  const ended = t('memhold ends with the same result as without numactlx, all its memory on node 3');
  await g.check(ended, async () => {
    assert(native.code === 0, `memhold without numactlx: ${why(native.stderr)}`);
    const exit = await held.session.finish('numactlx and memhold to end');
    assert(exit.code === 0, `numactlx … memhold: exit status ${exit.code}${exit.signal ? ` (${exit.signal})` : ''}: ${why(held.session.stderr)}`);
    const mine = held.session.stdout.match(/^memhold ok .*$/m)?.[0];
    const theirs = native.stdout.match(/^memhold ok .*$/m)?.[0];
    assert(mine === theirs, `memhold printed '${mine}', without numactlx '${theirs}'`);
    const node = readStats(stats).nodes[0];
    assert(node.pages_placed >= held.pages, `node 3 got ${node.pages_placed} pages, fewer than memhold's ${held.pages}`);
    assert(node.pages_fallback === 0, `${node.pages_fallback} pages fell back to ordinary memory under --membind=3`);
  }, { needs: [started] });

  await g.check(t('verify: every frame of every snapshot checks out'), async () => {
    await numactlx(['verify', b.path]);
  }, { needs: [cli] });

  await g.check(t('raw exports hold exactly the pattern of their time'), async () => {
    const a = await checkSnapshotPages(b, bySignal.id, held, SEED);
    const c = await checkSnapshotPages(b, afterRewrite.id, held, SEED, { k: EVERY, seed: SEED2 });
    return `${a}; ${c}`;
  }, { needs: [signal, rewrite] });

  await g.check(t('export --format core: gdb reads the snapshot\'s memory'), async () => {
    const core = `/tmp/after-${b.name}.core`;
    await numactlx(['export', b.path, String(afterRewrite.id), '--format', 'core', '-o', core]);
    const at = (page) => `0x${(held.addr + BigInt(page) * 4096n).toString(16)}`;
    // page 0 was rewritten with SEED2, page 1 was not
    const r = await run('/usr/bin/gdb', ['-nx', '-batch', '-ex', `x/2gx ${at(0)}`, '-ex', `x/2gx ${at(1)}`, MEMHOLD, core]);
    const words = [...r.stdout.matchAll(/^0x[0-9a-f]+(?: <[^>]*>)?:\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)$/gm)].flatMap((m) => [BigInt(m[1]), BigInt(m[2])]);
    const want = [patternWord(SEED2, 0, 0), patternWord(SEED2, 0, 1), patternWord(SEED, 1, 0), patternWord(SEED, 1, 1)];
    assert(words.length === 4 && words.every((w, i) => w === want[i]),
      `gdb printed ${JSON.stringify(r.stdout.trim())} ${why(r.stderr)}; want ${want.map((w) => `0x${w.toString(16)}`).join(' ')}`);
  }, { needs: [rewrite] });
}

process.exitCode = await g.end();
