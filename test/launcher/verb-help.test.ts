// Every verb through the built binary: --help and -h print its usage on stdout (exit 0),
// an unknown option is one `numactlx:` line naming it plus the same usage on stderr (exit 1).
// One table, one check: the verbs share launcher/verbs/parse.ts, and this holds them to it.
import { VERB_NAMES } from '../../launcher/verbs/index.js';
import { numactlx } from '../helpers/numactlx.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

afterAll(removeTmpDirs);

// Each verb with the valid options its error lists (--help always last).
const TABLE: Array<[verb: string, valid: string]> = [
  ['doctor', '--json, --help'],
  ['status', '--json, --help'],
  ['ps', '--json, --help'],
  ['snapshot', '--label L, --wait, --json, --help'],
  ['snapshots', '--json, --help'],
  ['verify', '--json, --help'],
  ['export', '--format, --output, --pid, --force, --help'],
  ['diff', '--json, --help'],
  ['rm', '--help'],
  ['repair', '--help'],
  ['format', '--size SIZE, --force, --help'],
];

// No session is reached: parsing comes first; an empty socket directory makes sure.
const run = (args: string[]) => numactlx(args, { env: { NUMACTLX_RUNTIME_DIR: tmpDir() } });

test('the table names every verb', () => {
  expect(TABLE.map(([verb]) => verb).sort()).toEqual([...VERB_NAMES].sort());
});

describe.each(TABLE)('numactlx %s', (verb, valid) => {
  test.each(['--help', '-h'])('%s prints the usage on stdout, exit 0', async (help) => {
    const r = await run([verb, help]);
    expect(r.stdout).toMatch(new RegExp(`^usage: numactlx ${verb}( |$)`));
    expect(String(r.stdout).split('\n')).toHaveLength(1);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
  });

  test.each([
    [['--no-such-option'], '--no-such-option'],
    [['--no-such-option=1', 'x'], '--no-such-option'],
    [['-Z'], '-Z'],
  ])('%j: one line naming the option, then the usage, on stderr, exit 1', async (args, option) => {
    const usage = String((await run([verb, '--help'])).stdout);
    const r = await run([verb, ...args]);
    expect(r.stderr).toBe(`numactlx: ${verb}: unknown option '${option}' (valid: ${valid})\n${usage}`);
    expect(r.stdout).toBe('');
    expect(r.exitCode).toBe(1);
  });
});
