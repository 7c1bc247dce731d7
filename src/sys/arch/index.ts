// The architecture in use, chosen once from process.arch. numactlx injects syscalls
// and reads registers, so an unsupported architecture is a hard error (as numactl's
// syscall.c stops the build with "Add syscalls for your architecture").
import * as x86_64 from './x86_64.js';

function selectArch(): typeof x86_64 {
  if (process.arch === 'x64') return x86_64;
  throw new Error(`numactlx supports x86_64 only; this is ${process.arch}`);
}

export const arch = selectArch();
export const SYS = arch.SYS;
