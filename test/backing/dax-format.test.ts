// The decisions behind a /dev/dax backing (backing/superblock.ts adopt), as pure logic
// over a regular file standing in for the device's first bytes: a device is written
// only after `numactlx format` (open's format request), a numactlx backing on it is
// formatted again only with --force, and a device with other data is named as such.
// The real device (mapping at its alignment, libpmem flushes, persistence across a
// power-off) is exercised in the Linux 6.1 guest.
import fs from 'node:fs';
import path from 'node:path';
import { adopt } from '../../backing/superblock.js';
import { Header } from '../../backing/medium.js';
import { HEADER_SIZE } from '../../backing/format.js';
import type { BackingTarget } from '../../backing/inspect.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

const MiB = 1n << 20n;
afterAll(() => removeTmpDirs());

/** A 64 MiB "device" (sparse file) holding `head` at offset 0, with its Header. */
function device(head: Buffer = Buffer.alloc(0)): { target: BackingTarget; header: Header; fd: number } {
  const file = path.join(tmpDir(), 'dax0.0');
  fs.writeFileSync(file, head, { mode: 0o600 });
  fs.truncateSync(file, Number(64n * MiB));
  const fd = fs.openSync(file, 'r+');
  const target: BackingTarget = { path: '/dev/dax0.0', kind: 'dax', exists: true, size: 64n * MiB, align: 2n * MiB, free: 64n * MiB };
  return { target, header: new Header(fd, 'file', HEADER_SIZE), fd };
}

const refusal = (what: string): string =>
  `/dev/dax0.0 ${what}; numactlx writes a /dev/dax device only once told to: numactlx format /dev/dax0.0`;

test('a zeroed device is not written without a format request', () => {
  const { target, header } = device();
  expect(() => adopt(target, header, 64n * MiB)).toThrow(refusal('has no numactlx superblock (its first 8 KiB are zero)'));
  expect(header.read(0n, 8192).every((b) => b === 0)).toBe(true);
});

test('a device with other data is named as such and not written', () => {
  const { target, header } = device(Buffer.from('XFSB something else'));
  expect(() => adopt(target, header, 64n * MiB)).toThrow(refusal('is not a numactlx backing (bad magic)'));
  expect(header.read(0n, 4).toString()).toBe('XFSB');
});

test('format writes both superblock copies at the device alignment; a later open adopts them', () => {
  const { target, header } = device(Buffer.from('old data'));
  const formatted = adopt(target, header, 64n * MiB, { force: false });
  expect(formatted).toMatchObject({ formatted: true, sb: { size: 64n * MiB, dataOffset: 2n * MiB, generation: 1n, catalog: 0n } });
  expect(adopt(target, header, 64n * MiB)).toMatchObject({ formatted: false, sb: formatted.sb });
});

test('a numactlx backing is formatted again only with --force', () => {
  const { target, header } = device();
  adopt(target, header, 64n * MiB, { force: false });
  expect(() => adopt(target, header, 64n * MiB, { force: false })).toThrow(
    '/dev/dax0.0 is a numactlx backing already (superblock generation 1); numactlx format --force erases it');
  expect(adopt(target, header, 64n * MiB, { force: true })).toMatchObject({ formatted: true, sb: { generation: 1n } });
});

test('a damaged superblock is named, not overwritten', () => {
  const { target, header } = device();
  adopt(target, header, 64n * MiB, { force: false });
  for (const slot of [0n, 4096n]) header.write(slot + 100n, Buffer.from([0xff])); // inside both copies: checksums fail
  expect(() => adopt(target, header, 64n * MiB)).toThrow(/^\/dev\/dax0\.0 has a damaged superblock \(.*checksum.*\); numactlx writes a \/dev\/dax device only once told to/);
});
