/*
 * touch: the cost of first-touch faults on anonymous memory.
 *
 *   touch [--huge|--nohuge] SIZE [STRIDE]
 *
 * mmaps SIZE bytes (k/m/g suffix) of private anonymous memory and writes one byte
 * every STRIDE bytes (default 4096, i.e. one write per 4 KiB page), timing the loop
 * only. --nohuge / --huge madvise the region MADV_NOHUGEPAGE / MADV_HUGEPAGE first
 * (the default leaves the system's transparent_hugepage setting in charge: with
 * `madvise`, the Debian default, plain mmaps get 4 KiB pages). Prints one line of
 * key=value pairs:
 *
 *   pages=N ns_per_page=X total_ms=Y size=BYTES stride=S thp=default|huge|nohuge
 *
 * pages counts the writes. Build: cc -O2 -o touch bench/touch.c
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

static uint64_t parse_size(const char *arg, const char *what)
{
	char *end;
	unsigned long long n = strtoull(arg, &end, 0);
	unsigned shift = 0;

	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	}
	if (*end || end == arg || n == 0 || n > (~0ULL >> shift)) {
		fprintf(stderr, "touch: bad %s '%s' (a number with an optional k, m or g suffix)\n", what, arg);
		exit(2);
	}
	return n << shift;
}

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000ULL + t.tv_nsec;
}

int main(int argc, char **argv)
{
	const char *thp = "default";
	int advice = -1, arg = 1;

	if (arg < argc && !strcmp(argv[arg], "--huge")) {
		thp = "huge";
		advice = MADV_HUGEPAGE;
		arg++;
	} else if (arg < argc && !strcmp(argv[arg], "--nohuge")) {
		thp = "nohuge";
		advice = MADV_NOHUGEPAGE;
		arg++;
	}
	if (argc - arg < 1 || argc - arg > 2) {
		fprintf(stderr, "usage: touch [--huge|--nohuge] SIZE [STRIDE (default 4096)]\n");
		return 2;
	}
	uint64_t size = parse_size(argv[arg], "SIZE");
	uint64_t stride = arg + 1 < argc ? parse_size(argv[arg + 1], "STRIDE") : 4096;

	volatile char *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED) {
		fprintf(stderr, "touch: mmap(%" PRIu64 ") failed: %s\n", size, strerror(errno));
		return 2;
	}
	if (advice >= 0 && madvise((void *)mem, size, advice) < 0) {
		fprintf(stderr, "touch: madvise(%s) failed: %s\n", thp, strerror(errno));
		return 2;
	}
	uint64_t pages = 0, t0 = now_ns();
	for (uint64_t off = 0; off < size; off += stride, pages++)
		mem[off] = 1;
	uint64_t ns = now_ns() - t0;

	printf("pages=%" PRIu64 " ns_per_page=%.1f total_ms=%.3f size=%" PRIu64 " stride=%" PRIu64 " thp=%s\n",
	       pages, (double)ns / pages, ns / 1e6, size, stride, thp);
	return 0;
}
