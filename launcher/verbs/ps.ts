// `numactlx ps [--json]`: one line per running session of this user — numactlx pid, program
// pid, virtual nodes, memory placed on them, resident in the program's memory now, evicted
// to the backing (--max-resident; '-' without a limit), command. --json prints a StatusReply array.
// Sessions that stopped answering are named on stderr and left out; stale sockets of dead
// sessions are removed on the way (src/control/client.ts).
import { UsageError } from '../errors.js';
import { listSessions, request } from '../../src/control/client.js';
import type { ControlError, StatusReply } from '../../src/control/protocol.js';
import { formatCommand, formatPages, formatTable } from '../format.js';
import type { Verb, VerbArgs } from './parse.js';
import { verbError } from './status.js';
import { printErr, printOut } from '../output.js';

export const psCommand: Verb = {
  spec: { name: 'ps', usage: 'usage: numactlx ps [--json]\n', options: [{ name: 'json', type: 'boolean' }] },
  run: runPs,
};

/** The `numactlx ps` table. */
export function formatPs(replies: readonly StatusReply[]): string {
  return formatTable([
    ['NUMACTLX-PID', 'PROGRAM-PID', 'NODES', 'PLACED', 'RESIDENT', 'EVICTED', 'COMMAND'],
    ...replies.map((r) => [
      String(r.numactlx_pid),
      r.program_pid === null ? '-' : String(r.program_pid),
      r.virtual_nodes.length === 0 ? '-' : r.virtual_nodes.map((n) => n.node).join(','),
      formatPages(r.stats.nodes.reduce((sum, n) => sum + n.pages_placed, 0)),
      formatPages(r.stats.nodes.reduce((sum, n) => sum + n.pages_resident, 0)),
      r.stats.nodes.some((n) => n.eviction) ? formatPages(r.stats.nodes.reduce((sum, n) => sum + (n.eviction?.pages_evicted ?? 0), 0)) : '-',
      formatCommand(r.program),
    ]),
  ]);
}

async function runPs(args: VerbArgs): Promise<number> {
  if (args.positional.length > 0) throw new UsageError(`ps: unexpected argument '${args.positional[0]}' (valid: --json)`);
  const warn = (pid: number, err: ControlError): void => {
    printErr(`numactlx: ps: ${err.message.startsWith(`session ${pid}`) ? err.message : `session ${pid}: ${err.message}`}\n`);
  };
  let replies: StatusReply[];
  try {
    const sessions = await listSessions({ onError: warn });
    const answers = await Promise.all(sessions.map((s) => request(s, 'status').catch((err: ControlError) => {
      // Ended between hello and status: gone, not an error.
      if (err.code !== 'ENOENT' && err.code !== 'ECONNREFUSED') warn(s.numactlx_pid, err);
      return undefined;
    })));
    replies = answers.filter((r): r is StatusReply => r !== undefined);
  } catch (err) {
    throw verbError('ps', err);
  }
  printOut(args.flags.json ? `${JSON.stringify(replies, null, 2)}\n` : formatPs(replies));
  return 0;
}
