/*
 * sigbus_cost: what a program on a full --membind node pays for each SIGBUS
 * (bench/fallbacks.mjs: UFFDIO_POISON, Linux 6.6, against numactlx signalling the
 * faulting thread itself on older kernels).
 *
 *   sigbus_cost SIZE REPEATS
 *
 * Maps SIZE (MAP_NORESERVE) and writes the first word of each 4 KiB page in order until
 * a SIGBUS (the node is full), timing that last access from the write to the handler
 * (`first_us`); then touches the same page REPEATS times more, each ending in a SIGBUS
 * (siglongjmp out of the handler), and prints the median and the maximum of those
 * (`repeat_us_median`, `repeat_us_max`). Exit 0 with `sigbus page N first_us F
 * repeat_us_median M repeat_us_max X`; 3 when no SIGBUS came; 2 on a usage error.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include "bench.h"

static sigjmp_buf back;

static void on_sigbus(int sig, siginfo_t *info, void *context)
{
	(void)sig; (void)info; (void)context;
	siglongjmp(back, 1);
}

int main(int argc, char **argv)
{
	static char outbuf[4096];
	setvbuf(stdout, outbuf, _IOLBF, sizeof outbuf);
	if (argc != 3) {
		fprintf(stderr, "usage: sigbus_cost SIZE_MB REPEATS\n");
		return 2;
	}
	size_t pages = strtoull(argv[1], NULL, 10) * 256;
	int repeats = atoi(argv[2]);
	double *t = calloc(repeats + 1, sizeof *t);
	volatile uint64_t *mem = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED || !t) {
		perror("sigbus_cost: mmap");
		return 2;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGBUS, &sa, NULL);
	volatile size_t p = 0;
	volatile double t0 = 0;
	if (sigsetjmp(back, 1) == 0) {
		for (p = 0; p < pages; p++) {
			t0 = now_us();
			mem[p * 512] = p + 1;
		}
		printf("no sigbus after %zu pages\n", (size_t)pages);
		return 3;
	}
	double first = now_us() - t0;
	volatile int i = 0;
	sigsetjmp(back, 1);
	/* each pass of this loop ends in the handler and comes back here */
	if (i > 0)
		t[i - 1] = now_us() - t0;
	if (i < repeats) {
		i++;
		t0 = now_us();
		mem[p * 512] = 1;
		printf("the page became writable after %d SIGBUS\n", i);
		return 3;
	}
	qsort(t, repeats, sizeof *t, cmp_double);
	printf("sigbus page %zu first_us %.1f repeat_us_median %.1f repeat_us_max %.1f\n", (size_t)p, first,
	       t[repeats / 2], t[repeats - 1]);
	return 0;
}
