// `numactlx format PATH [--size SIZE] [--force]`: makes a /dev/dax device a numactlx
// backing. numactlx never writes a device it was not told to (backing/store.ts): a
// session refuses a device without a numactlx superblock and names this verb. A device
// that is a numactlx backing already is formatted again only with --force (its snapshots
// are lost); one that another numactlx holds is refused with the holder's pid.
//
// Formatting writes the two superblock copies (and clears the owner record), flushed from
// the CPU caches through libpmem when it is installed; frames are not touched: a frame
// holds data only once a snapshot's catalog names it.
import { inspectBacking } from '../../backing/inspect.js';
import { BackingError, BackingStore } from '../../backing/store.js';
import { parseSize } from '../../policy/size.js';
import { SetupError, UsageError } from '../errors.js';
import { positionals, type Verb, type VerbArgs } from './parse.js';
import { printErr, printOut } from '../output.js';

export const formatCommand: Verb = {
  spec: {
    name: 'format', usage: 'usage: numactlx format PATH [--size SIZE] [--force]\n',
    options: [{ name: 'size', type: 'string', value: 'SIZE' }, { name: 'force', type: 'boolean' }],
  },
  run: runFormat,
};

async function runFormat(args: VerbArgs): Promise<number> {
  const [path] = positionals('format', args, ['PATH']);
  let size: bigint | undefined;
  if (args.strings.size !== undefined) {
    try {
      size = parseSize(args.strings.size);
    } catch (err) {
      throw new UsageError(`format: invalid --size '${args.strings.size}': ${(err as Error).message}`);
    }
  }
  let target;
  try {
    target = inspectBacking(path, size);
  } catch (err) {
    throw new SetupError(`format: ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (target.kind !== 'dax') {
    throw new SetupError(`format: ${path} is not a /dev/dax device; a backing file is created and formatted by ` +
      '--remap=NODE,PATH,size=SIZE');
  }
  let store: BackingStore;
  try {
    store = BackingStore.open(target, { force: args.flags.force });
  } catch (err) {
    if (err instanceof BackingError) throw new SetupError(`format: ${err.message}`, { cause: err });
    throw err;
  }
  const sb = store.superblock;
  const note = store.durabilityNote;
  store.close();
  printOut(`formatted ${path}: ${sb.size} bytes, ${sb.frameCount} frames of 4 KiB from offset ${sb.dataOffset} ` +
    `(device alignment ${target.align})\n`);
  if (note) printErr(`numactlx: ${path}: ${note}\n`);
  return 0;
}
