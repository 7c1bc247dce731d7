// A program that makes a userfaultfd of its own (QEMU's postcopy migration, CRIU's lazy
// pages): the memory numactlx places on a virtual node is registered on numactlx's, and a
// range can be on one userfaultfd only, so the program's UFFDIO_REGISTER of it fails with
// EBUSY. Its userfaultfd(2) runs untouched, its other ranges register, and one line on
// stderr (once per command) says why the node's cannot (own-userfaultfd.ts).
import path from 'node:path';
import { numactlx } from '../helpers/numactlx.js';
import { removeTmpDirs, tmpDir } from '../helpers/tmp.js';

afterAll(removeTmpDirs);

// userfaultfd(UFFD_USER_MODE_ONLY) twice; each registers 1 MiB of private anonymous memory
// (on the node under numactlx) and 1 MiB of shared anonymous memory (never on a node).
const PROGRAM = `
import ctypes, mmap, os, struct
libc = ctypes.CDLL(None, use_errno=True)
def register(fd, flags):
    m = mmap.mmap(-1, 1 << 20, flags=flags | mmap.MAP_ANONYMOUS)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    r = libc.ioctl(fd, 0xc020aa00, ctypes.create_string_buffer(struct.pack("QQQQ", addr, 1 << 20, 1, 0)))
    return "ok" if r == 0 else os.strerror(ctypes.get_errno())
for _ in range(2):
    fd = libc.syscall(323, os.O_CLOEXEC | 1)
    assert fd >= 0, os.strerror(ctypes.get_errno())
    assert libc.ioctl(fd, 0xc018aa3f, ctypes.create_string_buffer(struct.pack("QQQ", 0xAA, 0, 0))) == 0
    print("private", register(fd, mmap.MAP_PRIVATE), "shared", register(fd, mmap.MAP_SHARED))
`;

test('its own userfaultfd works for memory off the node; the node\'s is refused (EBUSY), and one line says why', async () => {
  const backing = path.join(tmpDir(), 'node3.img');
  const r = await numactlx([`--remap=3,${backing},size=64m`, '--membind=3', '--', 'python3', '-c', PROGRAM]);
  expect({ exit: r.exitCode, out: r.stdout }).toEqual({ exit: 0, out: 'private Device or resource busy shared ok\n'.repeat(2).trim() });
  expect(r.stderr).toMatch(/^numactlx: python3 \(pid \d+\) makes a userfaultfd of its own: the memory numactlx places on a virtual node is registered on numactlx's, and a range can be on one userfaultfd only \(UFFDIO_REGISTER of it fails with EBUSY\); run it without --remap \(QEMU's postcopy, CRIU's lazy pages\)$/);
});
