/*
 * The loops of the trapped calls, shared by trapped_syscalls.c (under numactlx) and
 * trapped_floor.c (under the mechanism's floor in C), so both time the same thing:
 *
 *   run_mmap  mmap 4 KiB anonymous private + one write + munmap, n times
 *   run_brk   sbrk(+4 KiB) + one write to the new page, n times; the break is given back
 *
 * The includer defines PAGE and die(const char *, ...) first.
 */
#ifndef TRAPPED_LOOPS_H
#define TRAPPED_LOOPS_H

#include <sys/mman.h>
#include <unistd.h>

static void run_mmap(long n)
{
	for (long i = 0; i < n; i++) {
		volatile char *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			die("mmap");
		p[0] = 1;
		if (munmap((void *)p, PAGE))
			die("munmap");
	}
}

static void run_brk(long n)
{
	char *start = sbrk(0);
	for (long i = 0; i < n; i++) {
		volatile char *p = sbrk(PAGE);
		if (p == (void *)-1)
			die("sbrk");
		p[0] = 1;
	}
	if (brk(start))
		die("brk");
}

#endif
