/*
 * trapped_syscalls: the calls numactlx traps (seccomp stop → tracer → engine), one at a
 * time, each timed over many iterations.
 *
 *   trapped_syscalls mmap N     mmap 4 KiB anonymous private + one write + munmap
 *   trapped_syscalls brk N      sbrk(+4 KiB) + one write to the new page (the break is
 *                               given back once, untimed, at the end)
 *   trapped_syscalls fork N     fork; the child _exits at once; the parent waits for it
 *                               (the parent has 1 MiB of touched heap, as programs do)
 *   trapped_syscalls brktrim N  sbrk(+64 KiB) + one write + sbrk(-64 KiB): malloc's trim,
 *                               which git and CPython do hundreds of times a run; the
 *                               shrink alone is timed
 *
 * Prints one line of key=value pairs:
 *
 *   op=OP iters=N us_per_op=X total_ms=Y
 *
 * Build: cc -O2 -o trapped_syscalls bench/trapped_syscalls.c
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000ULL + t.tv_nsec;
}

static void die(const char *what)
{
	perror(what);
	exit(2);
}

#include "trapped_loops.h"

/* The time of the shrinks alone, in ns (the growth and its fault are brk's own op). */
static uint64_t shrink_ns;

static void run_brktrim(long n)
{
	for (long i = 0; i < n; i++) {
		volatile char *p = sbrk(16 * PAGE);
		if (p == (void *)-1)
			die("sbrk");
		p[0] = 1;
		uint64_t t = now_ns();
		if (sbrk(-(intptr_t)(16 * PAGE)) == (void *)-1)
			die("sbrk");
		shrink_ns += now_ns() - t;
	}
}

static void run_fork(long n)
{
	for (long i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0)
			_exit(0);
		int st;
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			die("waitpid");
	}
}

int main(int argc, char **argv)
{
	char *e = "";
	long n = argc == 3 ? strtol(argv[2], &e, 0) : 0;
	if (argc != 3 || *e || n < 1) {
		fprintf(stderr, "usage: trapped_syscalls mmap|brk|fork|brktrim N\n");
		return 2;
	}
	const char *op = argv[1];
	void (*run)(long) = strcmp(op, "mmap") == 0 ? run_mmap : strcmp(op, "brk") == 0 ? run_brk
		: strcmp(op, "fork") == 0 ? run_fork : strcmp(op, "brktrim") == 0 ? run_brktrim : NULL;
	if (!run) {
		fprintf(stderr, "trapped_syscalls: unknown op '%s' (mmap, brk, fork, brktrim)\n", op);
		return 2;
	}
	/* A heap of some size, touched: what a fork copies (page tables, uffd ranges). */
	char *heap = malloc(1 << 20);
	if (!heap)
		die("malloc");
	memset(heap, 1, 1 << 20);
	run(n < 10 ? n : 10); /* warm-up, untimed */
	shrink_ns = 0;
	uint64_t t0 = now_ns();
	run(n);
	uint64_t t1 = now_ns();
	if (run == run_brktrim)
		t1 = t0 + shrink_ns;
	printf("op=%s iters=%ld us_per_op=%.3f total_ms=%.3f\n", op, n, (t1 - t0) / 1e3 / n, (t1 - t0) / 1e6);
	free(heap);
	return 0;
}
