// --snapshot-on-exit with a multi-threaded program (reliability issue, item 3): the
// snapshot is taken at the exit stop of the last thread to reach one, also when the
// threads it joined have not been reported gone by waitpid yet (the test that found it
// skipped the snapshot 4 runs in 6, exit 0 and no word). exit_running returns from main
// while its threads run: every thread passes its exit stop before waitpid reports any.
import path from 'node:path';
import { numactlx } from '../helpers/numactlx.js';
import { compileFixture } from '../helpers/fixtures.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

const RUNS = 6;

afterAll(() => removeTmpDirs());

test(`a program that exits while its 8 threads run leaves its exit snapshot, ${RUNS} runs of ${RUNS}`, async () => {
  const exitRunning = await compileFixture('exit_running');
  for (let run = 1; run <= RUNS; run++) {
    const backing = path.join(tmpDir(), 'n3.img');
    const r = await numactlx([`--remap=3,${backing},size=64m`, '--membind=3', '--snapshot-on-exit', '--', exitRunning, '8', '1m'],
      { env: { NUMACTLX_RUNTIME_DIR: tmpDir() } });
    expect({ run, exit: r.exitCode, stderr: r.stderr }).toEqual({ run, exit: 0, stderr: '' });
    expect(r.stdout).toBe('filled 8');
    const list = await numactlx(['snapshots', backing, '--json']);
    const snaps = JSON.parse(list.stdout) as Array<{ pages: number }>;
    expect({ run, snapshots: snaps.length }).toEqual({ run, snapshots: 1 });
    // 8 threads × 1 MiB of their own: all of it is in the snapshot.
    expect(snaps[0].pages).toBeGreaterThanOrEqual(8 * 256);
  }
}, 120_000);
