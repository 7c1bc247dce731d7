// The C fixture programs in test/fixtures/: compiled on first use into
// test/fixtures/bin/ (git-ignored) and reused until the source or the flags change.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures');
const BIN = path.join(FIXTURES, 'bin');

const mtime = (file: string): number | undefined => {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
};


/**
 * Compiles test/fixtures/NAME.c with `cc -O2 -Wall` (plus -pthread when it includes
 * <pthread.h>, plus `extraFlags` after the source, so libraries such as -lnuma link)
 * and returns the binary's path, test/fixtures/bin/NAME. Recompiles only when the
 * source (or a header of this directory it includes: fixture.h, sandbox_workload.h) is
 * newer than the binary or the flags differ from the last build's.
 */
export async function compileFixture(name: string, extraFlags: readonly string[] = []): Promise<string> {
  const source = path.join(FIXTURES, `${name}.c`);
  const binary = path.join(BIN, name);
  // The flags of the last build, so that a binary built with other flags is not reused.
  const flagsFile = `${binary}.flags`;
  const text = fs.readFileSync(source, 'utf8');
  const after = [...(/#\s*include\s*<pthread\.h>/.test(text) ? ['-pthread'] : []), ...extraFlags];
  const flagsLine = ['-O2', '-Wall', ...after].join(' ');

  const built = mtime(binary);
  // The headers of this directory it includes (`#include "x.h"`): a change to one rebuilds it.
  const headers = [...text.matchAll(/#\s*include\s*"([^"]+)"/g)].map((m) => path.join(FIXTURES, m[1]));
  const sourceTime = Math.max(mtime(source) ?? Infinity, ...headers.map((h) => mtime(h) ?? Infinity));
  const sameFlags = fs.existsSync(flagsFile) && fs.readFileSync(flagsFile, 'utf8') === flagsLine;
  if (built !== undefined && built >= sourceTime && sameFlags) return binary;

  fs.mkdirSync(BIN, { recursive: true });
  // Built under a private name and renamed into place: a test running at the same
  // time sees either the old binary or the whole new one, never a half-written file.
  const partial = `${binary}.${process.pid}.tmp`;
  const cc = await execa('cc', ['-O2', '-Wall', '-o', partial, source, ...after], { reject: false });
  if (cc.exitCode !== 0) {
    fs.rmSync(partial, { force: true });
    throw new Error(`cc failed to compile ${source} (exit ${cc.exitCode}): ${cc.stderr || cc.stdout}`);
  }
  fs.renameSync(partial, binary);
  fs.writeFileSync(flagsFile, flagsLine);
  return binary;
}
