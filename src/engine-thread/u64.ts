// u64 fields of uapi structs and uffd_msg, read and written as two u32 halves: exact
// for values below 2^53 (user-space addresses are below 2^47), and no BigInt on the
// fault path.

export function setU64(v: DataView, off: number, x: number): void {
  v.setUint32(off, x % 0x1_0000_0000, true);
  v.setUint32(off + 4, Math.floor(x / 0x1_0000_0000), true);
}

export function getU64(v: DataView, off: number): number {
  return v.getUint32(off + 4, true) * 0x1_0000_0000 + v.getUint32(off, true);
}

export function getS64(v: DataView, off: number): number {
  return v.getInt32(off + 4, true) * 0x1_0000_0000 + v.getUint32(off, true);
}
