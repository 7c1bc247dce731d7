// Signals sent while numactlx starts (reliability issue, item 8: "a SIGUSR1 in the first
// ≈ 0.3 s is dropped"). Node's own action for SIGUSR1 is to start its inspector on
// 127.0.0.1:9229; numactlx holds every signal it forwards from its first line of
// JavaScript (launcher/early-signals.ts) until the session or the program takes it.
// "Started" here is observable: SIGURG, which Node never catches itself, shows up in
// /proc/PID/status SigCgt once the signals are held.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { NUMACTLX, numactlx } from '../helpers/numactlx.js';
import { waitFor } from '../helpers/proc.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

afterAll(removeTmpDirs);

const SIGURG_BIT = 1n << 22n;

function holding(pid: number): boolean {
  try {
    const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^SigCgt:\s*([0-9a-f]+)$/m);
    return line !== null && (BigInt(`0x${line[1]}`) & SIGURG_BIT) !== 0n;
  } catch {
    return false;
  }
}

test('SIGUSR1 sent during start-up, on a virtual node: one snapshot once the program runs', async () => {
  const backing = path.join(tmpDir(), 'n3.img');
  const runtime = tmpDir();
  const env = { NUMACTLX_RUNTIME_DIR: runtime };
  const session = execa(NUMACTLX, [`--remap=3,${backing},size=64m`, '--membind=3', '--snapshot-signal', 'SIGUSR1', '--',
    'sh', '-c', 'read line; echo "$line"'], { env, reject: false, stdin: 'pipe' });
  try {
    await waitFor('numactlx to hold its signals', () => holding(session.pid!), 20_000);
    process.kill(session.pid!, 'SIGUSR1');
    // Sent before the session was ready: its control socket did not exist yet.
    expect(fs.readdirSync(runtime)).toEqual([]);
    // The snapshot is taken once the program runs; it waits for a line meanwhile.
    await waitFor(`one snapshot listed in ${backing}`, async () => {
      if (session.exitCode !== undefined && session.exitCode !== null) throw new Error(`numactlx ended: ${session.exitCode}`);
      const list = await numactlx(['snapshots', backing, '--json'], { env });
      return list.exitCode === 0 && (JSON.parse(list.stdout) as unknown[]).length === 1;
    }, 30_000);
    session.stdin!.end('bye\n');
    const r = await session;
    expect({ exit: r.exitCode, signal: r.signal, stdout: r.stdout, stderr: r.stderr }).toEqual({ exit: 0, signal: undefined, stdout: 'bye', stderr: '' });
  } finally {
    session.kill('SIGKILL');
  }
}, 60_000);

test('SIGUSR1 sent during start-up, on real nodes: the program gets it (never Node\'s inspector)', async () => {
  const session = execa(NUMACTLX, ['--', 'sleep', '30'], { reject: false });
  try {
    await waitFor('numactlx to hold its signals', () => holding(session.pid!), 20_000);
    process.kill(session.pid!, 'SIGUSR1');
    const r = await session;
    // sleep dies by SIGUSR1's default action, and numactlx by the same signal.
    expect({ signal: r.signal, stderr: r.stderr }).toEqual({ signal: 'SIGUSR1', stderr: '' });
  } finally {
    session.kill('SIGKILL');
  }
}, 60_000);

test('SIGUSR1 sent while bin/numactlx (the shell script) runs: counted by its trap, one snapshot once the program runs', async () => {
  // Started through a symlink (as npm's global bin starts it), the script's last step runs
  // readlink in a command substitution; a readlink first in PATH that signals the script
  // (its parent) and waits for the trap to have counted it puts the signal exactly in the
  // script's window. Without the trap numactlx dies of SIGUSR1 (exit 138) before Node starts.
  const shims = tmpDir();
  const link = path.join(tmpDir(), 'numactlx');
  fs.symlinkSync(NUMACTLX, link);
  const real = (await execa('sh', ['-c', 'command -v readlink'])).stdout;
  fs.writeFileSync(path.join(shims, 'readlink'), `#!/bin/sh\nkill -USR1 "$PPID"\nexec ${real} "$@"\n`, { mode: 0o755 });
  const backing = path.join(tmpDir(), 'n3.img');
  const env = { NUMACTLX_RUNTIME_DIR: tmpDir() };
  // (the shim for the session only: a verb would count its own signal and die of it at its end)
  const session = execa(link, [`--remap=3,${backing},size=64m`, '--membind=3', '--snapshot-signal', 'SIGUSR1', '--',
    'sh', '-c', 'read line; echo "$line"'], { env: { ...env, PATH: `${shims}:${process.env.PATH}` }, reject: false, stdin: 'pipe' });
  try {
    await waitFor(`one snapshot listed in ${backing}`, async () => {
      if (session.exitCode !== null || session.signalCode !== null) throw new Error(`numactlx ended: exit ${session.exitCode}, signal ${session.signalCode}`);
      const list = await numactlx(['snapshots', backing, '--json'], { env });
      return list.exitCode === 0 && (JSON.parse(list.stdout) as unknown[]).length === 1;
    }, 30_000);
    session.stdin!.end('bye\n');
    const r = await session;
    expect({ exit: r.exitCode, signal: r.signal, stdout: r.stdout, stderr: r.stderr }).toEqual({ exit: 0, signal: undefined, stdout: 'bye', stderr: '' });
  } finally {
    session.kill('SIGKILL');
  }
}, 60_000);
