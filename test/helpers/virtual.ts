// Running programs on a virtual node and reading what --stats recorded.
import fs from 'node:fs';
import path from 'node:path';
import { execa, type Options, type Result } from 'execa';
import { NUMACTLX, numactlx } from './numactlx.js';
import { tmpDir } from './tmp.js';
import type { SessionStats } from '../../src/channels/session-stats.js';

export interface VirtualRun {
  result: Result;
  stats: SessionStats;
  backing: string;
}

/**
 * Runs `program` with `--remap=3,<fresh backing>,size=SIZE` plus `policy` (default
 * --membind=3) and --stats; returns the run and its statistics.
 */
export async function onVirtualNode(program: string[], opts: { size?: string; policy?: string[]; extra?: string[]; options?: Options; backing?: string; pinCpu?: number } = {}): Promise<VirtualRun> {
  const dir = tmpDir();
  const backing = opts.backing ?? path.join(dir, 'node3.img');
  const statsFile = path.join(dir, 'stats.json');
  const size = opts.size ?? (opts.backing ? undefined : '512m');
  const remap = `--remap=3,${backing}${size ? `,size=${size}` : ''}`;
  const args = [remap, ...(opts.policy ?? ['--membind=3']), ...(opts.extra ?? []), '--stats', statsFile, '--', ...program];
  // pinCpu: numactlx itself (its threads, and so the program) on one CPU, as `taskset -c`.
  const result = opts.pinCpu === undefined ? await numactlx(args, opts.options)
    : await execa('taskset', ['-c', String(opts.pinCpu), NUMACTLX, ...args], { reject: false, stdin: 'ignore', ...opts.options }) as Result;
  const stats = fs.existsSync(statsFile) ? JSON.parse(fs.readFileSync(statsFile, 'utf8')) as SessionStats : undefined;
  if (!stats) throw new Error(`no --stats file: exit ${result.exitCode}, stderr: ${result.stderr}`);
  return { result, stats, backing };
}

/** Node 3's statistics. */
export function node3(stats: SessionStats): SessionStats['nodes'][number] {
  const n = stats.nodes.find((s) => s.node === 3);
  if (!n) throw new Error('no statistics for node 3');
  return n;
}
