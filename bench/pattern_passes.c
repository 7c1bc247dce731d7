/*
 * pattern_passes: a C program whose work is writing and reading its memory, timing its
 * own work (bench/guest-programs.mjs, bench/fallbacks.mjs).
 *
 *   pattern_passes SIZE PASSES [hold] [random]
 *
 * Without `hold`: PASSES passes, then `work_ms MS` and exit 0. With `hold`: one pass,
 * `ready`, then one more pass per line read on stdin; `ok PAGES` at EOF.
 *
 * A pass writes every 4 KiB page of SIZE (mmap'd once, anonymous private) with the
 * pattern of seed N (test/fixtures/fixture.h) — in address order, or with `random` in a
 * scattered order (page i*STRIDE mod PAGES, STRIDE odd and coprime to PAGES, so every
 * page once: no two consecutive writes in neighbouring pages) — and reads every page
 * back against it in address order;
 * each pass prints `pass N write_ms W read_ms R` (CLOCK_MONOTONIC). The write half is
 * what dirty tracking costs a program (the first write to each page after a snapshot);
 * the read half is its plain memory speed. Exit 1 on a wrong word, 2 on a usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define FIXTURE "pattern_passes"
#include "../test/fixtures/fixture.h"
#include "bench.h"

static uint64_t *mem, pages, stride = 1;

static uint64_t gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

static double pass(uint64_t n)
{
	double t0 = now_ms();
	for (uint64_t i = 0, p = 0; i < pages; i++, p = (p + stride) % pages)
		fill_pages(mem, p, 1, n);
	double t1 = now_ms();
	verify_pages(mem, 0, pages, n, 0, " pass %" PRIu64, n);
	double t2 = now_ms();
	printf("pass %" PRIu64 " write_ms %.2f read_ms %.2f\n", n, t1 - t0, t2 - t1);
	fflush(stdout);
	return t2 - t0;
}

int main(int argc, char **argv)
{
	int hold = 0;
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "hold"))
			hold = 1;
		else if (!strcmp(argv[i], "random"))
			stride = 40503;
		else
			argc = 0;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: pattern_passes SIZE PASSES [hold] [random]\n");
		return 2;
	}
	pages = (parse_size(argv[1]) + PAGE - 1) / PAGE;
	uint64_t passes = strtoull(argv[2], NULL, 10);
	while (stride > 1 && gcd(stride, pages) != 1)
		stride += 2;
	mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap(%" PRIu64 ")", pages * PAGE);
	if (!hold) {
		double total = 0;
		for (uint64_t n = 1; n <= passes; n++)
			total += pass(n);
		printf("work_ms %.2f\n", total);
		return 0;
	}
	uint64_t n = 1;
	pass(n);
	printf("ready %p %" PRIu64 "\n", (void *)mem, pages);
	fflush(stdout);
	char line[64];
	while (fgets(line, sizeof line, stdin))
		pass(++n);
	printf("ok %" PRIu64 "\n", pages);
	return 0;
}
