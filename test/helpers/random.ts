// Seeded randomness for tests. Every random choice a test makes comes from prng(seed),
// and the seed comes from testSeed(), which prints it: a failure is replayed by running
// the test again with NUMACTLX_TEST_SEED=N. Nothing in test/ uses Math.random.
import crypto from 'node:crypto';

/**
 * The seed for `what` (a test file or a test): NUMACTLX_TEST_SEED when set, otherwise a
 * fresh one, so that runs explore; printed either way.
 */
export function testSeed(what: string): number {
  const env = process.env.NUMACTLX_TEST_SEED;
  let seed: number;
  if (env !== undefined && env !== '') {
    if (!/^\d+$/.test(env) || Number(env) > 0xffff_ffff) {
      throw new Error(`NUMACTLX_TEST_SEED='${env}': expected a number from 0 to ${0xffff_ffff}`);
    }
    seed = Number(env);
  } else {
    seed = crypto.randomInt(0, 0xffff_ffff);
  }
  console.log(`${what}: random seed ${seed} (replay with NUMACTLX_TEST_SEED=${seed})`);
  return seed;
}

export interface Rng {
  /** An unsigned 32-bit integer. */
  u32(): number;
  /** A number in [0, 1). */
  float(): number;
  /** An integer in [0, n). */
  below(n: number): number;
  /** An integer in [lo, hi]. */
  between(lo: number, hi: number): number;
  /** `n` random bytes. */
  bytes(n: number): Buffer;
}

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export function prng(seed: number): Rng {
  let a = seed >>> 0;
  const u32 = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const float = (): number => u32() / 0x1_0000_0000;
  return {
    u32,
    float,
    below: (n) => Math.floor(float() * n),
    between: (lo, hi) => lo + Math.floor(float() * (hi - lo + 1)),
    bytes: (n) => {
      const out = Buffer.alloc(n);
      for (let i = 0; i < n; i += 4) {
        const v = u32();
        for (let j = 0; j < 4 && i + j < n; j++) out[i + j] = (v >>> (8 * j)) & 0xff;
      }
      return out;
    },
  };
}
