// Running a system call inside a stopped tracee: write `syscall` (0f 05) at its rip,
// load the registers, single-step over it, read the result, restore everything.
//
// Kernel facts (measured, DESIGN.md §5): orig_rax = -1 keeps the kernel's syscall
// restart logic away from our registers; the first single-step from an exec stop
// traps before the instruction, so we step until rip = addr + 2. An injected call the
// program's seccomp filter traps stops at PTRACE_EVENT_SECCOMP on the way, with rip
// already past the instruction and rax = -ENOSYS: that is not its result — stepping on
// runs the call and traps after it.
//
// The task may be killed at any step: its death is handed back to the tracer
// (TaskGone), whose loop handles it like any other.
import { SYSCALL_REGS } from '../sys/arch/index.js';
import { getRegs, getSiginfo, peekData, pokeData, PTRACE_EVENT, readReg, setRegs, singleStep, writeReg } from '../sys/ptrace.js';
import { waitpid, WIFSTOPPED, WPTRACEEVENT, WSTOPSIG, __WALL } from '../sys/wait.js';
import { resendSignal } from '../sys/signal.js';
import { SysError } from '../sys/libc.js';
import os from 'node:os';
import { eventMessage, isEsrch, TaskGone, taskStatus } from './task-gone.js';

const { SIGTRAP } = os.constants.signals;
/** The exec stop's extra trap, a seccomp stop, a leftover interrupt: on top of the step that runs the call. */
const MAX_STEPS = 8;

export class InjectionError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InjectionError';
  }
}

/**
 * Nothing was injected: the thread's memory cannot be read (PTRACE_PEEKDATA: EIO) — its
 * process made itself non-dumpable and numactlx has no CAP_SYS_PTRACE; being its tracer
 * does not exempt it. The thread is untouched.
 */
export class NotReadable extends InjectionError {
  constructor(readonly tid: number, options?: { cause?: unknown }) {
    super(`thread ${tid}'s memory cannot be read (PTRACE_PEEKDATA: EIO)`, options);
    this.name = 'NotReadable';
  }
}

/** A ptrace event the injected call itself causes (its clone's PTRACE_EVENT_CLONE), and who is told its message. */
export interface ExpectedEvent {
  event: number;
  seen(message: number): void;
}

/**
 * Runs syscall `nr` with `args` in `tid`, which must be in a ptrace-stop. Returns the
 * raw result (a negative value is -errno). Signals that arrive while stepping are
 * sent to the thread again once the call is done (requeue below). `expected`: an event
 * stop of the call's own (the new task's pid is its message), stepped over.
 */
export function injectSyscall(tid: number, nr: number, args: readonly bigint[], expected?: ExpectedEvent): bigint {
  const arrived: Arrived[] = [];
  const saved = getRegs(tid);
  const rip = readReg(saved, 'rip');
  let word: bigint;
  try {
    word = peekData(tid, rip);
  } catch (err) {
    if (err instanceof SysError && err.code === 'EIO') throw new NotReadable(tid, { cause: err });
    throw err;
  }
  pokeData(tid, rip, (word & ~0xffffn) | 0x050fn); // little-endian: bytes 0f 05
  try {
    const regs = Buffer.from(saved);
    writeReg(regs, 'orig_rax', -1n);
    writeReg(regs, 'rax', BigInt(nr));
    SYSCALL_REGS.args.forEach((reg, i) => writeReg(regs, reg, args[i] ?? 0n));
    writeReg(regs, 'rip', rip);
    setRegs(tid, regs);
    for (let step = 0; step < MAX_STEPS; step++) {
      singleStep(tid);
      const { status } = waitpid(tid, __WALL);
      if (!WIFSTOPPED(status)) throw new TaskGone(tid, status, `thread ${tid} ended during an injected syscall ${nr}`);
      const event = WPTRACEEVENT(status);
      const sig = WSTOPSIG(status);
      if (event === PTRACE_EVENT.SECCOMP) continue;
      if (event === PTRACE_EVENT.EXIT) throw new TaskGone(tid, status, `thread ${tid} began to exit during an injected syscall ${nr}`);
      if (event === PTRACE_EVENT.STOP) {
        // SIGTRAP: a PTRACE_INTERRUPT (a freeze's) that reached the thread while it was
        // in another stop stays pending and traps at its next resume, before the
        // instruction ran. A stop signal: a group-stop, raised again after the call.
        if (sig !== SIGTRAP) arrived.push({ sig });
        continue;
      }
      if (event !== 0 && event === expected?.event) {
        expected.seen(Number(eventMessage(tid, event)));
        continue;
      }
      if (event !== 0) throw new InjectionError(`injected syscall ${nr} in thread ${tid}: unexpected ptrace event ${event}`);
      if (sig !== SIGTRAP) {
        arrived.push({ sig, info: siginfoOf(tid) });
        continue;
      }
      const now = getRegs(tid);
      if (readReg(now, 'rip') === rip + 2n) return BigInt.asIntN(64, readReg(now, 'rax'));
    }
    throw new InjectionError(`injected syscall ${nr} in thread ${tid} did not complete in ${MAX_STEPS} steps`);
  } finally {
    try {
      pokeData(tid, rip, word);
      setRegs(tid, saved);
    } catch (err) {
      if (!isEsrch(err)) throw err; // killed meanwhile: nothing of it to restore
    }
    requeue(tid, arrived);
  }
}

/** A signal whose delivery stop came during an injection, with its siginfo (none for a group-stop). */
interface Arrived { sig: number; info?: Buffer }

function siginfoOf(tid: number): Buffer | undefined {
  try {
    return getSiginfo(tid);
  } catch {
    return undefined; // killed meanwhile: resent as tgkill's, if at all
  }
}

/**
 * Signals whose delivery stop came while a syscall was injected: not delivered then
 * (the injected call must not be interrupted), and not lost either — a SIGSTOP from a
 * shell during an exec's setup was, and the program never stopped. Sent again to the
 * thread, they are pending when the tracer resumes it and stop it again for delivery.
 * Sent again with their siginfo where the kernel allows it (resendSignal): a sigqueue'd
 * signal comes back as one, with its value.
 */
function requeue(tid: number, signals: Arrived[]): void {
  if (signals.length === 0) return;
  const tgid = taskStatus(tid)?.tgid;
  if (tgid === undefined) return; // gone
  for (const { sig, info } of signals) {
    try {
      resendSignal(tgid, tid, sig, info);
    } catch {
      // gone
    }
  }
}

/** injectSyscall, throwing SysError(`what`) when the injected call failed. */
export function injectChecked(tid: number, what: string, nr: number, args: readonly bigint[]): bigint {
  const ret = injectSyscall(tid, nr, args);
  if (ret < 0n && ret > -4096n) throw new SysError(what, Number(-ret));
  return ret;
}
