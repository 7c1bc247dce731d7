// The two superblock copies of a backing, judged together (reliability issue, item 6).
// Commits alternate between the slots (generation g lives in slot g mod 2), so when one
// copy is damaged the other is either the commit before it (nothing lost) or the one
// after (the newest commit's snapshots would silently vanish, and their ids be reused).
//
// Recovery: a damaged copy whose unchecked fields say "generation g + 1, same geometry"
// and whose catalog field leads to a catalog that reads back verified — the pointer holds
// the root's CRC, the root each record's — is the newest commit with a damaged byte
// outside its catalog field: it is used (and, by a writer, rewritten with a good CRC).
// Otherwise the valid copy is used and the damage is reported: one line at a session's
// start, a problem in `numactlx verify`.
import { readImage, type FrameReader } from './catalog-image.js';
import { decodeSuperblock, decodeSuperblockUnchecked, pickSuperblock, slotOf, SLOT_SIZE, type FormatError, type Superblock } from './format.js';

export type SlotName = 'A' | 'B';

export interface SuperblockCopy {
  slot: SlotName;
  /** The generation it records (for a damaged copy: as read, unchecked), when readable. */
  generation: string | null;
  state: 'in use' | 'valid' | 'damaged' | 'recovered';
  /** Why a damaged copy failed its checks. */
  reason?: string;
}

export interface ExaminedSuperblocks {
  sb: Superblock;
  /** The slot `sb` was read from. */
  slot: 0 | 1;
  copies: SuperblockCopy[];
  /** The damage, as one sentence (undefined when both copies are fine). */
  damage?: string;
  /** sb came from the damaged copy, confirmed by its catalog: a writer rewrites that slot. */
  recovered: boolean;
}

const NAMES: readonly SlotName[] = ['A', 'B'];

/**
 * Judges the two slots (the first 2 × SLOT_SIZE bytes of the medium). `framesOf(sb)`
 * reads the frames of the layout sb describes, for checking that the catalog a damaged
 * copy names reads back verified; undefined where they cannot be read (a dax device's
 * header mapping): a damaged copy is then reported, never recovered. Throws the
 * FormatError of pickSuperblock when neither copy is usable.
 */
export function examineSuperblocks(slots: Uint8Array, framesOf?: (sb: Superblock) => FrameReader): ExaminedSuperblocks {
  const catalogReads = (candidate: Superblock): boolean => {
    if (!framesOf) return false;
    try {
      readImage(framesOf(candidate), candidate.catalog);
      return true;
    } catch {
      return false;
    }
  };
  const picked = pickSuperblock(slots.subarray(0, SLOT_SIZE), slots.subarray(SLOT_SIZE, 2 * SLOT_SIZE));
  const { superblock: sb, slot } = picked;
  const other = (1 - slot) as 0 | 1;
  const used: SuperblockCopy = { slot: NAMES[slot], generation: String(sb.generation), state: 'in use' };
  if (!picked.otherError) {
    const otherSb = decodeSuperblock(slots.subarray(other * SLOT_SIZE, (other + 1) * SLOT_SIZE));
    return { sb, slot, recovered: false, copies: ordered([used, { slot: NAMES[other], generation: String(otherSb.generation), state: 'valid' }]) };
  }
  const err: FormatError = picked.otherError;
  const loose = decodeSuperblockUnchecked(slots.subarray(other * SLOT_SIZE, (other + 1) * SLOT_SIZE));
  const damaged: SuperblockCopy = { slot: NAMES[other], generation: loose ? String(loose.generation) : null, state: 'damaged', reason: err.message };
  if (loose && loose.generation === sb.generation + 1n && slotOf(loose.generation) === other && loose.catalog !== 0n
    && loose.size >= sb.size && loose.dataOffset === sb.dataOffset && loose.pageSize === sb.pageSize
    && loose.frameCount === (loose.size - loose.dataOffset) / BigInt(sb.pageSize) && catalogReads(loose)) {
    return {
      sb: loose, slot: other, recovered: true,
      copies: ordered([{ ...damaged, state: 'recovered' }, { ...used, state: 'valid' }]),
      damage: `superblock copy ${NAMES[other]} is damaged (${err.message}) but the catalog it names (generation ` +
        `${loose.generation}) reads back verified: recovered from it`,
    };
  }
  const older = loose !== undefined && loose.generation + 1n === sb.generation;
  const newer = loose !== undefined && loose.generation === sb.generation + 1n;
  return {
    sb, slot, recovered: false, copies: ordered([used, damaged]),
    damage: `superblock copy ${NAMES[other]} is damaged (${err.message}); copy ${NAMES[slot]} (generation ${sb.generation}) is in use` +
      (older ? ': the damaged copy was the older one, nothing is lost'
        : newer ? `: the damaged copy was the newer one (generation ${loose.generation}) and its catalog cannot be read: ` +
          'the snapshots committed last are lost, and their ids may be given again'
          : ': if the damaged copy was the newer one, the snapshots it committed last are lost'),
  };
}

/** By slot name. Not localeCompare: its first call builds ICU's collator, ≈ 10 ms of every session's start. */
function ordered(copies: SuperblockCopy[]): SuperblockCopy[] {
  return copies.sort((a, b) => (a.slot < b.slot ? -1 : a.slot > b.slot ? 1 : 0));
}
