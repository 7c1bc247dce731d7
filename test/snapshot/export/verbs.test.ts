// The offline verbs' cores as functions over a fake source: snapshots' table and JSON,
// naming a snapshot, export's checks and report, rm's flow, argument parsing.
import fs from 'node:fs';
import path from 'node:path';
import { SetupError, UsageError } from '../../../launcher/errors.js';
import { findSnapshot, formatIds, listSnapshots } from '../../../launcher/verbs/snapshots.js';
import { formatMs } from '../../../launcher/format.js';
import { checkOutput, exportCommand, exportSnapshot, formatExport } from '../../../launcher/verbs/export.js';
import { parseVerbArgs, positionals, type VerbSpec } from '../../../launcher/verbs/parse.js';
import { removeVerb } from '../../../launcher/verbs/rm.js';
import { FakeSource } from '../../helpers/fake-source.js';
import { removeTmpDirs, tmpDir } from '../../helpers/tmp.js';

afterAll(removeTmpDirs);

function threeSnapshots(): FakeSource {
  const s = new FakeSource('/data/node3.img');
  s.addSnapshot({ label: 'before-upgrade', time: '2025-03-01T10:00:00.123Z', processes: [{ pid: 7, pages: [[0x1000, 1], [0x2000, 2]] }],
    stats: { pages: 2, new_pages: 2, bytes_written: 8192, pause_ms: 0.42, copy_ms: 3.1 } });
  s.addSnapshot({ label: null, time: '2025-03-01T10:05:00.000Z', processes: [{ pid: 7, pages: [[0x1000, 1]] }],
    stats: { pages: 1, new_pages: 1, bytes_written: 4096, pause_ms: 12.4, copy_ms: 1520 } });
  s.addSnapshot({ id: 5, label: 'twin', processes: [{ pid: 7, pages: [] }] });
  s.addSnapshot({ id: 6, label: 'twin', processes: [{ pid: 7, pages: [] }] });
  return s;
}

describe('snapshots', () => {
  test('the table: id, label, time, pages, new pages, written, pause, copy', () => {
    const s = threeSnapshots();
    s.records.splice(2);
    expect(listSnapshots(s)).toBe([
      'ID  LABEL           TIME                  PAGES  NEW  WRITTEN  PAUSE   COPY',
      '1   before-upgrade  2025-03-01T10:00:00Z  2      2    8.0K     0.42ms  3.1ms',
      '2   -               2025-03-01T10:05:00Z  1      1    4.0K     12ms    1.52s',
      '',
    ].join('\n'));
  });

  test('--json: an array with the stats fields by name', () => {
    const json = JSON.parse(listSnapshots(threeSnapshots(), { json: true }));
    expect(json).toHaveLength(4);
    expect(json[0]).toEqual({
      id: 1, label: 'before-upgrade', time: '2025-03-01T10:00:00.123Z', program: ['fake', '--run'], node: 3, pids: [7],
      pages: 2, new_pages: 2, bytes_written: 8192, pause_ms: 0.42, copy_ms: 3.1,
    });
    expect(json[1].label).toBeNull();
  });

  test('none', () => {
    expect(listSnapshots(new FakeSource('/x.img'))).toBe('no snapshots in /x.img\n');
    expect(listSnapshots(new FakeSource('/x.img'), { json: true })).toBe('[]\n');
  });

  test('formats', () => {
    expect([0, 0.004, 0.42, 1, 9.999, 10, 999.4, 1000, 61234].map(formatMs)).toEqual(
      ['0ms', '0ms', '0.42ms', '1ms', '10ms', '10ms', '999ms', '1.00s', '61.23s']);
    expect(formatIds([1, 2, 3, 5, 8, 9])).toBe('1-3, 5, 8-9');
  });
});

describe('naming a snapshot', () => {
  const s = threeSnapshots();
  test.each([
    ['2', 2], ['before-upgrade', 1], ['5', 5],
  ])('%s → snapshot %d', (ref, id) => {
    expect(findSnapshot('export', s, ref).id).toBe(id);
  });

  test.each([
    ['9', 'export: no snapshot 9 in /data/node3.img (its snapshots: 1-2, 5-6)'],
    ['nightly', "export: no snapshot 'nightly' in /data/node3.img (not an id, and no snapshot has that label; its snapshots: 1-2, 5-6)"],
    ['twin', "export: label 'twin' names 2 snapshots in /data/node3.img (ids 5-6): give the id"],
  ])('%s: %s', (ref, message) => {
    expect(() => findSnapshot('export', s, ref)).toThrow(SetupError);
    expect(() => findSnapshot('export', s, ref)).toThrow(message);
  });

  test('an empty backing', () => {
    expect(() => findSnapshot('diff', new FakeSource('/e.img'), '1')).toThrow('diff: no snapshot 1 in /e.img (it has no snapshots)');
  });
});

describe('argument parsing', () => {
  const { spec } = exportCommand;
  const bare = (name: string): VerbSpec => ({ name, usage: '', options: [] });
  test('options anywhere, -o as --output', () => {
    const args = parseVerbArgs(spec, ['p', '--format', 'raw', '1', '-o', 'dir', '--force']);
    expect(args.positional).toEqual(['p', '1']);
    expect(args).toMatchObject({ help: false, strings: { format: 'raw', output: 'dir' }, flags: { force: true } });
    expect(positionals('export', args, ['PATH', 'SNAP'])).toEqual(['p', '1']);
  });

  test.each([
    [['--bogus'], "export: unknown option '--bogus' (valid: --format, --output, --pid, --force, --help)"],
    [['--format'], "export: option '--format' requires an argument"],
    [['-o'], "export: option '-o' requires an argument"],
    [['--format', '--force'], "export: option '--format' requires an argument"],
    [['--force=yes'], "export: option '--force' doesn't allow an argument"],
    [['-o', 'a', '-o', 'b'], 'export: --output given 2 times'],
  ])('%j: %s', (argv, message) => {
    expect(() => parseVerbArgs(spec, argv)).toThrow(UsageError);
    expect(() => parseVerbArgs(spec, argv)).toThrow(message);
  });

  test('missing and extra positionals', () => {
    expect(() => positionals('diff', parseVerbArgs(bare('diff'), ['p', '1']), ['PATH', 'A', 'B'])).toThrow('diff: missing B');
    expect(() => positionals('rm', parseVerbArgs(bare('rm'), ['p', '1', '2']), ['PATH', 'SNAP'])).toThrow("rm: unexpected argument '2' (expected PATH SNAP)");
  });
});

describe('export', () => {
  test('checkOutput: refuses what exists or is a link, before any work', () => {
    const d = tmpDir();
    const file = path.join(d, 'core');
    fs.writeFileSync(file, '');
    fs.symlinkSync(file, path.join(d, 'link'));
    expect(() => checkOutput('core', file, false)).toThrow(`export: ${file} exists (use --force to replace it)`);
    expect(() => checkOutput('core', file, true)).not.toThrow();
    expect(() => checkOutput('core', path.join(d, 'link'), false)).toThrow(/link is a symbolic link: numactlx never writes through one \(remove it, or --force to replace the link itself\)$/);
    expect(() => checkOutput('core', d, true)).toThrow(`export: ${d} is a directory: EISDIR`);
    expect(() => checkOutput('raw', file, false)).toThrow(/is not a directory: ENOTDIR/);
    expect(() => checkOutput('raw', path.join(d, 'link'), true)).toThrow(/is a symbolic link/);
    expect(() => checkOutput('raw', d, false)).not.toThrow();
    fs.writeFileSync(path.join(d, 'pages.bin'), '');
    expect(() => checkOutput('raw', d, false)).toThrow(`export: ${d}/pages.bin exists (use --force to replace it)`);
    expect(() => checkOutput('core', path.join(d, 'new'), false)).not.toThrow();
  });

  test('exportSnapshot: by label, core and raw, errors as the verb\'s', () => {
    const s = threeSnapshots();
    const d = tmpDir();
    const done = exportSnapshot(s, { snapshot: 'before-upgrade', format: 'core', out: path.join(d, 'c') });
    expect(done).toMatchObject({ id: 1, pids: [7], pages: 2, runs: 1 });
    expect(formatExport('core', done).out).toBe(`snapshot 1: ELF core of pid 7 (1 thread) to ${d}/c: 2 pages in 1 segment, 12.0K\n`);
    const raw = exportSnapshot(s, { snapshot: '2', format: 'raw', out: path.join(d, 'r') });
    expect(formatExport('raw', raw)).toEqual({ out: `snapshot 2: raw pages of pid 7 to ${d}/r: 1 page in 1 run, 4.0K\n`, err: '' });
    expect(() => exportSnapshot(s, { snapshot: '1', format: 'core', out: path.join(d, 'x'), pid: 9 }))
      .toThrow(SetupError);
    expect(() => exportSnapshot(s, { snapshot: '1', format: 'core', out: path.join(d, 'x'), pid: 9 }))
      .toThrow('export: snapshot 1 has no process 9 (its processes: 7)');
    expect(() => exportSnapshot(s, { snapshot: '1', format: 'core', out: path.join(d, 'c') })).toThrow(`export: ${d}/c exists (use --force to replace it)`);
  });

  test('pages that fail their checksum: a warning on stderr', () => {
    const s = threeSnapshots();
    s.frames[s.records[0].processes[0].pages[1].frame][0] ^= 1;
    const done = exportSnapshot(s, { snapshot: '1', format: 'raw', out: tmpDir() });
    expect(formatExport('raw', done).err).toBe('numactlx: export: warning: 1 page failed its checksum and was exported as found '
      + '(first: 0x2000 of pid 7, frame 1); run numactlx verify\n');
  });
});

describe('rm', () => {
  test('finds the snapshot, closes the view, then removes it', async () => {
    const s = threeSnapshots();
    const calls: string[] = [];
    const out = await removeVerb('/data/node3.img', 'before-upgrade', {
      open: async (work) => {
        calls.push('open');
        try {
          return work(s);
        } finally {
          calls.push('close');
        }
      },
      remove: (p, id) => {
        calls.push(`remove ${p} ${id}`);
        return s.records[0];
      },
    });
    expect(calls).toEqual(['open', 'close', 'remove /data/node3.img 1']);
    expect(out).toBe('removed snapshot 1 (before-upgrade) from /data/node3.img: 2 pages\n');
  });

  test('an unknown snapshot is not passed to the catalog; the catalog\'s errors become the verb\'s line', async () => {
    const s = threeSnapshots();
    const deps = {
      open: async (work: (src: FakeSource) => number) => work(s),
      remove: (): never => {
        const err = new Error('/data/node3.img is in use by another numactlx (pid 4242)');
        err.name = 'BackingError';
        throw err;
      },
    };
    await expect(removeVerb('/data/node3.img', '9', deps)).rejects.toThrow('rm: no snapshot 9 in /data/node3.img (its snapshots: 1-2, 5-6)');
    await expect(removeVerb('/data/node3.img', '1', deps)).rejects.toThrow(SetupError);
    await expect(removeVerb('/data/node3.img', '1', deps)).rejects.toThrow('rm: /data/node3.img is in use by another numactlx (pid 4242)');
  });
});
