// numactlx against the real numactl (Debian numactl 2.0.16, /usr/bin/numactl): each
// option set is given to both, and what the launched program sees must be the same,
// byte for byte, with the same exit status and stderr:
//   - policy_probe: the kernel's view from inside the program (get_mempolicy mode,
//     flags and nodes, the interleave-next node, sched_getaffinity, the numa_maps
//     policy of a fresh anonymous mapping, Cpus_allowed_list and Mems_allowed_list);
//   - `numactl --show` run as the program;
//   - `--show` given after the options (the launcher reports, runs nothing).
// numactl applies its options in order, so combinations (the last CPU binding wins,
// `same`, --all and --balancing before what they modify) are rows of their own.
// The expected values are whatever numactl does on this machine; numactl 2.0.16 has
// no weighted interleave, so -w is checked against the kernel's view directly.
import fs from 'node:fs';
import path from 'node:path';
import { execa, type Result } from 'execa';
import { compileFixture } from '../helpers/fixtures.js';
import { numactlx, ROOT } from '../helpers/numactlx.js';

const NUMACTL = '/usr/bin/numactl';

/** Option sets numactl accepts; each runs under both launchers. */
const OPTION_SETS: string[][] = [
  // memory policies, short, long, `=` and attached spellings
  ['-m', '0'],
  ['--membind=0'],
  ['--membind', '0'],
  ['-m0'],
  ['-m', 'all'],
  ['-m', '0-0'],
  ['-i', '0'],
  ['--interleave=all'],
  ['-i', '+0'],
  ['-p', '0'],
  ['--preferred=0'],
  ['-p', 'all'],
  ['-P', '0'],
  ['--preferred-many=0'],
  ['-l'],
  ['--localalloc'],
  // CPU bindings
  ['-N', '0'],
  ['--cpunodebind=0'],
  ['-Nall'],
  ['-c', '0'],
  ['--cpubind=0'],
  ['-C', '0'],
  ['-C', '1'],
  ['--physcpubind=0-1'],
  ['-C', '0,1'],
  ['-C', '+1'],
  ['-C', '!0'],
  ['-C', 'all'],
  ['-C', '1-0'],
  // order-dependent combinations
  ['-a', '-m', 'all'],
  ['-a', '-C', 'all'],
  ['-b', '-m', '0'],
  ['-b', '-i', '0'],
  ['-b', '-l'],
  ['-m', '0', '-N', 'same'],
  ['-N', '0', '-N', 'same'],
  ['-i', '0', '-C', '1'],
  ['-p', '0', '-N', '0', '-C', '1'],
  ['-C', '1', '-N', '0'],
  ['-C', '0', '-C', '1'],
  ['-l', '-C', '0'],
  // unique prefixes of long options (getopt_long)
  ['--mem=0'],
  ['--phys=1'],
  ['--inter=0'],
  ['--local'],
  ['--cpun=0'],
];

type Launcher = (args: string[]) => Promise<Result>;

const ENV = { env: { NODE_OPTIONS: undefined }, stdin: 'ignore' } as const;
const realNumactl: Launcher = (args) => execa(NUMACTL, args, { reject: false, ...ENV }) as Promise<Result>;
const ourNumactlx: Launcher = (args) => numactlx(args, ENV);

const outcome = (r: Result): { exitCode: number | undefined; stdout: unknown; stderr: unknown } =>
  ({ exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr });

let probe: string;

beforeAll(async () => {
  if (!fs.existsSync(path.join(ROOT, 'dist/launcher/main.js'))) {
    throw new Error('dist/launcher/main.js is missing: build numactlx first (npx tsc -p tsconfig.json)');
  }
  if (!fs.existsSync(NUMACTL)) throw new Error(`${NUMACTL} is missing: these tests compare against the real numactl (apt-get install numactl)`);
  probe = await compileFixture('policy_probe');
});

/** The three views of one option set under one launcher. */
async function views(launch: Launcher, options: string[]): Promise<Record<string, ReturnType<typeof outcome>>> {
  return {
    probe: outcome(await launch([...options, '--', probe])),
    showAsProgram: outcome(await launch([...options, '--', NUMACTL, '--show'])),
    showAfterOptions: outcome(await launch([...options, '--show'])),
  };
}

test.each(OPTION_SETS.map((options) => ({ label: options.join(' '), options })))(
  'numactlx $label runs the program as numactl $label does',
  async ({ options }) => {
    const expected = await views(realNumactl, options);
    // The reference must have run: two identical failures would prove nothing.
    expect(expected.probe).toMatchObject({ exitCode: 0, stdout: expect.stringMatching(/^mode: /) });
    expect(await views(ourNumactlx, options)).toEqual(expected);
  },
);

/** policy_probe's `key: value` lines as an object. */
function probeReport(stdout: string): Record<string, string> {
  return Object.fromEntries(stdout.split('\n').map((line) => {
    const colon = line.indexOf(':');
    return [line.slice(0, colon), line.slice(colon + 1).trim()];
  }));
}

// MPOL_WEIGHTED_INTERLEAVE (mode 6) arrived in Linux 6.9 together with this sysfs directory.
const WEIGHTED_INTERLEAVE_SYSFS = '/sys/kernel/mm/mempolicy/weighted_interleave';

test.each([
  ['-w', '0'],
  ['--weighted-interleave=all'],
].map((options) => ({ label: options.join(' '), options })))('numactlx $label sets MPOL_WEIGHTED_INTERLEAVE on node 0 (kernel view)', async ({ options }) => {
  if (!fs.existsSync(WEIGHTED_INTERLEAVE_SYSFS)) {
    throw new Error(`kernel feature missing: MPOL_WEIGHTED_INTERLEAVE (Linux 6.9+, ${WEIGHTED_INTERLEAVE_SYSFS} absent)`);
  }
  // The placement the program gets without a launcher, apart from the policy.
  const unlaunched = await execa(probe, [], { reject: false, ...ENV });
  expect(unlaunched.exitCode).toBe(0);

  const launched = await numactlx([...options, '--', probe], ENV);
  expect(outcome(launched)).toMatchObject({ exitCode: 0, stderr: '' });
  expect(probeReport(String(launched.stdout))).toEqual({
    ...probeReport(String(unlaunched.stdout)),
    mode: '6',
    nodes: '0',
    interleave_next: '0',
    numa_maps: 'weighted interleave:0',
  });
});
