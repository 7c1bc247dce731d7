// A snapshot holds the pages a policy put on a real node too (the snapshot-speed issue,
// item 2: "pages on real nodes"). Under --interleave=0,3 about half of a trapped range's
// pages are in ordinary memory (PLACED_REAL in the engine's table): they cannot be
// write-protected through the virtual node, so the freeze reads them
// (snapshot-extras.ts, PageTable.forEachRealIn) and the commit stores them in frames of
// the first node's backing. An exported snapshot must hold every page of the range with
// the pattern the program wrote, whichever node it is on.
import path from 'node:path';
import { execa } from 'execa';
import { NUMACTLX, numactlx } from '../helpers/numactlx.js';
import { compileFixture } from '../helpers/fixtures.js';
import { patternWord, PAGE } from '../helpers/pattern.js';
import { waitFor } from '../helpers/proc.js';
import { testSeed } from '../helpers/random.js';
import { RawSnapshot } from '../helpers/raw-export.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

afterAll(() => removeTmpDirs());

const PAGES = 2048; // 8 MiB

test('--interleave=0,3: every page of the range is in the snapshot with its content, the real node\'s half as extra pages', async () => {
  const seed = testSeed('real-node-pages');
  const bin = await compileFixture('pattern');
  const dir = tmpDir();
  const backing = path.join(dir, 'node3.img');
  const env = { NUMACTLX_RUNTIME_DIR: tmpDir() };
  const child = execa(NUMACTLX, [`--remap=3,${backing},size=64m`, '--interleave=0,3', '--', bin, 'hold', `${PAGES * 4}k`, String(seed)],
    { env, reject: false, buffer: false, stdin: 'pipe', stderr: 'inherit' });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  await waitFor('the pattern to be written', () => {
    if (child.exitCode !== null) throw new Error(`pattern ended (exit ${child.exitCode}): ${out}`);
    return /^ready 0x[0-9a-f]+$/m.test(out);
  }, 30000);
  const base = Number(BigInt(/^ready (0x[0-9a-f]+)$/m.exec(out)![1]));

  const snap = await numactlx(['snapshot', String(child.pid), '--wait', '--json'], { env });
  expect(snap.exitCode).toBe(0);
  const { id } = JSON.parse(String(snap.stdout)) as { id: number };
  child.stdin!.end();
  expect((await child).exitCode).toBe(0);
  const list = JSON.parse(String((await numactlx(['snapshots', backing, '--json'])).stdout)) as Array<{ id: number; extra_pages: number }>;
  const stats = list.find((r) => r.id === id)!;

  // Interleaving puts about half the pages on node 0: the freeze read them.
  expect(stats.extra_pages).toBeGreaterThan(PAGES / 4);
  const raw = await RawSnapshot.export(backing, id, dir);
  const wrong: number[] = [];
  for (let p = 0; p < PAGES; p++) {
    for (const w of [0, 511]) {
      if (raw.word(base + p * PAGE + w * 8) !== patternWord(seed, p, w)) { wrong.push(p); break; }
    }
  }
  expect(wrong.slice(0, 10)).toEqual([]);
});
