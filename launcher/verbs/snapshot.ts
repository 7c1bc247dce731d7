// `numactlx snapshot [--label L] [--wait] [PID] [--json]`: asks a running session for a
// snapshot over its control socket and prints the snapshot's id. PID is the numactlx pid or
// the program's; without it, the only session running. The answer comes once the program
// has been frozen and resumed; with --wait, once the snapshot is durable (committed to the
// backing). --json prints the session's whole answer ({id, label[, time, stats]}).
import minimist from 'minimist';
import { UsageError } from '../errors.js';
import { findSession, request } from '../../src/control/client.js';
import { ControlError, type SnapshotReply } from '../../src/control/protocol.js';
import { labelProblem } from '../../src/snapshot/queue.js';
import { parsePid, verbError } from './status.js';

export const SNAPSHOT_USAGE = 'usage: numactlx snapshot [--label L] [--wait] [PID] [--json]\n';

/**
 * How long the session has to answer. Not the 5 s of the other verbs: one snapshot is taken
 * at a time, so even without --wait a request queued behind a snapshot that is still
 * copying GiBs is answered only when that one is durable; with --wait, also its own copy.
 */
export const SNAPSHOT_TIMEOUT_MS = 10 * 60 * 1000;

export interface SnapshotArgs {
  label: string | null;
  wait: boolean;
  json: boolean;
  help: boolean;
  pid?: number;
}

const OPTIONS = '--label L, --wait, --json, --help';

export function parseSnapshotArgs(argv: string[]): SnapshotArgs {
  const parsed = minimist(argv, {
    boolean: ['json', 'help', 'wait'],
    string: ['label', '_'],
    alias: { h: 'help' },
    unknown: (arg) => {
      if (arg.startsWith('-') && arg !== '-') throw new UsageError(`snapshot: unknown option '${arg}' (valid: ${OPTIONS})`);
      return true;
    },
  });
  const given: unknown = parsed.label;
  if (Array.isArray(given)) throw new UsageError(`snapshot: --label given ${given.length} times (one label per snapshot)`);
  let label: string | null = null;
  if (typeof given === 'string') {
    // minimist gives '' for `--label` at the end or before another option.
    if (given === '') throw new UsageError("snapshot: option '--label' requires a value");
    const problem = labelProblem(given);
    if (problem) throw new UsageError(`snapshot: invalid --label ${JSON.stringify(given)}: ${problem}`);
    label = given;
  }
  const positional = parsed._.map(String);
  if (positional.length > 1) {
    throw new UsageError(`snapshot: too many arguments: '${positional.slice(1).join(' ')}' (one PID at most)`);
  }
  return {
    label,
    wait: parsed.wait as boolean,
    json: parsed.json as boolean,
    help: parsed.help as boolean,
    pid: positional.length === 1 ? parsePid('snapshot', positional[0]) : undefined,
  };
}

export async function runSnapshot(argv: string[]): Promise<number> {
  const args = parseSnapshotArgs(argv);
  if (args.help) {
    process.stdout.write(SNAPSHOT_USAGE);
    return 0;
  }
  let reply: SnapshotReply;
  try {
    const session = await findSession(args.pid, { verb: 'snapshot' });
    reply = await request(session, 'snapshot', {
      ...(args.label === null ? {} : { label: args.label }),
      wait: args.wait,
    }, { timeoutMs: SNAPSHOT_TIMEOUT_MS });
  } catch (err) {
    // The server prefixes a failed op's error with the op's name: `session 4711: snapshot:
    // snapshot 7: backing …`; the verb's own prefix says that already.
    const cleaned = err instanceof ControlError
      ? new ControlError(err.message.replace(/^(session \d+: )snapshot: /, '$1'), { cause: err, code: err.code })
      : err;
    throw verbError('snapshot', cleaned);
  }
  process.stdout.write(args.json ? `${JSON.stringify(reply, null, 2)}\n` : `${reply.id}\n`);
  return 0;
}
