// `numactlx status [PID] [--json]`: one session's report — who it is, and per virtual node,
// per process and overall what the engine counted. PID is the numactlx pid or the
// program's; without it, the only session running. --json prints the StatusReply as is.
import { SetupError, UsageError } from '../errors.js';
import { formatBytes } from '../../policy/size.js';
import { findSession, request } from '../../src/control/client.js';
import { ControlError, type SessionInfo, type StatusReply } from '../../src/control/protocol.js';
import { formatCommand, formatMs, formatPages, formatTable, formatUptime } from '../format.js';
import type { EvictionStats } from '../../src/channels/session-stats.js';
import type { Verb, VerbArgs } from './parse.js';
import { printOut } from '../output.js';

/** A pid argument: a positive decimal integer. */
export function parsePid(verb: string, text: string): number {
  const pid = /^[1-9]\d{0,9}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(pid) || pid > 0x7fffffff) {
    throw new UsageError(`${verb}: invalid PID '${text}' (a process id: a positive integer)`);
  }
  return pid;
}

/** A control failure as the verb's one-line error. */
export function verbError(verb: string, err: unknown): unknown {
  return err instanceof ControlError ? new SetupError(`${verb}: ${err.message}`, { cause: err }) : err;
}

/** The one-line description of a session. */
export function sessionLine(s: SessionInfo): string {
  const program = s.program_pid === null ? 'program not started' : `program ${s.program_pid}`;
  return `session ${s.numactlx_pid}: ${program}: ${formatCommand(s.program)} (up ${formatUptime(s.started)}, uid ${s.uid})`;
}

/** The human report of `numactlx status`. */
export function formatStatus(r: StatusReply): string {
  const { stats } = r;
  const out = [`${sessionLine(r)}\n`, `socket ${r.socket}\n`, '\n'];
  if (stats.nodes.length === 0) {
    out.push('no virtual nodes\n');
  } else {
    out.push(formatTable([
      ['NODE', 'BACKING', 'KIND', 'SIZE', 'PLACED', 'RESIDENT', 'FAULTS', 'FAULT-AHEAD', 'FALLBACK', 'SIGBUS'],
      ...stats.nodes.map((n) => [String(n.node), n.backing, n.kind, formatBytes(n.size_bytes), formatPages(n.pages_placed),
        formatPages(n.pages_resident), String(n.faults), formatPages(n.fault_ahead_pages), formatPages(n.pages_fallback),
        String(n.sigbus)]),
    ]));
  }
  for (const n of stats.nodes) {
    if (n.eviction) out.push(evictionLine(n.node, n.eviction));
    if (n.frames_warmed !== undefined) out.push(`node ${n.node}: ${formatPages(n.frames_warmed)} of frames read ahead of snapshots (${formatPages(n.frames_in_use)} in use)\n`);
  }
  out.push('\n');
  if (stats.processes.length === 0) {
    out.push('no processes\n');
  } else {
    // STATE `ended`: the process exec'd or exited; its row keeps the final counts.
    out.push(formatTable([
      ['PID', 'EXE', 'FAULTS', 'RESIDENT', 'STATE', 'COMMAND'],
      ...stats.processes.map((p) => [String(p.pid), p.exe, String(p.faults), formatPages(p.pages_resident),
        p.exited ? 'ended' : 'live', formatCommand(p.command)]),
    ]));
  }
  const e = stats.events;
  const captures = e.capture_forks === undefined && e.capture_fallbacks === undefined ? ''
    : `, capture forks ${e.capture_forks ?? 0} (${e.capture_fallbacks ?? 0} copied in the pause instead)`;
  out.push('\n', `events: fork ${e.fork}, remap ${e.remap}, unmap ${e.unmap}, remove ${e.remove}, stale ${e.stale}${captures}; `
    + `fault-ahead window ${stats.fault_ahead_pages_window} pages\n`);
  if (stats.snapshots) {
    const { running, waiting } = stats.snapshots;
    const copy = stats.copying && running?.id === stats.copying.id
      ? ` (copying: ${formatPages(stats.copying.pages_left)} of ${formatPages(stats.copying.frozen_pages)} frozen left)` : '';
    const now = running ? `snapshot ${running.id ?? '(freezing)'}${running.label ? ` '${running.label}'` : ''} in progress${copy}` : 'no snapshot in progress';
    const queued = waiting.reduce((n, w) => n + w.requests, 0);
    out.push(`snapshots: ${now}; ${queued} request${queued === 1 ? '' : 's'} waiting\n`);
  }
  if (stats.triggers) {
    const { schedules, taken, recent } = stats.triggers;
    for (const t of schedules) {
      out.push(`schedule '${t.expr}'${t.label ? ` (label ${t.label})` : ''}: ${t.ticks} ticks, ${t.taken} snapshots, ` +
        `${t.merged} merged into one already waiting, ${t.missed} missed, ${t.failed} failed\n`);
    }
    const last = recent[recent.length - 1];
    if (last) {
      out.push(`${taken} snapshot${taken === 1 ? '' : 's'} this session; the last, ${last.id}: prepare ${last.prepare_ms} ms, ` +
        `pause ${last.pause_ms} ms, copy ${last.copy_ms} ms\n`);
    }
  }
  return out.join('');
}

/** What --max-resident did on one node, in one line. */
export function evictionLine(node: number, e: EvictionStats): string {
  return `node ${node}: resident limit ${formatBytes(e.max_resident_bytes)} (peak ${formatPages(e.peak_resident_pages)}), ` +
    `${formatPages(e.pages_evicted)} evicted now; ${e.evictions} pages evicted, ${e.refaults} back by ${e.refault_faults} faults; ` +
    `read ${formatBytes(e.bytes_read)}, written ${formatBytes(e.bytes_written)}; ${e.rounds} rounds, ${formatMs(e.evict_ms)} ` +
    `(program stopped ${formatMs(e.pause_ms)}); ${e.fault_waits} faults waited for room\n`;
}

export const statusCommand: Verb = {
  spec: { name: 'status', usage: 'usage: numactlx status [PID] [--json]\n', options: [{ name: 'json', type: 'boolean' }] },
  run: runStatus,
};

async function runStatus(args: VerbArgs): Promise<number> {
  if (args.positional.length > 1) {
    throw new UsageError(`status: too many arguments: '${args.positional.slice(1).join(' ')}' (one PID at most)`);
  }
  const pid = args.positional.length === 1 ? parsePid('status', args.positional[0]) : undefined;
  let reply: StatusReply;
  try {
    const session = await findSession(pid, { verb: 'status' });
    reply = await request(session, 'status');
  } catch (err) {
    throw verbError('status', err);
  }
  printOut(args.flags.json ? `${JSON.stringify(reply, null, 2)}\n` : formatStatus(reply));
  return 0;
}
