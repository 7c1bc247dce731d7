// --config FILE: the schema, strict validation (every error names the file and the key),
// the signal and --keep values, and how the command line merges over the file.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  CONFIG_MAX_BYTES,
  ConfigError, loadSnapshotConfig, mergeSnapshotSettings, parseKeep, parseSnapshotConfig, parseSnapshotSignal,
  snapshotSignalChoices,
} from '../../src/snapshot/config.js';
import { signalName } from '../../src/sys/signal.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';
import { loadCron } from '../../src/snapshot/schedule.js';

// What numactlx's main does before parsing a --config (node-cron is loaded only then).
beforeAll(loadCron);
afterAll(removeTmpDirs);

const VALID = 'valid: HUP, INT, QUIT, ABRT, USR1, USR2, PIPE, ALRM, TERM, STKFLT, CONT, TSTP, TTIN, TTOU, URG, XCPU, XFSZ, '
  + 'VTALRM, PROF, WINCH, IO, PWR, SYS, or their numbers';

test('the full example of the header', () => {
  const text = JSON.stringify({
    schedules: ['*/5 * * * *', { cron: '0 * * * *', label: 'hourly' }, { cron: '*/30 * * * * *', label: null }],
    keep: 12, snapshot_signal: 'SIGUSR1', snapshot_on_exit: true,
  });
  expect(parseSnapshotConfig(text, '/etc/sim.json')).toEqual({
    schedules: [{ expr: '*/5 * * * *', label: null }, { expr: '0 * * * *', label: 'hourly' }, { expr: '*/30 * * * * *', label: null }],
    keep: 12, signal: 10, onExit: true,
  });
});

test('every key is optional; a BOM is tolerated', () => {
  expect(parseSnapshotConfig('{}', 'c.json')).toEqual({ schedules: [] });
  expect(parseSnapshotConfig('\uFEFF{"snapshot_on_exit": false}', 'c.json')).toEqual({ schedules: [], onExit: false });
});

test.each([
  ['[]', 'must be a JSON object, got an array'],
  ['null', 'must be a JSON object, got null'],
  ['{"keep": 3,}', /^not valid JSON: /],
  ['{"kep": 3}', 'kep: unknown key (valid: schedules, keep, snapshot_signal, snapshot_on_exit)'],
  ['{"schedules": "*/5 * * * *"}', 'schedules: must be an array, got "*/5 * * * *"'],
  ['{"schedules": [5]}', 'schedules[0]: must be a cron expression string or {"cron", "label"}, got 5'],
  ['{"schedules": ["* * * * *", "61 * * * *"]}', "schedules[1]: invalid schedule '61 * * * *': bad minute field '61' (valid: 0-59; fields: [second] minute hour day-of-month month day-of-week)"],
  ['{"schedules": [{"label": "x"}]}', 'schedules[0]: a schedule object needs "cron"'],
  ['{"schedules": [{"cron": 5}]}', 'schedules[0].cron: must be a cron expression string, got 5'],
  ['{"schedules": [{"cron": "* * *"}]}', "schedules[0].cron: invalid schedule '* * *': expected 5 or 6 fields but got 3 (fields: [second] minute hour day-of-month month day-of-week)"],
  ['{"schedules": [{"cron": "@hourly", "lable": "x"}]}', 'schedules[0].lable: unknown key (valid: cron, label)'],
  ['{"schedules": [{"cron": "@hourly", "label": 3}]}', 'schedules[0].label: must be a string, got 3'],
  ['{"schedules": [{"cron": "@hourly", "label": "2024"}]}', 'schedules[0].label: invalid label "2024": a label must not be a number (it would read as a snapshot id)'],
  ['{"schedules": [{"cron": "@hourly", "label": ""}]}', 'schedules[0].label: invalid label "": a label must not be empty'],
  ['{"keep": 0}', 'keep: must be a positive integer, got 0'],
  ['{"keep": 2.5}', 'keep: must be a positive integer, got 2.5'],
  ['{"keep": "12"}', 'keep: must be a positive integer, got "12"'],
  ['{"keep": null}', 'keep: must be a positive integer, got null'],
  ['{"snapshot_signal": true}', 'snapshot_signal: must be a signal name or number, got true'],
  ['{"snapshot_signal": "SIGKILL"}', `snapshot_signal: SIGKILL cannot be caught (${VALID})`],
  ['{"snapshot_signal": 11}', `snapshot_signal: SIGSEGV reports a fault in numactlx itself and cannot be caught safely (${VALID})`],
  ['{"snapshot_signal": "USR3"}', `snapshot_signal: unknown signal 'USR3' (${VALID})`],
  ['{"snapshot_on_exit": "yes"}', 'snapshot_on_exit: must be true or false, got "yes"'],
  ['{"snapshot_on_exit": 1}', 'snapshot_on_exit: must be true or false, got 1'],
])('%s: %s', (text, message) => {
  let err: unknown;
  try {
    parseSnapshotConfig(text, '/etc/sim.json');
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ConfigError);
  expect((err as ConfigError).file).toBe('/etc/sim.json');
  const msg = (err as ConfigError).message;
  expect(msg.startsWith('/etc/sim.json: ')).toBe(true);
  if (typeof message === 'string') expect(msg).toBe(`/etc/sim.json: ${message}`);
  else expect(msg.slice('/etc/sim.json: '.length)).toMatch(message);
});

test('loadSnapshotConfig reads the file, and says why it cannot', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'c.json');
  fs.writeFileSync(file, '{"keep": 4, "schedules": ["@daily"]}');
  expect(loadSnapshotConfig(file)).toEqual({ schedules: [{ expr: '@daily', label: null }], keep: 4 });
  expect(() => loadSnapshotConfig(path.join(dir, 'missing.json'))).toThrow(`${dir}/missing.json: cannot read it: ENOENT`);
  expect(() => loadSnapshotConfig(dir)).toThrow(`${dir}: cannot read it: EISDIR`);
  // Not a regular file, or too large: refused before a byte is read (no hang on a FIFO,
  // no unbounded read of /dev/zero).
  expect(() => loadSnapshotConfig('/dev/zero')).toThrow('/dev/zero: not a regular file');
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  expect(() => loadSnapshotConfig(fifo)).toThrow(`${fifo}: not a regular file`);
  const big = path.join(dir, 'big.json');
  fs.writeFileSync(big, Buffer.alloc(CONFIG_MAX_BYTES + 1, 32));
  expect(() => loadSnapshotConfig(big)).toThrow(`${big}: ${CONFIG_MAX_BYTES + 1} bytes, more than a settings file may hold (${CONFIG_MAX_BYTES})`);
});

test('the command line adds schedules and wins for keep, signal and on-exit', () => {
  const file = { schedules: [{ expr: '@hourly', label: 'hourly' }], keep: 12, signal: 12, onExit: false };
  expect(mergeSnapshotSettings(file, { schedules: [{ expr: '*/5 * * * *', label: null }], keep: 3, signal: 1, onExit: true })).toEqual({
    schedules: [{ expr: '@hourly', label: 'hourly' }, { expr: '*/5 * * * *', label: null }], keep: 3, signal: 1, onExit: true,
  });
  expect(mergeSnapshotSettings(file, { schedules: [] })).toEqual({ schedules: [{ expr: '@hourly', label: 'hourly' }], keep: 12, signal: 12, onExit: false });
  expect(mergeSnapshotSettings(undefined, { schedules: [] })).toEqual({ schedules: [], keep: undefined, signal: 10, onExit: false });
});

test.each([
  ['USR1', 10], ['SIGUSR1', 10], ['usr2', 12], ['sigHup', 1], ['10', 10], [15, 15], ['SIGIOT', 6], ['POLL', 29], ['PWR', 30],
])('signal %j is %d', (value, n) => {
  expect(parseSnapshotSignal(value)).toBe(n);
});

test.each([
  ['KILL', `SIGKILL cannot be caught (${VALID})`],
  ['9', `SIGKILL cannot be caught (${VALID})`],
  ['STOP', `SIGSTOP cannot be caught (${VALID})`],
  ...['SEGV', 'BUS', 'FPE', 'ILL', 'TRAP'].map((s) => [s, `SIG${s} reports a fault in numactlx itself and cannot be caught safely (${VALID})`]),
  ['CHLD', `SIGCHLD tells numactlx about its own children's ends (${VALID})`],
  ['FOO', `unknown signal 'FOO' (${VALID})`],
  ['0', `unknown signal '0' (${VALID})`],
  ['34', `unknown signal '34' (${VALID})`],
  ['', `unknown signal '' (${VALID})`],
  ['-1', `unknown signal '-1' (${VALID})`],
])('signal %j is refused', (value, message) => {
  expect(() => parseSnapshotSignal(value)).toThrow(message);
});

test('every listed choice is a signal Node can listen for', () => {
  for (const name of snapshotSignalChoices()) {
    const sig = `SIG${name}` as NodeJS.Signals;
    const noop = (): void => {};
    process.on(sig, noop);
    process.off(sig, noop);
    expect(signalName(parseSnapshotSignal(name))).toBe(sig);
  }
});

test.each([['1', 1], ['12', 12], ['9007199254740991', 9007199254740991]])('--keep %s', (text, n) => {
  expect(parseKeep(text)).toBe(n);
});

test.each(['0', '-1', '1.5', '01', 'abc', '', '9007199254740993', '1e3'])('--keep %j is refused', (text) => {
  expect(() => parseKeep(text)).toThrow('a positive integer (how many unlabelled snapshots to keep)');
});
