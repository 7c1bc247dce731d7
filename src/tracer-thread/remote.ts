// Reading and writing a stopped tracee's memory through /proc/PID/mem (works for any
// mapping the tracee has, whatever its protection, because we are its tracer).
import fs from 'node:fs';

export function readRemote(pid: number, addr: bigint, len: number): Buffer {
  const fd = fs.openSync(`/proc/${pid}/mem`, 'r');
  try {
    const buf = Buffer.alloc(len);
    const n = fs.readSync(fd, buf, 0, len, Number(addr));
    return buf.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
}

export function writeRemote(pid: number, addr: bigint, data: Uint8Array): void {
  const fd = fs.openSync(`/proc/${pid}/mem`, 'r+');
  try {
    const n = fs.writeSync(fd, data, 0, data.byteLength, Number(addr));
    if (n !== data.byteLength) throw new Error(`short write to /proc/${pid}/mem at 0x${addr.toString(16)}`);
  } finally {
    fs.closeSync(fd);
  }
}
