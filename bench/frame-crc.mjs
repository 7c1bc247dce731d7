#!/usr/bin/env node
// Benchmark — how the checksum worker reads the frames it checksums (reliability issue:
// a backing truncated while a snapshot is copied killed numactlx with SIGBUS, because
// the CRC read the frames through the mapping). Side by side on one backing-like file
// of SIZE (default 256m) in the page cache (--dir: ext4 /tmp by default; /dev/shm for
// tmpfs), frames in the copier's order (ascending), each pass right after every frame was
// written through the mapping (as the copier does), CRC32 (zlib) of each 4 KiB frame:
//
//   mmap        zlib.crc32 over a view of the MAP_SHARED mapping (the read before the
//               fix: a frame past a truncation is a SIGBUS)
//   pread       one pread(2) per frame into a 4 KiB buffer, then the CRC (a short read
//               is the truncation)
//   pread-runs  one pread per run of consecutive frames (up to 64), then the CRCs
//   vm-self     process_vm_readv(2) on this process, up to 64 frames (one iovec each)
//               per call into a 256 KiB buffer, then the CRCs: a kernel copy, so a frame
//               past a truncation is a short count (EFAULT), never a signal; works on
//               every medium, /dev/dax too (which has no read(2))
//
//   node bench/frame-crc.mjs [--size 256m] [--reps 5] [--dir /tmp]
// Build first (npx tsc -p tsconfig.json): it uses dist/src/sys. Cells: ns per frame,
// median (min–max) over the repetitions, which alternate the variants; ratio to mmap per
// repetition.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { cell, pairedRatios, summary, table } from './lib/stats.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const mman = await import(path.join(ROOT, 'dist/src/sys/mman.js'));
const fcntl = await import(path.join(ROOT, 'dist/src/sys/fcntl.js'));

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : dflt; };
const sizeText = opt('size', '256m');
const reps = Number(opt('reps', '5'));
const dir = opt('dir', os.tmpdir());
const units = { k: 1 << 10, m: 1 << 20, g: 1 << 30 };
const size = Number.parseInt(sizeText, 10) * (units[sizeText.slice(-1)] ?? 1);
const FRAME = 4096;
const frames = size / FRAME;
const BATCH = 64;

const file = path.join(dir, `frame-crc-${process.pid}.img`);
const fd = fcntl.open(file, fcntl.O_RDWR | fcntl.O_CREAT | fcntl.O_EXCL | fcntl.O_CLOEXEC, 0o600);
fs.unlinkSync(file);
const chunk = Buffer.alloc(1 << 20);
for (let off = 0; off < size; off += chunk.length) {
  for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE((off + i) * 2654435761 >>> 0, i);
  fcntl.pwrite(fd, chunk, BigInt(off));
}
const base = mman.mmap(0n, BigInt(size), mman.PROT_READ | mman.PROT_WRITE, mman.MAP_SHARED, fd, 0n);
const baseN = Number(base);
const view = Buffer.from(mman.addressView(base, size));
const crcs = new Uint32Array(frames);

const variants = {
  mmap() {
    for (let f = 0; f < frames; f++) crcs[f] = zlib.crc32(view.subarray(f * FRAME, (f + 1) * FRAME));
  },
  pread() {
    const buf = Buffer.alloc(FRAME);
    for (let f = 0; f < frames; f++) {
      if (fcntl.pread(fd, buf, BigInt(f * FRAME)) !== FRAME) throw new Error('short read');
      crcs[f] = zlib.crc32(buf);
    }
  },
  'pread-runs'() {
    const buf = Buffer.alloc(BATCH * FRAME);
    for (let f = 0; f < frames; f += BATCH) {
      const n = Math.min(BATCH, frames - f);
      const part = buf.subarray(0, n * FRAME);
      if (fcntl.pread(fd, part, BigInt(f * FRAME)) !== part.length) throw new Error('short read');
      for (let i = 0; i < n; i++) crcs[f + i] = zlib.crc32(buf.subarray(i * FRAME, (i + 1) * FRAME));
    }
  },
  'vm-self'() {
    const buf = Buffer.alloc(BATCH * FRAME);
    const bufAddr = Number(mman.bufferAddress(buf));
    const local = Buffer.alloc(mman.IOVEC_SIZE);
    local.writeBigUInt64LE(BigInt(bufAddr), 0);
    const remote = Buffer.alloc(BATCH * mman.IOVEC_SIZE);
    for (let f = 0; f < frames; f += BATCH) {
      const n = Math.min(BATCH, frames - f);
      for (let i = 0; i < n; i++) {
        // One iovec per frame, as the worker's frames are not always consecutive.
        const addr = baseN + (f + i) * FRAME;
        remote.writeUInt32LE(addr % 0x1_0000_0000, i * mman.IOVEC_SIZE);
        remote.writeUInt32LE(Math.floor(addr / 0x1_0000_0000), i * mman.IOVEC_SIZE + 4);
        remote.writeUInt32LE(FRAME, i * mman.IOVEC_SIZE + 8);
        remote.writeUInt32LE(0, i * mman.IOVEC_SIZE + 12);
      }
      local.writeUInt32LE(n * FRAME, 8);
      local.writeUInt32LE(0, 12);
      const got = mman.processVmReadvFast(process.pid, local, 1, remote, n);
      if (got !== n * FRAME) throw new Error(`short copy ${got}`);
      for (let i = 0; i < n; i++) crcs[f + i] = zlib.crc32(buf.subarray(i * FRAME, (i + 1) * FRAME));
    }
  },
};

// Every variant must compute the same CRCs.
variants.mmap();
const want = Uint32Array.from(crcs);
for (const [name, run] of Object.entries(variants)) {
  crcs.fill(0);
  run();
  if (!crcs.every((c, i) => c === want[i])) throw new Error(`${name}: CRCs differ`);
}

// As in a snapshot: the copier has just written the frames through this process's
// mapping (process_vm_readv into it), so they are dirty in the page cache and mapped.
const rewrite = (r) => { for (let off = 0; off < size; off += FRAME) view.writeUInt32LE(r, off); };
const ns = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
for (let r = 0; r < reps; r++) {
  for (const [name, run] of Object.entries(variants)) {
    rewrite(r);
    const t0 = process.hrtime.bigint();
    run();
    ns[name].push(Number(process.hrtime.bigint() - t0) / frames);
  }
}
mman.munmap(base, BigInt(size));
fcntl.close(fd);

const rows = Object.keys(variants).map((name) => [name, cell(summary(ns[name])),
  name === 'mmap' ? '1' : cell(summary(pairedRatios(ns[name], ns.mmap)), 2)]);
process.stdout.write([
  `CRC32 of ${frames} frames (${sizeText}) of a page-cached file, ${reps} repetitions alternating; ${os.cpus().length} CPUs.`,
  '',
  table(['read', 'ns per frame', 'ratio to mmap'], rows),
  '',
].join('\n'));
