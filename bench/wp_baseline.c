/*
 * wp_baseline: the kernel's floor under a numactlx freeze — UFFDIO_WRITEPROTECT of SIZE of
 * dirty 4 KiB pages from inside the process that owns them (no ptrace, no scan, no second
 * thread), next to fork() of the same memory in the same process.
 *
 *   wp_baseline SIZE [COUNT]
 *
 * mmaps SIZE (k/m/g suffix) of private anonymous memory, MADV_NOHUGEPAGE, writes every
 * page, registers it UFFDIO_REGISTER_MODE_WP with a userfaultfd, then COUNT times (default
 * 3): write every page; time UFFDIO_WRITEPROTECT(MODE_WP) of the whole range; time
 * UFFDIO_WRITEPROTECT(0) (un-protect, so the next writes do not fault); write every page;
 * time fork() in the parent (the child _exits at once; waitpid untimed). Prints
 * `wp_us= unwp_us= fork_us=` per round and a last line with the medians:
 *
 *   rounds=N wp_median_us= unwp_median_us= fork_median_us= pages=
 *
 * Build: cc -O2 -o wp_baseline bench/wp_baseline.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL

static uint64_t parse_size(const char *arg)
{
	char *e;
	unsigned long long n = strtoull(arg, &e, 0);
	unsigned shift = 0;

	switch (*e) {
	case 'k': case 'K': shift = 10; e++; break;
	case 'm': case 'M': shift = 20; e++; break;
	case 'g': case 'G': shift = 30; e++; break;
	}
	if (*e || e == arg || n == 0 || n > (~0ULL >> shift)) {
		fprintf(stderr, "wp_baseline: bad SIZE '%s'\n", arg);
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

static void die(const char *what)
{
	fprintf(stderr, "wp_baseline: %s failed: %s\n", what, strerror(errno));
	exit(2);
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double med(uint64_t *v, int n)
{
	qsort(v, n, sizeof *v, cmp);
	return (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0) / 1e3;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: wp_baseline SIZE [COUNT]\n");
		return 2;
	}
	uint64_t size = parse_size(argv[1]) / PAGE * PAGE, pages = size / PAGE;
	int count = argc > 2 ? atoi(argv[2]) : 3;
	if (count <= 0)
		count = 3;
	volatile uint8_t *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap");
	if (madvise((void *)mem, size, MADV_NOHUGEPAGE) < 0)
		die("madvise");
	for (uint64_t p = 0; p < pages; p++)
		mem[p * PAGE] = 1;

	int uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		die("userfaultfd");
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_PAGEFAULT_FLAG_WP };
	if (ioctl(uffd, UFFDIO_API, &api) < 0)
		die("UFFDIO_API");
	struct uffdio_register reg = { .range = { (uintptr_t)mem, size }, .mode = UFFDIO_REGISTER_MODE_WP };
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0)
		die("UFFDIO_REGISTER");

	uint64_t *wp = calloc(count, 8), *unwp = calloc(count, 8), *fk = calloc(count, 8);
	for (int i = 0; i < count; i++) {
		for (uint64_t p = 0; p < pages; p++)
			mem[p * PAGE] += 1;
		struct uffdio_writeprotect w = { .range = { (uintptr_t)mem, size }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
		uint64_t t0 = now_ns();
		if (ioctl(uffd, UFFDIO_WRITEPROTECT, &w) < 0)
			die("UFFDIO_WRITEPROTECT");
		uint64_t t1 = now_ns();
		w.mode = 0;
		if (ioctl(uffd, UFFDIO_WRITEPROTECT, &w) < 0)
			die("UFFDIO_WRITEPROTECT (clear)");
		uint64_t t2 = now_ns();
		for (uint64_t p = 0; p < pages; p++)
			mem[p * PAGE] += 1;
		uint64_t t3 = now_ns();
		pid_t pid = fork();
		if (pid == 0)
			_exit(0);
		uint64_t t4 = now_ns();
		if (pid < 0)
			die("fork");
		waitpid(pid, NULL, 0);
		wp[i] = t1 - t0;
		unwp[i] = t2 - t1;
		fk[i] = t4 - t3;
		printf("wp_us=%.1f unwp_us=%.1f fork_us=%.1f\n", wp[i] / 1e3, unwp[i] / 1e3, fk[i] / 1e3);
	}
	printf("rounds=%d wp_median_us=%.1f unwp_median_us=%.1f fork_median_us=%.1f pages=%" PRIu64 "\n", count,
	       med(wp, count), med(unwp, count), med(fk, count), pages);
	return 0;
}
