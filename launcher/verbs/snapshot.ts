// `numactlx snapshot [--label L] [--wait] [PID] [--json]`: asks a running session for a
// snapshot over its control socket and prints the snapshot's id. PID is the numactlx pid or
// the program's; without it, the only session running. The answer comes once the program
// has been frozen and resumed; with --wait, once the snapshot is durable (committed to the
// backing). --json prints the session's whole answer ({id, label[, time, stats]}).
import { UsageError } from '../errors.js';
import { findSession, request } from '../../src/control/client.js';
import { ControlError, type SnapshotReply } from '../../src/control/protocol.js';
import { labelProblem } from '../../src/snapshot/labels.js';
import type { Verb, VerbArgs } from './parse.js';
import { parsePid, verbError } from './status.js';
import { printOut } from '../output.js';

export const snapshotCommand: Verb = {
  spec: {
    name: 'snapshot',
    usage: 'usage: numactlx snapshot [--label L] [--wait] [PID] [--json]\n',
    options: [
      { name: 'label', type: 'string', value: 'L', once: 'one label per snapshot' },
      { name: 'wait', type: 'boolean' },
      { name: 'json', type: 'boolean' },
    ],
  },
  run: runSnapshot,
};

/**
 * How long the session has to answer. Not the 5 s of the other verbs: one snapshot is taken
 * at a time, so even without --wait a request queued behind a snapshot that is still
 * copying GiBs is answered only when that one is durable; with --wait, also its own copy.
 */
export const SNAPSHOT_TIMEOUT_MS = 10 * 60 * 1000;

async function runSnapshot(args: VerbArgs): Promise<number> {
  const label = args.strings.label ?? null;
  if (label !== null) {
    const problem = labelProblem(label);
    if (problem) throw new UsageError(`snapshot: invalid --label ${JSON.stringify(label)}: ${problem}`);
  }
  if (args.positional.length > 1) {
    throw new UsageError(`snapshot: too many arguments: '${args.positional.slice(1).join(' ')}' (one PID at most)`);
  }
  const pid = args.positional.length === 1 ? parsePid('snapshot', args.positional[0]) : undefined;
  let reply: SnapshotReply;
  try {
    const session = await findSession(pid, { verb: 'snapshot' });
    reply = await request(session, 'snapshot', {
      ...(label === null ? {} : { label }),
      wait: args.flags.wait,
    }, { timeoutMs: SNAPSHOT_TIMEOUT_MS });
  } catch (err) {
    // The server prefixes a failed op's error with the op's name: `session 4711: snapshot:
    // snapshot 7: backing …`; the verb's own prefix says that already.
    const cleaned = err instanceof ControlError
      ? new ControlError(err.message.replace(/^(session \d+: )snapshot: /, '$1'), { cause: err, code: err.code })
      : err;
    throw verbError('snapshot', cleaned);
  }
  printOut(args.flags.json ? `${JSON.stringify(reply, null, 2)}\n` : `${reply.id}\n`);
  return 0;
}
