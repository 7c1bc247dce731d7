/*
 * evict_bench: a working set larger than the memory it may keep, accessed in order,
 * uniformly at random or Zipf-skewed — the program both sides of the eviction benchmark
 * run (bench/evict.mjs: numactlx --max-resident vs the kernel swapping in a memory cgroup).
 *
 *   evict_bench seq|uniform|zipf SIZE ACCESSES SEED
 *
 * mmaps SIZE bytes (k/m/g) of private anonymous memory and writes every page once (the
 * fill, timed apart), then makes ACCESSES page accesses: a read of one word and a write of
 * the next (so every access dirties its page), page order by MODE — seq: 0, 1, 2 … round
 * and round; uniform: xorshift64 % pages; zipf: a log-uniform rank (s ≈ 1) scattered over
 * the pages by a multiplier (hot pages are not neighbours). Prints one line:
 *
 *   mode=M pages=N accesses=A fill_s=F access_s=T accesses_per_s=R mb_per_s=B check=C hwm_kb=K
 *
 * check is a sum of the words read (equal across runs of the same arguments: the data
 * came back right); hwm_kb is VmHWM. Build: cc -O2 -o evict_bench bench/evict_bench.c
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define PAGE 4096UL

static uint64_t rng;

static uint64_t next(void)
{
	uint64_t x = rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng = x;
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static uint64_t parse(const char *s)
{
	char *e;
	uint64_t v = strtoull(s, &e, 10);
	switch (*e) {
	case 'k': return v << 10;
	case 'm': return v << 20;
	case 'g': return v << 30;
	default: return v;
	}
}

static long hwm_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmHWM: %ld", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: evict_bench seq|uniform|zipf SIZE ACCESSES SEED\n");
		return 2;
	}
	const char *mode = argv[1];
	uint64_t pages = parse(argv[2]) / PAGE, accesses = parse(argv[3]);
	rng = strtoull(argv[4], NULL, 0) | 1;
	int m = !strcmp(mode, "seq") ? 0 : !strcmp(mode, "uniform") ? 1 : !strcmp(mode, "zipf") ? 2 : -1;
	if (m < 0 || pages == 0) {
		fprintf(stderr, "evict_bench: bad arguments\n");
		return 2;
	}
	unsigned bits = 0;
	while ((2ULL << bits) <= pages)
		bits++;
	uint64_t *mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED) {
		perror("evict_bench: mmap");
		return 2;
	}
	double t0 = now();
	for (uint64_t p = 0; p < pages; p++)
		mem[p * (PAGE / 8)] = p;
	double t1 = now();
	uint64_t check = 0;
	for (uint64_t i = 0; i < accesses; i++) {
		uint64_t p;
		if (m == 0) {
			p = i % pages;
		} else if (m == 1) {
			p = next() % pages;
		} else {
			unsigned k = next() % (bits + 1);
			uint64_t rank = ((1ULL << k) - 1) + next() % (1ULL << k);
			p = (rank % pages) * 2654435761ULL % pages;
		}
		uint64_t *w = mem + p * (PAGE / 8);
		check += w[0];
		w[1]++;
	}
	double t2 = now();
	printf("mode=%s pages=%" PRIu64 " accesses=%" PRIu64 " fill_s=%.3f access_s=%.3f accesses_per_s=%.0f mb_per_s=%.1f check=%" PRIu64
	       " hwm_kb=%ld\n", mode, pages, accesses, t1 - t0, t2 - t1, accesses / (t2 - t1), accesses * PAGE / (t2 - t1) / 1048576.0,
	       check, hwm_kb());
	return 0;
}
