// The snapshot options of the launcher: every bad value exits 1 with one `numactlx:` line
// (plus the usage for command-line syntax; not for a bad --config file) and never runs the
// program (it would create a marker file), through the built binary. Then what a good
// command line puts in plan.snapshots.
import fs from 'node:fs';
import path from 'node:path';
import { parseLaunchArgs } from '../../launcher/options.js';
import { readTopology } from '../../policy/topology.js';
import { numactlx } from '../helpers/numactlx.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';
import { loadCron } from '../../src/snapshot/schedule.js';

// What numactlx's main does before parsing --schedule (node-cron is loaded only then).
beforeAll(loadCron);

const dir = tmpDir();
const marker = path.join(dir, 'program-ran');
const program = ['sh', '-c', `touch ${marker}`];
const remap = `--remap=3,${dir}/n3.img,size=2m`;
const config = (name: string, text: string): string => {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
};
const goodConfig = config('good.json', '{"keep": 2}');
const FIELDS = '(valid: 0-59; fields: [second] minute hour day-of-month month day-of-week)';
const SIGNALS = 'valid: HUP, INT, QUIT, ABRT, USR1, USR2, PIPE, ALRM, TERM, STKFLT, CONT, TSTP, TTIN, TTOU, URG, XCPU, XFSZ, '
  + 'VTALRM, PROF, WINCH, IO, PWR, SYS, or their numbers';
const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

afterAll(removeTmpDirs);
afterEach(() => fs.rmSync(marker, { force: true }));

interface Case {
  name: string;
  args: string[];
  /** The whole first line of stderr. */
  error: string;
  usage: boolean;
}

const needsRemap = (spelled: string): string =>
  `numactlx: ${spelled} needs a virtual node (--remap=NODE,PATH): snapshots are of the memory on virtual nodes`;

const cases: Case[] = [
  // Only with a virtual node.
  { name: '--schedule without --remap', args: ['--schedule', '*/5 * * * *', ...program], error: needsRemap('--schedule'), usage: true },
  { name: '--keep without --remap', args: ['-m', '0', '--keep', '3', ...program], error: needsRemap('--keep'), usage: true },
  { name: '--config without --remap', args: ['--config', goodConfig, ...program], error: needsRemap('--config'), usage: true },
  { name: '--snapshot-signal without --remap', args: ['--snapshot-signal', 'USR2', ...program], error: needsRemap('--snapshot-signal'), usage: true },
  { name: '--snapshot-on-exit without --remap', args: ['--snapshot-on-exit', ...program], error: needsRemap('--snapshot-on-exit'), usage: true },
  // --schedule
  { name: 'minute out of range', args: [remap, '--schedule', '61 * * * *', ...program], error: `numactlx: invalid --schedule '61 * * * *': bad minute field '61' ${FIELDS}`, usage: true },
  { name: 'too few fields', args: [remap, '--schedule=* * *', ...program], error: "numactlx: invalid --schedule '* * *': expected 5 or 6 fields but got 3 (fields: [second] minute hour day-of-month month day-of-week)", usage: true },
  { name: 'empty schedule', args: [remap, '--schedule=', ...program], error: "numactlx: invalid --schedule '': empty (fields: [second] minute hour day-of-month month day-of-week)", usage: true },
  { name: 'second bad schedule of two', args: [remap, '--schedule', '@hourly', '--schedule', '*/0 * * * * *', ...program], error: "numactlx: invalid --schedule '*/0 * * * * *': bad second field '*/0' (valid: 0-59; fields: [second] minute hour day-of-month month day-of-week)", usage: true },
  // --keep
  ...['0', '-1', '1.5', 'abc', '99999999999999999999', ''].map((v): Case => ({
    name: `--keep '${v}'`, args: [remap, `--keep=${v}`, ...program],
    error: `numactlx: invalid --keep '${v}': a positive integer (how many unlabelled snapshots to keep)`, usage: true,
  })),
  { name: '--keep without a value', args: [remap, '--keep'], error: "numactlx: option '--keep' requires an argument", usage: true },
  // --snapshot-signal
  ...['KILL', 'SIGSTOP', '9'].map((v): Case => ({
    name: `--snapshot-signal ${v}`, args: [remap, '--snapshot-signal', v, ...program],
    error: `numactlx: invalid --snapshot-signal '${v}': SIG${v === '9' ? 'KILL' : v.replace(/^SIG/, '')} cannot be caught (${SIGNALS})`, usage: true,
  })),
  ...['SEGV', 'SIGBUS', 'fpe', 'ILL'].map((v): Case => ({
    name: `--snapshot-signal ${v}`, args: [remap, '--snapshot-signal', v, ...program],
    error: `numactlx: invalid --snapshot-signal '${v}': SIG${v.toUpperCase().replace(/^SIG/, '')} reports a fault in numactlx itself and cannot be caught safely (${SIGNALS})`, usage: true,
  })),
  ...['USR3', '0', '64', ''].map((v): Case => ({
    name: `--snapshot-signal '${v}'`, args: [remap, `--snapshot-signal=${v}`, ...program],
    error: `numactlx: invalid --snapshot-signal '${v}': unknown signal '${v}' (${SIGNALS})`, usage: true,
  })),
  // Spelling
  { name: 'ambiguous --snapshot', args: [remap, '--snapshot', ...program], error: "numactlx: option '--snapshot' is ambiguous; possibilities: '--snapshot-signal' '--snapshot-on-exit'", usage: true },
  { name: 'value on --snapshot-on-exit', args: [remap, '--snapshot-on-exit=yes', ...program], error: "numactlx: option '--snapshot-on-exit' doesn't allow an argument", usage: true },
  // --config
  { name: '--config twice', args: [remap, '--config', goodConfig, '--config', goodConfig, ...program], error: `numactlx: --config given twice ('${goodConfig}' and '${goodConfig}'): one configuration file`, usage: true },
  { name: '--config empty', args: [remap, '--config=', ...program], error: "numactlx: invalid --config '': a file name", usage: true },
  { name: '--config missing file', args: [remap, '--config', `${dir}/missing.json`, ...program], error: `numactlx: --config ${dir}/missing.json: cannot read it: ENOENT`, usage: false },
  { name: '--config a directory', args: [remap, '--config', dir, ...program], error: `numactlx: --config ${dir}: cannot read it: EISDIR`, usage: false },
  { name: '--config not JSON', args: [remap, '--config', config('bad.json', '{keep: 3}'), ...program], error: `numactlx: --config ${dir}/bad.json: not valid JSON: `, usage: false },
  { name: '--config unknown key', args: [remap, '--config', config('unknown.json', '{"schedule": ["@hourly"]}'), ...program], error: `numactlx: --config ${dir}/unknown.json: schedule: unknown key (valid: schedules, keep, snapshot_signal, snapshot_on_exit)`, usage: false },
  { name: '--config wrong type', args: [remap, '--config', config('type.json', '{"keep": "12"}'), ...program], error: `numactlx: --config ${dir}/type.json: keep: must be a positive integer, got "12"`, usage: false },
  { name: '--config bad schedule', args: [remap, '--config', config('cron.json', '{"schedules": [{"cron": "61 * * * *", "label": "x"}]}'), ...program], error: `numactlx: --config ${dir}/cron.json: schedules[0].cron: invalid schedule '61 * * * *': bad minute field '61' ${FIELDS}`, usage: false },
  { name: '--config bad signal', args: [remap, '--config', config('sig.json', '{"snapshot_signal": "STOP"}'), ...program], error: `numactlx: --config ${dir}/sig.json: snapshot_signal: SIGSTOP cannot be caught (${SIGNALS})`, usage: false },
];

test.each(cases)('$name: exit 1, one clear line, program not run', async ({ args, error, usage }) => {
  const r = await numactlx(args);
  const first = String(r.stderr).split('\n')[0];
  if (error.endsWith(': ')) expect(first).toMatch(new RegExp(`^${esc(error)}\\S`));
  else expect(first).toBe(error);
  expect(String(r.stderr).includes('usage: numactlx')).toBe(usage);
  if (!usage) expect(String(r.stderr).split('\n')).toHaveLength(1);
  expect(r.stdout).toBe('');
  expect(r.exitCode).toBe(1);
  expect(fs.existsSync(marker)).toBe(false);
  expect(fs.existsSync(`${dir}/n3.img`)).toBe(false); // refused before any backing was made
});

describe('plan.snapshots', () => {
  const topo = readTopology();
  const plan = (args: string[]): ReturnType<typeof parseLaunchArgs> => parseLaunchArgs([...args, 'prog'], topo);

  test('absent without virtual nodes; defaults with them', () => {
    expect(plan(['-m', '0']).snapshots).toBeUndefined();
    expect(plan([remap, '--membind=3']).snapshots).toEqual({ schedules: [], keep: undefined, signal: 10, onExit: false });
  });

  test('the command line', () => {
    expect(plan([remap, '--schedule', '*/5 * * * *', '--sched=@hourly', '--keep', '5', '--keep=12', '--snapshot-signal', 'hup',
      '--snapshot-on-exit', '--membind=3']).snapshots).toEqual({
      schedules: [{ expr: '*/5 * * * *', label: null }, { expr: '@hourly', label: null }], keep: 12, signal: 1, onExit: true,
    });
  });

  test('a --config file, extended and overridden by the command line', () => {
    const file = config('merge.json', JSON.stringify({
      schedules: ['0 0 * * *', { cron: '0 * * * *', label: 'hourly' }], keep: 24, snapshot_signal: 'USR2', snapshot_on_exit: true,
    }));
    expect(plan([remap, '--config', file]).snapshots).toEqual({
      schedules: [{ expr: '0 0 * * *', label: null }, { expr: '0 * * * *', label: 'hourly' }], keep: 24, signal: 12, onExit: true,
    });
    expect(plan([remap, '--schedule', '*/10 * * * * *', '--config', file, '--keep', '3', '--snapshot-signal', '30']).snapshots).toEqual({
      schedules: [{ expr: '0 0 * * *', label: null }, { expr: '0 * * * *', label: 'hourly' }, { expr: '*/10 * * * * *', label: null }],
      keep: 3, signal: 30, onExit: true,
    });
  });

  test('--show and --hardware do not need a program or a virtual node check', () => {
    expect(parseLaunchArgs([remap, '--hardware', '--keep', '3'], topo).snapshots).toBeUndefined();
  });
});
