// getopt_long("+…") splitting, as pure logic.
import { splitArgv } from '../../launcher/argv.js';
import { LAUNCHER_OPTIONS } from '../../launcher/options.js';

const split = (argv: string[]): { events: string[]; program: string[] } => {
  const r = splitArgv(argv, LAUNCHER_OPTIONS);
  return { events: r.events.map((e) => (e.value === undefined ? e.name : `${e.name}=${e.value}`)), program: r.program };
};

test.each([
  [['-m0', 'prog'], ['membind=0'], ['prog']],
  [['-m', '0', '--', '-x'], ['membind=0'], ['-x']],
  [['-Nall', 'prog'], ['cpunodebind=all'], ['prog']],
  [['-abm', 'same', 'p', '-m', '1'], ['all', 'balancing', 'membind=same'], ['p', '-m', '1']],
  [['--mem=0', '--phys', '1', 'p'], ['membind=0', 'physcpubind=1'], ['p']],
  [['--remap=3,/x,y', '--remap', '4,/z', 'p'], ['remap=3,/x,y', 'remap=4,/z'], ['p']],
  [['-s'], ['show'], []],
  [['--preferred-many=0', 'p'], ['preferred-many=0'], ['p']],
  [['p', '-m', '0'], [], ['p', '-m', '0']],
])('%j', (argv, events, program) => {
  expect(split(argv)).toEqual({ events, program });
});

test('minimist sees the values, repeated options as arrays', () => {
  const r = splitArgv(['-m', '0', '--remap=3,/a', '--remap=4,/b', '-s', 'prog'], LAUNCHER_OPTIONS);
  expect(r.values.membind).toBe('0');
  expect(r.values.remap).toEqual(['3,/a', '4,/b']);
  expect(r.values.show).toBe(true);
});
