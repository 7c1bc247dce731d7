// Telling numactlx's own signals from the program's at a delivery stop (ourSignal), from
// siginfo laid out as the kernel writes it (x86_64: si_signo, si_errno, si_code, then
// si_pid, si_uid and si_value / si_status). Pure logic: the end-to-end cases are in
// test/snapshot/doorbell-injection.test.ts.
import os from 'node:os';
import { ourSignal } from '../../src/tracer-thread/start-program.js';
import { COOKIE } from '../../src/channels/doorbell.js';
import { EVICT_COOKIE } from '../../src/channels/evict-request.js';

const { SIGSTOP, SIGURG } = os.constants.signals;
const SI_USER = 0;
const SI_QUEUE = -1;
const SI_TKILL = -6;

function siginfo(signo: number, code: number, pid: number, value = 0): Buffer {
  const info = Buffer.alloc(128);
  info.writeInt32LE(signo, 0);
  info.writeInt32LE(code, 8);
  info.writeInt32LE(pid, 16);
  info.writeInt32LE(0, 20);
  info.writeInt32LE(value, 24);
  return info;
}

test.each([
  ['the doorbell: SIGURG sigqueue\'d by numactlx with its cookie', siginfo(SIGURG, SI_QUEUE, process.pid, COOKIE), 'ring'],
  ['the eviction ring', siginfo(SIGURG, SI_QUEUE, process.pid, EVICT_COOKIE), 'ring'],
  ['the nudge: SIGSTOP kill()ed by numactlx', siginfo(SIGSTOP, SI_USER, process.pid), 'nudge'],
  ['a SIGSTOP from another process', siginfo(SIGSTOP, SI_USER, process.pid + 1), undefined],
  ['a SIGSTOP numactlx sent again with tgkill (a user\'s, held during an injection)', siginfo(SIGSTOP, SI_TKILL, process.pid), undefined],
  ['a sigqueue\'d signal over RLIMIT_SIGPENDING (its siginfo lost: SI_USER, si_pid 0)', siginfo(SIGSTOP, SI_USER, 0), undefined],
  ['a SIGURG kill()ed by numactlx (one it forwards)', siginfo(SIGURG, SI_USER, process.pid), undefined],
  ['a SIGURG sigqueue\'d by numactlx without a cookie', siginfo(SIGURG, SI_QUEUE, process.pid, 7), undefined],
  ['the cookie from another process', siginfo(SIGURG, SI_QUEUE, process.pid + 1, COOKIE), undefined],
])('%s', (_what, info, kind) => {
  expect(ourSignal(info)).toBe(kind);
});
