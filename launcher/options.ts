// The launcher's options, numactl's semantics: every option is applied in the order
// given (as numactl applies them), node lists include the virtual nodes declared with
// --remap wherever they appear, and the result is a LaunchPlan.
import { splitArgv, type OptionEvent, type OptionSpec } from './argv.js';
import { SetupError, UsageError } from './errors.js';
import { parseIdList } from '../policy/idlist.js';
import { parseSize } from '../policy/size.js';
import { PAGE_SIZE } from '../src/sys/page.js';
import { DEFAULT_POLICY, type MemoryPolicy, type Placement, type PolicyMode } from '../policy/placement.js';
import { virtualNodeTable } from './virtual-nodes.js';
import { cpusOfNodes, type Topology } from '../policy/topology.js';
import { deviceNodes, type DeviceContext } from '../src/placement/device-nodes.js';
import {
  ConfigError, loadSnapshotConfig, mergeSnapshotSettings, parseKeep, parseSnapshotSignal,
  type PartialSnapshotSettings, type SnapshotSettings,
} from '../src/snapshot/config.js';
import { checkCronExpression, ScheduleError } from '../src/snapshot/schedule.js';

export const LAUNCHER_OPTIONS: readonly OptionSpec[] = [
  { long: 'all', short: 'a', takesValue: false },
  { long: 'interleave', short: 'i', takesValue: true },
  { long: 'weighted-interleave', short: 'w', takesValue: true },
  { long: 'preferred', short: 'p', takesValue: true },
  { long: 'preferred-many', short: 'P', takesValue: true },
  { long: 'cpubind', short: 'c', takesValue: true },
  { long: 'cpunodebind', short: 'N', takesValue: true },
  { long: 'physcpubind', short: 'C', takesValue: true },
  { long: 'membind', short: 'm', takesValue: true },
  { long: 'show', short: 's', takesValue: false },
  { long: 'localalloc', short: 'l', takesValue: false },
  { long: 'balancing', short: 'b', takesValue: false },
  { long: 'hardware', short: 'H', takesValue: false },
  { long: 'cpu-compress', takesValue: false },
  { long: 'version', takesValue: false },
  { long: 'help', short: 'h', takesValue: false },
  { long: 'remap', takesValue: true },
  { long: 'max-resident', takesValue: true },
  { long: 'fault-ahead', takesValue: true },
  { long: 'stats', takesValue: true },
  // Snapshots of the virtual nodes (src/snapshot/config.ts).
  { long: 'schedule', takesValue: true },
  { long: 'keep', takesValue: true },
  { long: 'config', takesValue: true },
  { long: 'snapshot-signal', takesValue: true },
  { long: 'snapshot-on-exit', takesValue: false },
  // numactl's shared-memory options: recognised so that they get a clear refusal.
  { long: 'shm', short: 'S', takesValue: true },
  { long: 'file', short: 'f', takesValue: true },
  { long: 'offset', short: 'o', takesValue: true },
  { long: 'length', short: 'L', takesValue: true },
  { long: 'strict', short: 't', takesValue: false },
  { long: 'shmmode', short: 'M', takesValue: true },
  { long: 'dump', short: 'd', takesValue: false },
  { long: 'dump-nodes', short: 'D', takesValue: false },
  { long: 'shmid', short: 'I', takesValue: true },
  { long: 'huge', short: 'u', takesValue: false },
  { long: 'touch', short: 'T', takesValue: false },
  { long: 'verify', short: 'V', takesValue: false },
];

const SHM_OPTIONS = new Set(['shm', 'file', 'offset', 'length', 'strict', 'shmmode', 'dump',
  'dump-nodes', 'shmid', 'huge', 'touch', 'verify']);

const POLICY_OF: Record<string, PolicyMode> = {
  membind: 'bind', interleave: 'interleave', 'weighted-interleave': 'weighted-interleave',
  preferred: 'preferred', 'preferred-many': 'preferred-many', localalloc: 'local',
};

export type LaunchAction = 'run' | 'show' | 'hardware' | 'version' | 'help';

export interface LaunchPlan {
  action: LaunchAction;
  placement: Placement;
  /** Whether a memory policy option was given (numactl leaves the policy alone otherwise). */
  policyGiven: boolean;
  cpuCompress: boolean;
  program: string[];
  /** The most pages served per missing fault on a virtual node (--fault-ahead SIZE; src/engine-thread/fault-ahead.ts). */
  faultAheadPages: number;
  /** --stats FILE: JSON statistics written when the program has ended. */
  statsFile?: string;
  /**
   * Snapshot settings (--schedule, --keep, --config, --snapshot-signal, --snapshot-on-exit
   * merged over the --config file): present when the plan runs a program on virtual nodes.
   */
  snapshots?: SnapshotSettings;
}

/** The fault-ahead window when --fault-ahead is not given (see docs/BENCHMARKS.md). */
export const DEFAULT_FAULT_AHEAD = 1024n * 1024n;
const MAX_FAULT_AHEAD = 2n * 1024n * 1024n;
const PAGE_BYTES = BigInt(PAGE_SIZE);

function succeeds(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch {
    return false;
  }
}

/** Parses the launcher command line against the machine's topology. */
export function parseLaunchArgs(argv: readonly string[], topo: Topology): LaunchPlan {
  const { events, program } = splitArgv(argv, LAUNCHER_OPTIONS);
  for (const ev of events) {
    if (SHM_OPTIONS.has(ev.name)) {
      throw new UsageError(`${ev.spelled} is not supported: numactlx does not set policies on shared memory segments (use numactl for that)`);
    }
  }
  // Virtual nodes first: a node list may name them wherever --remap appears.
  const virtualNodes = virtualNodeTable(events, topo);
  const virtualIds = virtualNodes.map((v) => v.node);
  const realIds = topo.nodes.map((n) => n.id);
  // Device specifiers (netdev:eth0…) read sysfs; tests may move its root.
  const devices: DeviceContext = { sysRoot: process.env.NUMACTLX_SYSFS_ROOT ?? '/sys', taskNodes: topo.allowedNodes.length };

  let parseAll = false;
  let didNodeCpuParse = false;
  let lastNodeList: string | undefined;
  let memory: MemoryPolicy | undefined;
  let balancing = false;
  let cpus: number[] | undefined;
  let action: LaunchAction = 'run';
  let cpuCompress = false;
  let faultAhead = DEFAULT_FAULT_AHEAD;
  let statsFile: string | undefined;
  const cliSnapshots: PartialSnapshotSettings = { schedules: [] };
  let configEvent: OptionEvent | undefined;
  let snapshotOption: OptionEvent | undefined;

  const nodeList = (ev: OptionEvent, realOnly = false): number[] => {
    let text = ev.value ?? '';
    if (text === 'same') {
      if (lastNodeList === undefined) throw new UsageError(`${ev.spelled} same: 'same' needs a previous node specification`);
      text = lastNodeList;
    } else {
      lastNodeList = text;
    }
    didNodeCpuParse = true;
    const real = parseAll ? realIds : topo.allowedNodes;
    const parse = (allowed: number[]): number[] => parseIdList(text, {
      kind: 'node', allowed, universe: realOnly ? realIds : [...realIds, ...virtualIds],
      device: (spec) => deviceNodes(spec, devices),
    });
    try {
      return parse(realOnly ? real : [...real, ...virtualIds]);
    } catch (err) {
      let why = (err as Error).message;
      if (realOnly && virtualIds.length > 0 && succeeds(() => parse([...real, ...virtualIds]))) {
        why = 'virtual nodes have no CPUs';
      }
      throw new UsageError(`invalid node list '${ev.value}' for ${ev.spelled}: ${why}`, { cause: err });
    }
  };

  for (const ev of events) {
    if (action === 'show') break; // numactl prints at -s and ignores what follows
    switch (ev.name) {
      case 'all':
        if (didNodeCpuParse) throw new UsageError('--all/-a option must be before all cpu/node specifications');
        parseAll = true;
        break;
      case 'balancing':
        if (memory) throw new UsageError(`${ev.spelled} must come before the memory policy`);
        balancing = true;
        break;
      case 'membind': case 'interleave': case 'weighted-interleave':
      case 'preferred': case 'preferred-many': case 'localalloc': {
        if (memory) throw new UsageError(`Conflicting policies: ${ev.spelled} after a memory policy was already given`);
        const mode = POLICY_OF[ev.name];
        const nodes = mode === 'local' ? [] : nodeList(ev);
        if (mode === 'preferred' && nodes.length !== 1) {
          throw new UsageError(`${ev.spelled} takes exactly one node, got '${ev.value}' (use --preferred-many for several)`);
        }
        if (nodes.length === 0 && (mode === 'interleave' || mode === 'weighted-interleave')) {
          memory = { ...DEFAULT_POLICY }; // libnuma: an empty interleave mask means the default policy
        } else {
          if (nodes.length === 0 && mode !== 'local') throw new UsageError(`the node list '${ev.value}' for ${ev.spelled} is empty`);
          memory = { mode, nodes, balancing: balancing && mode === 'bind' };
        }
        break;
      }
      case 'cpunodebind': case 'cpubind': {
        cpus = cpusOfNodes(topo, nodeList(ev, true));
        if (cpus.length === 0) throw new UsageError(`${ev.spelled} ${ev.value}: the nodes have no CPUs`);
        break;
      }
      case 'physcpubind':
        didNodeCpuParse = true;
        try {
          cpus = parseIdList(ev.value ?? '', { kind: 'cpu', allowed: parseAll ? topo.cpus : topo.allowedCpus, universe: topo.cpus });
        } catch (err) {
          throw new UsageError(`invalid cpu list '${ev.value}' for ${ev.spelled}: ${(err as Error).message}`, { cause: err });
        }
        if (cpus.length === 0) throw new UsageError(`the cpu list '${ev.value}' for ${ev.spelled} is empty`);
        break;
      case 'show': action = 'show'; break;
      case 'hardware': if (action === 'run') action = 'hardware'; break;
      case 'cpu-compress': cpuCompress = true; break;
      case 'version': if (action === 'run') action = 'version'; break;
      case 'help': action = 'help'; break;
      case 'remap': case 'max-resident': break; // handled above
      case 'fault-ahead':
        try {
          faultAhead = parseSize(ev.value ?? '');
        } catch (err) {
          throw new UsageError(`invalid ${ev.spelled} '${ev.value}': ${(err as Error).message}`, { cause: err });
        }
        if (faultAhead % PAGE_BYTES !== 0n || faultAhead < PAGE_BYTES || faultAhead > MAX_FAULT_AHEAD) {
          throw new UsageError(`invalid ${ev.spelled} '${ev.value}': a multiple of 4k from 4k to 2m`);
        }
        break;
      case 'stats': statsFile = ev.value; break;
      case 'schedule': case 'keep': case 'config': case 'snapshot-signal': case 'snapshot-on-exit':
        snapshotOption ??= ev;
        snapshotArg(ev, cliSnapshots);
        if (ev.name === 'config') {
          if (configEvent) throw new UsageError(`${ev.spelled} given twice ('${configEvent.value}' and '${ev.value}'): one configuration file`);
          configEvent = ev;
        }
        break;
      default: throw new UsageError(`unhandled option ${ev.spelled}`);
    }
  }
  if (action === 'run' && program.length === 0) throw new UsageError('no program to run');
  let snapshots: SnapshotSettings | undefined;
  if (action === 'run') {
    if (snapshotOption && virtualNodes.length === 0) {
      throw new UsageError(`${snapshotOption.spelled} needs a virtual node (--remap=NODE,PATH): snapshots are of the memory on virtual nodes`);
    }
    if (virtualNodes.length > 0) snapshots = mergeSnapshotSettings(configEvent && snapshotConfig(configEvent), cliSnapshots);
  }
  return {
    action,
    placement: { memory: memory ?? { ...DEFAULT_POLICY }, cpus, virtualNodes },
    policyGiven: memory !== undefined,
    cpuCompress,
    program,
    faultAheadPages: Number(faultAhead / PAGE_BYTES),
    statsFile,
    snapshots,
  };
}

/** Checks one snapshot option's value and records it (the last --keep/--snapshot-signal wins). */
function snapshotArg(ev: OptionEvent, out: PartialSnapshotSettings): void {
  const value = ev.value ?? '';
  const why = (err: unknown): string => (err instanceof ScheduleError ? err.why : (err as Error).message);
  const bad = (err: unknown): UsageError => new UsageError(`invalid ${ev.spelled} '${value}': ${why(err)}`, { cause: err });
  try {
    switch (ev.name) {
      case 'schedule':
        checkCronExpression(value);
        out.schedules.push({ expr: value, label: null });
        break;
      case 'keep': out.keep = parseKeep(value); break;
      case 'snapshot-signal': out.signal = parseSnapshotSignal(value); break;
      case 'snapshot-on-exit': out.onExit = true; break;
      case 'config': if (value === '') throw new Error('a file name'); break;
    }
  } catch (err) {
    throw bad(err);
  }
}

/** --config FILE: a file that cannot be read or is wrong is a setup error, not bad syntax. */
function snapshotConfig(ev: OptionEvent): PartialSnapshotSettings {
  try {
    return loadSnapshotConfig(ev.value ?? '');
  } catch (err) {
    if (err instanceof ConfigError) throw new SetupError(`${ev.spelled} ${err.message}`, { cause: err });
    throw err;
  }
}
