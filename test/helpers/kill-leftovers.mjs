// Jest's global teardown: a numactlx session a failed or timed-out test left running
// (a hang is exactly what some tests look for) would keep jest — and CI — waiting for
// ever. Each one still running from this checkout is named on stderr and killed; the
// test that started it has already failed.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ENTRY = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/numactlx.js');

export default function killLeftovers() {
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let argv;
    try {
      argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!argv.includes(ENTRY) || Number(pid) === process.pid) continue;
    process.stderr.write(`kill-leftovers: numactlx pid ${pid} still running after the tests: ${argv.slice(2).join(' ')}\n`);
    try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ }
  }
}
