// The package as users get it: `npm pack` from a clean copy of the checkout (its prepack
// builds dist/ from the sources), then a global install into an empty prefix, and the
// installed numactlx runs a program on a real node and on a virtual node; its manual
// page is installed where man(1) finds it and renders. Needs the npm registry or npm's
// cache for numactlx's dependencies.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { ROOT } from '../helpers/numactlx.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

afterAll(removeTmpDirs);

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
let prefix: string;
let tarball: string;
let files: string[];

beforeAll(async () => {
  const work = tmpDir();
  const checkout = path.join(work, 'checkout');
  // The files git knows (tracked, or new and not ignored): no dist/, no build output.
  const listed = await execa('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: ROOT });
  fs.mkdirSync(checkout);
  for (const rel of listed.stdout.split('\0').filter((f) => f !== '' && !f.startsWith('node_modules'))) {
    if (!fs.existsSync(path.join(ROOT, rel))) continue; // deleted, not yet committed
    fs.mkdirSync(path.dirname(path.join(checkout, rel)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, rel), path.join(checkout, rel));
    fs.chmodSync(path.join(checkout, rel), fs.statSync(path.join(ROOT, rel)).mode);
  }
  // The build tools (typescript) come from this checkout's node_modules.
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(checkout, 'node_modules'));
  const packed = await execa('npm', ['pack', '--pack-destination', work, '--json'], { cwd: checkout });
  const [info] = JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  tarball = path.join(work, info.filename);
  files = info.files.map((f) => f.path);
  prefix = path.join(work, 'prefix');
  await execa('npm', ['install', '--global', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball]);
}, 600_000);

test('the tarball holds the built program, the manual page and the completion; no sources, tests or maps', () => {
  expect(path.basename(tarball)).toBe(`${pkg.name}-${pkg.version}.tgz`);
  expect(files).toEqual(expect.arrayContaining(['bin/numactlx', 'bin/numactlx.js', 'dist/launcher/main.js',
    'dist/src/tracer-thread/tracer-worker.js', 'dist/src/engine-thread/engine-worker.js', 'man/numactlx.8',
    'completions/numactlx.bash', 'package.json', 'README.md', 'dist/bundle/numactlx.js', 'dist/bundle/engine-worker.js',
    'dist/bundle/tracer-worker.js', 'dist/bundle/checksum-worker.js']));
  expect(files.filter((f) => f.endsWith('.map') || f.endsWith('.ts') || f.startsWith('test/') || f.startsWith('launcher/'))).toEqual([]);
});

test('the installed numactlx runs a program on a real node and on a virtual node', async () => {
  const bin = path.join(prefix, 'bin/numactlx');
  expect(fs.lstatSync(bin).isSymbolicLink()).toBe(true);
  const version = await execa(bin, ['--version']);
  expect(version.stdout).toBe(pkg.version);
  const real = await execa(bin, ['--membind=0', '--', '/bin/echo', 'hi'], { reject: false });
  expect({ exitCode: real.exitCode, stdout: real.stdout, stderr: real.stderr }).toEqual({ exitCode: 0, stdout: 'hi', stderr: '' });
  const backing = path.join(tmpDir(), 'node3.img');
  const virtual = await execa(bin, [`--remap=3,${backing},size=64m`, '--membind=3', '--', '/bin/echo', 'hi'], { reject: false });
  expect({ exitCode: virtual.exitCode, stdout: virtual.stdout, stderr: virtual.stderr }).toEqual({ exitCode: 0, stdout: 'hi', stderr: '' });
  expect(fs.statSync(backing).size).toBe(64 * 1024 * 1024);
}, 120_000);

test('man finds and renders the installed page', async () => {
  const page = path.join(prefix, 'share/man/man8/numactlx.8');
  const byPath = await execa('man', ['-l', page], { env: { MANWIDTH: '80', MANPAGER: 'cat', PAGER: 'cat' } });
  expect(byPath.stdout).toMatch(/^NUMACTLX\(8\)/);
  expect(byPath.stdout).toContain('--remap=NODE,PATH[,size=SIZE]');
  const byName = await execa('man', ['-w', 'numactlx'], { env: { MANPATH: path.join(prefix, 'share/man') } });
  expect(fs.realpathSync(byName.stdout)).toBe(fs.realpathSync(page));
});

test('the installed numactlx runs from its bundle alone: a session with a snapshot needs none of tsc\'s modules', async () => {
  // A copy of the installed package without tsc's output (dist/launcher, dist/src, ...):
  // had bin/numactlx.js or a worker loaded any of it, this run would fail to start.
  const copy = path.join(tmpDir(), 'numactlx');
  fs.cpSync(path.join(prefix, 'lib/node_modules', pkg.name), copy, { recursive: true });
  for (const dir of fs.readdirSync(path.join(copy, 'dist'))) {
    if (dir !== 'bundle') fs.rmSync(path.join(copy, 'dist', dir), { recursive: true });
  }
  const backing = path.join(tmpDir(), 'node3.img');
  // The snapshot starts the checksum worker; NUMACTLX_DEBUG names a worker that fails to load (a missing module).
  const run = await execa(path.join(copy, 'bin/numactlx'), [`--remap=3,${backing},size=64m`, '--membind=3', '--snapshot-on-exit',
    '--', 'sh', '-c', 'echo hi'], { reject: false, env: { NUMACTLX_DEBUG: '1' } });
  expect({ exitCode: run.exitCode, stdout: run.stdout }).toEqual({ exitCode: 0, stdout: 'hi' });
  expect(run.stderr).not.toMatch(/failed|Cannot find module/);
  const listed = await execa(path.join(copy, 'bin/numactlx'), ['snapshots', backing], { reject: false });
  expect(listed.exitCode).toBe(0);
  expect(listed.stdout).toMatch(/^\s*1\s/m);
}, 120_000);

test('bin/numactlx.js runs the bundle only when it is not older than tsc\'s output (a tsc run alone since the last bundle)', async () => {
  const copy = path.join(tmpDir(), 'numactlx');
  fs.cpSync(path.join(prefix, 'lib/node_modules', pkg.name), copy, { recursive: true });
  const bundle = path.join(copy, 'dist/bundle/numactlx.js');
  const compiled = path.join(copy, 'dist/launcher/entry.js');
  fs.writeFileSync(bundle, "process.stdout.write('the bundle ran'); process.exit(0);\n");
  const run = async (): Promise<string> => (await execa(path.join(copy, 'bin/numactlx'), ['--version'])).stdout;
  const t = Date.now() / 1000;
  fs.utimesSync(bundle, t - 60, t - 60);
  fs.utimesSync(compiled, t, t);
  expect(await run()).toBe(pkg.version);
  fs.utimesSync(bundle, t, t);
  expect(await run()).toBe('the bundle ran');
});

test('a package without its built code says so in one line', async () => {
  const copy = path.join(tmpDir(), 'numactlx');
  fs.cpSync(path.join(prefix, 'lib/node_modules', pkg.name), copy, { recursive: true });
  fs.rmSync(path.join(copy, 'dist'), { recursive: true });
  const r = await execa(path.join(copy, 'bin/numactlx'), ['--version'], { reject: false });
  expect(r.exitCode).toBe(1);
  expect(r.stdout).toBe('');
  expect(r.stderr).toBe(`numactlx: not built: ${path.join(copy, 'dist')}/ has neither the bundle nor tsc's output (run npm run build)`);
});
