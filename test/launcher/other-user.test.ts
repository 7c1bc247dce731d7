// Another user must not read what numactlx writes for root, nor stop root's or a user's
// sessions (reliability issue, item 2). The suite runs as root; the second user
// (helpers/other-user.ts) plays the other side: it pre-creates the backing, the --stats
// file or the socket directory, as any local user can in /tmp.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { numactlx, ROOT } from '../helpers/numactlx.js';
import { asOther, otherUser, type OtherUser } from '../helpers/other-user.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

let other: OtherUser;
/** A directory like /tmp: anyone may create in it, the sticky bit keeps files their owner's. */
let shared: string;

beforeAll(async () => {
  other = await otherUser();
  shared = tmpDir();
  fs.chmodSync(shared, 0o1777);
});
afterAll(() => removeTmpDirs());

const run = (args: string[]): ReturnType<typeof numactlx> =>
  numactlx(args, { env: { NUMACTLX_RUNTIME_DIR: tmpDir() } });

const digest = (file: string): string => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

test('an empty backing file another user made first is refused and left as it was', async () => {
  const file = path.join(shared, 'trap.img');
  expect((await asOther(['sh', '-c', `umask 0; : > ${file}`])).exitCode).toBe(0);
  const r = await run([`--remap=3,${file},size=16m`, '--membind=3', '--', 'true']);
  expect(r.exitCode).toBe(1);
  expect(r.stderr).toBe(`numactlx: ${file} is owned by uid ${other.uid}, not by you (uid 0); ` +
    'numactlx keeps program memory only in files no other user controls');
  const st = fs.statSync(file);
  expect({ size: st.size, uid: st.uid, mode: st.mode & 0o777 }).toEqual({ size: 0, uid: other.uid, mode: 0o666 });
});

test('a backing others may read (mode 0644) is refused, not written', async () => {
  const file = path.join(tmpDir(), 'n3.img');
  expect((await run([`--remap=3,${file},size=16m`, '--membind=3', '--', 'true'])).exitCode).toBe(0);
  expect(fs.statSync(file).mode & 0o777).toBe(0o600); // what numactlx creates
  fs.chmodSync(file, 0o644);
  const before = digest(file);
  const r = await run([`--remap=3,${file}`, '--membind=3', '--', 'true']);
  expect(r.exitCode).toBe(1);
  expect(r.stderr).toBe(`numactlx: ${file} has mode 0644: group or others could read the program's memory; ` +
    `numactlx adopts only a file with no group or other access (chmod 600 ${file})`);
  expect(digest(file)).toBe(before);
});

test("another user's numactlx backing is not adopted by root", async () => {
  const file = path.join(tmpDir(), 'theirs.img');
  expect((await run([`--remap=3,${file},size=16m`, '--membind=3', '--', 'true'])).exitCode).toBe(0);
  fs.chownSync(file, other.uid, other.gid);
  const before = digest(file);
  const r = await run([`--remap=3,${file}`, '--membind=3', '--', 'true']);
  expect(r.exitCode).toBe(1);
  expect(r.stderr).toMatch(new RegExp(`^numactlx: ${file} is owned by uid ${other.uid}, not by you`));
  expect(digest(file)).toBe(before);
});

test('--stats replaces a file another user prepared instead of writing into it', async () => {
  const file = path.join(shared, 'stats.json');
  const kept = path.join(shared, 'kept-link.json');
  // The other user's file, world-writable, with a second name that would show what was written into it.
  expect((await asOther(['sh', '-c', `umask 0; : > ${file} && ln ${file} ${kept}`])).exitCode).toBe(0);
  const backing = path.join(tmpDir(), 'n3.img');
  const r = await run([`--remap=3,${backing},size=16m`, '--membind=3', '--stats', file, '--', 'sh', '-c', 'echo secret-argv']);
  expect({ exit: r.exitCode, stderr: r.stderr }).toEqual({ exit: 0, stderr: '' });
  const st = fs.lstatSync(file);
  expect({ file: st.isFile(), uid: st.uid, mode: st.mode & 0o777 }).toEqual({ file: true, uid: 0, mode: 0o600 });
  expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toHaveProperty('nodes');
  expect(fs.readFileSync(kept, 'utf8')).toBe(''); // the other user's inode got nothing
});

test('--stats never writes through a symbolic link', async () => {
  const target = path.join(tmpDir(), 'victim.txt');
  fs.writeFileSync(target, 'untouched\n');
  const link = path.join(shared, 'link-stats.json');
  expect((await asOther(['ln', '-s', target, link])).exitCode).toBe(0);
  const backing = path.join(tmpDir(), 'n3.img');
  const r = await run([`--remap=3,${backing},size=16m`, '--membind=3', '--stats', link, '--', 'true']);
  expect(r.exitCode).toBe(0);
  expect(fs.readFileSync(target, 'utf8')).toBe('untouched\n');
  expect(fs.lstatSync(link).isSymbolicLink()).toBe(false);
});

test("a /tmp/numactlx-UID another user made first does not stop that user's sessions", async () => {
  // Root squats the second user's default socket directory, as any user could.
  const squatted = `/tmp/numactlx-${other.uid}`;
  fs.rmSync(squatted, { recursive: true, force: true });
  for (const name of fs.readdirSync('/tmp')) {
    if (name.startsWith(`numactlx-${other.uid}-`)) fs.rmSync(path.join('/tmp', name), { recursive: true, force: true });
  }
  fs.mkdirSync(squatted, { mode: 0o777 });
  fs.chmodSync(squatted, 0o777);
  const tree = await treeForOther();
  const session = execa('runuser', ['-u', other.name, '--', process.execPath, path.join(tree, 'test/helpers/fake-session.mjs')], {
    reject: false, buffer: false, stdin: 'ignore', extendEnv: false, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/' },
  });
  try {
    const ready = await new Promise<{ socket: string; numactlx_pid: number }>((resolve, reject) => {
      let out = '';
      let err = '';
      session.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
      session.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /^ready (.*)$/m.exec(out);
        if (m) resolve(JSON.parse(m[1]) as { socket: string; numactlx_pid: number });
      });
      void session.then(() => reject(new Error(`the session ended: ${err}`)));
    });
    const dir = path.dirname(ready.socket);
    expect(dir.startsWith(`${squatted}-`)).toBe(true);
    const st = fs.lstatSync(dir);
    expect({ dir: st.isDirectory(), uid: st.uid, mode: st.mode & 0o777 }).toEqual({ dir: true, uid: other.uid, mode: 0o700 });
    // The user's clients find it there.
    const ps = await asOther([path.join(tree, 'bin/numactlx'), 'ps']);
    expect({ exit: ps.exitCode, stderr: ps.stderr }).toEqual({ exit: 0, stderr: '' });
    expect(ps.stdout).toContain(String(ready.numactlx_pid));
    expect(fs.readdirSync(squatted)).toEqual([]); // nothing of theirs went into root's directory
  } finally {
    session.kill('SIGTERM');
    await session;
    fs.rmSync(squatted, { recursive: true, force: true });
  }
});

/**
 * The built tree as the second user can reach it: this checkout, or — when a parent
 * directory is closed to others (a CI clone may sit in one) — a copy in a directory
 * they can enter: hard links where the filesystem allows, else a copy.
 */
async function treeForOther(): Promise<string> {
  if ((await asOther(['test', '-r', path.join(ROOT, 'dist/src/control/server.js')])).exitCode === 0) return ROOT;
  const copy = tmpDir();
  fs.chmodSync(copy, 0o755);
  fs.mkdirSync(path.join(copy, 'test/helpers'), { recursive: true, mode: 0o755 });
  const parts = ['bin', 'dist', 'node_modules', 'package.json', 'test/helpers/fake-session.mjs'];
  for (const part of parts) {
    const to = path.join(copy, part);
    const linked = await execa('cp', ['-al', path.join(ROOT, part), to], { reject: false });
    if (linked.exitCode !== 0) await execa('cp', ['-a', path.join(ROOT, part), to]);
  }
  if ((await asOther(['test', '-r', path.join(copy, 'dist/src/control/server.js')])).exitCode !== 0) {
    throw new Error(`the second user cannot read the built tree, nor a copy of it in ${copy}`);
  }
  return copy;
}
