/*
 * mmap_munmap: the cost of a small anonymous mapping's whole life, the case where
 * trapping mmap/munmap (seccomp + tracer) and serving the first fault costs most
 * relative to the work.
 *
 *   mmap_munmap [N]       N iterations (default 100000)
 *
 * Each iteration mmaps 4 KiB of private anonymous memory, writes one byte into it
 * and munmaps it. Prints one line of key=value pairs:
 *
 *   iters=N us_per_pair=X total_ms=Y
 *
 * us_per_pair is the time of one mmap + touch + munmap.
 * Build: cc -O2 -o mmap_munmap bench/mmap_munmap.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define PAGE 4096UL

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000ULL + t.tv_nsec;
}

int main(int argc, char **argv)
{
	char *e = "";
	long n = argc > 1 ? strtol(argv[1], &e, 0) : 100000;

	if (argc > 2 || *e || n < 1) {
		fprintf(stderr, "usage: mmap_munmap [N (default 100000)]\n");
		return 2;
	}
	uint64_t t0 = now_ns();
	for (long i = 0; i < n; i++) {
		volatile char *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			fprintf(stderr, "mmap_munmap: mmap failed at iteration %ld: %s\n", i, strerror(errno));
			return 2;
		}
		p[0] = 1;
		if (munmap((void *)p, PAGE) < 0) {
			fprintf(stderr, "mmap_munmap: munmap failed at iteration %ld: %s\n", i, strerror(errno));
			return 2;
		}
	}
	uint64_t ns = now_ns() - t0;
	printf("iters=%ld us_per_pair=%.3f total_ms=%.3f\n", n, ns / 1e3 / n, ns / 1e6);
	return 0;
}
