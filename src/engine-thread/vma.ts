// The VMA around an address, read from /proc/PID/maps (rare: when a fault-ahead copy
// crossed a VMA boundary, or a registered VMA grew in place).
import fs from 'node:fs';

export /** The [start, end) of the VMA of `pid` holding `addr`, from /proc/PID/maps. */
function vmaAround(pid: number, addr: number): [number, number] | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const dash = line.indexOf('-');
    const space = line.indexOf(' ');
    if (dash < 0 || space < 0) continue;
    const start = Number.parseInt(line.slice(0, dash), 16);
    const end = Number.parseInt(line.slice(dash + 1, space), 16);
    if (addr >= start && addr < end) return [start, end];
  }
  return undefined;
}
