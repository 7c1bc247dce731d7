// Programs no one here wrote (issue 11): ruby (a big heap grown by brk and mmap, a
// thread, forks), git (init, commit, gc, fsck: many short processes and mmapped pack
// files), sqlite3 (a transaction of inserts, an integrity check) and make -j2 (parallel
// compiler processes), each under numactlx on a virtual node. Each must print what it
// prints without numactlx, and its memory must have been on the node.
import fs from 'node:fs';
import path from 'node:path';
import { execa, type Result } from 'execa';
import { node3, onVirtualNode } from '../helpers/virtual.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

afterAll(removeTmpDirs);

/** Fails with the Debian package to install when a program is missing (no silent skip). */
async function needs(cmd: string, pkg: string): Promise<void> {
  const which = await execa('sh', ['-c', `command -v ${cmd}`], { reject: false });
  if (which.exitCode !== 0) throw new Error(`${cmd} is needed for this test (apt-get install ${pkg})`);
}

/** Runs `argv` natively and under numactlx; both must succeed and print the same. */
async function sameUnderNumactlx(argv: string[], minPages: number, prepare?: (dir: string) => void): Promise<string> {
  const nativeDir = tmpDir();
  const nxDir = tmpDir();
  prepare?.(nativeDir);
  prepare?.(nxDir);
  const native = await execa(argv[0], argv.slice(1), { cwd: nativeDir, reject: false, env: FIXED_ENV }) as Result;
  expect({ native: native.exitCode, stderr: native.stderr }).toEqual({ native: 0, stderr: native.stderr });
  const { result, stats } = await onVirtualNode(argv, { size: '2g', options: { cwd: nxDir, env: FIXED_ENV, timeout: 600_000 } });
  expect({ exitCode: result.exitCode, signal: result.signal }).toEqual({ exitCode: 0, signal: undefined });
  expect(String(result.stderr).split('\n').filter((l) => l.startsWith('numactlx:'))).toEqual([]);
  expect(result.stdout).toBe(native.stdout);
  expect(node3(stats).pages_placed).toBeGreaterThan(minPages);
  expect(node3(stats).pages_fallback).toBe(0);
  return String(result.stdout);
}

// git's commit ids depend on names and dates: fixed, so that both runs make the same ids.
const FIXED_ENV = {
  GIT_AUTHOR_NAME: 'numactlx', GIT_AUTHOR_EMAIL: 'test@numactlx', GIT_COMMITTER_NAME: 'numactlx',
  GIT_COMMITTER_EMAIL: 'test@numactlx', GIT_AUTHOR_DATE: '2026-12-05T00:00:00Z', GIT_COMMITTER_DATE: '2026-12-05T00:00:00Z',
  GIT_CONFIG_NOSYSTEM: '1', HOME: '/nonexistent',
};

test('ruby: 300k arrays sorted, a thread and 10 forks print what they print without numactlx', async () => {
  await needs('ruby', 'ruby');
  const script = 'a = Array.new(300_000) { |i| [i * 7919 % 300_007, i.to_s] }; a.sort!; ' +
    'puts a.first(3).inspect, a.last.inspect, a.sum { |x| x[0] }; ' +
    't = Thread.new { (1..200_000).map { |i| i * i }.sum }; puts t.value; ' +
    'puts 10.times.map { |k| pid = fork { exit!(k + 1) }; Process.wait(pid); $?.exitstatus }.inspect';
  const out = await sameUnderNumactlx(['ruby', '-e', script], 2000);
  expect(out).toMatch(/^\[1, 2, 3, 4, 5, 6, 7, 8, 9, 10\]$/m); // every fork's child ran and exited with its own status
});

test('git: init, commit, log -p, gc and fsck give the same commit ids and history as without numactlx', async () => {
  await needs('git', 'git');
  const files = (dir: string): void => {
    for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(dir, `f${i}.txt`), `${Array.from({ length: 200 }, (_, k) => `line ${k} of file ${i}`).join('\n')}\n`);
  };
  const script = 'git init -q . && git add -A && git commit -qm one && sed -i s/line/LINE/ f1*.txt && git commit -qam two && ' +
    'git rev-parse HEAD HEAD~1 && git log -p | sha256sum && git gc -q && git fsck --full --no-progress && git count-objects -v | grep -v size';
  const out = await sameUnderNumactlx(['sh', '-c', script], 200, files);
  expect(out).toMatch(/^[0-9a-f]{40}\n[0-9a-f]{40}\n[0-9a-f]{64} {2}-$/m);
});

test('sqlite3: 100k inserts in a transaction, the same count, sum and an ok integrity check', async () => {
  await needs('sqlite3', 'sqlite3');
  const lines = ['CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, v REAL);', 'CREATE INDEX tv ON t (v);', 'BEGIN;'];
  for (let i = 0; i < 100_000; i++) lines.push(`INSERT INTO t (name, v) VALUES ('row ${i}', ${((i * 7919) % 100_003) * 0.5});`);
  lines.push('COMMIT;', 'SELECT count(*), sum(v), min(name), max(name) FROM t;', 'PRAGMA integrity_check;');
  const sql = path.join(tmpDir(), 'inserts.sql');
  fs.writeFileSync(sql, `${lines.join('\n')}\n`);
  const out = await sameUnderNumactlx(['sh', '-c', `sqlite3 db < ${sql}`], 500);
  expect(out).toMatch(/^100000\|[0-9.]+\|row 0\|row 99999\nok$/);
});

test('make -j2: 12 C files compiled in parallel, the program built prints the same', async () => {
  await needs('make', 'make');
  await needs('cc', 'gcc');
  const project = (dir: string): void => {
    const objs: string[] = [];
    for (let f = 0; f < 12; f++) {
      fs.writeFileSync(path.join(dir, `u${f}.c`), `int f${f}(int x) { int s = ${f}; for (int i = 0; i < x; i++) s = s * 31 + (i ^ ${f * 7}); return s; }\n`);
      objs.push(`u${f}.o`);
    }
    const calls = Array.from({ length: 12 }, (_, f) => `f${f}(1000 + ${f})`).join(' ^ ');
    fs.writeFileSync(path.join(dir, 'main.c'), `#include <stdio.h>\n${Array.from({ length: 12 }, (_, f) => `int f${f}(int);`).join('\n')}\n` +
      `int main(void) { printf("%d\\n", ${calls}); return 0; }\n`);
    fs.writeFileSync(path.join(dir, 'Makefile'), `OBJS = main.o ${objs.join(' ')}\nprog: $(OBJS)\n\tcc -o prog $(OBJS)\n%.o: %.c\n\tcc -O2 -c -o $@ $<\n`);
  };
  const out = await sameUnderNumactlx(['sh', '-c', 'make -s -j2 && ./prog && ls *.o | wc -l'], 500, project);
  expect(out).toMatch(/^-?\d+\n13$/);
});
