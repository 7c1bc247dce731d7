/*
 * fork_cost: what fork() costs a program on a virtual node, and what its child's memory
 * costs the next snapshot (bench/fallbacks.mjs: UFFD_FEATURE_EVENT_FORK against the
 * tracer setting up each child's userfaultfd itself).
 *
 *   fork_cost SIZE FORKS
 *
 * Fills SIZE of anonymous memory (the pattern of test/fixtures/fixture.h), prints
 * `filled`, waits for a line on stdin; then forks FORKS children one after the other
 * (each _exit(0) at once; the parent reaps it) and prints `fork_us MEDIAN MAX reap_us
 * MEDIAN` (fork() in the parent; fork to reaped); then forks one child that reads its
 * whole inherited copy and waits, prints `held CHILD_PID`, and at the next line on stdin
 * lets it go and prints `done`. Exit 1 on a wrong word, 2 on a usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FIXTURE "fork_cost"
#include "../test/fixtures/fixture.h"
#include "bench.h"

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: fork_cost SIZE FORKS\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	uint64_t pages = parse_size(argv[1]) / PAGE;
	int forks = atoi(argv[2]);
	uint64_t *mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	double *f = calloc(forks, sizeof *f), *r = calloc(forks, sizeof *r);
	if (mem == MAP_FAILED || !f || !r)
		die("mmap");
	fill(mem, pages, 1);
	printf("filled\n");
	char line[16];
	if (!fgets(line, sizeof line, stdin))
		return 2;
	for (int i = 0; i < forks; i++) {
		double t0 = now_us();
		pid_t pid = fork();
		if (pid == 0)
			_exit(0);
		if (pid < 0)
			die("fork");
		f[i] = now_us() - t0;
		waitpid(pid, NULL, 0);
		r[i] = now_us() - t0;
	}
	qsort(f, forks, sizeof *f, cmp_double);
	qsort(r, forks, sizeof *r, cmp_double);
	printf("fork_us %.1f %.1f reap_us %.1f\n", f[forks / 2], f[forks - 1], r[forks / 2]);
	int go[2];
	if (pipe(go))
		die("pipe");
	pid_t child = fork();
	if (child == 0) {
		close(go[1]);
		verify_pages(mem, 0, pages, 1, 0, " in the child");
		char c;
		if (read(go[0], &c, 1) < 0)
			_exit(2);
		_exit(0);
	}
	close(go[0]);
	/* the child has read its copy when the pages are checked; a pause lets it finish */
	usleep(200000);
	printf("held %d\n", child);
	if (!fgets(line, sizeof line, stdin))
		return 2;
	close(go[1]);
	int status;
	waitpid(child, &status, 0);
	verify_pages(mem, 0, pages, 1, 0, " in the parent");
	printf("done %d\n", status);
	return 0;
}
