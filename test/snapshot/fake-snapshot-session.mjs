// A stand-in session for `numactlx snapshot`: the real control server and the real
// SnapshotQueue (the built dist/: run `npx tsc` first) over a scripted engine, with a
// `sleep` child as its program.
//
//   node fake-snapshot-session.mjs [CONFIG-JSON]
//
// CONFIG-JSON: `freeze_ms` and `commit_ms` (how long take() and durability take, default
// 0: a slow engine, not a synchronisation), `hold_commit` (no snapshot becomes durable
// until a line `commit` arrives on stdin; from then on every one does), `fail_take` /
// `fail_durable` (the engine's error message for every snapshot). Once listening it
// prints `ready {"socket":…,"numactlx_pid":…,"program_pid":…}`, then a line
// `request <label as JSON>` each time a `snapshot` request arrives, and a line
// `take <label as JSON>` each time the queue calls take(). SIGTERM ends it.
import { spawn } from 'node:child_process';
import readline from 'node:readline';
import { startControlServer } from '../../dist/src/control/server.js';
import { SnapshotQueue, snapshotOp } from '../../dist/src/snapshot/queue.js';

const config = JSON.parse(process.argv[2] ?? '{}');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const program = spawn('sleep', ['1000'], { stdio: 'ignore' });

// The commit gate: open at once unless hold_commit, then opened by `commit` on stdin.
let openGate;
const gate = config.hold_commit ? new Promise((resolve) => { openGate = resolve; }) : Promise.resolve();
if (config.hold_commit) {
  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', (line) => { if (line === 'commit') openGate(); });
  lines.on('close', () => openGate());
}

let nextId = 1;
const queue = new SnapshotQueue(async (label) => {
  process.stdout.write(`take ${JSON.stringify(label)}\n`);
  await sleep(config.freeze_ms ?? 0);
  if (config.fail_take) throw new Error(config.fail_take);
  const id = nextId++;
  const time = new Date().toISOString();
  const durable = (async () => {
    await gate;
    await sleep(config.commit_ms ?? 0);
    if (config.fail_durable) throw new Error(config.fail_durable);
    return { id, label, time, stats: { pages: 256, new_pages: 16, bytes_written: 65536, pause_ms: 0.5, copy_ms: 3 } };
  })();
  durable.catch(() => {}); // the queue handles it; this only keeps Node from calling it unhandled early
  return { id, durable };
});

const server = await startControlServer({
  info: () => ({
    numactlx_pid: process.pid, program_pid: program.pid, program: ['sleep', '1000'],
    started: new Date().toISOString(), uid: process.getuid(), virtual_nodes: [],
  }),
  handlers: {
    status: async () => ({ nodes: [], processes: [], events: { fork: 0, remap: 0, unmap: 0, remove: 0, stale: 0 }, fault_ahead_pages_window: 16 }),
    snapshot: (req) => {
      process.stdout.write(`request ${JSON.stringify(req.label ?? null)}\n`);
      return snapshotOp(queue)(req);
    },
  },
});

process.on('SIGTERM', async () => {
  queue.close();
  await server.close();
  program.kill('SIGKILL');
  process.exit(0);
});
process.stdout.write(`ready ${JSON.stringify({ socket: server.path, numactlx_pid: process.pid, program_pid: program.pid })}\n`);
