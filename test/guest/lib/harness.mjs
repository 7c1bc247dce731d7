// The guest suite's harness: a group is a node script run in one boot of the guest
// (test/guest/vm.sh); it runs its checks one after the other and reports each one:
//
//   ok 3 - dax: a snapshot by signal (41.2 s)
//   not ok 4 - dax: a snapshot by CLI: numactlx: snapshot: … (2.1 s)
//
// on stdout, and as one JSON line ({group, name, ok, ms, message}) appended to
// $GUEST_SHARE/results.jsonl, which test/guest/run-suite.sh reads on the host. A check
// fails by throwing; its message is the first thing a reader sees, so it says what was
// expected and quotes what came instead (a numactlx error line, a program's FAIL line).
// A check that needs an earlier one that failed is reported as failed at once ("not run:
// needs …"), never as passed or skipped, and costs no time.
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { spawnSync } from 'node:child_process';

const share = process.env.GUEST_SHARE ?? process.cwd();
export const RESULTS = path.join(share, 'results.jsonl');

export class CheckError extends Error {}

/** Throws a CheckError with `message` unless `cond`. */
export function assert(cond, message) {
  if (!cond) throw new CheckError(typeof message === 'function' ? message() : message);
}

/** Resolves to what `fn` resolves to, or rejects after `ms` saying what was awaited. */
export function withTimeout(what, ms, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new CheckError(`timed out after ${Math.round(ms / 1000)} s waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `probe` (async; truthy = done) until it is done; the probe itself paces the loop. */
export async function waitUntil(what, ms, probe, pauseMs = 500) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    last = await probe();
    if (last) return last;
    if (Date.now() > end) throw new CheckError(`timed out after ${Math.round(ms / 1000)} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pauseMs));
  }
}

export class Group {
  #passed = new Set();
  #failed = new Set();
  #count = 0;
  #cleanups = [];

  /** `name` as run-suite knows it ("snapshots", "persist-1"). */
  constructor(name) {
    this.name = name;
    console.log(`# group ${name} on ${process.env.GUEST_KERNEL ?? os.release()}`);
  }

  /**
   * Runs check `name`. `needs`: names of earlier checks that must have passed. `timeoutMs`:
   * the check fails after that long (default 10 min: everything is slow under TCG).
   * Resolves to the check's value, or undefined when it failed.
   */
  async check(name, fn, { needs = [], timeoutMs = 600_000 } = {}) {
    const n = ++this.#count;
    const start = Date.now();
    const missing = needs.filter((d) => !this.#passed.has(d));
    let ok = false;
    let message = '';
    let value;
    if (missing.length > 0) {
      message = `not run: needs ${missing.map((d) => `'${d}'`).join(', ')}, which did not pass`;
    } else {
      try {
        value = await withTimeout(`check '${name}'`, timeoutMs, Promise.resolve().then(fn));
        ok = true;
      } catch (err) {
        message = err instanceof CheckError ? err.message : (err?.stack ?? String(err));
      }
    }
    const ms = Date.now() - start;
    (ok ? this.#passed : this.#failed).add(name);
    const secs = `${(ms / 1000).toFixed(1)} s`;
    console.log(ok ? `ok ${n} - ${name} (${secs})` : `not ok ${n} - ${name}: ${message} (${secs})`);
    fs.appendFileSync(RESULTS, `${JSON.stringify({ group: this.name, name, ok, ms, message })}\n`);
    return ok ? value : undefined;
  }

  passed(name) {
    return this.#passed.has(name);
  }

  /** `fn` runs at the end of the group (or before a power-off): kills what a check left running. */
  onEnd(fn) {
    this.#cleanups.push(fn);
  }

  async end() {
    for (const fn of this.#cleanups.splice(0)) {
      try { await fn(); } catch { /* the group is over; nothing to report to */ }
    }
    console.log(`# group ${this.name}: ${this.#passed.size} passed, ${this.#failed.size} failed`);
    return this.#failed.size === 0 ? 0 : 1;
  }

  /**
   * Powers the guest off at once: no clean-up, no sync (busybox `poweroff -f -n`: reboot(2)
   * with RB_POWER_OFF; page-cache data nobody made durable is lost, as on a power cut).
   * vm.sh exits 0 for it because of the marker written first.
   */
  powerOff(why) {
    // Only in the test guest: its init sets GUEST=1 and its kernel command line names the share.
    if (process.env.GUEST !== '1' || !fs.readFileSync('/proc/cmdline', 'utf8').includes('nxg.share=')) {
      throw new Error(`refusing to power off: not in the test guest (wanted to: ${why})`);
    }
    console.log(`# group ${this.name}: ${this.#passed.size} passed, ${this.#failed.size} failed; powering off: ${why}`);
    fs.writeFileSync(path.join(share, 'powered-off'), `${this.name}: ${why}\n`);
    const r = spawnSync('/bin/busybox', ['poweroff', '-f', '-n'], { stdio: 'inherit' });
    throw new Error(`busybox poweroff -f -n returned (status ${r.status}, ${r.error ?? ''})`);
  }
}
