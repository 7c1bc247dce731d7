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
// engine runs meanwhile: it is not waiting on this thread). A thread blocked in a vfork
// is not stopped: it runs no user code until its child has exec'd or exited.
import fs from 'node:fs';
import os from 'node:os';
import { SYS } from '../sys/arch/index.js';
import { MADV_DONTNEED } from '../sys/mman.js';
import { cont, getRegs, getRseqArea, interrupt, PTRACE_EVENT, readReg } from '../sys/ptrace.js';
import { SysError } from '../sys/libc.js';
import { waitpid, WIFEXITED, WIFSIGNALED, WPTRACEEVENT, WSTOPSIG, __WALL } from '../sys/wait.js';
import type { EngineClient } from '../channels/tracer-engine.js';
import type { EvictChannel } from '../channels/evict-request.js';
import { InjectionError, injectSyscall } from './inject.js';
import { readRemote, writeRemote } from './remote.js';
import type { Thread } from './state.js';

const { SIGTRAP } = os.constants.signals;
const DEBUG = process.env.NUMACTLX_DEBUG === '1';
const ms = (from: bigint, to: bigint = process.hrtime.bigint()): string => (Number(to - from) / 1e6).toFixed(2);
const { ESRCH } = os.constants.errno;
/** PIDFD_SELF_THREAD (Linux 6.15, <linux/pidfd.h>): "the calling thread" for pidfd-taking calls. */
const PIDFD_SELF_THREAD = -10000n;
/** iovecs per process_madvise: 1 KiB of the code page. */
const IOV_BATCH = 64;
const IOVEC_SIZE = 16;
const PAGE = 4096n;
/** Kept around each stopped thread's stack pointer: the red zone and the frames above it. */
const STACK_KEEP = 8192n;

/** What the stopper needs of the tracer (tracer.ts). */
export interface StopHost {
  readonly threads: ReadonlyMap<number, Thread>;
  readonly held: Set<number>;
  /** A status that arrived while the threads were held, handled now (it resumes the thread). */
  replay(tid: number, status: number): void;
  /** A task that ended while the threads were held. */
  gone(tid: number, status: number): void;
}

export class EvictStopper {
  constructor(private readonly host: StopHost, private readonly engine: EngineClient,
    private readonly channel: EvictChannel) {}

  /** An eviction request waits to be taken. */
  get pending(): boolean {
    return this.channel.pending;
  }

  /**
   * Takes the eviction request, if any, and carries it out. `stoppedTid`: a thread in the
   * signal-delivery stop of our SIGURG (0 if none), resumed here when the request was
   * taken (the signal is not delivered). Returns whether a request was taken.
   */
  serve(stoppedTid: number): boolean {
    const pids = this.channel.take();
    if (!pids) return false;
    const t0 = process.hrtime.bigint();
    const procs = new Set(pids);
    const stash = this.stopThreads(procs, stoppedTid);
    const inj = this.injectable(procs, stoppedTid, stash);
    let bytes = -ESRCH;
    let pid = pids[0];
    try {
      if (inj !== undefined) {
        pid = this.host.threads.get(inj)?.proc.pid ?? pid;
        const t1 = process.hrtime.bigint();
        const n = this.engine.evictRanges(pid, this.keepRanges(inj, stoppedTid, stash));
        const t2 = process.hrtime.bigint();
        bytes = n > 0 ? this.drop(inj, n) : 0;
        if (DEBUG) {
          fs.writeSync(2, `numactlx-tracer: eviction stop of ${procs.size} process(es): stop ${ms(t0, t1)} ms, ` +
            `choose ${ms(t1, t2)} ms, drop ${n} ranges ${ms(t2)} ms\n`);
        }
      }
    } catch (err) {
      // The thread or its process ended under us: nothing (more) dropped.
      if (!(err instanceof InjectionError || (err instanceof SysError && err.code === 'ESRCH'))) throw err;
    } finally {
      this.engine.evictDone(pid, bytes, Number(process.hrtime.bigint() - t0) / 1e6);
      for (const [tid, status] of stash) {
        try {
          this.host.replay(tid, status);
        } catch (err) {
          if (!(err instanceof SysError && err.code === 'ESRCH')) throw err;
        }
      }
      if (stoppedTid !== 0) {
        try {
          cont(stoppedTid);
        } catch {
          // gone
        }
      }
    }
    return true;
  }

  /** What the engine must keep ([start, end) pairs): see the header. */
  private keepRanges(inj: number, stoppedTid: number, stash: Array<[number, number]>): number[] {
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
    for (const tid of [stoppedTid, ...stash.map(([t]) => t)]) {
      if (tid === 0 || keep.length >= 1000) continue;
      try {
        const rsp = readReg(getRegs(tid), 'rsp');
        add(rsp - STACK_KEEP, rsp + STACK_KEEP);
      } catch {
        // gone
      }
    }
    return keep;
  }

  /** PTRACE_INTERRUPTs every thread of `procs` and waits for each; returns what they reported. */
  private stopThreads(procs: Set<number>, stoppedTid: number): Array<[number, number]> {
    const waiting = new Set<number>();
    for (const [tid, thread] of this.host.threads) {
      if (!procs.has(thread.proc.pid) || tid === stoppedTid || this.host.held.has(tid) || thread.exiting || thread.vforking) continue;
      try {
        interrupt(tid);
        waiting.add(tid);
      } catch {
        // exiting
      }
    }
    const stash: Array<[number, number]> = [];
    while (waiting.size > 0) {
      const { pid: tid, status } = waitpid(-1, __WALL);
      waiting.delete(tid);
      if (WIFEXITED(status) || WIFSIGNALED(status)) { this.host.gone(tid, status); continue; }
      if (!this.host.threads.has(tid)) { this.host.held.add(tid); continue; }
      stash.push([tid, status]);
    }
    return stash;
  }

  /**
   * A thread to inject into: the one at our SIGURG's delivery stop, else one stopped by
   * PTRACE_INTERRUPT (not a seccomp, exec or job-control stop, whose handling is pending).
   */
  private injectable(procs: Set<number>, stoppedTid: number, stash: Array<[number, number]>): number | undefined {
    const thread = this.host.threads.get(stoppedTid);
    if (thread && procs.has(thread.proc.pid)) return stoppedTid;
    for (const [tid, status] of stash) {
      const t = this.host.threads.get(tid);
      if (t && procs.has(t.proc.pid) && WPTRACEEVENT(status) === PTRACE_EVENT.STOP && WSTOPSIG(status) === SIGTRAP) return tid;
    }
    return undefined;
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
          r = Number(injectSyscall(tid, SYS.process_madvise, [PIDFD_SELF_THREAD, scratch, BigInt(k), BigInt(MADV_DONTNEED), 0n]));
        }
      } catch (err) {
        if (err instanceof InjectionError || (err instanceof SysError && err.code === 'ESRCH')) throw err;
        // the code page could not be written: one call per range below
      } finally {
        if (saved?.length === iov.length) writeRemote(tid, scratch, saved);
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
