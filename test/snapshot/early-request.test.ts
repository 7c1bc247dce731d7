// A snapshot asked for as the session starts — its control socket is up, its program not
// spawned yet (a client quick off the mark, a --schedule tick in the first milliseconds)
// — waits for the program and is taken, instead of failing with "no process of the
// session is running" while the program is about to run.
import fs from 'node:fs';
import net from 'node:net';
import { killSessions, startSession } from '../helpers/live-session.js';
import { removeTmpDirs } from '../helpers/tmp.js';
import { socketPath } from '../../src/control/paths.js';

afterEach(() => killSessions());
afterAll(() => removeTmpDirs());

interface Reply { id: number; ok: boolean; result?: { program_pid?: number | null; id?: number }; error?: string }

/** Sends the requests on one connection at once; resolves with every reply, by id. */
function talk(sock: string, requests: object[]): Promise<Map<number, Reply>> {
  return new Promise((resolve, reject) => {
    const replies = new Map<number, Reply>();
    let buf = '';
    const c = net.createConnection(sock);
    c.on('error', reject);
    c.on('data', (d) => {
      buf += d.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const r = JSON.parse(buf.slice(0, nl)) as Reply;
        buf = buf.slice(nl + 1);
        replies.set(r.id, r);
      }
      if (replies.size === requests.length) { c.end(); resolve(replies); }
    });
    c.on('close', () => reject(new Error(`connection closed with ${replies.size} of ${requests.length} replies`)));
    c.write(requests.map((r) => `${JSON.stringify(r)}\n`).join(''));
  });
}

test('snapshots asked for before the program is spawned wait for it and are taken', async () => {
  let early = 0;
  const rounds: string[] = [];
  for (let round = 0; round < 12 && early < 3; round++) {
    const s = startSession(['python3', '-c', 'import sys; b = bytearray(8 << 20); sys.stdin.read()'], { size: '64m' });
    const sock = socketPath(s.pid, s.env.NUMACTLX_RUNTIME_DIR);
    // Polled without a pause: the socket is up a few milliseconds before the program is.
    const deadline = Date.now() + 30_000;
    while (!fs.existsSync(sock)) {
      if (Date.now() > deadline) throw new Error(`no control socket at ${sock}: stderr ${JSON.stringify(s.err())}`);
    }
    const replies = await talk(sock, [{ id: 1, op: 'hello' }, { id: 2, op: 'snapshot', wait: true }]);
    const before = replies.get(1)?.result?.program_pid === null;
    if (before) early++;
    rounds.push(`round ${round}: hello ${before ? 'before' : 'after'} the spawn, snapshot ${JSON.stringify(replies.get(2))}`);
    expect({ ok: replies.get(2)?.ok, error: replies.get(2)?.error, id: replies.get(2)?.result?.id }).toEqual({ ok: true, error: undefined, id: 1 });
    s.closeInput();
    const end = await s.done;
    expect({ exit: end.exitCode, stderr: s.err() }).toEqual({ exit: 0, stderr: '' });
  }
  console.log(rounds.join('\n'));
  // The window was met: a request was in before the program had a pid.
  expect(early).toBeGreaterThan(0);
}, 180_000);
