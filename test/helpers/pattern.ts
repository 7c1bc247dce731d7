// The page pattern, the TypeScript side: a port of test/fixtures/fixture.h (page_state,
// xorshift, pattern_word, and the checksum its check_pages folds), which the C fixtures
// write into memory and the tests look for in snapshots and exports (CRIU zdtm
// datagen/datachk). The only copy in TypeScript; pattern.test.ts compiles a C program
// printing pattern words, pages and checksums and compares them with these, so the two
// can never drift apart.
//
// Word w of 4 KiB page p for seed s is the (w+1)-th xorshift64 (13, 7, 17) step from
// page_state(s, p), a splitmix64 mix of (s, p) that is never zero: any page can be
// regenerated on its own. Seeds and pages are u64 in C (bigint here; a number is taken
// when it is a safe integer). The stepping is done on two u32 halves in Numbers — exact,
// and fast enough to regenerate a few hundred MiB in a test; the results are bigint.

export const PAGE = 4096;
/** 64-bit words in a page. */
export const WORDS = PAGE / 8;

const M64 = (1n << 64n) - 1n;

const u64 = (v: bigint | number, what: string): bigint => {
  const b = BigInt(v);
  if (b < 0n || b > M64) throw new RangeError(`${what} ${v} is not an unsigned 64-bit number`);
  return b;
};

/** fixture.h page_state: splitmix64 of (seed, page); never zero. */
export function pageState(seed: bigint | number, page: bigint | number): bigint {
  let x = (u64(seed, 'seed') * 0x9e3779b97f4a7c15n + (u64(page, 'page') + 1n) * 0xbf58476d1ce4e5b9n) & M64;
  x ^= x >> 30n;
  x = (x * 0xbf58476d1ce4e5b9n) & M64;
  x ^= x >> 27n;
  x = (x * 0x94d049bb133111ebn) & M64;
  x ^= x >> 31n;
  return x === 0n ? 1n : x;
}

/**
 * Calls `each(lo, hi)` with the halves of words 0 … count-1 of page `page` of `seed`, in
 * order: the stream fixture.h's fill_pages writes.
 */
function eachWord(seed: bigint | number, page: bigint | number, count: number, each: (lo: number, hi: number) => void): void {
  const s = pageState(seed, page);
  let lo = Number(s & 0xffff_ffffn);
  let hi = Number(s >> 32n);
  for (let i = 0; i < count; i++) {
    // x ^= x << 13
    hi = (hi ^ ((hi << 13) | (lo >>> 19))) >>> 0;
    lo = (lo ^ (lo << 13)) >>> 0;
    // x ^= x >> 7
    lo = (lo ^ ((lo >>> 7) | (hi << 25))) >>> 0;
    hi = (hi ^ (hi >>> 7)) >>> 0;
    // x ^= x << 17
    hi = (hi ^ ((hi << 17) | (lo >>> 15))) >>> 0;
    lo = (lo ^ (lo << 17)) >>> 0;
    each(lo, hi);
  }
}

/** fixture.h pattern_word: word `word` (0 … 511) of page `page` of `seed`. */
export function patternWord(seed: bigint | number, page: bigint | number, word: number): bigint {
  if (!Number.isInteger(word) || word < 0 || word >= WORDS) throw new RangeError(`word ${word} is not in 0…${WORDS - 1}`);
  let v = 0n;
  eachWord(seed, page, word + 1, (lo, hi) => { v = (BigInt(hi) << 32n) | BigInt(lo); });
  return v;
}

/** Page `page` of the pattern of `seed`, the 4096 bytes a fixture's fill_pages writes (x86-64: little-endian). */
export function patternPage(seed: bigint | number, page: bigint | number = 0): Buffer {
  const buf = Buffer.alloc(PAGE);
  let at = 0;
  eachWord(seed, page, WORDS, (lo, hi) => {
    buf.writeUInt32LE(lo, at);
    buf.writeUInt32LE(hi, at + 4);
    at += 8;
  });
  return buf;
}

/**
 * fixture.h's checksum of pages [0, pages) holding the pattern of `seed` — what
 * `pattern write SIZE SEED` prints: sum = rotl(sum, 1) ^ word over every word in order,
 * from 0. 16 hex digits.
 */
export function patternChecksum(seed: bigint | number, pages: number): string {
  let lo = 0;
  let hi = 0;
  for (let p = 0; p < pages; p++) {
    eachWord(seed, p, WORDS, (wl, wh) => {
      const carry = hi >>> 31;
      hi = (((hi << 1) | (lo >>> 31)) ^ wh) >>> 0;
      lo = (((lo << 1) | carry) ^ wl) >>> 0;
    });
  }
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
}
