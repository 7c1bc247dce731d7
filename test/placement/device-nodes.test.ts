// numactl's device node specifiers over a fixture sysfs tree (the machine here has no
// device with a NUMA node: the parity test against numactl in
// test/launcher/device-parity.test.ts bind-mounts numa_node files instead). `file:` stats
// real paths and `ip:` asks the kernel's routing table; the tree supplies what they find.
import fs from 'node:fs';
import path from 'node:path';
import { DeviceNodeError, deviceNodes } from '../../src/placement/device-nodes.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

afterAll(removeTmpDirs);

let sys: string;
let file: string;

function put(rel: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(sys, rel)), { recursive: true });
  fs.writeFileSync(path.join(sys, rel), text);
}

/** A class entry: a symlink to its device's directory, which is created (as sysfs has it). */
function link(rel: string, target: string): void {
  const at = path.join(sys, rel);
  fs.mkdirSync(path.dirname(at), { recursive: true });
  fs.mkdirSync(path.resolve(path.dirname(at), target), { recursive: true });
  fs.symlinkSync(target, at);
}

beforeAll(() => {
  sys = tmpDir();
  const dir = tmpDir();
  file = path.join(dir, 'data');
  fs.writeFileSync(file, 'x');
  const st = fs.statSync(file, { bigint: true });
  const major = ((st.dev >> 8n) & 0xfffn) | ((st.dev >> 32n) & ~0xfffn);
  const minor = (st.dev & 0xffn) | ((st.dev >> 12n) & ~0xffn);
  // A NIC behind a bridge: numactl's expression stops at the first PCI function (the bridge).
  put('devices/pci0000:00/0000:00:01.0/numa_node', '1\n');
  put('devices/pci0000:00/0000:00:01.0/0000:01:00.0/numa_node', '0\n');
  link('class/net/eth9', '../../devices/pci0000:00/0000:00:01.0/0000:01:00.0/net/eth9');
  // A virtual device: no PCI function on its path; its node comes from device/numa_node.
  link('class/net/lo', '../../devices/virtual/net/lo');
  link('class/net/veth0', '../../devices/virtual/net/veth0');
  put('class/net/veth0/device/numa_node', '0x1');
  // Disks: one whose function's numa_node is -1, one holding `file` (its MAJ:MIN), one bad.
  put('devices/pci0000:00/0000:00:02.0/numa_node', '-1\n');
  link('class/block/vda', '../../devices/pci0000:00/0000:00:02.0/virtio1/block/vda');
  put('class/block/vda/dev', '254:0\n');
  put('devices/pci0000:00/0000:00:1f.2/numa_node', '1\n');
  link('class/block/sdz', '../../devices/pci0000:00/0000:00:1f.2/ata1/host0/block/sdz');
  put('class/block/sdz/dev', `${major}:${minor}\n`);
  put('devices/pci0000:00/0000:00:03.0/numa_node', '7\n');
  link('class/block/far', '../../devices/pci0000:00/0000:00:03.0/block/far');
  put('devices/pci0000:00/0000:00:04.0/numa_node', 'none\n');
  link('class/block/odd', '../../devices/pci0000:00/0000:00:04.0/block/odd');
});

const ctx = (): { sysRoot: string; taskNodes: number } => ({ sysRoot: sys, taskNodes: 2 });

test.each([
  ['netdev:eth9', [1]],
  ['netdev:veth0', [1]],
  ['netdev: veth0', [1]], // numactl skips white space before the name
  ['block:sdz', [1]],
  ['pci:0:1', [1]],
  ['pci:00:01.0', [1]],
  ['pci:0000:00:01.0', [1]],
  ['pci:0:0:1', [1]], // SEG:BUS:DEV, function 0
  ['pci:0:1f.2', [1]],
])('%s is on nodes %p', (spec, nodes) => {
  expect(deviceNodes(spec, ctx())).toEqual(nodes);
});

test('file:PATH is the node of the block device holding PATH', () => {
  expect(deviceNodes(`file:${file}`, ctx())).toEqual([1]);
});

test('ip:HOST is the node of the interface the route leaves by (127.0.0.1: lo, which has none)', () => {
  expect(() => deviceNodes('ip:127.0.0.1', ctx())).toThrow(`net device 'lo' has no NUMA node in sysfs (${sys}/class/net/lo/device/numa_node: ENOENT)`);
  expect(() => deviceNodes('ip:nohost.invalid', ctx())).toThrow(/^cannot resolve nohost.invalid: /);
});

test('not a device specifier: undefined (the list parser goes on)', () => {
  expect(deviceNodes('eth0', ctx())).toBeUndefined();
  expect(deviceNodes('all', ctx())).toBeUndefined();
});

test.each([
  ['netdev:nope', `no net device 'nope' (${'SYS'}/class/net/nope does not exist)`],
  ['netdev:eth9,1', `no net device 'eth9,1' (${'SYS'}/class/net/eth9,1 does not exist)`],
  ['netdev:a/b', "illegal characters in net device 'a/b'"],
  ['netdev:..', "illegal characters in net device '..'"],
  ['block:vda', "block device 'vda' (PCI 0000:00:02.0): the kernel does not know its NUMA node (SYS/devices/pci0000:00/0000:00:02.0/numa_node is -1)"],
  ['block:far', "block device 'far' (PCI 0000:00:03.0) is on node 7, which is out of range (2 nodes available)"],
  ['block:odd', "block device 'odd' (PCI 0000:00:04.0): cannot parse SYS/devices/pci0000:00/0000:00:04.0/numa_node ('none')"],
  ['pci:zz', "cannot parse the PCI address 'zz' ([SEG:]BUS:DEV[.FUNC], hexadecimal)"],
  ['pci:0:9', "PCI device '0:9' has no NUMA node in sysfs (SYS/devices/pci0000:00/0000:00:09.0/numa_node: ENOENT)"],
  ['file:/nonexistent', "cannot stat '/nonexistent': ENOENT"],
  ['file:/dev/null', "'/dev/null' is not on a block device that sysfs lists (device 1:3)"],
])('%s fails: %s', (spec, message) => {
  let err: unknown;
  try {
    deviceNodes(spec, ctx());
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(DeviceNodeError);
  expect((err as Error).message).toBe(message.replace(/SYS/g, sys));
});
