// The TypeScript port of the page pattern (./pattern.ts) against its C definition
// (test/fixtures/fixture.h), compiled: page states, every word of a page, whole pages and
// the fixtures' checksum must be identical, so the two can never drift apart.
import { execa } from 'execa';
import { compileFixture } from './fixtures.js';
import { pageState, patternChecksum, patternPage, patternWord, PAGE, WORDS } from './pattern.js';
import { prng, testSeed } from './random.js';

const M64 = (1n << 64n) - 1n;

interface CPage { seed: bigint; page: bigint; state: bigint; words: bigint[] }

/** pattern_words SEED:PAGE…, parsed. */
async function fromC(pairs: Array<[bigint, bigint]>): Promise<CPage[]> {
  const bin = await compileFixture('pattern_words');
  const r = await execa(bin, pairs.map(([s, p]) => `${s}:${p}`), { reject: false });
  expect({ exit: r.exitCode, stderr: r.stderr }).toEqual({ exit: 0, stderr: '' });
  const lines = r.stdout.split('\n');
  expect(lines).toHaveLength(pairs.length * 2);
  return pairs.map((_, i) => {
    const [, seed, page, state] = /^page (\d+) (\d+) ([0-9a-f]{16})$/.exec(lines[2 * i])!;
    const words = lines[2 * i + 1].split(' ').map((w) => BigInt(`0x${w}`));
    expect(words).toHaveLength(WORDS);
    return { seed: BigInt(seed), page: BigInt(page), state: BigInt(`0x${state}`), words };
  });
}

const hex = (v: bigint): string => v.toString(16).padStart(16, '0');

test('page_state, pattern_word and whole pages: the TS port gives the C values', async () => {
  // Edge seeds and pages (0, the largest u64, a page number past 2^53), and random ones.
  const rng = prng(testSeed('pattern port'));
  const u64 = (): bigint => (BigInt(rng.u32()) << 32n) | BigInt(rng.u32());
  const pairs: Array<[bigint, bigint]> = [
    [0n, 0n], [1n, 0n], [1n, 1n], [7n, 0n], [71n, 131071n], [12345n, 3n], [M64, 0n], [0n, M64], [M64, M64],
    [2n ** 53n + 1n, 2n ** 40n + 3n],
  ];
  for (let i = 0; i < 6; i++) pairs.push([u64(), BigInt(rng.below(1 << 20))], [BigInt(rng.below(1000)), u64()]);
  const c = await fromC(pairs);
  for (const { seed, page, state, words } of c) {
    const at = `seed ${seed} page ${page}`;
    expect(`${at}: ${hex(pageState(seed, page))}`).toBe(`${at}: ${hex(state)}`);
    const bytes = patternPage(seed, page);
    expect(bytes).toHaveLength(PAGE);
    const fromPage = Array.from({ length: WORDS }, (_, w) => bytes.readBigUInt64LE(w * 8));
    expect(fromPage.map(hex)).toEqual(words.map(hex));
    // Word by word too (each one regenerated from the page's state on its own).
    for (const w of [0, 1, 2, 255, 510, 511]) expect(`${at} word ${w}: ${hex(patternWord(seed, page, w))}`).toBe(`${at} word ${w}: ${hex(words[w])}`);
  }
  // Numbers are taken as well as bigints.
  expect(patternPage(71, 5).equals(patternPage(71n, 5n))).toBe(true);
});

test('the checksum fixture.h folds (pattern write SIZE SEED) is the TS port\'s', async () => {
  const bin = await compileFixture('pattern');
  for (const [size, seed] of [[16, 3], [64, 12345], [4096, 0]]) {
    const r = await execa(bin, ['write', `${size}k`, String(seed)], { reject: false });
    expect({ exit: r.exitCode, stderr: r.stderr }).toEqual({ exit: 0, stderr: '' });
    const [, bytes, sum] = /^pattern ok (\d+) ([0-9a-f]{16}) /.exec(String(r.stdout))!;
    expect(Number(bytes)).toBe(size * 1024);
    expect(sum).toBe(patternChecksum(seed, (size * 1024) / PAGE));
  }
});

test('out-of-range arguments are refused', () => {
  expect(() => pageState(-1, 0)).toThrow('seed -1 is not an unsigned 64-bit number');
  expect(() => patternPage(0, 1n << 64n)).toThrow('page 18446744073709551616 is not an unsigned 64-bit number');
  expect(() => patternWord(0, 0, WORDS)).toThrow('word 512 is not in 0…511');
});
