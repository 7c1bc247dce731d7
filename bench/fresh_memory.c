/*
 * fresh_memory: what the first write to RAM costs on this machine, region by region — the
 * floor under any copy into newly allocated memory (a snapshot's new frames, a fork's COW
 * copies, a program's first touch). On this VM guest memory is backed lazily and freed
 * memory is given back to the host, so the first write to a page not used for a while is
 * several times dearer than a write to a page used recently.
 *
 *   fresh_memory REGIONS    REGIONS × 1 GiB of a tmpfs file (/dev/shm), each fallocated in
 *                           2 MiB chunks and written with MADV_POPULATE_WRITE in 64 KiB
 *                           steps — numactlx's own pattern (backing/frames.ts,
 *                           src/engine-thread/remote-copy.ts); prints ms per region.
 *
 * Build: cc -O2 -o fresh_memory bench/fresh_memory.c
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
	const size_t gib = 1UL << 30, step = 64 << 10, chunk = 2 << 20;
	int regions = argc > 1 ? atoi(argv[1]) : 6;
	char path[64];
	snprintf(path, sizeof path, "/dev/shm/fresh_memory.%d", getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || ftruncate(fd, regions * gib) != 0) { perror(path); return 1; }
	unlink(path);
	char *m = mmap(NULL, regions * gib, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) { perror("mmap"); return 1; }
	for (int r = 0; r < regions; r++) {
		double t0 = now(), falloc = 0;
		for (size_t off = r * gib; off < (r + 1) * gib; off += step) {
			if (off % chunk == 0) {
				double a = now();
				if (fallocate(fd, 0, off, chunk) != 0) { perror("fallocate"); return 1; }
				falloc += now() - a;
			}
			if (madvise(m + off, step, MADV_POPULATE_WRITE) != 0) { perror("madvise"); return 1; }
		}
		printf("region=%d ms=%.0f fallocate_ms=%.0f populate_ms=%.0f\n", r, (now() - t0) * 1e3, falloc * 1e3,
		       (now() - t0 - falloc) * 1e3);
		fflush(stdout);
	}
	return 0;
}
