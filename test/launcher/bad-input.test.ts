// Every bad command line exits 1 with one `numactlx:` line (plus usage for usage
// errors) and never runs the program: the program here would create a marker file.
import fs from 'node:fs';
import path from 'node:path';
import { numactlx } from '../helpers/numactlx.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';
import { encodeSuperblock, newSuperblock } from '../../backing/format.js';

const dir = tmpDir();
const marker = path.join(dir, 'program-ran');
const program = ['sh', '-c', `touch ${marker}`];
const existing = path.join(dir, 'existing.img');
fs.writeFileSync(existing, Buffer.alloc(8192));
// A real backing of 4 MiB (a numactlx superblock), to refuse shrinking it.
const backing4m = path.join(dir, 'backing4m.img');
fs.writeFileSync(backing4m, Buffer.alloc(4 << 20));
fs.writeFileSync(backing4m, encodeSuperblock(newSuperblock(4n << 20n, 4096n)), { flag: 'r+' });
const foreign = path.join(dir, 'foreign.bin');
fs.writeFileSync(foreign, Buffer.alloc(4 << 20, 0xab));
const foreignDir = path.join(dir, 'a-directory');
fs.mkdirSync(foreignDir);

afterAll(removeTmpDirs);
afterEach(() => fs.rmSync(marker, { force: true }));

interface Case {
  name: string;
  args: string[];
  error: RegExp;
  usage: boolean;
}

const cases: Case[] = [
  { name: 'unknown long option', args: ['--bogus', ...program], error: /^numactlx: unrecognized option '--bogus'$/m, usage: true },
  { name: 'unknown short option', args: ['-Z', ...program], error: /^numactlx: invalid option -- 'Z'$/m, usage: true },
  { name: 'ambiguous abbreviation', args: ['--pre=0', ...program], error: /^numactlx: option '--pre' is ambiguous; possibilities: '--preferred' '--preferred-many'$/m, usage: true },
  { name: 'missing option value', args: ['--membind'], error: /^numactlx: option '--membind' requires an argument$/m, usage: true },
  // getopt would take `--` as the value: `--stats -- prog` wrote a file named `--`.
  { name: "'--' as a long option's value", args: ['--stats', '--', ...program], error: /^numactlx: option '--stats' requires an argument \('--' ends the options\)$/m, usage: true },
  { name: "'--' as a short option's value", args: ['-m', '--', ...program], error: /^numactlx: option requires an argument -- 'm' \('--' ends the options\)$/m, usage: true },
  { name: 'value on a flag', args: ['--show=1'], error: /^numactlx: option '--show' doesn't allow an argument$/m, usage: true },
  { name: 'bad node list', args: ['-m', '0-x', ...program], error: /^numactlx: invalid node list '0-x' for -m: unparseable node description 'x'$/m, usage: true },
  { name: 'node that does not exist', args: ['--membind=7', ...program], error: /^numactlx: invalid node list '7' for --membind: node 7 is out of range \(nodes available: 0\)$/m, usage: true },
  { name: 'cpu that does not exist', args: ['-C', '64', ...program], error: /^numactlx: invalid cpu list '64' for -C: cpu 64 is out of range/m, usage: true },
  { name: 'empty node list', args: ['-m', '!0', ...program], error: /^numactlx: the node list '!0' for -m is empty$/m, usage: true },
  { name: '--preferred with two nodes', args: [`--remap=3,${dir}/n3.img,size=2m`, '--preferred=0,3', ...program], error: /^numactlx: --preferred takes exactly one node, got '0,3'/m, usage: true },
  { name: 'conflicting policies', args: ['-m', '0', '-i', '0', ...program], error: /^numactlx: Conflicting policies: -i after a memory policy was already given$/m, usage: true },
  { name: '--all after a node list', args: ['-m', '0', '-a', ...program], error: /^numactlx: --all\/-a option must be before all cpu\/node specifications$/m, usage: true },
  { name: '--balancing after the policy', args: ['-m', '0', '-b', ...program], error: /^numactlx: -b must come before the memory policy$/m, usage: true },
  { name: "'same' without a previous list", args: ['-N', 'same', ...program], error: /^numactlx: -N same: 'same' needs a previous node specification$/m, usage: true },
  { name: 'numactl shm option', args: ['--shm', 'key', ...program], error: /^numactlx: --shm is not supported/m, usage: true },
  { name: 'virtual node id equal to a real node', args: [`--remap=0,${dir}/n0.img,size=2m`, ...program], error: /^numactlx: invalid --remap: node 0 is a real node of this machine; a virtual node needs an unused id$/m, usage: false },
  { name: 'virtual node id not a number', args: [`--remap=x,${dir}/n.img,size=2m`, ...program], error: /^numactlx: invalid --remap 'x,.*': 'x' is not a number$|^numactlx: invalid --remap 'x,.*': 'x' is not a node number$/m, usage: true },
  { name: 'remap without a path', args: ['--remap=3', ...program], error: /^numactlx: invalid --remap '3': expected NODE,PATH\[,size=SIZE\]\[,resident=SIZE\]$/m, usage: true },
  { name: 'missing backing directory', args: [`--remap=3,${dir}/missing/n3.img,size=2m`, ...program], error: new RegExp(`^numactlx: invalid --remap: ${dir}/missing/n3.img: directory ${dir}/missing does not exist: ENOENT$`, 'm'), usage: false },
  { name: 'missing size', args: [`--remap=3,${dir}/new.img`, ...program], error: /: the file does not exist and no size was given \(add ,size=SIZE\)$/m, usage: false },
  { name: 'bad size suffix', args: [`--remap=3,${dir}/new.img,size=10q`, ...program], error: /^numactlx: invalid --remap '.*': invalid size '10q' \(a number with an optional k, m, g or t suffix\)$/m, usage: true },
  { name: 'unaligned size', args: [`--remap=3,${dir}/new.img,size=5000`, ...program], error: /: size 5000 is not a multiple of the page size \(4096 bytes\)$/m, usage: false },
  { name: 'zero size', args: [`--remap=3,${dir}/new.img,size=0`, ...program], error: /: size must not be zero$/m, usage: false },
  { name: 'size smaller than the existing backing', args: [`--remap=3,${backing4m},size=2m`, ...program], error: /: size 2097152 is smaller than the existing file \(4194304 bytes\); numactlx never shrinks a backing$/m, usage: false },
  { name: 'size too small for a backing', args: [`--remap=3,${dir}/tiny.img,size=64k`, ...program], error: /: size 65536 is too small: a backing needs at least 1052672 bytes \(its metadata area and one 4 KiB frame\)$/m, usage: false },
  { name: 'a foreign file as backing', args: [`--remap=3,${foreign}`, '--membind=3', ...program], error: /: not a numactlx backing \(bad magic\); numactlx never overwrites a file it did not create$/m, usage: false },
  { name: 'backing is a directory', args: [`--remap=3,${foreignDir}`, ...program], error: /: is a directory: EISDIR$/m, usage: false },
  { name: 'backing is a character device that is not dax', args: ['--remap=3,/dev/null', ...program], error: /^numactlx: invalid --remap: \/dev\/null: a character device that is not a \/dev\/dax device/m, usage: false },
  { name: 'a /proc file as backing (/proc/self/mem)', args: ['--remap=3,/proc/self/mem,size=2m', '--membind=3', ...program], error: /^numactlx: invalid --remap: \/proc\/self\/mem: a file of the proc pseudo-filesystem, not storage: not a regular file or a \/dev\/dax device$/m, usage: false },
  { name: 'a sysfs file as backing', args: ['--remap=3,/sys/kernel/mm/transparent_hugepage/enabled,size=2m', '--membind=3', ...program], error: /: a file of the sysfs pseudo-filesystem, not storage/m, usage: false },
  { name: 'same node remapped twice', args: [`--remap=3,${dir}/a.img,size=2m`, `--remap=3,${dir}/b.img,size=2m`, ...program], error: /^numactlx: invalid --remap: node 3 is remapped twice$/m, usage: false },
  { name: 'one backing for two nodes', args: [`--remap=3,${dir}/a.img,size=2m`, `--remap=4,${dir}/a.img,size=2m`, ...program], error: /backs two nodes$/m, usage: false },
  { name: 'one backing for two nodes, spelled two ways', args: [`--remap=3,${dir}/a.img,size=2m`, `--remap=4,${dir}/./a.img,size=2m`, ...program], error: /backs two nodes \(it is .*\/a\.img\)$/m, usage: false },
  { name: 'virtual node in --cpunodebind', args: [`--remap=3,${dir}/a.img,size=2m`, '-N', '3', ...program], error: /^numactlx: invalid node list '3' for -N: virtual nodes have no CPUs$/m, usage: true },
  { name: 'no program', args: ['-m', '0'], error: /^numactlx: no program to run$/m, usage: true },
  { name: 'program not found', args: ['-m', '0', 'no-such-program-numactlx'], error: /^numactlx: execution of 'no-such-program-numactlx': ENOENT \(No such file or directory\)$/m, usage: false },
  { name: 'program not executable', args: [existing], error: new RegExp(`^numactlx: execution of '${existing}': EACCES \\(Permission denied\\)$`, 'm'), usage: false },
  { name: 'planned verb', args: ['rollback'], error: /^numactlx: rollback: this verb is not available in this build/m, usage: false },
];

test.each(cases)('$name: exit 1, one clear line, program not run', async ({ args, error, usage }) => {
  const r = await numactlx(args);
  expect(r.exitCode).toBe(1);
  expect(r.stderr).toMatch(error);
  const first = String(r.stderr).split('\n')[0];
  expect(first).toMatch(/^numactlx: /);
  expect(String(r.stderr).includes('usage: numactlx')).toBe(usage);
  if (!usage) expect(String(r.stderr).split('\n')).toHaveLength(1);
  expect(r.stdout).toBe('');
  expect(fs.existsSync(marker)).toBe(false);
});

test('the program does run with valid options (the marker check can fail)', async () => {
  const r = await numactlx(['-m', '0', ...program]);
  expect(r.exitCode).toBe(0);
  expect(fs.existsSync(marker)).toBe(true);
});
