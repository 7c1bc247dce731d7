// A stand-in numactlx session for the control tests: the real control server (the built
// dist/src/control/server.js: run `npx tsc` first) answering with fixed stats, and a
// `sleep` child as its program.
//
//   node fake-session.mjs [--no-program] [--hang] [CONFIG-JSON]
//
// CONFIG-JSON may set `program` (argv of the stand-in program, default ["sleep","1000"]),
// `virtual_nodes` and `stats`. Once listening it prints one line,
// `ready {"socket":…,"numactlx_pid":…,"program_pid":…}`. SIGTERM closes the server, ends
// the program and exits 0. --no-program: no child, nothing else keeps the process alive,
// so it exits by itself (the server is unref'd). --hang: `status` never answers.
// Extra ops: `echo` (answers its parameters) and `boom` (fails with a two-line message).
import { spawn } from 'node:child_process';
import { startControlServer } from '../../dist/src/control/server.js';

const args = process.argv.slice(2);
const noProgram = args.includes('--no-program');
const hang = args.includes('--hang');
const config = JSON.parse(args.find((a) => !a.startsWith('--')) ?? '{}');

const virtualNodes = config.virtual_nodes ?? [
  { node: 2, backing: '/tmp/fake-backing.img', kind: 'file', size_bytes: 1 << 30 },
];
const stats = config.stats ?? {
  nodes: [{ node: 2, backing: '/tmp/fake-backing.img', kind: 'file', size_bytes: 1 << 30, pages_placed: 3072,
    pages_resident: 2048, faults: 4321, fault_ahead_pages: 1111, pages_fallback: 7, sigbus: 3, frames_in_use: 2048 }],
  processes: [{ pid: 0, exe: '/usr/bin/sleep', command: ['sleep', '1000'], faults: 4321, pages_resident: 2048, ranges: 5 },
    { pid: 1, exe: '/usr/bin/dash', command: ['sh', '-c', 'exec sleep 1000'], faults: 12, pages_resident: 0, ranges: 2,
      exited: true }],
  events: { fork: 1, remap: 2, unmap: 3, remove: 4, stale: 5 },
  fault_ahead_pages_window: 16,
};

const programArgv = config.program ?? ['sleep', '1000'];
const program = noProgram ? undefined : spawn(programArgv[0], programArgv.slice(1), { stdio: 'ignore' });
for (const p of stats.processes) if (p.pid === 0) p.pid = program?.pid ?? process.pid;
const started = new Date(Date.now() - 3723_000).toISOString();

const server = await startControlServer({
  info: () => ({
    numactlx_pid: process.pid,
    program_pid: program?.pid ?? null,
    program: programArgv,
    started,
    uid: process.getuid(),
    virtual_nodes: virtualNodes,
  }),
  handlers: {
    status: () => (hang ? new Promise(() => {}) : Promise.resolve(stats)),
    echo: async (req) => req,
    boom: async () => { throw new Error('boom\nsecond line'); },
  },
});

process.on('SIGTERM', async () => {
  await server.close();
  program?.kill('SIGKILL');
  process.exit(0);
});
process.stdout.write(`ready ${JSON.stringify({ socket: server.path, numactlx_pid: process.pid, program_pid: program?.pid ?? null })}\n`);
