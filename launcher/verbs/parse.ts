// The one option parser of the verbs (`numactlx VERB ...`), over node's util.parseArgs.
//
// Every verb declares its options in a VerbSpec; --help/-h exists for every verb. Options
// may come anywhere (`status 4711 --json` as `status --json 4711`): unlike the launcher, a
// verb has no program after it; `--` ends the options. A command-line mistake is a
// UsageError, `VERB: what is wrong`, which runVerb prints as one `numactlx:` line plus
// the verb's usage on stderr, exit 1; --help prints the usage on stdout, exit 0.
//
// parseArgs runs with strict: false and tokens: true so that the messages are numactlx's
// (naming the verb, the option as typed and the valid ones) rather than node's; the checks
// strict mode would make are made here, on the tokens, in the order given.
import { parseArgs } from 'node:util';
import { UsageError } from '../errors.js';
import { printErr, printOut } from '../output.js';

export interface VerbOption {
  name: string;
  type: 'boolean' | 'string';
  /** A one-letter form (`-o` for --output). */
  short?: string;
  /** The value's name in the list of valid options (`--label L`). */
  value?: string;
  /** Why a string option may be given once only, shown when it is repeated. */
  once?: string;
}

export interface VerbSpec {
  name: string;
  /** The usage text, `usage: numactlx VERB ...\n`. */
  usage: string;
  options: readonly VerbOption[];
}

export interface VerbArgs {
  help: boolean;
  positional: string[];
  /** Boolean options: true when given. */
  flags: Record<string, boolean>;
  /** String options: the value, when given. */
  strings: Record<string, string | undefined>;
}

/** A verb: what it accepts and the work, over arguments already parsed. */
export interface Verb {
  spec: VerbSpec;
  run(args: VerbArgs): Promise<number>;
}

const HELP: VerbOption = { name: 'help', type: 'boolean', short: 'h' };

/** "--label L, --wait, --json, --help": the options of `spec` as the error lists them. */
function validOptions(options: readonly VerbOption[]): string {
  return options.map((o) => `--${o.name}${o.value ? ` ${o.value}` : ''}`).join(', ');
}

/** Parses a verb's arguments by `spec` (see the header comment). */
export function parseVerbArgs(spec: VerbSpec, argv: string[]): VerbArgs {
  const verb = spec.name;
  const all = [...spec.options, HELP];
  const byName = new Map(all.map((o) => [o.name, o]));
  const { tokens } = parseArgs({
    args: argv,
    options: Object.fromEntries(all.map((o) => [o.name, { type: o.type, ...(o.short ? { short: o.short } : {}) }])),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const args: VerbArgs = { help: false, positional: [], flags: {}, strings: {} };
  const counts = new Map<string, number>();
  for (const o of all) {
    if (o.type === 'boolean') args.flags[o.name] = false;
  }
  for (const token of tokens) {
    if (token.kind === 'positional') args.positional.push(token.value);
    if (token.kind !== 'option') continue;
    const option = byName.get(token.name);
    if (!option) throw new UsageError(`${verb}: unknown option '${token.rawName}' (valid: ${validOptions(all)})`);
    if (option.type === 'boolean') {
      if (token.value !== undefined) throw new UsageError(`${verb}: option '${token.rawName}' doesn't allow an argument`);
      args.flags[option.name] = true;
      continue;
    }
    // A value taken from the next word that looks like an option (`--label --wait`) is
    // a forgotten value, as getopt users expect; `--label=-x` passes.
    const value = token.value;
    if (value === undefined || value === '' || (token.inlineValue === false && value.length > 1 && value.startsWith('-'))) {
      throw new UsageError(`${verb}: option '${token.rawName}' requires an argument`);
    }
    const n = (counts.get(option.name) ?? 0) + 1;
    counts.set(option.name, n);
    args.strings[option.name] = value;
    if (n > 1) {
      // Counted to the end, so the message says how many times.
      const times = tokens.filter((t) => t.kind === 'option' && t.name === option.name).length;
      throw new UsageError(`${verb}: --${option.name} given ${times} times${option.once ? ` (${option.once})` : ''}`);
    }
  }
  args.help = args.flags.help;
  delete args.flags.help;
  return args;
}

/** The positional arguments `names` (all required), or a usage error naming the first missing. */
export function positionals(verb: string, args: VerbArgs, names: readonly string[]): string[] {
  if (args.positional.length < names.length) throw new UsageError(`${verb}: missing ${names[args.positional.length]}`);
  if (args.positional.length > names.length) {
    const expected = names.length === 0 ? 'it takes no arguments' : `expected ${names.join(' ')}`;
    throw new UsageError(`${verb}: unexpected argument '${args.positional[names.length]}' (${expected})`);
  }
  return args.positional;
}

/**
 * Runs `verb` with the arguments after its name: --help prints the usage; a usage error
 * prints its line and the verb's usage on stderr and resolves to 1. Other errors go to
 * the caller (launcher/main.ts prints them).
 */
export async function runVerb(verb: Verb, argv: string[]): Promise<number> {
  try {
    const args = parseVerbArgs(verb.spec, argv);
    if (args.help) {
      printOut(verb.spec.usage);
      return 0;
    }
    return await verb.run(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    printErr(`numactlx: ${err.message}\n${verb.spec.usage}`);
    return 1;
  }
}
