#!/usr/bin/env python3
# The I/O floor of a snapshot schedule, without numactlx: every 8 s, 2 GiB of memory (a
# buffer this process holds) is written to a file and fsynced, as a snapshot of two 1 GiB
# stress-ng workers would be; GENERATIONS files in turn (--keep), for FLOOR_SECONDS (38).
# Run beside the stressor to see what the machine's copying and writeback alone cost it
# (docs/BENCHMARKS.md, "stress-ng: where its time goes" and "Stop 24"):
#
#   python3 bench/write-floor.py /var/tmp/floor 3 & sleep 6
#   stress-ng --vm 2 --vm-bytes 1G --vm-keep --verify --vm-method flip -t 40s --metrics-brief
import os
import sys
import time

path, generations = sys.argv[1], int(sys.argv[2])
buf = bytearray(os.urandom(1 << 20)) * 2048  # 2 GiB
view = memoryview(buf)
t0 = time.time()
n = 0
while time.time() - t0 < float(os.environ.get("FLOOR_SECONDS", "38")):
    t = time.time()
    fd = os.open(f"{path}.{n % generations}", os.O_WRONLY | os.O_CREAT, 0o600)
    for off in range(0, len(buf), 1 << 22):
        os.pwrite(fd, view[off:off + (1 << 22)], off)
    os.fsync(fd)
    os.close(fd)
    print(f"generation {n}: {time.time() - t:.2f} s", file=sys.stderr, flush=True)
    n += 1
    time.sleep(max(0.0, 8 - (time.time() - t)))
for g in range(generations):
    try:
        os.unlink(f"{path}.{g}")
    except FileNotFoundError:
        pass
