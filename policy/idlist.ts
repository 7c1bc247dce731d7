// Node and CPU lists with libnuma's syntax (numa_parse_nodestring/_cpustring):
//   N, N-M, comma-separated; "all" (the allowed set); a leading "!" inverts the list
//   over every configured id; a leading "+" makes numbers relative to the allowed set
//   (+0 is the first allowed id). Every id named must be in the allowed set; ids inside
//   a range that are not allowed are skipped, as libnuma does. For node lists, an item
//   that starts with a letter may be a device specifier (netdev:eth0): the caller's
//   `device` resolver gets the rest of the list from there, and the nodes it returns are
//   taken as they are (libnuma checks neither the allowed set nor "+" for them).
import { PolicyError } from './errors.js';

export interface IdListContext {
  /** 'node' or 'cpu', for messages. */
  kind: 'node' | 'cpu';
  /** Ids a list may name (cpuset-allowed, or all with --all; virtual nodes included). */
  allowed: readonly number[];
  /** Ids "!" inverts over (configured nodes/CPUs). */
  universe: readonly number[];
  /**
   * Node lists: the nodes a device specifier stands for, given the rest of the list from
   * it on; undefined when it is not one. It throws when the device has no usable node.
   */
  device?: (spec: string) => number[] | undefined;
}

function parseNumber(text: string): number | undefined {
  if (/^\d+$/.test(text)) return Number(text);
  if (/^0x[0-9a-f]+$/i.test(text)) return Number.parseInt(text.slice(2), 16);
  return undefined;
}

/** Parses a list into a sorted array of ids; throws PolicyError naming the bad part. */
export function parseIdList(text: string, ctx: IdListContext): number[] {
  if (text === '') return [];
  let s = text;
  let invert = false;
  let relative = false;
  if (s.startsWith('!')) { invert = true; s = s.slice(1); }
  if (s.startsWith('+')) { relative = true; s = s.slice(1); }
  const allowed = new Set(ctx.allowed);
  const sortedAllowed = [...ctx.allowed].sort((a, b) => a - b);
  const chosen = new Set<number>();

  const resolve = (part: string): number => {
    const n = parseNumber(part);
    if (n === undefined) throw new PolicyError(`unparseable ${ctx.kind} description '${part}'`);
    const id = relative ? sortedAllowed[n] : n;
    if (id === undefined || !allowed.has(id)) {
      throw new PolicyError(`${ctx.kind} ${relative ? `+${n}` : n} is out of range ` +
        `(${ctx.kind === 'node' ? 'nodes' : 'cpus'} available: ${formatIdList(sortedAllowed) || 'none'})`);
    }
    return id;
  };

  const items = s.split(',');
  for (const [i, item] of items.entries()) {
    if (item === 'all' && i === items.length - 1) {
      for (const id of sortedAllowed) chosen.add(id);
      continue;
    }
    const deviceNodes = ctx.device && /^[a-z]/i.test(item) ? ctx.device(items.slice(i).join(',')) : undefined;
    if (deviceNodes) {
      for (const id of deviceNodes) chosen.add(id);
      break; // the specifier took the rest of the list
    }
    const dash = item.indexOf('-', 1);
    if (dash < 0) {
      chosen.add(resolve(item));
      continue;
    }
    const lo = resolve(item.slice(0, dash));
    const hi = resolve(item.slice(dash + 1));
    // libnuma sets the first id before walking the range: a reversed range "3-1" is {3}.
    chosen.add(lo);
    for (let id = lo; id <= hi; id++) if (allowed.has(id)) chosen.add(id);
  }
  if (invert) {
    const inverted = ctx.universe.filter((id) => !chosen.has(id));
    return [...new Set(inverted)].sort((a, b) => a - b);
  }
  return [...chosen].sort((a, b) => a - b);
}

/** Compresses ids to the kernel's list format: "0-3,8,10-11". */
export function formatIdList(ids: readonly number[]): string {
  const sorted = [...new Set(ids)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; i++) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j;
  }
  return parts.join(',');
}

/** Parses the kernel's list format ("0-3,8"), as found in sysfs and /proc. */
export function parseKernelList(text: string): number[] {
  const out: number[] = [];
  for (const part of text.trim().split(',')) {
    if (part === '') continue;
    const [lo, hi] = part.split('-').map(Number);
    for (let id = lo; id <= (hi ?? lo); id++) out.push(id);
  }
  return out;
}
