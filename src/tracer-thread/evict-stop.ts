// The tracer's part of an eviction (--max-resident; the engine's is
// src/engine-thread/eviction.ts, the channel src/channels/evict-request.ts): stop every
// thread of one address space, let the engine choose what to drop while nothing of it
// runs, drop it from inside the program, resume.
//
// The drop is process_madvise(PIDFD_SELF_THREAD, iovecs, n, MADV_DONTNEED) injected into a
// stopped thread (inject.ts): MADV_DONTNEED only works on the caller's own memory
// (process_madvise(MADV_DONTNEED) on another process is EINVAL on 6.18, on its own from
// 6.13; PIDFD_SELF from 6.15), and one call drops up to IOV_BATCH ranges. Where it fails
// (an older kernel), one madvise(MADV_DONTNEED) per range not dropped yet.
//
// Where the iovecs go: not on the stack — /proc/PID/mem cannot fault in a page of a
// userfaultfd-registered range (a remote GUP may not wait: handle_userfault answers
// SIGBUS), and the stack may be on the node. They go into the page of code the thread
// stopped in (file-backed, never registered; its bytes are saved first and put back, as
// the injected `syscall` instruction's are), away from that instruction.
//
// What the engine must not drop (passed with EvictRanges): pages the kernel or the tracer
// touch before the threads resume — the injected thread's rseq area (the kernel updates
// it on the thread's way back to user mode after each injected call: a write-protect
// fault there is served, and a drop after it would lose the write) and the stack tops of
// the stopped threads (a clone3's arguments there are read by the tracer when the clone
// event is handled, after the drop).
//
// Each range's MADV_DONTNEED waits until the engine has read its REMOVE event (the
// engine runs meanwhile: it is not waiting on this thread). The threads are stopped as
// for a freeze (stop-threads.ts: a vfork parent asleep until its stopped child resumes is
// not waited for — it runs no user code until then). A task may die at any moment of the
// stop (task-gone.ts): it is dropped and its death handled by the tracer's loop; the
// drop stops there, the engine counts what it really did (EvictDone), and the session
// goes on.
import fs from 'node:fs';
import { PIDFD_SELF_THREAD } from '../sys/pidfd.js';
import os from 'node:os';
import { SYS } from '../sys/arch/index.js';
import { MADV_DONTNEED } from '../sys/mman.js';
import { getRegs, getRseqArea, peekData, readReg } from '../sys/ptrace.js';
import { SysError } from '../sys/libc.js';
import type { WaitResult } from '../sys/wait.js';
import type { EngineClient } from '../channels/tracer-engine.js';
import type { EvictChannel } from '../channels/evict-request.js';
import { InjectionError, injectSyscall } from './inject.js';
import { readRemote, writeRemote } from './remote.js';
import { handleStops, interruptedThread, stopThreads, type StopHost } from './stop-threads.js';
import { isEsrch, stillStopped, TaskGone } from './task-gone.js';
import { passFilters, resumeFilters, UNREADABLE_FILTER, type FilterPass } from './filter-verdict.js';
import type { FilteredCall } from './seccomp-bpf.js';

const DEBUG = process.env.NUMACTLX_DEBUG === '1';
const ms = (from: bigint, to: bigint = process.hrtime.bigint()): string => (Number(to - from) / 1e6).toFixed(2);
const { EACCES, EPERM, ESRCH } = os.constants.errno;
/** iovecs per process_madvise: 1 KiB of the code page. */
const IOV_BATCH = 64;
/** The calls a drop injects (drop below), as a filter sees them (addresses and lengths vary: 0). */
const DROP_CALLS: FilteredCall[] = [
  { nr: SYS.process_madvise, args: [BigInt(PIDFD_SELF_THREAD), 0n, 1n, BigInt(MADV_DONTNEED), 0n] },
  { nr: SYS.madvise, args: [0n, 0n, BigInt(MADV_DONTNEED)] },
];
const IOVEC_SIZE = 16;
const PAGE = 4096n;
/** Kept around each stopped thread's stack pointer: the red zone and the frames above it. */
const STACK_KEEP = 8192n;

/** What the stopper needs of the tracer (tracer.ts). */
export interface EvictHost extends StopHost {
  /** A stop read while the threads were held, handled now (it resumes the thread; a task gone meanwhile is dropped). */
  handle(tid: number, status: number): void;
  /** A status an injection's waitpid read (the task's death), for the tracer's loop to handle next. */
  later(r: WaitResult): void;
}

export class EvictStopper {
  private saidSandboxed = false;

  constructor(private readonly host: EvictHost, private readonly engine: EngineClient,
    private readonly channel: EvictChannel) {}

  /** The tracer is stopping threads (on) or has stopped them (off): faults must not wait meanwhile. */
  stopping(on: boolean): void {
    this.channel.setStopping(on);
  }

  /** An eviction request waits to be taken. */
  get pending(): boolean {
    return this.channel.pending;
  }

  /** Takes the eviction request, if any, and carries it out. Returns whether a request was taken. */
  serve(): boolean {
    const pids = this.channel.take();
    if (!pids) return false;
    const t0 = process.hrtime.bigint();
    const procs = new Set(pids);
    let stash = new Map<number, number>();
    let bytes = -ESRCH;
    let pid = pids[0];
    let inj: number | undefined;
    let pass: FilterPass = 'none';
    try {
      stash = stopThreads(this.host, 0, (thread) => procs.has(thread.proc.pid));
      inj = interruptedThread(this.host.tasks, stash, procs);
      if (inj !== undefined) {
        pid = this.host.tasks.threads.get(inj)?.proc.pid ?? pid;
        if (this.channel.drops) pass = passFilters(pid, inj, DROP_CALLS);
        if (pass === 'refused' || pass === 'unreadable') {
          this.saySandboxed(pid, pass);
          bytes = -EPERM; // before the engine marks anything: its rounds pass this mm by
        } else if (this.channel.drops && !readable(inj)) {
          bytes = -EACCES; // the same, said by the engine (eviction.ts)
        } else {
          const t1 = process.hrtime.bigint();
          const n = this.engine.evictRanges(pid, this.keepRanges(inj, stash));
          const t2 = process.hrtime.bigint();
          bytes = n > 0 ? this.drop(inj, n) : 0;
          if (DEBUG) {
            fs.writeSync(2, `numactlx-tracer: eviction stop of ${procs.size} process(es): stop ${ms(t0, t1)} ms, ` +
              `choose ${ms(t1, t2)} ms, drop ${n} ranges ${ms(t2)} ms\n`);
          }
        }
      }
    } catch (err) {
      // The injected thread or its process ended under us: nothing more is dropped, and
      // its death is the tracer loop's to handle (task-gone.ts).
      if (err instanceof TaskGone) {
        if (err.status !== undefined) this.host.later({ pid: err.tid, status: err.status });
      } else if (!(err instanceof InjectionError || isEsrch(err) || (inj !== undefined && !stillStopped(inj)))) {
        throw err;
      }
    } finally {
      // The thread's own filters back before it runs its own code (filter-verdict.ts).
      if (pass === 'suspended' && inj !== undefined) resumeFilters(inj);
      // The engine learns what was dropped (its pagemap check counts the rest resident)
      // before any thread runs again.
      this.engine.evictDone(pid, bytes, Number(process.hrtime.bigint() - t0) / 1e6);
      handleStops(this.host, stash);
    }
    return true;
  }

  /** What the engine must keep ([start, end) pairs): see the header. */
  private keepRanges(inj: number, stash: Map<number, number>): number[] {
    const keep: number[] = [];
    const add = (start: bigint, end: bigint): void => {
      keep.push(Number(start & ~(PAGE - 1n)), Number((end + PAGE - 1n) & ~(PAGE - 1n)));
    };
    try {
      const rseq = getRseqArea(inj);
      if (rseq.addr !== 0n) add(rseq.addr, rseq.addr + BigInt(Math.max(rseq.size, 32)));
    } catch {
      // no rseq (a kernel before 5.13, or none registered)
    }
    // Threads whose stops are still to be handled (an outer freeze's or eviction's) are stopped too.
    for (const tid of [...stash.keys(), ...this.host.tasks.unhandled]) {
      if (keep.length >= 1000) continue;
      try {
        const rsp = readReg(getRegs(tid), 'rsp');
        add(rsp - STACK_KEEP, rsp + STACK_KEEP);
      } catch {
        // gone
      }
    }
    return keep;
  }

  /**
   * Process `pid` runs under a seccomp filter of its own (src/sys/procfs.ts hasOwnSeccompFilter)
   * that would refuse the drop's calls and cannot be suspended, or that numactlx may not read
   * (filter-verdict.ts): no drop is injected into it — its filter could kill it for the
   * process_madvise (a whitelist sandbox did: SIGSYS, "Bad system call"). The engine then
   * passes its address space by (EvictDone -EPERM), and the node may go over its limit. Said
   * once a session.
   */
  private saySandboxed(pid: number, pass: FilterPass): void {
    if (!this.saidSandboxed) {
      fs.writeSync(2, `numactlx: process ${pid} runs under a seccomp filter of its own: numactlx does not inject the call that ` +
        `drops its pages (its filter could kill it for that call${pass === 'unreadable' ? `; ${UNREADABLE_FILTER}` : ''}), ` +
        'so --max-resident is not kept for its memory (said once)\n');
    }
    this.saidSandboxed = true;
  }

  /** Drops the engine's `n` ranges in thread `tid`; returns the bytes dropped. */
  private drop(tid: number, n: number): number {
    const rip = readReg(getRegs(tid), 'rip');
    // 1 KiB of the code page the thread is in, away from the `syscall` injected at rip.
    const scratch = (rip & ~(PAGE - 1n)) + ((rip & (PAGE - 1n)) < PAGE / 2n ? PAGE / 2n : 0n);
    let total = 0;
    for (let i = 0; i < n; i += IOV_BATCH) {
      const k = Math.min(IOV_BATCH, n - i);
      const iov = Buffer.alloc(k * IOVEC_SIZE);
      for (let j = 0; j < k; j++) {
        const [start, len] = this.channel.range(i + j);
        iov.writeBigUInt64LE(BigInt(start), j * IOVEC_SIZE);
        iov.writeBigUInt64LE(BigInt(len), j * IOVEC_SIZE + 8);
      }
      let r = -1;
      let saved: Buffer | undefined;
      try {
        saved = readRemote(tid, scratch, iov.length);
        if (saved.length === iov.length) {
          writeRemote(tid, scratch, iov);
          r = Number(injectSyscall(tid, SYS.process_madvise, [BigInt(PIDFD_SELF_THREAD), scratch, BigInt(k), BigInt(MADV_DONTNEED), 0n]));
        }
      } catch (err) {
        if (err instanceof TaskGone || err instanceof InjectionError || isEsrch(err) || !stillStopped(tid)) throw err;
        // the code page could not be written: one call per range below
      } finally {
        // The program's code back as it was — unless the thread is gone (killed: there
        // is nothing of it to restore, and its death is what the caller must see).
        if (saved?.length === iov.length) restoreCode(tid, scratch, saved);
      }
      // process_madvise advises the iovecs in order and returns the bytes done: the
      // ranges it finished are not dropped again (the engine may have brought a page of
      // them back meanwhile, by a fault that was waiting).
      let j = 0;
      for (let done = Math.max(0, r); j < k; j++) {
        const len = this.channel.range(i + j)[1];
        if (done < len) break;
        done -= len;
        total += len;
      }
      for (; j < k; j++) {
        const [start, len] = this.channel.range(i + j);
        if (injectSyscall(tid, SYS.madvise, [BigInt(start), BigInt(len), BigInt(MADV_DONTNEED)]) === 0n) total += len;
      }
    }
    return total;
  }
}

/** Puts `saved` back at `addr` in thread `tid`'s memory; nothing when the thread is no longer stopped (gone). */
function restoreCode(tid: number, addr: bigint, saved: Buffer): void {
  try {
    writeRemote(tid, addr, saved);
  } catch (err) {
    if (isEsrch(err) || !stillStopped(tid)) return;
    throw err;
  }
}

/**
 * Whether the tracer may read thread `tid`'s memory, as an injection must (it saves the word
 * it overwrites): not a process that is not dumpable, unless numactlx has CAP_SYS_PTRACE —
 * PTRACE_PEEKDATA then fails with EIO (inject.ts NotReadable), being its tracer does not
 * exempt it, and the injection used to end the session ("the tracer failed and killed the
 * program").
 */
function readable(tid: number): boolean {
  try {
    peekData(tid, readReg(getRegs(tid), 'rip'));
    return true;
  } catch (err) {
    if (err instanceof SysError && (err.code === 'EIO' || err.code === 'EPERM' || err.code === 'EACCES')) return false;
    throw err;
  }
}
