import zlib from 'node:zlib';
import {
  FormatError, HEADER_SIZE, MIN_DATA_OFFSET, SLOT_SIZE, dataOffsetFor, decodeOwner, decodeSuperblock, encodeOwner,
  encodeSuperblock, newSuperblock, pickSuperblock, slotOf, type FormatErrorReason, type Superblock,
} from '../../backing/format.js';

const MiB = 1n << 20n;

function sample(over: Partial<Superblock> = {}): Superblock {
  return { ...newSuperblock(64n * MiB, 4096n), generation: 7n, catalog: 0x1234_5678_9abcn, ...over };
}

/** Re-seals a slot after a test edited it, so only the edited field is wrong. */
function reseal(buf: Buffer): Buffer {
  buf.writeUInt32LE(zlib.crc32(buf.subarray(0, SLOT_SIZE - 4)), SLOT_SIZE - 4);
  return buf;
}

function decodeError(buf: Uint8Array): FormatError {
  try {
    decodeSuperblock(buf);
  } catch (err) {
    if (err instanceof FormatError) return err;
    throw err;
  }
  throw new Error('decodeSuperblock accepted the slot');
}

describe('layout', () => {
  test.each([
    [4096n, MIN_DATA_OFFSET],
    [2n * MiB, 2n * MiB],
    [1n << 30n, 1n << 30n],
    [3n * MiB, 3n * MiB],
    [768n * 1024n, 1536n * 1024n], // 1 MiB rounded up to a multiple of 768 KiB
  ])('align %p puts frame 0 at %p', (align, offset) => {
    expect(dataOffsetFor(align)).toBe(offset);
  });

  test('a new superblock counts the frames after the header', () => {
    const sb = newSuperblock(64n * MiB, 2n * MiB);
    expect(sb).toEqual({
      version: 1, pageSize: 4096, size: 64n * MiB, dataOffset: 2n * MiB,
      frameCount: (62n * MiB) / 4096n, generation: 0n, catalog: 0n,
    });
  });

  test('a size without room for one frame is too small', () => {
    expect(() => newSuperblock(MiB, 4096n)).toThrow(
      expect.objectContaining({ reason: 'too-small', message: expect.stringMatching(/needs at least 1052672/) }));
    expect(newSuperblock(MiB + 4096n, 4096n).frameCount).toBe(1n);
  });

  test('generations alternate between slot A and slot B', () => {
    expect([0n, 1n, 2n, 3n, 10n, 11n].map(slotOf)).toEqual([0, 1, 0, 1, 0, 1]);
  });

  test('the header fits before the smallest data offset', () => {
    expect(HEADER_SIZE).toBeLessThan(MIN_DATA_OFFSET);
  });
});

describe('superblock encoding', () => {
  test('round trip', () => {
    const sb = sample();
    const buf = encodeSuperblock(sb);
    expect(buf.length).toBe(SLOT_SIZE);
    expect(buf.subarray(0, 8).toString('latin1')).toBe('NUMACTLX');
    expect(decodeSuperblock(buf)).toEqual(sb);
  });

  test('round trip at the largest values', () => {
    const sb = sample({ generation: 0xffff_ffff_ffff_fffen, catalog: 0xffff_ffff_ffff_ffffn });
    expect(decodeSuperblock(encodeSuperblock(sb))).toEqual(sb);
  });

  test('a slot inside a bigger buffer decodes in place', () => {
    const whole = Buffer.alloc(3 * SLOT_SIZE);
    encodeSuperblock(sample()).copy(whole, SLOT_SIZE);
    expect(decodeSuperblock(whole.subarray(SLOT_SIZE, 2 * SLOT_SIZE))).toEqual(sample());
  });

  const bad: Array<[string, () => Buffer, FormatErrorReason, RegExp]> = [
    ['all zeros', () => Buffer.alloc(SLOT_SIZE), 'bad-magic', /^bad magic$/],
    ['a foreign file', () => Buffer.concat([Buffer.from('#!/bin/sh\necho hello\n'), Buffer.alloc(SLOT_SIZE)]),
      'bad-magic', /^bad magic$/],
    ['a short buffer', () => encodeSuperblock(sample()).subarray(0, 100), 'bad-magic', /^bad magic$/],
    ['version 2', () => reseal(encodeSuperblock(sample()).fill(2, 8, 9)), 'bad-version',
      /^unsupported version 2 \(written by a newer numactlx\)$/],
    ['version 2 with a stale checksum', () => encodeSuperblock(sample()).fill(2, 8, 9), 'bad-version',
      /^unsupported version 2 \(written by a newer numactlx\)$/],
    ['our magic followed by text (no numactlx version)', () => Buffer.concat([Buffer.from('NUMACTLXhello world'), Buffer.alloc(SLOT_SIZE)]),
      'checksum', /^damaged superblock \(version field 1819043176 is not a numactlx version\)$/],
    ['one flipped bit', () => {
      const b = encodeSuperblock(sample());
      b[20] ^= 0x10;
      return b;
    }, 'checksum', /^corrupt superblock \(checksum mismatch\)$/],
    ['a damaged checksum', () => {
      const b = encodeSuperblock(sample());
      b[SLOT_SIZE - 1] ^= 0xff;
      return b;
    }, 'checksum', /checksum mismatch/],
    ['a non-zero reserved byte', () => encodeSuperblock(sample()).fill(1, 100, 101), 'checksum', /checksum mismatch/],
    ['page size 8192', () => encodeSuperblock(sample({ pageSize: 8192 })), 'bad-page-size',
      /^unsupported page size 8192 \(numactlx uses 4096\)$/],
    ['a size without one frame', () => encodeSuperblock(sample({ size: MiB, frameCount: 0n })), 'too-small',
      /^too small: 1048576 bytes, a backing needs at least 1052672$/],
    ['a frame count that does not match the size', () => encodeSuperblock(sample({ frameCount: 5n })),
      'inconsistent', /5 frames do not match a size of 67108864 bytes/],
    ['a data offset inside the header', () => encodeSuperblock(sample({ dataOffset: 4096n })), 'inconsistent',
      /data offset 4096/],
  ];
  test.each(bad)('%s is refused', (_what, make, reason, message) => {
    const err = decodeError(make());
    expect(err.reason).toBe(reason);
    expect(err.message).toMatch(message);
    if (reason === 'bad-version') expect(err.version).toBe(2);
  });
});

describe('choosing between the two copies', () => {
  const gen = (g: bigint, over: Partial<Superblock> = {}): Buffer => encodeSuperblock(sample({ generation: g, ...over }));
  const corrupt = (b: Buffer): Buffer => {
    b[30] ^= 1;
    return b;
  };

  test('the valid copy with the higher generation wins, in either slot', () => {
    expect(pickSuperblock(gen(4n), gen(5n))).toMatchObject({ slot: 1, superblock: { generation: 5n } });
    expect(pickSuperblock(gen(6n), gen(5n))).toMatchObject({ slot: 0, superblock: { generation: 6n } });
  });

  test('a corrupt newest copy falls back to the other one', () => {
    const picked = pickSuperblock(gen(4n, { catalog: 44n }), corrupt(gen(5n, { catalog: 55n })));
    expect(picked.slot).toBe(0);
    expect(picked.superblock).toMatchObject({ generation: 4n, catalog: 44n });
    expect(picked.otherError?.reason).toBe('checksum');
  });

  test('a blank slot next to a valid one is fine', () => {
    expect(pickSuperblock(Buffer.alloc(SLOT_SIZE), gen(1n)).superblock.generation).toBe(1n);
  });

  test.each<[string, FormatErrorReason, () => [Buffer, Buffer]]>([
    ['both blank', 'bad-magic', () => [Buffer.alloc(SLOT_SIZE), Buffer.alloc(SLOT_SIZE)]],
    ['both corrupt', 'checksum', () => [corrupt(gen(2n)), corrupt(gen(3n))]],
    ['A foreign, B corrupt', 'checksum', () => [Buffer.alloc(SLOT_SIZE, 0x41), corrupt(gen(3n))]],
    ['A corrupt, B blank', 'checksum', () => [corrupt(gen(2n)), Buffer.alloc(SLOT_SIZE)]],
    // A newer numactlx wrote the other slot: falling back would roll its work back.
    ['A valid, B from a newer version', 'bad-version', () => [gen(2n), gen(3n, { version: 2 })]],
  ])('%s: refused with %s', (_what, reason, make) => {
    const [a, b] = make();
    expect(() => pickSuperblock(a, b)).toThrow(expect.objectContaining({ reason }));
  });
});

describe('owner record', () => {
  test('round trip', () => {
    expect(decodeOwner(encodeOwner(4242))).toBe(4242);
  });

  test.each<[string, Buffer]>([
    ['a cleared record', Buffer.alloc(4096)],
    ['pid 0', encodeOwner(0)],
    ['a damaged record', (() => {
      const b = encodeOwner(77);
      b[9] ^= 1;
      return b;
    })()],
  ])('%s names nobody', (_what, buf) => {
    expect(decodeOwner(buf)).toBeUndefined();
  });
});
