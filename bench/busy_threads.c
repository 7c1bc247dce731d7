/*
 * busy_threads: a program with more busy threads than CPUs, each of which maps memory of
 * its own (a thread stack, a malloc above the mmap threshold: trapped calls, new pages)
 * and then writes it without pause — a JVM or a thread pool under load. Under numactlx
 * every trapped call and fault of a thread waits on numactlx's tracer or engine thread,
 * which the busy threads compete with for the CPUs (src/sys/thread-priority.ts).
 *
 *   busy_threads THREADS SECONDS   starts THREADS threads, each of which mallocs 256 KiB
 *                                  and writes a byte of each of its pages in a loop,
 *                                  yielding (usleep 100 µs) every 1,024 writes; SECONDS
 *                                  after the last one started they stop and are joined.
 *                                  Prints "started N" and "joined".
 *
 * Build: cc -O2 -pthread -o busy_threads bench/busy_threads.c
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define BYTES (256 << 10)

static volatile int stop;

static void *run(void *arg)
{
	(void)arg;
	char *m = malloc(BYTES);
	if (!m)
		return NULL;
	for (unsigned long i = 0; !stop; i++) {
		m[(i * 4096) % BYTES] = (char)i;
		if ((i & 1023) == 0)
			usleep(100);
	}
	free(m);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: busy_threads THREADS SECONDS\n");
		return 2;
	}
	int n = atoi(argv[1]);
	pthread_t *t = calloc(n, sizeof *t);
	for (int i = 0; i < n; i++) {
		if (pthread_create(&t[i], NULL, run, NULL) != 0) {
			perror("pthread_create");
			return 2;
		}
	}
	printf("started %d\n", n);
	fflush(stdout);
	sleep(atoi(argv[2]));
	stop = 1;
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	printf("joined\n");
	return 0;
}
