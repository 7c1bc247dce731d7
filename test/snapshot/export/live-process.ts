// A snapshot taken by hand from a live, stopped process, into a FakeSource: its VMAs from
// /proc/PID/maps, its anonymous pages from /proc/PID/mem (what a virtual node would hold),
// its threads' registers with PTRACE_GETREGS. The test's stand-in for the engine, to check
// the ELF core writer against gdb.
import fs from 'node:fs';
import { execa } from 'execa';
import { detach, getRegs, interrupt, PTRACE_O, seize } from '../../../src/sys/ptrace.js';
import { waitpid, WIFSTOPPED, __WALL } from '../../../src/sys/wait.js';
import type { SnapshotPage, SnapshotRecord, ThreadRegs, Vma } from '../../../src/snapshot/types.js';
import { FakeSource, PAGE } from '../../helpers/fake-source.js';
import { waitFor } from '../../helpers/proc.js';
import { readProcStat } from '../../../src/sys/procfs.js';

export function parseMaps(text: string): Vma[] {
  return text.trim().split('\n').map((line) => {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) \S+ \d+\s*(.*)$/.exec(line);
    if (!m) throw new Error(`unparseable maps line: ${line}`);
    return { start: parseInt(m[1], 16), end: parseInt(m[2], 16), perms: m[3], offset: parseInt(m[4], 16), path: m[5] };
  });
}

/** The VMAs a virtual node would have held: anonymous private memory (heap, stack, bss, mmap). */
export const anonymous = (v: Vma): boolean => (v.path === '' || v.path === '[heap]' || v.path === '[stack]')
  && v.perms[3] === 'p' && v.perms[0] === 'r' && v.end < 2 ** 47;

export interface StoppedProgram {
  pid: number;
  /** The lines it printed before stopping. */
  output: string;
}

/**
 * Starts `argv` in the background of a shell (so that it is not a child of this process:
 * libuv's SIGCHLD handler would reap its ptrace stops, DESIGN.md §3.1) with stdout to
 * `outFile`, and waits until it has printed and stopped itself.
 */
export async function startStopped(argv: string[], outFile: string): Promise<StoppedProgram> {
  const quoted = argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const { stdout } = await execa('sh', ['-c', `${quoted} >'${outFile}' 2>&1 </dev/null & echo $!`]);
  const pid = Number(stdout.trim());
  await waitFor(`pid ${pid} to stop`, () => readProcStat(pid).state === 'T');
  return { pid, output: fs.readFileSync(outFile, 'utf8') };
}

/**
 * Each thread's user_regs_struct: PTRACE_SEIZE, PTRACE_INTERRUPT, wait for the stop,
 * PTRACE_GETREGS, PTRACE_DETACH. The process is group-stopped (SIGSTOP) and stays so.
 */
export function threadRegisters(pid: number): ThreadRegs[] {
  const tids = fs.readdirSync(`/proc/${pid}/task`).map(Number).sort((a, b) => a - b);
  return tids.map((tid) => {
    seize(tid, PTRACE_O.EXITKILL);
    try {
      interrupt(tid);
      const { status } = waitpid(tid, __WALL);
      if (!WIFSTOPPED(status)) throw new Error(`thread ${tid}: not a stop (status ${status.toString(16)})`);
      return { tid, regs: Buffer.from(getRegs(tid)) };
    } finally {
      detach(tid);
    }
  });
}

const PM_PRESENT = 1n << 63n;
const PM_FILE = 1n << 61n;

/**
 * The anonymous pages (present, not a file page: copied on write) of the private file
 * mappings of `pid` — their .data, .bss, GOT — from /proc/PID/pagemap.
 */
export function cowPages(pid: number, vmas: readonly Vma[]): number[] {
  const pagemap = fs.openSync(`/proc/${pid}/pagemap`, 'r');
  const out: number[] = [];
  try {
    for (const vma of vmas) {
      if (!vma.path.startsWith('/') || vma.perms[3] !== 'p') continue;
      const n = (vma.end - vma.start) / PAGE;
      const entries = Buffer.alloc(n * 8);
      fs.readSync(pagemap, entries, 0, entries.length, (vma.start / PAGE) * 8);
      for (let i = 0; i < n; i++) {
        const e = entries.readBigUInt64LE(i * 8);
        if ((e & PM_PRESENT) !== 0n && (e & PM_FILE) === 0n) out.push(vma.start + i * PAGE);
      }
    }
  } finally {
    fs.closeSync(pagemap);
  }
  return out;
}

/**
 * Snapshot `id` of the stopped process `pid`, its anonymous pages stored in `source`:
 * those of anonymous VMAs (what a virtual node holds), and with `cow` also the
 * copied-on-write pages of its private file mappings.
 */
export function snapshotOf(pid: number, source: FakeSource, id: number, cow = false): SnapshotRecord {
  const vmas = parseMaps(fs.readFileSync(`/proc/${pid}/maps`, 'utf8'));
  const threads = threadRegisters(pid);
  const pages: SnapshotPage[] = [];
  const mem = fs.openSync(`/proc/${pid}/mem`, 'r');
  try {
    const buf = Buffer.alloc(PAGE);
    const addrs: number[] = cow ? cowPages(pid, vmas) : [];
    for (const vma of vmas.filter(anonymous)) {
      for (let addr = vma.start; addr < vma.end; addr += PAGE) addrs.push(addr);
    }
    for (const addr of addrs.sort((a, b) => a - b)) {
      if (fs.readSync(mem, buf, 0, PAGE, addr) !== PAGE) throw new Error(`short read at ${addr.toString(16)}`);
      pages.push(source.page(addr, buf));
    }
  } finally {
    fs.closeSync(mem);
  }
  const command = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
  const record: SnapshotRecord = {
    id, label: 'live', time: new Date().toISOString(), program: command, node: 3,
    processes: [{ pid, exe: fs.readlinkSync(`/proc/${pid}/exe`), command, vmas, threads, pages }],
    stats: { pages: pages.length, new_pages: pages.length, bytes_written: pages.length * PAGE, pause_ms: 0, copy_ms: 0 },
  };
  source.records.push(record);
  return record;
}

