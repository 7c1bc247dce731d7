// Raw export: DIR/pages.bin + DIR/index.json, round trip over a fake source; how outputs
// are created (0600, never through a symlink, --force by rename).
import fs from 'node:fs';
import path from 'node:path';
import { ExportError } from '../../../src/snapshot/export-pages.js';
import { exportRaw, RAW_FORMAT } from '../../../src/snapshot/export-raw.js';
import { FakeSource } from '../../helpers/fake-source.js';
import { patternPage } from '../../helpers/pattern.js';
import { removeTmpDirs, tmpDir } from '../../helpers/tmp.js';
import type { SnapshotRecord } from '../../../src/snapshot/types.js';

afterAll(removeTmpDirs);

interface RawIndex {
  format: string;
  version: number;
  page_size: number;
  id: number;
  label: string | null;
  time: string;
  program: string[];
  processes: Array<{
    pid: number;
    exe: string;
    vmas: Array<{ start: string; end: string; perms: string; offset: number; path: string }>;
    threads: Array<{ tid: number; regs: Record<string, string> }>;
    runs: Array<{ addr: string; pages: number; offset: number }>;
  }>;
}

/** Every page the export holds, as pid → address → bytes, read back through index.json. */
function readBack(dir: string): { index: RawIndex; pages: Map<number, Map<number, Buffer>> } {
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as RawIndex;
  const bin = fs.readFileSync(path.join(dir, 'pages.bin'));
  const pages = new Map<number, Map<number, Buffer>>();
  for (const p of index.processes) {
    const m = new Map<number, Buffer>();
    for (const run of p.runs) {
      for (let i = 0; i < run.pages; i++) {
        m.set(Number(run.addr) + i * 4096, bin.subarray(run.offset + i * 4096, run.offset + (i + 1) * 4096));
      }
    }
    pages.set(p.pid, m);
  }
  return { index, pages };
}

function twoProcesses(): { source: FakeSource; record: SnapshotRecord } {
  const source = new FakeSource();
  const record = source.addSnapshot({
    label: 'before-upgrade', program: ['sim', '--steps', '10'],
    processes: [
      { pid: 10, tids: [10, 11], pages: [[0x1000, 1], [0x2000, 2], [0x3000, 3], [0x7f0000000000, 4]] },
      { pid: 20, pages: [[0x5000, 5], [0x9000, 6]] },
    ],
  });
  return { source, record };
}

test('round trip: every page of every process, in address order, with its runs, VMAs and registers', () => {
  const { source, record } = twoProcesses();
  const out = path.join(tmpDir(), 'export');
  const summary = exportRaw(source, record, out);
  expect(summary).toMatchObject({ path: out, pids: [10, 20], threads: 3, pages: 6, bytes: 6 * 4096, runs: 4, badPages: [] });

  const { index, pages } = readBack(out);
  expect(index).toMatchObject({
    format: RAW_FORMAT, version: 1, page_size: 4096, id: 1, label: 'before-upgrade', time: record.time, program: ['sim', '--steps', '10'],
  });
  expect(index.processes.map((p) => p.runs)).toEqual([
    [{ addr: '0x1000', pages: 3, offset: 0 }, { addr: '0x7f0000000000', pages: 1, offset: 3 * 4096 }],
    [{ addr: '0x5000', pages: 1, offset: 4 * 4096 }, { addr: '0x9000', pages: 1, offset: 5 * 4096 }],
  ]);
  for (const p of record.processes) {
    for (const page of p.pages) expect(pages.get(p.pid)!.get(page.addr)).toEqual(source.frames[page.frame]);
  }
  expect(pages.get(10)!.get(0x2000)).toEqual(patternPage(2));
  const t = index.processes[0].threads[1];
  expect(t.tid).toBe(11);
  expect(Object.keys(t.regs)).toHaveLength(27);
  expect(Object.keys(t.regs).slice(0, 3)).toEqual(['r15', 'r14', 'r13']);
  expect(t.regs.rip).toBe('0x40100b');
  expect(index.processes[0].vmas[0]).toEqual({ start: '0x1000', end: '0x7f0000001000', perms: 'rw-p', offset: 0, path: '' });
  expect(index.processes[0].exe).toBe('/usr/bin/fake');
  for (const f of ['pages.bin', 'index.json']) expect(fs.statSync(path.join(out, f)).mode & 0o777).toBe(0o600);
  expect(fs.statSync(out).mode & 0o777).toBe(0o700);
});

test('--pid: that process only', () => {
  const { source, record } = twoProcesses();
  const out = tmpDir();
  expect(exportRaw(source, record, out, { pid: 20 })).toMatchObject({ pids: [20], pages: 2, runs: 2 });
  const { index } = readBack(out);
  expect(index.processes.map((p) => p.pid)).toEqual([20]);
  expect(index.processes[0].runs[0]).toEqual({ addr: '0x5000', pages: 1, offset: 0 });
  expect(() => exportRaw(source, record, tmpDir(), { pid: 30 })).toThrow(ExportError);
  expect(() => exportRaw(source, record, tmpDir(), { pid: 30 })).toThrow('snapshot 1 has no process 30 (its processes: 10, 20)');
});

test('pages whose frame no longer matches its checksum are exported as found, and listed', () => {
  const { source, record } = twoProcesses();
  const bad = record.processes[1].pages[1];
  source.frames[bad.frame][100] ^= 0xff;
  const summary = exportRaw(source, record, tmpDir());
  expect(summary.badPages).toEqual([{ pid: 20, addr: 0x9000, frame: bad.frame }]);
});

describe('outputs', () => {
  const { source, record } = twoProcesses();

  test('existing outputs: an error naming the file, nothing written, unless force (then replaced)', () => {
    const out = tmpDir();
    fs.writeFileSync(path.join(out, 'index.json'), 'old');
    expect(() => exportRaw(source, record, out)).toThrow(`${out}/index.json exists (use --force to replace it)`);
    expect(fs.readdirSync(out)).toEqual(['index.json']); // pages.bin, created first, was removed again
    exportRaw(source, record, out, { force: true });
    expect(fs.readdirSync(out).sort()).toEqual(['index.json', 'pages.bin']);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'index.json'), 'utf8')).id).toBe(1);
  });

  test('never through a symlink: not the directory, not a file in it (force replaces the link itself)', () => {
    const base = tmpDir();
    const real = path.join(base, 'real');
    fs.mkdirSync(real);
    fs.symlinkSync(real, path.join(base, 'linked'));
    expect(() => exportRaw(source, record, path.join(base, 'linked'))).toThrow(/linked is a symbolic link: numactlx never writes through one/);
    expect(fs.readdirSync(real)).toEqual([]);

    const out = path.join(base, 'out');
    fs.mkdirSync(out);
    const victim = path.join(base, 'victim');
    fs.writeFileSync(victim, 'keep');
    fs.symlinkSync(victim, path.join(out, 'pages.bin'));
    expect(() => exportRaw(source, record, out)).toThrow(/pages\.bin is a symbolic link: numactlx never writes through one/);
    exportRaw(source, record, out, { force: true });
    expect(fs.readFileSync(victim, 'utf8')).toBe('keep');
    expect(fs.lstatSync(path.join(out, 'pages.bin')).isFile()).toBe(true);
  });

  test('OUT is a file, or its parent is missing', () => {
    const base = tmpDir();
    fs.writeFileSync(path.join(base, 'file'), '');
    expect(() => exportRaw(source, record, path.join(base, 'file'))).toThrow(/file is not a directory: ENOTDIR/);
    expect(() => exportRaw(source, record, path.join(base, 'no/such'))).toThrow(/cannot create directory .*no\/such: ENOENT/);
  });
});
