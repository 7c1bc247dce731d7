// Bash completion (completions/numactlx.bash): sourced in bash and asked, as bash asks,
// with COMP_WORDS split the way readline splits them (at '=' and ':' too). Its lists of
// options and verbs are numactlx's own: the launcher's options, each verb and its options.
import path from 'node:path';
import fs from 'node:fs';
import { execa } from 'execa';
import { LAUNCHER_OPTIONS } from '../../launcher/options.js';
import { loadVerb, VERB_NAMES, type Verb } from '../../launcher/verbs/index.js';
import { ROOT } from '../helpers/numactlx.js';

const SCRIPT = path.join(ROOT, 'completions/numactlx.bash');
const SHM = new Set(['shm', 'file', 'offset', 'length', 'strict', 'shmmode', 'dump', 'dump-nodes', 'shmid', 'huge', 'touch', 'verify']);

/** COMPREPLY for a command line whose words are `words` (the last one being completed). */
async function complete(words: string[], env: Record<string, string> = {}): Promise<string[]> {
  const script = `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=\${#COMP_LINE};
    _numactlx; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = await execa('bash', ['--norc', '-c', script, 'bash', SCRIPT, ...words], { env });
  expect(r.stderr).toBe('');
  return r.stdout === '' ? [] : r.stdout.split('\n');
}

/** A bash variable of the script, as a list of words. */
async function scriptWords(name: string): Promise<string[]> {
  const r = await execa('bash', ['--norc', '-c', `source "$1"; printf '%s\\n' $${name}`, 'bash', SCRIPT]);
  return r.stdout.split('\n');
}

const nodes = fs.readdirSync('/sys/devices/system/node').filter((d) => /^node\d+$/.test(d)).map((d) => d.slice(4));

test.each([
  [['numactlx', '--mem'], ['--membind=']],
  [['numactlx', '--snapshot-'], ['--snapshot-signal=', '--snapshot-on-exit']],
  [['numactlx', 'export', 'IMG', '1', '--f'], ['--format', '--force']],
  [['numactlx', 'diff', '--'], ['--json', '--help']],
  [['numactlx', 'snapshot', '--'], ['--label', '--wait', '--json', '--help']],
  [['numactlx', 'export', 'IMG', '1', '--format', ''], ['core', 'raw']],
  [['numactlx', '--membind', '=', ''], ['all', 'same', ...nodes, 'netdev:', 'block:', 'file:', 'ip:', 'pci:']],
  [['numactlx', '-m', 'a'], ['all']],
  [['numactlx', '--membind', '=', 'netdev', ':', 'l'], ['lo']],
  [['numactlx', '--physcpubind', '=', 'al'], ['all']],
  [['numactlx', '--snapshot-signal', 'SIGUSR'], ['SIGUSR1', 'SIGUSR2']],
  [['numactlx', '--fault-ahead', '1'], ['1m']],
  [['numactlx', '-m', '0', '-C', '0', '--', 'numactlx-no-such-comman'], []],
])('%j -> %j', async (words, expected) => {
  expect((await complete(words)).sort()).toEqual([...expected].sort());
});

test('after --, the program\'s name is completed from PATH', async () => {
  const got = await complete(['numactlx', '--membind', '=', '0', '--', 'numa']);
  expect(got).toContain('numactl');
  expect(new Set(got).size).toBe(got.length);
});

test('the first word offers the verbs and the programs', async () => {
  expect(await complete(['numactlx', 'd'])).toEqual(expect.arrayContaining(['doctor', 'diff', 'date']));
  const snap = await complete(['numactlx', 'snaps']);
  expect(snap).toEqual(expect.arrayContaining(['snapshot', 'snapshots']));
  expect(snap.filter((w) => !['snapshot', 'snapshots'].includes(w)).every((w) => w.startsWith('snaps'))).toBe(true);
});

test('the launcher\'s options are numactlx\'s (the shared-memory ones, refused, are left out)', async () => {
  const longs = LAUNCHER_OPTIONS.filter((o) => !SHM.has(o.long)).map((o) => `--${o.long}${o.takesValue ? '=' : ''}`);
  expect((await scriptWords('_numactlx_launch_opts')).sort()).toEqual(longs.sort());
  const shorts = LAUNCHER_OPTIONS.filter((o) => !SHM.has(o.long) && o.short).map((o) => `-${o.short}`);
  expect((await scriptWords('_numactlx_short_opts')).sort()).toEqual(shorts.sort());
});

test('the verbs and each verb\'s options are numactlx\'s', async () => {
  expect(await scriptWords('_numactlx_verbs')).toEqual([...VERB_NAMES]);
  for (const name of VERB_NAMES) {
    // One at a time: jest's ESM runtime fails concurrent first imports of a module.
    const verb: Verb = await loadVerb(name)!;
    const r = await execa('bash', ['--norc', '-c', 'source "$1"; _numactlx_verb_opts "$2"', 'bash', SCRIPT, name]);
    expect(`${name}: ${r.stdout}`).toBe(`${name}: ${[...verb.spec.options.map((o) => `--${o.name}`), '--help'].join(' ')}`);
  }
});

test('complete(1) is registered for numactlx', async () => {
  const r = await execa('bash', ['--norc', '-c', 'source "$1"; complete -p numactlx', 'bash', SCRIPT]);
  expect(r.stdout).toBe('complete -F _numactlx numactlx');
});
