// /proc/PID/status read in one place (src/sys/procfs.ts readProcStatus), against what this
// process knows of itself and a child it stops.
import { execa } from 'execa';
import { readProcStatus } from '../../src/sys/procfs.js';
import { waitFor } from '../helpers/proc.js';

test('this process: Tgid, Uid, a signal it blocks in a thread of its own, a field the kernel never writes', async () => {
  const st = readProcStatus('self')!;
  expect(st.num('Tgid')).toBe(process.pid);
  expect(st.field('Uid')!.split(/\s+/).map(Number)).toEqual([process.getuid!(), process.geteuid!(), expect.any(Number), expect.any(Number)]);
  expect(st.num('No_such_field')).toBe(-1);
  expect(st.num('No_such_field', 0)).toBe(0);
  expect(st.mask('No_such_field')).toBe(0n);
  // A child that blocks SIGUSR1 (10) and ignores SIGUSR2 (12): bits 9 and 11 of its masks.
  const child = execa('python3', ['-c', 'import signal, sys\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})\nsignal.signal(signal.SIGUSR2, signal.SIG_IGN)\nprint("ready", flush=True)\nsys.stdin.read()'],
    { stdin: 'pipe', buffer: false });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  try {
    await waitFor('the child to be ready', () => out.includes('ready'), 20_000, 20);
    const c = readProcStatus(child.pid!)!;
    expect({ blocked: (c.mask('SigBlk') >> 9n) & 1n, ignored: (c.mask('SigIgn') >> 11n) & 1n, ppid: c.num('PPid') })
      .toEqual({ blocked: 1n, ignored: 1n, ppid: process.pid });
  } finally {
    child.stdin!.end();
    await child;
  }
  expect(readProcStatus(child.pid!)).toBeUndefined();
});
