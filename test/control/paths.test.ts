// The socket directory: where it is, and that only a private directory of ours is used.
import fs from 'node:fs';
import path from 'node:path';
import { checkRuntimeDir, ensureRuntimeDir, pidOfSocketName, runtimeDir, socketPath } from '../../src/control/paths.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

afterAll(removeTmpDirs);

const mode = (p: string): number => fs.lstatSync(p).mode & 0o7777;

test.each([
  [{ NUMACTLX_RUNTIME_DIR: '/x/override', XDG_RUNTIME_DIR: '/run/user/1000' }, 1000, '/x/override'],
  [{ XDG_RUNTIME_DIR: '/run/user/1000' }, 1000, '/run/user/1000/numactlx'],
  [{ XDG_RUNTIME_DIR: '/run/user/0/' }, 0, '/run/user/0/numactlx'],
  [{}, 0, '/run/numactlx'],
  [{}, 1000, '/tmp/numactlx-1000'],
  [{ XDG_RUNTIME_DIR: '' }, 1000, '/tmp/numactlx-1000'],
])('runtimeDir(%j, uid %i) is %s', (env, uid, expected) => {
  expect(runtimeDir(env, uid)).toBe(expected);
});

test('ensureRuntimeDir creates the directory (and missing parents) with mode 0700', () => {
  const old = process.umask(0o022);
  try {
    const dir = path.join(tmpDir(), 'a', 'numactlx');
    expect(ensureRuntimeDir(dir)).toBe(dir);
    expect(fs.lstatSync(dir).isDirectory()).toBe(true);
    expect(mode(dir)).toBe(0o700);
    expect(mode(path.dirname(dir))).toBe(0o700);
    expect(ensureRuntimeDir(dir)).toBe(dir); // an existing good one is fine
  } finally {
    process.umask(old);
  }
});

// Each case makes something at `dir` that must not be used; the message names why.
const unsafe: [string, (dir: string) => void, RegExp][] = [
  ['a symlink to a good directory', (dir) => {
    const real = path.join(path.dirname(dir), 'real');
    fs.mkdirSync(real, { mode: 0o700 });
    fs.symlinkSync(real, dir);
  }, /^socket directory .*\/d is a symlink; refusing to use it$/],
  ['a dangling symlink', (dir) => fs.symlinkSync('/nonexistent/numactlx', dir), /is a symlink; refusing to use it$/],
  ['a regular file', (dir) => fs.writeFileSync(dir, ''), /is not a directory; refusing to use it$/],
  ['a directory with group access', (dir) => { fs.mkdirSync(dir); fs.chmodSync(dir, 0o750); },
    /has mode 0750, group or others have access \(it must be 0700\); refusing to use it$/],
  ['a world-writable sticky directory', (dir) => { fs.mkdirSync(dir); fs.chmodSync(dir, 0o1777); }, /has mode 1777/],
  ['a directory owned by another uid', (dir) => { fs.mkdirSync(dir, { mode: 0o700 }); fs.chownSync(dir, 65534, 65534); },
    new RegExp(`is owned by uid 65534, not ${process.getuid!()}; refusing to use it$`)],
];

test.each(unsafe)('ensureRuntimeDir and checkRuntimeDir refuse %s', (_what, make, message) => {
  const dir = path.join(tmpDir(), 'd');
  make(dir);
  expect(() => ensureRuntimeDir(dir)).toThrow(message);
  expect(() => checkRuntimeDir(dir)).toThrow(message);
});

test('checkRuntimeDir: a missing directory is false, a good one true', () => {
  const dir = tmpDir();
  expect(checkRuntimeDir(path.join(dir, 'missing'))).toBe(false);
  expect(checkRuntimeDir(dir)).toBe(true);
});

test('socketPath is DIR/PID.sock and refuses paths a sockaddr_un cannot hold', () => {
  expect(socketPath(4711, '/run/numactlx')).toBe('/run/numactlx/4711.sock');
  const long = `/${'x'.repeat(100)}`;
  expect(() => socketPath(4711, long)).toThrow(/^control socket path \/x+\/4711\.sock is too long \(111 bytes, a unix socket takes at most 107\)$/);
});

test.each([['4711.sock', 4711], ['1.sock', 1], ['0.sock', undefined], ['04711.sock', undefined], ['4711.sock.tmp', undefined],
  ['x.sock', undefined], ['4711', undefined]])('pidOfSocketName(%s) is %s', (name, pid) => {
  expect(pidOfSocketName(name)).toBe(pid);
});
