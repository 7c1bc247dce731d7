// numactl's device node specifiers (netdev:, block:, file:, ip:, pci:) against the real
// numactl. No device of this VM has a NUMA node (every numa_node reads -1), so each
// launcher runs in a mount namespace of its own where the numa_node files of the PCI
// functions under a network and a block device are bind-mounted with "0": both then
// resolve the same devices to node 0, through sysfs as it is. The program's view (the
// policy_probe fixture and `numactl --show` as the program) must be the same. The same
// specifiers on the untouched sysfs must fail under both (exit 1; numactlx's one line).
import fs from 'node:fs';
import path from 'node:path';
import { execa, type Result } from 'execa';
import { compileFixture } from '../helpers/fixtures.js';
import { NUMACTLX } from '../helpers/numactlx.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

afterAll(removeTmpDirs);

const NUMACTL = '/usr/bin/numactl';
const PCI_FUNCTION = /\/devices\/(pci[0-9a-f]{4}:[0-9a-f]{2})\/([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-9])\//;

/** The first device of a sysfs class whose path runs through a root-bus PCI function. */
function pciDevice(cls: 'net' | 'block'): { name: string; fn: string; nodeFile: string } {
  for (const name of fs.readdirSync(`/sys/class/${cls}`)) {
    const m = PCI_FUNCTION.exec(fs.readlinkSync(`/sys/class/${cls}/${name}`));
    const nodeFile = m && `/sys/devices/${m[1]}/${m[2]}/numa_node`;
    if (nodeFile && fs.existsSync(nodeFile)) return { name, fn: m[2], nodeFile };
  }
  throw new Error(`this test needs a ${cls} device on a PCI function of the root bus (none in /sys/class/${cls})`);
}

/** The default route's gateway (/proc/net/route: little-endian hex), routed out of `dev`. */
function gatewayVia(dev: string): string {
  for (const line of fs.readFileSync('/proc/net/route', 'utf8').trim().split('\n').slice(1)) {
    const [iface, dest, gw] = line.split(/\s+/);
    if (iface === dev && dest === '00000000' && gw !== '00000000') {
      return Buffer.from(gw, 'hex').reverse().join('.');
    }
  }
  throw new Error(`this test needs a default IPv4 route out of ${dev} (for ip:HOST)`);
}

let probe: string;
let net: ReturnType<typeof pciDevice>;
let disk: ReturnType<typeof pciDevice>;
let zero: string;

beforeAll(async () => {
  if (!fs.existsSync(NUMACTL)) throw new Error(`${NUMACTL} is missing: these tests compare against the real numactl`);
  if (process.getuid?.() !== 0) throw new Error('this test needs root (mount namespaces with bind mounts over sysfs)');
  probe = await compileFixture('policy_probe');
  net = pciDevice('net');
  disk = pciDevice('block');
  zero = path.join(tmpDir(), 'numa_node');
  fs.writeFileSync(zero, '0\n');
});

type Launcher = (args: string[]) => Promise<Result>;

/** Runs a launcher in a private mount namespace where the devices' numa_node read "0". */
const inNamespace = (launcher: string): Launcher => (args) => execa('unshare', ['--mount', '--propagation', 'private',
  'sh', '-c', 'z=$1 a=$2 b=$3; shift 3; mount --bind "$z" "$a" && mount --bind "$z" "$b" && exec "$@"',
  'sh', zero, net.nodeFile, disk.nodeFile, launcher, ...args], { reject: false, env: { NODE_OPTIONS: undefined }, stdin: 'ignore' }) as Promise<Result>;
const plain = (launcher: string): Launcher => (args) => execa(launcher, args, { reject: false, env: { NODE_OPTIONS: undefined }, stdin: 'ignore' }) as Promise<Result>;

const outcome = (r: Result): { exitCode: number | undefined; stdout: unknown; stderr: unknown } =>
  ({ exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr });

async function views(launch: Launcher, options: string[]): Promise<Record<string, ReturnType<typeof outcome>>> {
  return {
    probe: outcome(await launch([...options, '--', probe])),
    showAsProgram: outcome(await launch([...options, '--', NUMACTL, '--show'])),
  };
}

/** Option sets with device specifiers; `NET`, `DISK`, `FN`, `GW` are filled in per machine. */
const RESOLVED: string[][] = [
  ['--membind=netdev:NET'],
  ['-m', 'block:DISK'],
  ['-i', 'file:/'],
  ['-p', 'pci:FN'],
  ['--preferred-many=ip:GW'],
  ['-N', 'netdev:NET'],
  ['--cpunodebind=pci:FN', '--membind=same'],
  ['-m', '0,netdev:NET'],
  ['-i', '+netdev:NET'],
  ['-a', '-m', 'block:DISK'],
];

const fill = (options: string[]): string[] => options.map((o) => o.replace('NET', net.name).replace('DISK', disk.name)
  .replace('FN', net.fn).replace('GW', gatewayVia(net.name)));

test.each(RESOLVED.map((o) => [o.join(' '), o]))('numactlx %s resolves the device as numactl does', async (_label, options) => {
  const args = fill(options as string[]);
  const expected = await views(inNamespace(NUMACTL), args);
  // The reference must have resolved the device (two identical failures would prove nothing).
  expect(expected.probe).toMatchObject({ exitCode: 0, stdout: expect.stringMatching(/^mode: /) });
  expect(await views(inNamespace(NUMACTLX), args)).toEqual(expected);
});

/**
 * Specifiers numactl refuses here (on a machine whose devices have nodes, some resolve:
 * then the program must see the same as under numactl): numactlx refuses them too, with
 * one line and the usage.
 */
const REFUSED: string[] = ['netdev:NET', 'block:DISK', 'file:/', 'pci:FN', 'ip:GW', 'netdev:lo', 'ip:127.0.0.1',
  'netdev:no-such-nic', 'block:loop0', 'file:/dev/null', 'file:/no/such/file', 'ip:no-such-host.invalid', 'pci:zz',
  'pci:0:1f:7.7', 'netdev:a/b', 'netdev:NET,0', '!netdev:NET'];

test.each(REFUSED)('--membind=%s on this machine\'s sysfs: refused by both', async (spec) => {
  const [arg] = fill([`--membind=${spec}`]);
  // In the namespace for the one that resolves there and still fails (the inverted list is empty).
  const launch = spec.startsWith('!') ? inNamespace : plain;
  const real = await launch(NUMACTL)([arg, '--', probe]);
  const ours = await launch(NUMACTLX)([arg, '--', probe]);
  if (real.exitCode === 0) {
    expect(outcome(ours)).toEqual(outcome(real));
    return;
  }
  expect(real.exitCode).toBe(1);
  expect(ours.exitCode).toBe(1);
  expect(ours.stdout).toBe('');
  const [first, second] = String(ours.stderr).split('\n');
  expect(first).toMatch(/^numactlx: (invalid node list '|the node list ').*'.* for --membind/);
  expect(second).toMatch(/^usage: numactlx /);
});
