// What numactlx needs from the kernel, and what it does without each part (CRIU's
// kerndat: probe once at start, then every thread reads the answers). The probes are in
// ./probe.ts; this module is the table and the judgement, pure.
//
// Each feature is one of:
// - required: no replacement; a session with virtual nodes stops before the program
//   starts, with one line naming the feature and the kernel release that has it;
// - fallback: absent, numactlx does the job another way, at a cost `doctor` states;
// - unused: listed by `doctor` for what it is worth; this build does not use it.
// USERFAULTFD and USERFAULTFD_DEVICE are two ways to the one thing numactlx needs, a
// userfaultfd in the program that traps kernel-mode faults too: either will do.
//
// NUMACTLX_DISABLE_FEATURES=POISON,EVENT_FORK,… makes the probe report those absent,
// so that the paths of older kernels run (and are tested) on a newer one.

export const FEATURE_NAMES = [
  'USERFAULTFD', 'USERFAULTFD_DEVICE', 'WP', 'EVENT_FORK', 'EVENT_REMAP', 'EVENT_REMOVE', 'EVENT_UNMAP',
  'THREAD_ID', 'POISON', 'WP_UNPOPULATED', 'WP_ASYNC', 'MOVE', 'PTRACE', 'SECCOMP_TRACE', 'PIDFD_GETFD',
  'PROCESS_MADVISE', 'PAGEMAP_SCAN', 'LIBPMEM',
] as const;
export type FeatureName = typeof FEATURE_NAMES[number];

export type FeatureUse = 'required' | 'fallback' | 'unused';

export interface FeatureInfo {
  name: FeatureName;
  /** The row `doctor` prints. */
  label: string;
  /** The Linux release that added it ('' when it is not a kernel feature). */
  since: string;
  use: FeatureUse;
  /** What numactlx uses it for. */
  purpose: string;
  /** For a fallback: what numactlx does without it, and what that costs. */
  without?: string;
}

const uffd = (name: FeatureName, since: string, use: FeatureUse, purpose: string, without?: string): FeatureInfo =>
  ({ name, label: `uffd ${name}`, since, use, purpose, without });

/** What numactlx does without WP_ASYNC or PAGEMAP_SCAN (Linux 6.1): dirty-tracking-sync.ts. */
const SYNC_TRACKING = 'every first write to a page after a snapshot is a write fault numactlx serves ' +
  '(synchronous dirty tracking: about 70 µs a page across CPUs)';

export const FEATURES: readonly FeatureInfo[] = [
  { name: 'USERFAULTFD', label: 'userfaultfd (kernel-mode faults)', since: '4.3', use: 'required',
    purpose: "the program's userfaultfd (trapping kernel-mode faults: read() into its memory)" },
  { name: 'USERFAULTFD_DEVICE', label: '/dev/userfaultfd', since: '6.1', use: 'required',
    purpose: "the program's userfaultfd without CAP_SYS_PTRACE (access to the device decides)" },
  uffd('WP', '5.7', 'required', 'write protection: every snapshot is copy-on-write'),
  uffd('EVENT_FORK', '4.11', 'fallback', "a forked child's pages stay trapped",
    "the tracer sets up each forked child's userfaultfd before it runs (a few system calls injected into it at each fork)"),
  uffd('EVENT_REMAP', '4.11', 'required', 'mremap moves pages on the node'),
  uffd('EVENT_REMOVE', '4.11', 'required', 'madvise(MADV_DONTNEED) frees pages on the node'),
  uffd('EVENT_UNMAP', '4.11', 'required', 'munmap frees pages on the node'),
  uffd('THREAD_ID', '4.14', 'required', 'which thread faulted (a full node signals that thread)'),
  uffd('POISON', '6.6', 'fallback', 'a full --membind node answers a fault with SIGBUS',
    'numactlx signals the faulting thread itself, with the siginfo UFFDIO_POISON gives (each later access ' +
    'to the page faults to numactlx again)'),
  uffd('WP_UNPOPULATED', '6.4', 'unused', 'write protection of pages never touched',
    'numactlx protects only pages it placed; a page never touched is caught as a missing fault anyway'),
  uffd('WP_ASYNC', '6.7', 'fallback', 'dirty tracking by the kernel, without a write fault per page (with PAGEMAP_SCAN)',
    SYNC_TRACKING),
  uffd('MOVE', '6.8', 'unused', 'moving pages between address spaces'),
  { name: 'PTRACE', label: 'ptrace (PTRACE_SEIZE)', since: '3.4', use: 'required',
    purpose: 'following the program (fork, exec, threads) and injecting its userfaultfd' },
  { name: 'SECCOMP_TRACE', label: 'seccomp (SECCOMP_RET_TRACE)', since: '3.5', use: 'required',
    purpose: 'trapping mmap, brk and mbind only, so other system calls run at full speed' },
  { name: 'PIDFD_GETFD', label: 'pidfd_open + pidfd_getfd', since: '5.6', use: 'required',
    purpose: "taking the program's userfaultfd" },
  { name: 'PROCESS_MADVISE', label: 'process_madvise(MADV_DONTNEED)', since: '6.15', use: 'fallback',
    purpose: 'eviction (--max-resident): one call injected into a stopped thread (PIDFD_SELF_THREAD) drops up to 64 ranges',
    without: 'one injected madvise(MADV_DONTNEED) per range: each eviction stops the address space a little longer' },
  { name: 'PAGEMAP_SCAN', label: 'PAGEMAP_SCAN', since: '6.7', use: 'fallback',
    purpose: 'reading and resetting the written pages in one ioctl (with WP_ASYNC): pre-copy snapshots',
    without: SYNC_TRACKING },
  { name: 'LIBPMEM', label: 'libpmem (cache flush for /dev/dax)', since: '', use: 'fallback',
    purpose: 'CPU cache flushes (pmem_flush, pmem_drain) that make /dev/dax snapshots durable',
    without: '/dev/dax snapshots survive a crash of numactlx, and power loss only on eADR platforms' },
];

export const FEATURE: Readonly<Record<FeatureName, FeatureInfo>> =
  Object.fromEntries(FEATURES.map((f) => [f.name, f])) as Record<FeatureName, FeatureInfo>;

/** One probe's answer. */
export interface Probe {
  present: boolean;
  /** What was tried and what came of it. */
  detail: string;
  /** When absent: how to get it. */
  fix?: string;
  /** Not probed (too costly for a session start; `doctor` probes it). */
  skipped?: boolean;
}

export type ProbeResults = Record<FeatureName, Probe>;

/** What the threads get (in their start data): the features present. */
export type KernelFeatures = readonly FeatureName[];

export function has(features: KernelFeatures, name: FeatureName): boolean {
  return features.includes(name);
}

export function presentFeatures(results: ProbeResults): KernelFeatures {
  return FEATURE_NAMES.filter((n) => results[n].present);
}

export const DISABLE_ENV = 'NUMACTLX_DISABLE_FEATURES';

/** The names in NUMACTLX_DISABLE_FEATURES; throws naming an unknown one. */
export function disabledFeatures(value: string | undefined): Set<FeatureName> {
  const out = new Set<FeatureName>();
  for (const word of (value ?? '').split(',').map((w) => w.trim()).filter((w) => w !== '')) {
    const name = word.toUpperCase();
    if (!(FEATURE_NAMES as readonly string[]).includes(name)) {
      throw new Error(`${DISABLE_ENV}: unknown feature '${word}' (known: ${FEATURE_NAMES.join(', ')})`);
    }
    out.add(name as FeatureName);
  }
  return out;
}

export type FeatureStatus = 'ok' | 'degraded' | 'missing' | 'unused';

export interface FeatureRow {
  name: FeatureName;
  label: string;
  status: FeatureStatus;
  /** What was found; for degraded, what the fallback costs; for missing, what cannot work. */
  detail: string;
  fix?: string;
}

const sinceText = (f: FeatureInfo): string => (f.since ? ` (Linux ${f.since})` : '');

/** Judges every probe: the rows `doctor` prints, in table order. */
export function judge(results: ProbeResults): FeatureRow[] {
  const syscall = results.USERFAULTFD.present;
  const device = results.USERFAULTFD_DEVICE.present;
  return FEATURES.map((f): FeatureRow => {
    const p = results[f.name];
    const row = { name: f.name, label: f.label };
    if (f.name === 'USERFAULTFD' || f.name === 'USERFAULTFD_DEVICE') {
      const other = f.name === 'USERFAULTFD' ? device : syscall;
      if (p.present) return { ...row, status: 'ok', detail: p.detail };
      if (other) {
        return { ...row, status: 'unused', detail: `${p.detail}; not needed: ` + (f.name === 'USERFAULTFD'
          ? "the program's userfaultfd comes from /dev/userfaultfd" : 'userfaultfd(2) traps kernel-mode faults here') };
      }
      return { ...row, status: 'missing', detail: `${p.detail} (for ${f.purpose})`, fix: p.fix };
    }
    if (f.use === 'unused') {
      return { ...row, status: 'unused', detail: `${p.present ? 'present' : `absent${sinceText(f)}`}; not used by this build` +
        (f.without && !p.present ? ` (${f.without})` : '') };
    }
    if (p.present) return { ...row, status: 'ok', detail: p.detail };
    if (f.use === 'fallback') return { ...row, status: 'degraded', detail: `${p.detail}; without it: ${f.without}`, fix: p.fix };
    return { ...row, status: 'missing', detail: `${p.detail} (for ${f.purpose})`, fix: p.fix };
  });
}

/**
 * The first feature a session with virtual nodes cannot do without, as the one line
 * numactlx stops with (without `numactlx: `), or undefined when it can run. `skipped`
 * probes (not tried at a session's start) do not count.
 */
export function missingLine(results: ProbeResults): string | undefined {
  const row = judge(results).find((r) => r.status === 'missing' && !results[r.name].skipped);
  if (!row) return undefined;
  const f = FEATURE[row.name];
  const p = results[row.name];
  if (f.name === 'USERFAULTFD' || f.name === 'USERFAULTFD_DEVICE') {
    return `no way to make ${FEATURE.USERFAULTFD.purpose}: ${results.USERFAULTFD.detail}; ` +
      `${results.USERFAULTFD_DEVICE.detail}; ${userfaultfdFix(results)}`;
  }
  const why = p.fix ? `; ${p.fix}` : '';
  return `${f.label} is missing (${p.detail}): numactlx needs it for ${f.purpose}${f.since ? `; Linux ${f.since} has it` : ''}${why}`;
}

/** How a user gets a userfaultfd that traps kernel-mode faults: the device's access if it exists, else privilege. */
export function userfaultfdFix(results: ProbeResults): string {
  const device = results.USERFAULTFD_DEVICE;
  const access = device.fix?.startsWith('give the user') ? device.fix : undefined;
  return [access, results.USERFAULTFD.fix].filter((f) => f !== undefined).join('; or ') ||
    'run as root, or give the user read-write access to /dev/userfaultfd';
}

/**
 * How the engine learns which pages were written since the last snapshot:
 * - 'async': the kernel tracks writes (UFFD_FEATURE_WP_ASYNC resolves a write to a
 *   protected page itself and clears its uffd-wp bit) and PAGEMAP_SCAN reads and resets
 *   them; snapshots are pre-copied (src/engine-thread/precopy.ts). Linux 6.7.
 * - 'sync': every first write to a protected page is a write fault the engine serves,
 *   and snapshots are copy-before-write (snapshot.ts). Linux 6.1's way.
 */
export type DirtyTracking = 'sync' | 'async';

export const DIRTY_TRACKING_ENV = 'NUMACTLX_DIRTY_TRACKING';

/**
 * The dirty tracking a session uses: async when the kernel has both features, else
 * sync; NUMACTLX_DIRTY_TRACKING=sync|async forces one. Throws the one line (without
 * `numactlx: `) when async is forced and a feature is missing, or the value is unknown.
 */
export function chooseDirtyTracking(features: KernelFeatures, value: string | undefined, evicting = false): DirtyTracking {
  const forced = value === undefined || value === '' ? undefined : value.toLowerCase();
  if (forced !== undefined && forced !== 'sync' && forced !== 'async') {
    throw new Error(`${DIRTY_TRACKING_ENV}: unknown value '${value}' (known: sync, async)`);
  }
  if (forced === 'sync') return 'sync';
  // Eviction (--max-resident) writes a page back only when it saw a write fault on it
  // since its frame was written: with the kernel resolving write faults it would drop
  // written pages unsaved. Until eviction reads the written set itself, it needs sync.
  if (evicting) {
    if (forced === 'async') throw new Error(`${DIRTY_TRACKING_ENV}=async: a node with a resident limit (--max-resident, resident=) needs synchronous dirty tracking; unset ${DIRTY_TRACKING_ENV} or set it to sync`);
    return 'sync';
  }
  const missing = (['WP_ASYNC', 'PAGEMAP_SCAN'] as const).find((n) => !has(features, n));
  if (missing === undefined) return 'async';
  if (forced === 'async') {
    const f = FEATURE[missing];
    throw new Error(`${DIRTY_TRACKING_ENV}=async: ${f.label} is missing, and asynchronous dirty tracking needs it ` +
      `(Linux ${f.since} has it); unset ${DIRTY_TRACKING_ENV} or set it to sync`);
  }
  return 'sync';
}

/**
 * How an asynchronously tracked snapshot holds the freeze's image while the program runs
 * (src/engine-thread/snapshot-capture.ts):
 * - 'fork': the program is made to fork in the freeze, its child held stopped by the
 *   tracer and never run; the kernel's copy-on-write keeps the image in the child, and the
 *   written pages are copied out of it afterwards (Redis BGSAVE's way, without its child
 *   running). Needs UFFD_FEATURE_EVENT_FORK (the child's userfaultfd is the engine's to close).
 * - 'precopy': the written pages are copied before and in the freeze (precopy.ts).
 * - 'auto': pre-copy, and an address space whose pre-copy slices could not bring what it
 *   left down to what the pause may copy (a program writing faster than it is copied) is
 *   held by a fork in that freeze instead of being copied in the pause (precopy-slices.ts).
 *   Needs what 'fork' needs; 'precopy' where that is missing.
 * With synchronous tracking none applies: snapshots are copy-before-write.
 */
export type SnapshotCapture = 'fork' | 'precopy' | 'auto';

export const SNAPSHOT_CAPTURE_ENV = 'NUMACTLX_SNAPSHOT_CAPTURE';

/** The capture a session uses; throws the one line (without `numactlx: `) for a bad or impossible value. */
export function chooseCapture(features: KernelFeatures, tracking: DirtyTracking, value: string | undefined): SnapshotCapture {
  const asked = value === undefined || value === '' ? undefined : value.toLowerCase();
  if (asked !== undefined && asked !== 'fork' && asked !== 'precopy' && asked !== 'auto') {
    throw new Error(`${SNAPSHOT_CAPTURE_ENV}: unknown value '${value}' (known: auto, fork, precopy)`);
  }
  const possible = tracking === 'async' && has(features, 'EVENT_FORK');
  if (asked === 'fork' && !possible) {
    const why = tracking !== 'async' ? 'it needs asynchronous dirty tracking (WP_ASYNC and PAGEMAP_SCAN, Linux 6.7), and this session tracks synchronously'
      : `it needs ${FEATURE.EVENT_FORK.label} (Linux ${FEATURE.EVENT_FORK.since})`;
    throw new Error(`${SNAPSHOT_CAPTURE_ENV}=fork: ${why}; unset ${SNAPSHOT_CAPTURE_ENV} or set it to precopy`);
  }
  if (!possible) return 'precopy';
  return asked ?? DEFAULT_CAPTURE;
}

/**
 * A fork for every snapshot lengthens every pause by the fork (docs/BENCHMARKS.md "Snapshots
 * held by a fork"); one only where pre-copy cannot converge replaces a pause that would copy
 * all the program rewrote (§5o).
 */
const DEFAULT_CAPTURE: SnapshotCapture = 'auto';
