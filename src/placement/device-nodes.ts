// numactl's device node specifiers: wherever numactl takes a node list, a device may
// stand for the nodes it is attached to, as sysfs reports them. The semantics follow
// numactl 2.0's affinity.c and sysfs.c (read for the facts; this is not its code):
//
//   netdev:DEV  /sys/class/net/DEV          block:DEV  /sys/class/block/DEV
//   file:PATH   the block device holding PATH (stat: st_rdev of a block device node,
//               st_dev otherwise), found by its MAJ:MIN in /sys/class/block/*/dev
//   ip:HOST     the interface the route to HOST leaves by (the first address
//               getaddrinfo gives; rtnetlink RTM_GETROUTE), then as netdev:
//   pci:[SEG:]BUS:DEV[.FUNC]  (hex) /sys/devices/pciSEG:BUS/SEG:BUS:DEV.FUNC/numa_node
//
// A class device's node: its sysfs link, when it runs through a PCI function
// (…/devices/pciSSSS:BB/SSSS:BB:DD.F/…), gives that function's numa_node — the first
// PCI function on the path, as numactl's regular expression finds it; otherwise
// DEV/device/numa_node. numa_node holds node numbers (strtol, base 0) separated by
// commas or spaces; -1 means the kernel does not know the device's node, and numactl also
// refuses a node not below the number of nodes the task may use. The specifier takes the
// rest of the list ("0,netdev:eth0" is node 0 and eth0's nodes; "netdev:eth0,1" names a
// device "eth0,1"), and its nodes are not checked against the cpuset, as in numactl.
import fs from 'node:fs';
import path from 'node:path';
import { firstAddress, interfaceName, ResolveError } from '../sys/netdb.js';
import { routeInterface } from '../sys/rtnetlink.js';
import { SysError } from '../sys/libc.js';

/** A device specifier that names no usable device: the message says why. */
export class DeviceNodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeviceNodeError';
  }
}

export interface DeviceContext {
  /** '/sys', or a fixture tree (NUMACTLX_SYSFS_ROOT). */
  sysRoot: string;
  /** How many nodes the task may use (libnuma's numa_num_task_nodes). */
  taskNodes: number;
}

const CLASS_LABEL: Record<string, string> = { net: 'net device', block: 'block device' };
const PCI_FUNCTION_PATH = /(\/devices\/pci[0-9a-fA-F:/]+\.[0-9]+)\//;

function errnoCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}

/** The nodes listed in a sysfs numa_node file, checked as numactl checks them. */
function readNodeFile(file: string, label: string, ctx: DeviceContext): number[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'latin1');
  } catch (err) {
    throw new DeviceNodeError(`${label} has no NUMA node in sysfs (${file}: ${errnoCode(err)})`);
  }
  const nodes: number[] = [];
  let rest = text;
  do {
    // strtol(…, 0): leading space, a sign, 0x for hex, a leading 0 for octal.
    const m = /^\s*([+-]?)(0x[0-9a-f]+|0[0-7]*|[1-9][0-9]*)/i.exec(rest);
    if (!m) throw new DeviceNodeError(`${label}: cannot parse ${file} ('${text.trim()}')`);
    const digits = m[2];
    const value = (m[1] === '-' ? -1 : 1) * (/^0x/i.test(digits) ? Number.parseInt(digits.slice(2), 16)
      : digits.length > 1 && digits.startsWith('0') ? Number.parseInt(digits, 8) : Number(digits));
    if (value < 0) throw new DeviceNodeError(`${label}: the kernel does not know its NUMA node (${file} is ${value})`);
    if (value >= ctx.taskNodes) throw new DeviceNodeError(`${label} is on node ${value}, which is out of range (${ctx.taskNodes} node${ctx.taskNodes === 1 ? '' : 's'} available)`);
    nodes.push(value);
    rest = rest.slice(m[0].length).replace(/^[\s,]+/, '');
  } while (/^\d/.test(rest));
  return nodes;
}

/** The nodes of device `dev` of sysfs class `cls` (net, block). */
function classNodes(cls: string, dev: string, ctx: DeviceContext): number[] {
  const name = dev.trimStart();
  const label = `${CLASS_LABEL[cls]} '${name}'`;
  if (/[/.]/.test(name)) throw new DeviceNodeError(`illegal characters in ${label}`);
  const entry = path.join(ctx.sysRoot, 'class', cls, name);
  let link: string | undefined;
  try {
    link = fs.readlinkSync(entry);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new DeviceNodeError(`no ${label} (${entry} does not exist)`);
  }
  const pci = link === undefined ? null : PCI_FUNCTION_PATH.exec(link);
  if (pci) return readNodeFile(path.join(ctx.sysRoot, pci[1], 'numa_node'), `${label} (PCI ${path.basename(pci[1])})`, ctx);
  return readNodeFile(path.join(entry, 'device', 'numa_node'), label, ctx);
}

/** Linux's dev_t encoding (<linux/kdev_t.h> new_encode_dev, glibc's major()/minor()). */
function majorMinor(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

function fileNodes(file: string, ctx: DeviceContext): number[] {
  let st: fs.BigIntStats;
  try {
    st = fs.statSync(file, { bigint: true });
  } catch (err) {
    throw new DeviceNodeError(`cannot stat '${file}': ${errnoCode(err)}`);
  }
  // A device node stands for itself (numactl looks a character device up among the misc
  // devices, which have no block entry: it is never found either).
  const dev = majorMinor(st.isBlockDevice() || st.isCharacterDevice() ? st.rdev : st.dev);
  const blocks = path.join(ctx.sysRoot, 'class', 'block');
  let names: string[] = [];
  try {
    names = fs.readdirSync(blocks);
  } catch (err) {
    throw new DeviceNodeError(`cannot list the block devices in sysfs (${blocks}: ${errnoCode(err)})`);
  }
  for (const name of names) {
    let id: string;
    try {
      id = fs.readFileSync(path.join(blocks, name, 'dev'), 'latin1').trim();
    } catch {
      continue;
    }
    if (id === dev && !st.isCharacterDevice()) return classNodes('block', name, ctx);
  }
  throw new DeviceNodeError(`'${file}' is not on a block device that sysfs lists (device ${dev})`);
}

function ipNodes(host: string, ctx: DeviceContext): number[] {
  try {
    const address = firstAddress(host);
    const index = routeInterface(address.family, address.bytes);
    if (index === undefined) throw new DeviceNodeError(`the route to ${host} names no interface`);
    const name = interfaceName(index);
    if (name === undefined) throw new DeviceNodeError(`the route to ${host} leaves by interface ${index}, which has no name`);
    return classNodes('net', name, ctx);
  } catch (err) {
    if (err instanceof ResolveError) throw new DeviceNodeError(err.message);
    if (err instanceof SysError) throw new DeviceNodeError(`no route to ${host}: ${err.message}`);
    throw err;
  }
}

/**
 * sscanf with only %x conversions and literal characters: how many fields were converted
 * before the first mismatch, and their values. %x skips white space and takes an
 * optional sign and 0x prefix.
 */
function scanHex(text: string, format: string): number[] {
  const values: number[] = [];
  let s = text;
  for (const part of format) {
    if (part === 'x') {
      const m = /^\s*([+-]?)(?:0x)?([0-9a-f]+)/i.exec(s);
      if (!m) break;
      values.push((m[1] === '-' ? -1 : 1) * Number.parseInt(m[2], 16));
      s = s.slice(m[0].length);
    } else if (s.startsWith(part)) {
      s = s.slice(1);
    } else {
      break;
    }
  }
  return values;
}

function pciNodes(id: string, ctx: DeviceContext): number[] {
  let seg: number; let bus: number; let dev: number; let func: number;
  const full = scanHex(id, 'x:x:x.x');
  const short = scanHex(id, 'x:x.x');
  if (full.length >= 3) {
    [seg, bus, dev, func = 0] = full;
  } else if (short.length >= 2) {
    [bus, dev, func = 0] = short;
    seg = 0;
  } else {
    throw new DeviceNodeError(`cannot parse the PCI address '${id}' ([SEG:]BUS:DEV[.FUNC], hexadecimal)`);
  }
  const hex = (n: number, width: number): string => (n >>> 0).toString(16).padStart(width, '0');
  const bridge = `pci${hex(seg, 4)}:${hex(bus, 2)}`;
  const fn = `${hex(seg, 4)}:${hex(bus, 2)}:${hex(dev, 2)}.${hex(func, 1)}`;
  return readNodeFile(path.join(ctx.sysRoot, 'devices', bridge, fn, 'numa_node'), `PCI device '${id}'`, ctx);
}

const HANDLERS: Array<[prefix: string, resolve: (rest: string, ctx: DeviceContext) => number[]]> = [
  ['netdev:', (rest, ctx) => classNodes('net', rest, ctx)],
  ['ip:', ipNodes],
  ['file:', fileNodes],
  ['block:', (rest, ctx) => classNodes('block', rest, ctx)],
  ['pci:', pciNodes],
];

/**
 * The nodes `spec` (the rest of a node list from a device specifier on) stands for;
 * undefined when it starts with no device prefix. Throws DeviceNodeError.
 */
export function deviceNodes(spec: string, ctx: DeviceContext): number[] | undefined {
  const handler = HANDLERS.find(([prefix]) => spec.startsWith(prefix));
  if (!handler) return undefined;
  return handler[1](spec.slice(handler[0].length), ctx);
}
