// Reading and writing a stopped tracee's memory through /proc/PID/mem (works for any
// mapping the tracee has, whatever its protection, because we are its tracer).
import fs from 'node:fs';
import { getRegs, readReg } from '../sys/ptrace.js';

/** The x86_64 ABI's red zone below rsp, which leaf code may use: never written. */
const RED_ZONE = 128n;

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

/**
 * Where `bytes` of scratch for calls injected into stopped thread `tid` go: below its stack
 * pointer, past the red zone, 16-byte aligned (the thread runs none of its code meanwhile).
 */
export function belowStack(tid: number, bytes: number): bigint {
  return (readReg(getRegs(tid), 'rsp') - RED_ZONE - BigInt(bytes)) & ~15n;
}
