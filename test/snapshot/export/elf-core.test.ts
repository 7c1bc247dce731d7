// The ELF core writer: its note layouts against glibc's <sys/procfs.h>, the file's
// structure read back, and end to end with gdb on a snapshot taken by hand from a live
// stopped program (test/snapshot/export/live-process.ts).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { buildHeaders, writeCore } from '../../../src/snapshot/elf-core.js';
import {
  encodeNtFile, NT_AUXV, NT_FILE, NT_PRPSINFO, NT_PRSTATUS, PRPSINFO, PRSTATUS,
} from '../../../src/snapshot/elf-core-notes.js';
import { ExportError, type PageRun } from '../../../src/snapshot/export-pages.js';
import { FakeSource, fakeRegs } from '../../helpers/fake-source.js';
import { removeTmpDirs, tmpDir } from '../../helpers/tmp.js';
import { snapshotOf, startStopped } from './live-process.js';
import type { SnapshotRecord } from '../../../src/snapshot/types.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const dir = tmpDir('numactlx-core-');
const started: number[] = [];

afterAll(() => {
  for (const pid of started) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  removeTmpDirs();
});

async function compile(name: string, flags: string[] = []): Promise<string> {
  const out = path.join(dir, name);
  await execa('cc', ['-O2', '-g', '-Wall', '-o', out, path.join(HERE, 'fixtures', `${name}.c`), ...flags]);
  return out;
}

/** gdb on PROGRAM and CORE running `commands`; never rejects. */
function gdb(program: string, core: string, commands: string[]): Promise<{ stdout: string; stderr: string; exitCode?: number }> {
  const args = ['-batch', '-nx', '-iex', 'set debuginfod enabled off', ...commands.flatMap((c) => ['-ex', c]), program, core];
  return execa('gdb', args, { reject: false, env: { DEBUGINFOD_URLS: '' } }) as Promise<{ stdout: string; stderr: string; exitCode?: number }>;
}

interface CoreFile {
  type: number;
  machine: number;
  phnum: number;
  phdrs: Array<{ type: number; flags: number; offset: number; vaddr: number; filesz: number; memsz: number; align: number }>;
  notes: Array<{ name: string; type: number; desc: Buffer }>;
  bytes: Buffer;
}

/** An ELF64 core read back, independently of the writer. */
function readCore(file: string): CoreFile {
  const b = fs.readFileSync(file);
  expect(b.subarray(0, 8)).toEqual(Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]));
  const phoff = Number(b.readBigUInt64LE(32));
  const phnum = b.readUInt16LE(56);
  const phdrs = [];
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * 56;
    phdrs.push({
      type: b.readUInt32LE(at), flags: b.readUInt32LE(at + 4), offset: Number(b.readBigUInt64LE(at + 8)),
      vaddr: Number(b.readBigUInt64LE(at + 16)), filesz: Number(b.readBigUInt64LE(at + 32)),
      memsz: Number(b.readBigUInt64LE(at + 40)), align: Number(b.readBigUInt64LE(at + 48)),
    });
  }
  const notes = [];
  const note = phdrs.find((p) => p.type === 4)!;
  for (let at = note.offset; at < note.offset + note.filesz;) {
    const namesz = b.readUInt32LE(at);
    const descsz = b.readUInt32LE(at + 4);
    const type = b.readUInt32LE(at + 8);
    const name = b.subarray(at + 12, at + 12 + namesz - 1).toString('latin1');
    const descAt = at + 12 + ((namesz + 3) & ~3);
    notes.push({ name, type, desc: b.subarray(descAt, descAt + descsz) });
    at = descAt + ((descsz + 3) & ~3);
  }
  return { type: b.readUInt16LE(16), machine: b.readUInt16LE(18), phnum, phdrs, notes, bytes: b };
}

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;
const ripOf = (regs: Buffer): bigint => regs.readBigUInt64LE(16 * 8);
const rspOf = (regs: Buffer): bigint => regs.readBigUInt64LE(19 * 8);

test('the note layouts match glibc <sys/procfs.h> on x86_64 (elf_prstatus is 336 bytes)', async () => {
  const probe = await compile('procfs_layout');
  const c = JSON.parse((await execa(probe)).stdout) as Record<string, number>;
  expect(c.elf_prstatus).toBe(336);
  expect(c.elf_prstatus).toBe(PRSTATUS.size);
  expect(c['elf_prstatus.pr_reg.size']).toBe(216);
  expect({
    cursig: c['elf_prstatus.pr_cursig'], sigpend: c['elf_prstatus.pr_sigpend'], sighold: c['elf_prstatus.pr_sighold'],
    pid: c['elf_prstatus.pr_pid'], ppid: c['elf_prstatus.pr_ppid'], pgrp: c['elf_prstatus.pr_pgrp'], sid: c['elf_prstatus.pr_sid'],
    reg: c['elf_prstatus.pr_reg'], fpvalid: c['elf_prstatus.pr_fpvalid'],
  }).toEqual({
    cursig: PRSTATUS.cursig, sigpend: PRSTATUS.sigpend, sighold: PRSTATUS.sighold, pid: PRSTATUS.pid, ppid: PRSTATUS.ppid,
    pgrp: PRSTATUS.pgrp, sid: PRSTATUS.sid, reg: PRSTATUS.reg, fpvalid: PRSTATUS.fpvalid,
  });
  expect(c['elf_prstatus.pr_utime']).toBe(48);
  expect({
    size: c.elf_prpsinfo, state: c['elf_prpsinfo.pr_state'], sname: c['elf_prpsinfo.pr_sname'], flag: c['elf_prpsinfo.pr_flag'],
    uid: c['elf_prpsinfo.pr_uid'], gid: c['elf_prpsinfo.pr_gid'], pid: c['elf_prpsinfo.pr_pid'], ppid: c['elf_prpsinfo.pr_ppid'],
    pgrp: c['elf_prpsinfo.pr_pgrp'], sid: c['elf_prpsinfo.pr_sid'], fname: c['elf_prpsinfo.pr_fname'],
    fnameSize: c['elf_prpsinfo.pr_fname.size'], psargs: c['elf_prpsinfo.pr_psargs'], psargsSize: c['elf_prpsinfo.pr_psargs.size'],
  }).toEqual({
    size: PRPSINFO.size, state: PRPSINFO.state, sname: PRPSINFO.sname, flag: PRPSINFO.flag, uid: PRPSINFO.uid, gid: PRPSINFO.gid,
    pid: PRPSINFO.pid, ppid: PRPSINFO.ppid, pgrp: PRPSINFO.pgrp, sid: PRPSINFO.sid, fname: PRPSINFO.fname,
    fnameSize: PRPSINFO.fnameSize, psargs: PRPSINFO.psargs, psargsSize: PRPSINFO.psargsSize,
  });
});

describe('structure', () => {
  // Pages 0x10000-0x12000 (an rw- VMA, then r-x from 0x11000: two runs although adjacent),
  // 0x20000 (a gap: a third run), and two threads, the main one listed second.
  const source = new FakeSource();
  const vmas = [
    { start: 0x10000, end: 0x11000, perms: 'rw-p', offset: 0, path: '' },
    { start: 0x11000, end: 0x13000, perms: 'r-xp', offset: 0x3000, path: '/usr/lib/libfake.so.1' },
    { start: 0x20000, end: 0x30000, perms: 'rw-p', offset: 0, path: '[heap]' },
    { start: 0x40000, end: 0x41000, perms: 'r--p', offset: 0, path: '/usr/bin/fake' },
  ];
  const record = source.addSnapshot({
    label: 'x', program: ['fake', 'arg one', 'two'],
    processes: [{ pid: 100, tids: [101, 100], vmas, command: ['fake-with-a-long-name', 'arg one'], exe: '/usr/bin/fake-with-a-long-name', pages: [[0x10000, 1], [0x11000, 2], [0x20000, 3]] }],
  });
  record.processes[0].threads[0].regs = fakeRegs({ rip: 0x11111n, rsp: 0x20ff0n, fs_base: 0x7000n });
  record.processes[0].threads[1].regs = fakeRegs({ rip: 0x22222n, rsp: 0x20f00n });

  test('ET_CORE for x86_64: PT_NOTE, then one PT_LOAD per run, page aligned, flags from the VMA', () => {
    const out = path.join(dir, 'structure.core');
    const summary = writeCore(source, record, undefined, out);
    expect(summary).toMatchObject({ pids: [100], threads: 2, pages: 3, runs: 3, badPages: [] });
    const core = readCore(out);
    expect(core.type).toBe(4);
    expect(core.machine).toBe(62);
    expect(core.phdrs.map((p) => p.type)).toEqual([4, 1, 1, 1]);
    const loads = core.phdrs.slice(1);
    expect(loads.map((p) => [p.vaddr, p.filesz, p.memsz, p.flags, p.align])).toEqual([
      [0x10000, 4096, 4096, 6, 4096], [0x11000, 4096, 4096, 5, 4096], [0x20000, 4096, 4096, 6, 4096],
    ]);
    loads.forEach((p, i) => {
      expect(p.offset % 4096).toBe(0);
      expect(core.bytes.subarray(p.offset, p.offset + 4096)).toEqual(source.frames[record.processes[0].pages[i].frame]);
    });
    expect(fs.statSync(out).size).toBe(loads[2].offset + 4096);
    expect(fs.statSync(out).mode & 0o777).toBe(0o600);
  });

  test('notes: NT_PRSTATUS of the main thread first, NT_PRPSINFO, NT_FILE, then the other threads', () => {
    const core = readCore(path.join(dir, 'structure.core'));
    expect(core.notes.every((n) => n.name === 'CORE')).toBe(true);
    // No NT_AUXV: /usr/bin/fake-with-a-long-name does not exist to rebuild it from.
    expect(core.notes.map((n) => n.type)).toEqual([NT_PRSTATUS, NT_PRPSINFO, NT_FILE, NT_PRSTATUS]);
    const [main, psinfo, file, other] = core.notes;
    expect(main.desc.length).toBe(336);
    expect(main.desc.readInt32LE(PRSTATUS.pid)).toBe(100);
    expect(main.desc.subarray(PRSTATUS.reg, PRSTATUS.reg + 216)).toEqual(record.processes[0].threads[1].regs);
    expect(other.desc.readInt32LE(PRSTATUS.pid)).toBe(101);
    expect(ripOf(other.desc.subarray(PRSTATUS.reg))).toBe(0x11111n);
    expect(psinfo.desc.length).toBe(136);
    expect(psinfo.desc.readInt32LE(PRPSINFO.pid)).toBe(100);
    expect(psinfo.desc.subarray(PRPSINFO.fname, PRPSINFO.fname + 16).toString('latin1')).toBe('fake-with-a-lon\0');
    expect(psinfo.desc.subarray(PRPSINFO.psargs).toString('latin1').replace(/\0+$/, '')).toBe('fake-with-a-long-name arg one');
    // NT_FILE: count 2, page size, (start, end, offset in pages) ×2, then the paths.
    expect(file.desc).toEqual(encodeNtFile(vmas));
    const u = (i: number): number => Number(file.desc.readBigUInt64LE(i * 8));
    expect([u(0), u(1), u(2), u(3), u(4), u(5), u(6), u(7)]).toEqual([2, 4096, 0x11000, 0x13000, 3, 0x40000, 0x41000, 0]);
    expect(file.desc.subarray(64).toString('latin1')).toBe('/usr/lib/libfake.so.1\0/usr/bin/fake\0');
  });

  test('--pid chooses the process; an unknown pid is an error naming the ones there are', () => {
    const two = source.addSnapshot({
      processes: [{ pid: 300, pages: [[0x5000, 7]] }, { pid: 301, tids: [301, 302], pages: [[0x6000, 8], [0x7000, 9]] }],
    });
    const out = path.join(dir, 'child.core');
    expect(writeCore(source, two, 301, out)).toMatchObject({ pids: [301], threads: 2, pages: 2, runs: 1 });
    const core = readCore(out);
    expect(core.phdrs[1]).toMatchObject({ vaddr: 0x6000, filesz: 8192 });
    expect(core.notes.filter((n) => n.type === NT_PRSTATUS).map((n) => n.desc.readInt32LE(PRSTATUS.pid))).toEqual([301, 302]);
    expect(core.notes.find((n) => n.type === NT_PRPSINFO)!.desc.readInt32LE(PRPSINFO.pid)).toBe(301);
    expect(readCore(writeCore(source, two, undefined, path.join(dir, 'first.core')).path).notes[0].desc.readInt32LE(PRSTATUS.pid)).toBe(300);
    expect(() => writeCore(source, record, 7, path.join(dir, 'nope.core'))).toThrow(ExportError);
    expect(() => writeCore(source, record, 7, path.join(dir, 'nope.core'))).toThrow('snapshot 1 has no process 7 (its processes: 100)');
    expect(fs.existsSync(path.join(dir, 'nope.core'))).toBe(false);
  });

  test('more than 65534 segments: e_phnum = PN_XNUM and the count in section header 0', () => {
    const runs: PageRun[] = Array.from({ length: 70000 }, (_, i) => ({ addr: i * 8192, first: i, count: 1, vma: undefined }));
    const { head, dataOffset } = buildHeaders(Buffer.alloc(20), runs);
    expect(head.readUInt16LE(56)).toBe(0xffff);
    const shoff = Number(head.readBigUInt64LE(40));
    expect(shoff).toBe(64 + 70001 * 56);
    expect([head.readUInt16LE(58), head.readUInt16LE(60), head.readUInt16LE(62)]).toEqual([64, 1, 0]);
    expect(head.readUInt32LE(shoff + 44)).toBe(70001); // sh_info
    expect(head.readUInt32LE(shoff + 4)).toBe(0); // SHT_NULL
    expect(dataOffset % 4096).toBe(0);
    const lastLoad = 64 + 70000 * 56;
    expect(Number(head.readBigUInt64LE(lastLoad + 16))).toBe(69999 * 8192);
    expect(Number(head.readBigUInt64LE(lastLoad + 8))).toBe(dataOffset + 69999 * 4096);
  });

  test('never through a symlink; an existing file only with force, replaced atomically', () => {
    const victim = path.join(dir, 'victim');
    fs.writeFileSync(victim, 'keep me');
    const link = path.join(dir, 'link.core');
    fs.symlinkSync(victim, link);
    expect(() => writeCore(source, record, undefined, link)).toThrow(/link\.core is a symbolic link: numactlx never writes through one/);
    writeCore(source, record, undefined, link, undefined, true);
    expect(fs.readFileSync(victim, 'utf8')).toBe('keep me');
    expect(fs.lstatSync(link).isFile()).toBe(true);
    expect(() => writeCore(source, record, undefined, link)).toThrow(/link\.core exists \(use --force to replace it\)/);
    expect(fs.readdirSync(dir).filter((f) => f.includes('numactlx-'))).toEqual([]);
  });

  test('a frame that cannot be read: the error, and no partial core left behind', () => {
    const broken = Object.assign(Object.create(source) as FakeSource, {
      readFrame: () => { throw new Error('EIO reading frame'); },
    });
    const out = path.join(dir, 'broken.core');
    expect(() => writeCore(broken, record, undefined, out)).toThrow('EIO reading frame');
    expect(fs.existsSync(out)).toBe(false);
  });
});

describe('gdb opens the core of a live program', () => {
  let program: string;
  beforeAll(async () => {
    program = await compile('stopped', ['-pthread']);
  });

  async function snapshot(args: string[], cow: boolean): Promise<{ source: FakeSource; record: SnapshotRecord; global: string; heap: string }> {
    const p = await startStopped([program, ...args], path.join(dir, `out-${args.length}-${cow}.txt`));
    started.push(p.pid);
    const m = /global (0x[0-9a-f]+) heap (0x[0-9a-f]+)/.exec(p.output);
    if (!m) throw new Error(`the program said: ${p.output}`);
    const source = new FakeSource();
    const record = snapshotOf(p.pid, source, 1, cow);
    process.kill(p.pid, 'SIGKILL'); // the core must stand on its own
    return { source, record, global: m[1], heap: m[2] };
  }

  test('node pages only (anonymous VMAs): the global, the heap and the registers as recorded; bt runs', async () => {
    const { source, record, heap } = await snapshot([], false);
    const core = path.join(dir, 'anon.core');
    writeCore(source, record, undefined, core);
    const regs = record.processes[0].threads[0].regs;
    // An anonymous-only snapshot has no COW'd file pages, so the executable's own headers
    // give the load address (NT_AUXV), as a PIE program needs.
    expect(readCore(core).notes.map((n) => n.type)).toContain(NT_AUXV);
    const r = await gdb(program, core, ['x/2gx &global', `x/2gx ${heap}`, 'p/x $rip', 'p/x $rsp', 'bt']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/<global>:\s+0x1122334455660000\s+0x1122334455660001/);
    expect(r.stdout).toMatch(new RegExp(`${heap}:\\s+0xa5a5a5a500000000\\s+0xa5a5a5a500000001`));
    expect(r.stdout).toContain(`$1 = ${hex(ripOf(regs))}`);
    expect(r.stdout).toContain(`$2 = ${hex(rspOf(regs))}`);
    expect(r.stdout).toMatch(/^#0 +0x[0-9a-f]+ in /m);
    expect(r.stderr).not.toMatch(/error|cannot access/i);
  });

  test('with the copied-on-write pages of file mappings too: shared libraries, threads, a full backtrace', async () => {
    const { source, record } = await snapshot(['threads'], true);
    const core = path.join(dir, 'full.core');
    writeCore(source, record, undefined, core);
    const [main, second] = record.processes[0].threads;
    const r = await gdb(program, core, ['p/x $rip', 'info threads', 'bt', 'thread 2', 'bt', 'info sharedlibrary']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`$1 = ${hex(ripOf(main.regs))}`);
    expect(r.stdout).toContain(`LWP ${main.tid}`);
    expect(r.stdout).toContain(`LWP ${second.tid}`);
    expect(r.stdout).toMatch(/raise .*\n.*in main \(/);
    expect(r.stdout).toMatch(/in idle \(/);
    expect(r.stdout).toMatch(/libc\.so\.6/);
    expect(r.stderr).not.toMatch(/error|cannot access/i);
  });
});
