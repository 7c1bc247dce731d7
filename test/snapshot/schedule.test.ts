// Cron schedules over node-cron 4: expressions checked with messages that quote them,
// real ticks of a 6-field (seconds) schedule, nothing after stop(), and no timer that keeps
// a process alive (a child process running the built dist/: `npx tsc` first).
import path from 'node:path';
import cron from 'node-cron';
import { execa } from 'execa';
import { checkCronExpression, loadCron, ScheduleError, startSchedules } from '../../src/snapshot/schedule.js';
import { ROOT } from '../helpers/numactlx.js';
import { waitFor } from '../helpers/proc.js';

const FIELDS = '(fields: [second] minute hour day-of-month month day-of-week)';

// What numactlx's main does when schedules are given (node-cron is loaded only then):
// the same instance as the static import above (its task registry is checked below).
beforeAll(loadCron);

test.each([
  ['61 * * * *', "bad minute field '61' (valid: 0-59; fields: [second] minute hour day-of-month month day-of-week)"],
  ['60 * * * * *', "bad second field '60' (valid: 0-59; fields: [second] minute hour day-of-month month day-of-week)"],
  ['* 24 * * *', "bad hour field '24' (valid: 0-23; fields: [second] minute hour day-of-month month day-of-week)"],
  ['* * 0 * *', "bad day-of-month field '0' (valid: 1-31, L, nW; fields: [second] minute hour day-of-month month day-of-week)"],
  ['* * * 13 *', "bad month field '13' (valid: 1-12 or jan-dec; fields: [second] minute hour day-of-month month day-of-week)"],
  ['* * * * 8', "bad day-of-week field '8' (valid: 0-7 or sun-sat, nL, n#k; fields: [second] minute hour day-of-month month day-of-week)"],
  ['*/0 * * * *', "bad minute field '*/0' (valid: 0-59; fields: [second] minute hour day-of-month month day-of-week)"],
  ['* * 31 2 *', "day of month '31' never occurs in the months given"],
  ['* * *', `expected 5 or 6 fields but got 3 ${FIELDS}`],
  ['* * * * * * *', `expected 5 or 6 fields but got 7 ${FIELDS}`],
  ['@reboot', `pattern includes illegal characters ${FIELDS}`],
  ['', `empty ${FIELDS}`],
  ['  ', `empty ${FIELDS}`],
])('%j is refused: %s', (expr, why) => {
  let err: unknown;
  try {
    checkCronExpression(expr);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ScheduleError);
  expect((err as ScheduleError).message).toBe(`invalid schedule '${expr}': ${why}`);
  expect((err as ScheduleError).why).toBe(why);
  expect((err as ScheduleError).expr).toBe(expr);
});

test.each(['*/5 * * * *', '*/10 * * * * *', '0 0 * * mon-fri', '0 0 1 jan *', '@hourly', '0 0 L * *', '0 30 9 * * 1#2'])('%j is accepted', (expr) => {
  expect(() => checkCronExpression(expr)).not.toThrow();
});

test('a bad expression among good ones starts nothing', () => {
  const before = cron.getTasks().size;
  expect(() => startSchedules(['*/5 * * * *', { expr: '* * 99 * *', label: 'x' }], () => {})).toThrow(
    "invalid schedule '* * 99 * *': bad day-of-month field '99'");
  expect(cron.getTasks().size).toBe(before);
});

test('a seconds schedule ticks with its expression and label; after stop(), nothing, and no task is left', async () => {
  const before = cron.getTasks().size;
  const ticks: [string, string | null][] = [];
  const running = startSchedules([{ expr: '* * * * * *', label: 'every-second' }, '*/1 * * * * *'], (expr, label) => {
    ticks.push([expr, label]);
  });
  expect(cron.getTasks().size).toBe(before + 2);
  await waitFor('a tick of each schedule', () => ticks.some((t) => t[1] === 'every-second') && ticks.some((t) => t[1] === null), 10000);
  running.stop();
  expect(ticks).toEqual(expect.arrayContaining([['* * * * * *', 'every-second'], ['*/1 * * * * *', null]]));
  const seen = ticks.length;
  expect(cron.getTasks().size).toBe(before);
  // A witness schedule started after stop() ticks at the same second boundaries the
  // stopped ones would have: once it has ticked twice, a whole second in which they
  // would have ticked has passed.
  let witnessed = 0;
  const witness = startSchedules(['* * * * * *'], () => { witnessed++; });
  try {
    await waitFor('two ticks of the witness schedule', () => witnessed >= 2, 10000);
  } finally {
    witness.stop();
  }
  expect(ticks.length).toBe(seen);
  expect(cron.getTasks().size).toBe(before);
  running.stop(); // twice is harmless
});

/** Runs a module script in a child against the built dist/ and returns how it ended. */
function child(script: string): Promise<{ exitCode?: number; stdout: string; timedOut: boolean }> {
  const url = new URL(`file://${path.join(ROOT, 'dist/src/snapshot/schedule.js')}`).href;
  return execa(process.execPath, ['--input-type=module', '-e', `import { loadCron, startSchedules } from '${url}';\nawait loadCron();\n${script}`],
    { reject: false, timeout: 10000 }) as unknown as Promise<{ exitCode?: number; stdout: string; timedOut: boolean }>;
}

test('a process whose schedules were stopped exits by itself', async () => {
  const r = await child(`
    // The interval stands for the program, keeping the process alive until the first
    // tick, which stops the schedules and ends it: then only stopped schedules are left.
    const program = setInterval(() => {}, 1 << 30);
    const s = startSchedules(['* * * * * *'], () => { console.log('tick'); s.stop(); clearInterval(program); });
  `);
  expect(r.timedOut).toBe(false);
  expect(r.exitCode).toBe(0);
  expect(r.stdout).toBe('tick');
});

test('schedules alone never keep a process alive (the session lasts as long as its program)', async () => {
  // Far-off times: a ref'd timer (re-armed up to a day ahead) would hold the child past the timeout.
  const r = await child(`startSchedules(['0 0 1 1 *', '0 0 0 29 2 *'], () => console.log('tick'));`);
  expect(r.timedOut).toBe(false);
  expect(r.exitCode).toBe(0);
  expect(r.stdout).toBe('');
});
