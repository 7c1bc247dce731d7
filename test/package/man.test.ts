// The manual page (man/numactlx.8): it renders without warnings, and it documents exactly
// the options and verbs numactlx has — every option of the launcher (LAUNCHER_OPTIONS, and
// so --help), every verb and each verb's options; no option it names is unknown.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { LAUNCHER_OPTIONS } from '../../launcher/options.js';
import { USAGE } from '../../launcher/usage.js';
import { loadVerb, VERB_NAMES, type Verb } from '../../launcher/verbs/index.js';
import { ROOT } from '../helpers/numactlx.js';

const PAGE = path.join(ROOT, 'man/numactlx.8');
/** The page's text with roff's escapes for '-' and fonts taken out. */
const text = fs.readFileSync(PAGE, 'utf8').replace(/\\-/g, '-').replace(/\\f[BIRP]/g, '').replace(/\\&/g, '');
const verbs: Verb[] = [];

beforeAll(async () => {
  // One at a time: jest's ESM runtime fails concurrent first imports of a module.
  for (const name of VERB_NAMES) verbs.push(await loadVerb(name)!);
});

test('man -l renders it, and groff finds nothing to warn about', async () => {
  const groff = await execa('groff', ['-man', '-ww', '-z', PAGE], { reject: false });
  expect({ exitCode: groff.exitCode, stderr: groff.stderr }).toEqual({ exitCode: 0, stderr: '' });
  const man = await execa('man', ['-l', PAGE], { reject: false, env: { MANWIDTH: '80', MANPAGER: 'cat', PAGER: 'cat' } });
  expect(man.exitCode).toBe(0);
  expect(man.stdout).toMatch(/^NUMACTLX\(8\)/);
  for (const section of ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'VERBS', 'NODE AND CPU LISTS', 'EXIT STATUS', 'ENVIRONMENT']) {
    expect(man.stdout).toMatch(new RegExp(`^${section}$`, 'm'));
  }
});

test.each(LAUNCHER_OPTIONS.map((o) => [o.long, o]))('launcher option --%s is documented', (_name, o) => {
  expect(text).toContain(`--${o.long}`);
  if (o.short) expect(text).toMatch(new RegExp(`(^|[\\s(,])-${o.short}([\\s,)]|$)`, 'm'));
});

test('every option in --help is in the page', () => {
  for (const [opt] of USAGE.matchAll(/--[a-z][a-z-]*/g)) expect(`${opt} ${text.includes(opt)}`).toBe(`${opt} true`);
});

test('every verb, with its usage line and options, is in the VERBS section', () => {
  const section = text.slice(text.indexOf('.SH VERBS'), text.indexOf('.SH SIGNALS'));
  for (const verb of verbs) {
    const usage = verb.spec.usage.replace(/^usage: numactlx /, '').trim();
    // The item's title is the usage line (fonts aside).
    const title = usage.replace(/[[\]"]/g, '').replace(/\s+/g, ' ');
    const titles = [...section.matchAll(/^\.(?:BR|BI|B) (.*)$/gm)].map((m) => m[1].replace(/[[\]"]/g, '').replace(/\\ /g, ' ').replace(/\s+/g, ' ').trim());
    expect(titles).toContain(title);
    for (const o of verb.spec.options) expect(`${verb.spec.name} --${o.name} ${section.includes(`--${o.name}`)}`).toBe(`${verb.spec.name} --${o.name} true`);
  }
  expect(section).toContain('--help');
});

test('no option the page names is unknown to numactlx', () => {
  const known = new Set([...LAUNCHER_OPTIONS.map((o) => o.long), ...verbs.flatMap((v) => v.spec.options.map((o) => o.name)), 'help']);
  const named = new Set([...text.matchAll(/--([a-z][a-z-]*[a-z])/g)].map((m) => m[1]));
  expect([...named].filter((n) => !known.has(n))).toEqual([]);
});
