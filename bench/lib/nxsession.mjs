// A numactlx session driven line by line for bench/snapshot.mjs: numactlx runs
// bench/pause_probe with NUMACTLX_DEBUG=1 and a private NUMACTLX_RUNTIME_DIR; the probe's
// stdin/stdout are the session's, so commands go in and answers come out as lines, and
// the session's stderr brings numactlx's debug lines (freeze and copy timings). Every
// line is kept with the CLOCK_MONOTONIC time it arrived (process.hrtime is
// CLOCK_MONOTONIC, like the probe's own clock), so a probe gap can be matched with the
// freeze or the commit that caused it.
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';

const now = () => process.hrtime.bigint();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits for lines from a stream: next(re) resolves with the first unread line matching. */
class Lines {
  constructor(stream, keep) {
    this.lines = []; // { t, line }
    this.read = 0; // lines consumed by next()
    this.waiters = [];
    this.closed = false;
    const rl = readline.createInterface({ input: stream });
    rl.on('line', (line) => {
      if (keep && !keep(line)) return;
      this.lines.push({ t: now(), line });
      this.wake();
    });
    rl.on('close', () => { this.closed = true; this.wake(); });
  }

  wake() {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  /** The first line matching re at index ≥ from (default: the unread ones); consumes up to it. */
  next(re, { timeoutMs = 600_000, from, consume = true } = {}) {
    return new Promise((resolve, reject) => {
      const t0 = Date.now();
      let timer;
      const look = () => {
        for (let i = from ?? this.read; i < this.lines.length; i++) {
          if (re.test(this.lines[i].line)) {
            if (consume) this.read = i + 1;
            clearTimeout(timer);
            resolve({ ...this.lines[i], index: i });
            return;
          }
        }
        if (this.closed) { clearTimeout(timer); reject(new Error(`stream closed before a line matching ${re}`)); return; }
        if (Date.now() - t0 > timeoutMs) { reject(new Error(`no line matching ${re} within ${timeoutMs} ms`)); return; }
        this.waiters.push(look);
      };
      timer = setTimeout(() => { this.wake(); }, timeoutMs + 10);
      look();
    });
  }
}

/** Runs argv to its end; resolves { status, signal, stdout, stderr, wallMs }. */
export function runAsync(argv, { env, pin } = {}) {
  const full = pin === undefined ? argv : ['taskset', '-c', String(pin), ...argv];
  return new Promise((resolve, reject) => {
    const t0 = now();
    const child = spawn(full[0], full.slice(1), { env: env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr, wallMs: Number(now() - t0) / 1e6 }));
  });
}

export class Session {
  /**
   * opts: numactlx, backing, backingSize, size, probe (the pause_probe binary), pin
   * (CPU for taskset, or undefined), runtimeDir, extraArgs (numactlx options).
   */
  constructor(opts) {
    this.o = opts;
    this.faultLines = 0;
    this.lastId = 0;
  }

  get env() {
    return { ...process.env, NUMACTLX_DEBUG: '1', NUMACTLX_RUNTIME_DIR: this.o.runtimeDir };
  }

  async start() {
    const o = this.o;
    let argv = [o.numactlx, `--remap=3,${o.backing},size=${o.backingSize}`, '--membind=3', ...(o.extraArgs ?? []),
      '--', o.probe, o.size];
    // taskset execs numactlx: the child's pid is numactlx's, and every thread numactlx
    // starts (workers, the program) inherits the mask.
    if (o.pin !== undefined) argv = ['taskset', '-c', String(o.pin), ...argv];
    this.argv = argv;
    this.child = spawn(argv[0], argv.slice(1), { env: this.env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.pid = this.child.pid;
    this.exited = new Promise((resolve) => this.child.on('close', (status, signal) => resolve({ status, signal })));
    this.out = new Lines(this.child.stdout);
    this.err = new Lines(this.child.stderr, (line) => {
      if (line.includes('fault 0x')) { this.faultLines++; return false; }
      return true;
    });
    const t0 = now();
    const ready = await this.out.next(/^ready /);
    this.fillMs = Number(now() - t0) / 1e6;
    return ready.line;
  }

  /** Sends a command line; resolves with the probe's answer (the first line matching re). */
  async cmd(line, re, timeoutMs = 600_000) {
    this.child.stdin.write(`${line}\n`);
    return (await this.out.next(re, { timeoutMs })).line;
  }

  send(line) {
    this.child.stdin.write(`${line}\n`);
  }

  /** `report`: the probe's statistics since the last mark, and its longest gaps. */
  async report() {
    const kv = parseKv(await this.cmd('report', /^max_gap_us=/));
    const gl = await this.out.next(/^gaps/);
    kv.gaps = gl.line.split(' ').slice(1).map((g) => {
      const [end, len] = g.split(':').map(BigInt);
      return { end, len };
    });
    kv.reportT = gl.t;
    return kv;
  }

  /**
   * Takes a snapshot with `numactlx snapshot --wait --json PID`; `onFreeze()` (optional)
   * runs as soon as the session's status shows the freeze over. Resolves with the client's
   * answer and its wall time. The tracer's and the engine's timings (stop, scan,
   * protect, copy, maps, sync, commit) come with engineTimings() once the session has
   * ended: the engine worker never returns to its event loop while the session runs, so
   * its stderr reaches us only at the end.
   */
  async snapshot({ onFreeze } = {}) {
    const tReq = now();
    const client = runAsync([this.o.numactlx, 'snapshot', '--wait', '--json', String(this.pid)], { env: this.env });
    const exited = client.then(() => true);
    // With onFreeze, the moment the program runs again: the session's `status` names the
    // snapshot being copied once the freeze is over (status asks the engine for its
    // statistics, answered between copy batches; it is not polled otherwise).
    let tFrozen;
    let frozenId;
    while (onFreeze) {
      const st = await this.status();
      const id = (st.stats?.snapshots ?? st.snapshots)?.running?.id;
      if (typeof id === 'number' && id > this.lastId) { tFrozen = now(); frozenId = id; break; }
      if (await Promise.race([exited, sleep(this.o.pollMs ?? 2).then(() => false)])) break;
    }
    if (onFreeze) await onFreeze(); // late when the snapshot was over before status showed it (sawFreeze false)
    const r = await client;
    const tClientDone = now();
    if (r.status !== 0) throw new Error(`numactlx snapshot: exit ${r.status}: ${r.stderr}${r.stdout}`);
    const answer = JSON.parse(r.stdout);
    const id = answer.id;
    this.lastId = id;
    if (frozenId !== undefined && frozenId !== id) throw new Error(`status showed snapshot ${frozenId} while the client got ${id}`);
    return { id, stats: answer.stats, clientMs: r.wallMs, tReq, tFrozen, tClientDone, sawFreeze: tFrozen !== undefined };
  }

  /** The session's `status` over its control socket (one connection, kept open). */
  status() {
    if (!this.sock) {
      this.sock = net.connect(path.join(this.o.runtimeDir, `${this.pid}.sock`));
      this.sock.on('error', () => undefined);
      this.replies = new Map();
      this.reqId = 0;
      readline.createInterface({ input: this.sock }).on('line', (line) => {
        const msg = JSON.parse(line);
        const w = this.replies.get(msg.id);
        this.replies.delete(msg.id);
        if (w) (msg.ok ? w.resolve(msg.result) : w.reject(new Error(msg.error)));
      });
    }
    const id = ++this.reqId;
    return new Promise((resolve, reject) => {
      this.replies.set(id, { resolve, reject });
      this.sock.write(`${JSON.stringify({ id, op: 'status' })}\n`);
    });
  }

  /**
   * After the session ended: the engine's debug timings of every snapshot, by id. The
   * engine prints a `freeze pid` line per address space at each freeze and one
   * `snapshot N:` line at each commit, in order; other lines it printed are kept too.
   */
  engineTimings() {
    const byId = new Map();
    const tracer = new Map();
    let freezes = [];
    const other = [];
    for (const { line } of this.err.lines) {
      if (/^numactlx-engine: (freeze pid|prepare )/.test(line)) { freezes.push(line); continue; }
      const t = /^numactlx-tracer: freeze (\d+):/.exec(line);
      if (t) { tracer.set(Number(t[1]), parseTracer(line)); continue; }
      const m = /^numactlx-engine: snapshot (\d+):/.exec(line);
      if (m) { byId.set(Number(m[1]), { ...parseEngineFreeze(freezes), ...parseCopy(line) }); freezes = []; continue; }
      if (!/UFFDIO_COPY .* errno 11/.test(line)) other.push(line);
    }
    for (const [id, t] of tracer) byId.set(id, { ...(byId.get(id) ?? {}), ...t });
    return { byId, other };
  }

  /** `quit`, then the session's exit. */
  async quit(timeoutMs = 120_000) {
    this.sock?.end();
    this.child.stdin.end('quit\n');
    const timer = setTimeout(() => this.kill(), timeoutMs);
    const r = await this.exited;
    clearTimeout(timer);
    return r;
  }

  kill() {
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

export function parseKv(line) {
  const out = {};
  for (const m of line.matchAll(/(\w+)=(\S+)/g)) {
    const n = Number(m[2]);
    out[m[1]] = Number.isFinite(n) ? n : m[2];
  }
  return out;
}

// numactlx-tracer: freeze 3: stop 0.07 ms, regs 0.26 ms, engine 23.4 ms, resume 0.12 ms
function parseTracer(line) {
  const m = /stop ([\d.]+) ms, regs ([\d.]+) ms, engine ([\d.]+) ms, resume ([\d.]+) ms/.exec(line);
  return m ? { stopMs: +m[1], regsMs: +m[2], engineMs: +m[3], resumeMs: +m[4] } : {};
}

// numactlx-engine: prepare 34.15 ms, 0 pages adopted, staged per pass 262235 0
// numactlx-engine: freeze pid 27242: scan 0.06 ms (12 pages, 3 runs; 262235 staged), protect 0.01 ms, maps 0.47 ms
// (frozenPages: staged + frozen at the freeze; runs, scan, protect: the freeze's own)
function parseEngineFreeze(lines) {
  const out = { scanMs: 0, frozenPages: 0, runs: 0, protectMs: 0, freezeMapsMs: 0, prepareMs: 0, stagedPasses: [] };
  for (const line of lines) {
    // (since present-pages.ts: "…, N pages adopted, staged per pass …")
    const p = /prepare ([\d.]+) ms, (?:\d+ pages adopted, )?staged per pass ([\d ]+)/.exec(line);
    if (p) { out.prepareMs += +p[1]; out.stagedPasses = p[2].trim().split(' ').map(Number); continue; }
    const m = /scan ([\d.]+) ms \((\d+) pages, (\d+) runs; (\d+) staged\), protect ([\d.]+) ms, maps ([\d.]+) ms/.exec(line);
    if (!m) continue;
    out.scanMs += +m[1]; out.frozenPages += +m[2] + +m[4]; out.runs += +m[3]; out.protectMs += +m[5]; out.freezeMapsMs += +m[6];
  }
  return out;
}

// numactlx-engine: snapshot 1: copy 514.1 ms (process_vm_readv 204.4, populate 80.2), maps 49.4 ms, sync 0.16 ms, commit 112.7 ms
function parseCopy(line) {
  const m = /copy ([\d.]+) ms \(process_vm_readv ([\d.]+)(?:, populate ([\d.]+))?\), maps ([\d.]+) ms, sync ([\d.]+) ms, commit ([\d.]+) ms/.exec(line);
  return m ? { copyMs: +m[1], readvMs: +m[2], populateMs: m[3] === undefined ? NaN : +m[3], mapsMs: +m[4], syncMs: +m[5], commitMs: +m[6] } : {};
}
