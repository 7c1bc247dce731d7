// `numactlx status [PID] [--json]`: one session's report — who it is, and per virtual node,
// per process and overall what the engine counted. PID is the numactlx pid or the
// program's; without it, the only session running. --json prints the StatusReply as is.
import minimist from 'minimist';
import { SetupError, UsageError } from '../errors.js';
import { findSession, request } from '../../src/control/client.js';
import { ControlError, type SessionInfo, type StatusReply } from '../../src/control/protocol.js';

/** The engine counts base pages: 4 KiB on x86_64, the only architecture numactlx runs on. */
export const PAGE_SIZE = 4096;

export interface VerbArgs {
  json: boolean;
  help: boolean;
  positional: string[];
}

/** Parses `[--json] [--help] [ARG…]` for `verb`; any other option is a usage error. */
export function parseVerbArgs(verb: string, argv: string[]): VerbArgs {
  const parsed = minimist(argv, {
    boolean: ['json', 'help'],
    string: [],
    alias: { h: 'help' },
    // No stopEarly: unlike the launcher, a verb has no program after it, and
    // `status 4711 --json` is as good as `status --json 4711`.
    unknown: (arg) => {
      if (arg.startsWith('-') && arg !== '-') throw new UsageError(`${verb}: unknown option '${arg}' (valid: --json, --help)`);
      return true;
    },
  });
  return { json: parsed.json as boolean, help: parsed.help as boolean, positional: parsed._.map(String) };
}

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

/** Bytes the way `ls -h` prints them: 0, 512, 4.0K, 1.5M, 2.0G (powers of 1024). */
export function formatBytes(bytes: number): string {
  const units = ['K', 'M', 'G', 'T', 'P'];
  if (bytes < 1024) return String(bytes);
  let value = bytes;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)}${units[unit]}`;
}

export const formatPages = (pages: number): string => formatBytes(pages * PAGE_SIZE);

/** "3d04h", "1h02m", "5m07s", "9s" */
export function formatUptime(startedIso: string, now: number = Date.now()): string {
  const started = Date.parse(startedIso);
  if (Number.isNaN(started)) return '?';
  let s = Math.max(0, Math.floor((now - started) / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  const two = (n: number): string => String(n).padStart(2, '0');
  if (d > 0) return `${d}d${two(h)}h`;
  if (h > 0) return `${h}h${two(m)}m`;
  if (m > 0) return `${m}m${two(s)}s`;
  return `${s}s`;
}

/** A command line for display: words quoted the way a shell would need them. */
export function formatCommand(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** Rows as columns two spaces apart, header first; the last column is not padded. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => (i < r.length - 1 ? cell.padEnd(widths[i]) : cell)).join('  ').trimEnd())
    .join('\n') + '\n';
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
  out.push('\n', `events: fork ${e.fork}, remap ${e.remap}, unmap ${e.unmap}, remove ${e.remove}; `
    + `fault-ahead window ${stats.fault_ahead_pages_window} pages\n`);
  if (stats.snapshots) {
    const { running, waiting } = stats.snapshots;
    const now = running ? `snapshot ${running.id ?? '(freezing)'}${running.label ? ` '${running.label}'` : ''} in progress` : 'no snapshot in progress';
    const queued = waiting.reduce((n, w) => n + w.requests, 0);
    out.push(`snapshots: ${now}; ${queued} request${queued === 1 ? '' : 's'} waiting\n`);
  }
  return out.join('');
}

export const STATUS_USAGE = 'usage: numactlx status [PID] [--json]\n';

export async function runStatus(argv: string[]): Promise<number> {
  const args = parseVerbArgs('status', argv);
  if (args.help) {
    process.stdout.write(STATUS_USAGE);
    return 0;
  }
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
  process.stdout.write(args.json ? `${JSON.stringify(reply, null, 2)}\n` : formatStatus(reply));
  return 0;
}
