// Splitting the launcher's command line the way numactl's getopt_long("+…") does:
// short options cluster (-ab, -m0, -Nall), long options may be abbreviated to any
// unique prefix and take their value as --opt=V or --opt V, and the first argument
// that is not an option (or `--`) starts the program. The result is the options in
// the order given (numactl applies them in order: `same`, --all, --balancing and the
// last CPU binding depend on it) and a minimist view of their values.
import minimist from 'minimist';
import { UsageError } from './errors.js';

export interface OptionSpec {
  long: string;
  short?: string;
  takesValue: boolean;
}

export interface OptionEvent {
  name: string;
  value?: string;
  /** How the user spelled it, for messages ("-m" or "--membind"). */
  spelled: string;
}

export interface SplitArgv {
  events: OptionEvent[];
  /** minimist's view: each option's value (arrays for repeated ones). */
  values: minimist.ParsedArgs;
  /** The program and its arguments (empty when none). */
  program: string[];
}

function resolveLong(name: string, specs: readonly OptionSpec[]): OptionSpec {
  const exact = specs.find((s) => s.long === name);
  if (exact) return exact;
  const matches = specs.filter((s) => s.long.startsWith(name));
  if (matches.length === 1) return matches[0];
  if (matches.length > 1) {
    throw new UsageError(`option '--${name}' is ambiguous; possibilities: ${matches.map((s) => `'--${s.long}'`).join(' ')}`);
  }
  throw new UsageError(`unrecognized option '--${name}'`);
}

/**
 * An option's value given as the next argument. getopt would take a `--` there as the
 * value (`--stats -- prog` wrote statistics to a file named `--`); here it ends the
 * options, as whoever typed it meant, and the option lacks its value.
 */
function separateValue(argv: readonly string[], i: number, spelled: string): string {
  // getopt's own words: "option '--stats' requires an argument", "option requires an argument -- 'm'".
  const missing = spelled.startsWith('--') ? `option '${spelled}' requires an argument` : `option requires an argument -- '${spelled.slice(1)}'`;
  if (i >= argv.length) throw new UsageError(missing);
  if (argv[i] === '--') throw new UsageError(`${missing} ('--' ends the options)`);
  return argv[i];
}

/** Splits argv into ordered option events and the program. */
export function splitArgv(argv: readonly string[], specs: readonly OptionSpec[]): SplitArgv {
  const events: OptionEvent[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') { i++; break; }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const spec = resolveLong(eq < 0 ? arg.slice(2) : arg.slice(2, eq), specs);
      const spelled = `--${spec.long}`;
      if (!spec.takesValue) {
        if (eq >= 0) throw new UsageError(`option '${spelled}' doesn't allow an argument`);
        events.push({ name: spec.long, spelled });
      } else if (eq >= 0) {
        events.push({ name: spec.long, value: arg.slice(eq + 1), spelled });
      } else {
        events.push({ name: spec.long, value: separateValue(argv, ++i, spelled), spelled });
      }
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const spec = specs.find((s) => s.short === arg[j]);
        if (!spec) throw new UsageError(`invalid option -- '${arg[j]}'`);
        const spelled = `-${spec.short}`;
        if (!spec.takesValue) {
          events.push({ name: spec.long, spelled });
          continue;
        }
        const rest = arg.slice(j + 1);
        if (rest !== '') events.push({ name: spec.long, value: rest, spelled });
        else events.push({ name: spec.long, value: separateValue(argv, ++i, spelled), spelled });
        break;
      }
      continue;
    }
    break;
  }
  const normalised = events.map((e) => (e.value === undefined ? `--${e.name}` : `--${e.name}=${e.value}`));
  const values = minimist(normalised, {
    string: specs.filter((s) => s.takesValue).map((s) => s.long),
    boolean: specs.filter((s) => !s.takesValue).map((s) => s.long),
    stopEarly: true,
  });
  return { events, values, program: argv.slice(i) };
}
