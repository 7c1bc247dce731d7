// Little-endian byte streams for the catalog's encodings (catalog-root-codec.ts,
// catalog-record-codec.ts): a growing writer and a bounds-checked reader whose every
// failure is a CatalogFormatError.

/** Bytes of the catalog that do not decode; the loader adds where they were. */
export class CatalogFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CatalogFormatError';
  }
}

/** Throws CatalogFormatError(message) unless `ok` (pass constant messages only in loops). */
export function check(ok: boolean, message: string): asserts ok {
  if (!ok) throw new CatalogFormatError(message);
}

export class ByteWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(capacity: number) {
    this.buf = Buffer.alloc(capacity);
  }

  get length(): number {
    return this.pos;
  }

  /** Makes room for `n` more bytes. */
  reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = Buffer.alloc(Math.max(this.pos + n, this.buf.length * 2));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  ascii(s: string): void {
    this.reserve(s.length);
    this.pos += this.buf.write(s, this.pos, 'latin1');
  }

  u32(v: number): void {
    this.reserve(4);
    this.pos = this.buf.writeUInt32LE(v, this.pos);
  }

  /** A length or count below 2^53. */
  u64(v: number): void {
    this.reserve(8);
    this.pos = this.buf.writeBigUInt64LE(BigInt(v), this.pos);
  }

  /** LEB128 of a non-negative integer below 2^53. */
  varint(v: number): void {
    this.reserve(8);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** The bytes written (a view: the writer must not be used after). */
  done(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

export class ByteReader {
  pos = 0;

  /** `what` names the structure in messages ("root", "record"). */
  constructor(readonly buf: Buffer, private readonly what: string) {}

  /** Throws unless `n` more bytes are there. */
  need(n: number): void {
    if (!(n >= 0 && this.pos + n <= this.buf.length)) {
      throw new CatalogFormatError(`${this.what}: truncated (${n} bytes needed at ${this.pos} of ${this.buf.length})`);
    }
  }

  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }

  magic(m: string): void {
    this.need(m.length);
    const found = this.buf.toString('latin1', this.pos, this.pos + m.length);
    if (found !== m) throw new CatalogFormatError(`${this.what}: bad magic`);
    this.pos += m.length;
  }

  version(v: number): void {
    const found = this.u32();
    if (found !== v) throw new CatalogFormatError(`${this.what}: unsupported version ${found}`);
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  u64(): number {
    this.need(8);
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CatalogFormatError(`${this.what}: length ${v} out of range`);
    return Number(v);
  }

  varint(): number {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.buf.length) throw new CatalogFormatError(`${this.what}: truncated varint`);
      const b = this.buf[this.pos++];
      v += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (v > Number.MAX_SAFE_INTEGER) throw new CatalogFormatError(`${this.what}: varint out of range`);
        return v;
      }
      scale *= 0x80;
    }
    throw new CatalogFormatError(`${this.what}: varint longer than 8 bytes`);
  }

  /** `n` bytes (a view into the buffer). */
  bytes(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
}
