/*
 * touch_stall: the longest stall of a program that keeps touching new memory (a heap
 * growing, a database loading) — each first touch of a page on a virtual node is a
 * userfaultfd fault the engine serves, so this program feels every moment the engine
 * does not serve faults (docs/BENCHMARKS.md, "Fault service during a snapshot's commit").
 *
 *   touch_stall SIZE SECONDS
 *
 * mmaps SIZE bytes (k/m/g suffix) of private anonymous memory, MADV_NOHUGEPAGE, and writes
 * one byte per 4 KiB page in order; at the end it discards the region (MADV_DONTNEED) and
 * starts over, for SECONDS. Prints `ready`, then at the end one line:
 *
 *   touches=N max_gap_ms=X gaps_over_5ms=A gaps_over_20ms=B gaps_over_50ms=C
 *
 * A gap is the time between two consecutive touches (the discard between two rounds is not one). Build: cc -O2 -o touch_stall bench/touch_stall.c
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: touch_stall SIZE SECONDS\n");
		return 2;
	}
	char *end;
	uint64_t size = strtoull(argv[1], &end, 0);
	if (*end == 'k') size <<= 10; else if (*end == 'm') size <<= 20; else if (*end == 'g') size <<= 30;
	double seconds = atof(argv[2]);
	char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) { perror("mmap"); return 1; }
	madvise(p, size, MADV_NOHUGEPAGE);
	printf("ready\n");
	fflush(stdout);
	double t0 = now_ms(), last = t0, max_gap = 0;
	uint64_t touches = 0, over5 = 0, over20 = 0, over50 = 0;
	for (;;) {
		for (uint64_t off = 0; off < size; off += 4096) {
			p[off] = (char)touches;
			double t = now_ms(), gap = t - last;
			last = t;
			touches++;
			if (gap > max_gap) max_gap = gap;
			if (gap > 5) over5++;
			if (gap > 20) over20++;
			if (gap > 50) over50++;
		}
		if (last - t0 > seconds * 1e3) break;
		madvise(p, size, MADV_DONTNEED);
		last = now_ms(); /* the discard is the program's own work, not a stall */
	}
	printf("touches=%llu max_gap_ms=%.2f gaps_over_5ms=%llu gaps_over_20ms=%llu gaps_over_50ms=%llu\n",
	       (unsigned long long)touches, max_gap, (unsigned long long)over5, (unsigned long long)over20, (unsigned long long)over50);
	return 0;
}
