// `numactlx repair PATH`: makes a damaged backing whole again, keeping every snapshot that
// can still be read. It drops the catalog records that fail their checks (each costs only
// its own snapshot: records are self-contained), and rewrites the superblock so that both
// copies are valid again (opening recovers a damaged newest copy when its catalog reads
// back verified; the commit writes the other slot). A damaged catalog root is rebuilt
// from the records that still read back verified (backing/catalog-rebuild.ts). Takes the
// backing's lock, like rm: refused while a session holds it. What it cannot repair (the
// data frames of a snapshot — see `verify`) it leaves as it is.
import { positionals, type Verb, type VerbArgs } from './parse.js';
import { catalogError } from './snapshots.js';
import { repairBacking } from '../../backing/catalog-offline.js';
import { printOut } from '../output.js';

export const repairCommand: Verb = {
  spec: { name: 'repair', usage: 'usage: numactlx repair PATH\n', options: [] },
  run: runRepair,
};

async function runRepair(args: VerbArgs): Promise<number> {
  const [path] = positionals('repair', args, ['PATH']);
  let result: ReturnType<typeof repairBacking>;
  try {
    result = repairBacking(path);
  } catch (err) {
    throw catalogError('repair', path, err);
  }
  const lines: string[] = [];
  if (result.root) {
    const { damage, fromPrevious } = result.root;
    const previous = fromPrevious.length === 0 ? ''
      : ` (snapshot${fromPrevious.length === 1 ? '' : 's'} ${fromPrevious.join(', ')} through the previous catalog's entries)`;
    lines.push(`${path}: the catalog root was damaged (${damage}): rebuilt from the records that still read${previous}`);
  }
  if (result.superblock) lines.push(`${path}: ${result.superblock}; both copies rewritten`);
  for (const d of result.dropped) lines.push(`${path}: dropped snapshot ${d.id}: ${d.reason}`);
  if (lines.length === 0) lines.push(`${path}: nothing to repair (${result.kept.length} snapshots, both superblock copies valid)`);
  else lines.push(`${path}: kept ${result.kept.length} snapshot${result.kept.length === 1 ? '' : 's'}${result.kept.length ? ` (${result.kept.join(', ')})` : ''}`);
  printOut(`${lines.join('\n')}\n`);
  return 0;
}
