// The program's own userfaultfd (QEMU's postcopy migration, CRIU's lazy pages, a garbage
// collector), trapped by the seccomp filter for userfaultfd(2) and let run.
//
// A range can be registered on one userfaultfd only: the private anonymous memory that
// policy places on a virtual node is registered on numactlx's, and the program's
// UFFDIO_REGISTER of it fails with EBUSY, with nothing to say why. The call itself runs
// untouched (its other ranges register as usual), and the program's user reads one line
// on stderr, once per command. A userfaultfd made by opening /dev/userfaultfd is not seen.
import fs from 'node:fs';
import { commOf } from '../sys/procfs.js';

/** The one line a program's first userfaultfd(2) prints. */
export function ownUserfaultfdMessage(comm: string, pid: number): string {
  return `numactlx: ${comm} (pid ${pid}) makes a userfaultfd of its own: the memory numactlx places on a virtual node ` +
    'is registered on numactlx\'s, and a range can be on one userfaultfd only (UFFDIO_REGISTER of it fails with EBUSY); ' +
    'run it without --remap (QEMU\'s postcopy, CRIU\'s lazy pages)';
}

/** Says ownUserfaultfdMessage the first time a command makes one; `told`: the commands told already. */
export function noteOwnUserfaultfd(pid: number, told: Set<string>): void {
  const comm = commOf(pid, 'a process');
  if (told.has(comm)) return;
  told.add(comm);
  fs.writeSync(2, `${ownUserfaultfdMessage(comm, pid)}\n`);
}
