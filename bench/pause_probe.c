/*
 * pause_probe: what a running program sees of a snapshot — the longest stall of its own
 * write loop and the latency of its writes — and, in fork mode, the pause of fork() of the
 * same memory (the baseline a fork-based snapshot, e.g. Redis BGSAVE, pays).
 *
 *   pause_probe SIZE [PATTERN]                 session mode, driven by lines on stdin
 *   pause_probe --fork COUNT SIZE [PATTERN]    fork baseline
 *   pause_probe --forever SIZE [PATTERN]       loops over PATTERN until killed, stdin
 *                                              unread (a target for `criu dump`)
 *
 * SIZE (k/m/g suffix) bytes of private anonymous memory are mmapped, madvised
 * MADV_NOHUGEPAGE (4 KiB pages, as numactlx serves them with UFFDIO_COPY; the fork baseline
 * copies the same number of PTEs) and PATTERN is dirtied, one store per page:
 *
 *   all           every page
 *   runs64k       1% of the pages as 64 KiB runs (16 pages): every 100th 64 KiB block
 *   scattered4k   1% of the pages as single 4 KiB pages: every 100th page (no two adjacent)
 *
 * Session mode prints `ready pages=N size=BYTES`, then loops over PATTERN: one store per
 * page, cycling, with a CLOCK_MONOTONIC timestamp after every store. The time between two
 * consecutive timestamps is one iteration — one store plus the loop's own ~20-40 ns —
 * and is both the "gap" (max_gap_us: the longest stall the program observed) and the
 * "write latency" (a histogram, 64 sub-buckets per power of two, ≤ 1.6% error).
 * Commands (one per line; each is answered with one line once done):
 *
 *   mark                 reset the statistics (gap, histogram, writes)      → marked
 *   report               the statistics since the last mark:
 *                        max_gap_us= p50_write_us= p90_write_us= p99_write_us= p999_write_us=
 *                        writes= slow_writes= p99_slow_us= elapsed_ms= cycles=
 *                        (slow = over 1 µs: a write that faulted or was preempted),
 *                        then a line `gaps END:LEN …`: the 8 longest gaps, each by the
 *                        CLOCK_MONOTONIC ns at which it ended and its length in ns (so a
 *                        driver can tell the freeze from later stalls)
 *   dirty all|runs64k|scattered4k
 *                        one store to every page of that set, now, untimed   → dirtied pages= ms=
 *   loop all|runs64k|scattered4k|none [down]
 *                        what the write loop cycles over (none: idle, blocked on stdin;
 *                        down: descending addresses; every walk starts at its first
 *                        page, the last one going down)                       → looping …
 *   quit                 exit 0 (so does end of file)
 *
 * While looping, stdin is polled at most once per millisecond of the loop's own clock,
 * so a command is taken within ~1 ms (a polling iteration counts like any other).
 *
 * Fork mode dirties PATTERN, then COUNT times: re-dirty PATTERN (not the first time),
 * t0, fork() — the child _exit(0)s at once —, t1 in the parent, waitpid. Prints
 * `fork_us=X` per fork and a last line `forks=COUNT fork_median_us= fork_min_us= fork_max_us= pages=`.
 *
 * Build: cc -O2 -o pause_probe bench/pause_probe.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define RUN_PAGES 16 /* 64 KiB */
#define EVERY 100    /* 1% */

enum set { ALL, RUNS64K, SCATTERED4K, NONE };
static const char *const SET_NAMES[] = { "all", "runs64k", "scattered4k", "none" };

static volatile uint8_t *mem;
static uint64_t npages;

static uint64_t parse_size(const char *arg, const char *what)
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
		fprintf(stderr, "pause_probe: bad %s '%s' (a number with an optional k, m or g suffix)\n", what, arg);
		exit(2);
	}
	return n << shift;
}

static int parse_set(const char *s, int allow_none)
{
	for (int i = 0; i <= NONE; i++)
		if (!strcmp(s, SET_NAMES[i]) && (i != NONE || allow_none))
			return i;
	return -1;
}

static inline uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000ULL + t.tv_nsec;
}

/* Pages in a set, and the k-th of them (ascending). */
static uint64_t set_count(int set)
{
	switch (set) {
	case ALL: return npages;
	case RUNS64K: return ((npages / RUN_PAGES + EVERY - 1) / EVERY) * RUN_PAGES;
	case SCATTERED4K: return (npages + EVERY - 1) / EVERY;
	default: return 0;
	}
}

static inline uint64_t set_page(int set, uint64_t k)
{
	switch (set) {
	case RUNS64K: return (k / RUN_PAGES) * RUN_PAGES * EVERY + k % RUN_PAGES;
	case SCATTERED4K: return k * EVERY;
	default: return k;
	}
}

static void dirty(int set)
{
	uint64_t n = set_count(set);
	for (uint64_t k = 0; k < n; k++) {
		uint64_t p = set_page(set, k);
		if (p < npages)
			mem[p * PAGE] += 1;
	}
}

/* ---- latency histogram (ns): 0..255 exact, then 64 sub-buckets per power of two ---- */
#define HBUCKETS (256 + 56 * 64)
static uint64_t hist[HBUCKETS];
static uint64_t writes, slow_writes, max_gap, cycles, mark_ns;

/* The TOP longest gaps since the mark, by their end (CLOCK_MONOTONIC ns) and length. */
#define TOP 8
static uint64_t top_len[TOP], top_end[TOP], top_floor;

static void note_gap(uint64_t end, uint64_t len)
{
	unsigned min = 0;
	for (unsigned i = 1; i < TOP; i++)
		if (top_len[i] < top_len[min])
			min = i;
	top_len[min] = len;
	top_end[min] = end;
	top_floor = top_len[0];
	for (unsigned i = 1; i < TOP; i++)
		if (top_len[i] < top_floor)
			top_floor = top_len[i];
}

static inline unsigned bucket(uint64_t v)
{
	if (v < 256)
		return v;
	unsigned msb = 63 - __builtin_clzll(v);
	return 256 + (msb - 8) * 64 + ((v >> (msb - 6)) & 63);
}

static double bucket_value(unsigned b) /* the bucket's midpoint */
{
	if (b < 256)
		return b;
	unsigned msb = (b - 256) / 64 + 8, sub = (b - 256) % 64;
	double lo = (double)((64ULL + sub) << (msb - 6));
	return lo + (double)(1ULL << (msb - 6)) / 2;
}

/* The q-quantile of the writes with latency ≥ from_ns (ns). */
static double quantile(double q, uint64_t from_ns)
{
	unsigned first = bucket(from_ns);
	uint64_t total = 0;
	for (unsigned b = first; b < HBUCKETS; b++)
		total += hist[b];
	if (total == 0)
		return 0;
	uint64_t want = (uint64_t)(q * (double)total), seen = 0;
	if (want >= total)
		want = total - 1;
	for (unsigned b = first; b < HBUCKETS; b++) {
		seen += hist[b];
		if (seen > want)
			return bucket_value(b);
	}
	return 0;
}

static void mark(void)
{
	memset(hist, 0, sizeof hist);
	memset(top_len, 0, sizeof top_len);
	memset(top_end, 0, sizeof top_end);
	writes = slow_writes = max_gap = cycles = top_floor = 0;
	mark_ns = now_ns();
}

static void report(void)
{
	printf("max_gap_us=%.1f p50_write_us=%.3f p90_write_us=%.3f p99_write_us=%.3f p999_write_us=%.3f writes=%" PRIu64
	       " slow_writes=%" PRIu64 " p99_slow_us=%.1f elapsed_ms=%.1f cycles=%" PRIu64 "\n",
	       max_gap / 1e3, quantile(0.5, 0) / 1e3, quantile(0.9, 0) / 1e3, quantile(0.99, 0) / 1e3, quantile(0.999, 0) / 1e3, writes,
	       slow_writes, quantile(0.99, 1000) / 1e3, (now_ns() - mark_ns) / 1e6, cycles);
	printf("gaps");
	for (unsigned i = 0; i < TOP; i++)
		if (top_len[i])
			printf(" %" PRIu64 ":%" PRIu64, top_end[i], top_len[i]);
	printf("\n");
}

/* ---- stdin: whole lines, read with read(2) so that poll(2) tells the truth ---- */
static char inbuf[4096];
static size_t inlen;
static int eof;

/* The next complete line (NUL-terminated, in `line`), 1; 0 when none is buffered. */
static int take_line(char *line, size_t cap)
{
	char *nl = memchr(inbuf, '\n', inlen);
	if (!nl)
		return 0;
	size_t n = nl - inbuf;
	if (n >= cap)
		n = cap - 1;
	memcpy(line, inbuf, n);
	line[n] = 0;
	size_t used = nl - inbuf + 1;
	memmove(inbuf, inbuf + used, inlen - used);
	inlen -= used;
	return 1;
}

static void read_some(void)
{
	if (inlen == sizeof inbuf)
		inlen = 0; /* a line too long: drop it */
	ssize_t n = read(0, inbuf + inlen, sizeof inbuf - inlen);
	if (n > 0)
		inlen += n;
	else if (n == 0 || (errno != EINTR && errno != EAGAIN))
		eof = 1;
}

static int loop_set = ALL, loop_down, forever;
static uint64_t loop_k; /* position in loop_set */

/* Runs one command line; returns 0 on quit. */
static int command(char *line)
{
	char *verb = strtok(line, " \t\r"), *arg = strtok(NULL, " \t\r"), *arg2 = strtok(NULL, " \t\r");
	if (!verb)
		return 1;
	if (!strcmp(verb, "mark")) {
		mark();
		printf("marked\n");
	} else if (!strcmp(verb, "report")) {
		report();
	} else if (!strcmp(verb, "dirty") && arg && parse_set(arg, 0) >= 0) {
		int set = parse_set(arg, 0);
		uint64_t t0 = now_ns();
		dirty(set);
		printf("dirtied set=%s pages=%" PRIu64 " ms=%.1f\n", arg, set_count(set), (now_ns() - t0) / 1e6);
	} else if (!strcmp(verb, "loop") && arg && parse_set(arg, 1) >= 0) {
		int set = parse_set(arg, 1);
		loop_set = set;
		loop_down = arg2 && !strcmp(arg2, "down");
		/* A walk starts at its beginning: the first page going up, the last going down. */
		loop_k = loop_down && set != NONE ? set_count(set) - 1 : 0;
		printf("looping set=%s%s\n", SET_NAMES[set], loop_down ? " down" : "");
	} else if (!strcmp(verb, "quit")) {
		return 0;
	} else {
		printf("error unknown command\n");
	}
	fflush(stdout);
	return 1;
}

static int session(int initial)
{
	char line[256];
	uint64_t prev, last_poll;
	uint8_t v = 1;

	dirty(initial);
	loop_set = initial;
	printf("ready pages=%" PRIu64 " size=%" PRIu64 "\n", npages, npages * PAGE);
	fflush(stdout);
	mark();
	prev = last_poll = now_ns();
	for (;;) {
		if (loop_set == NONE) {
			/* Idle: block until a command; the gap counters do not see idle time. */
			while (!take_line(line, sizeof line)) {
				if (eof)
					return 0;
				read_some();
			}
			if (!command(line))
				return 0;
			prev = last_poll = now_ns();
			continue;
		}
		uint64_t n = set_count(loop_set);
		for (int burst = 0; burst < 64; burst++) {
			uint64_t p = set_page(loop_set, loop_k);
			mem[p * PAGE] = v++;
			if (loop_down) {
				if (loop_k-- == 0) {
					loop_k = n - 1;
					cycles++;
				}
			} else if (++loop_k == n) {
				loop_k = 0;
				cycles++;
			}
			uint64_t t = now_ns(), d = t - prev;
			prev = t;
			hist[bucket(d)]++;
			writes++;
			if (d > 1000)
				slow_writes++;
			if (d > max_gap)
				max_gap = d;
			if (d > top_floor)
				note_gap(t, d);
		}
		if (forever || prev - last_poll < 1000000)
			continue;
		last_poll = prev;
		struct pollfd pfd = { .fd = 0, .events = POLLIN };
		if (poll(&pfd, 1, 0) > 0)
			read_some();
		while (take_line(line, sizeof line))
			if (!command(line))
				return 0;
		if (eof)
			return 0;
		/* Command handling (printf, dirty) is not a gap of the loop. */
		prev = now_ns();
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int fork_mode(int count, int set)
{
	uint64_t *us = calloc(count, sizeof *us);
	dirty(set);
	for (int i = 0; i < count; i++) {
		if (i > 0)
			dirty(set);
		uint64_t t0 = now_ns();
		pid_t pid = fork();
		if (pid == 0)
			_exit(0);
		uint64_t t1 = now_ns();
		if (pid < 0) {
			fprintf(stderr, "pause_probe: fork failed: %s\n", strerror(errno));
			return 2;
		}
		us[i] = t1 - t0;
		printf("fork_us=%.1f\n", us[i] / 1e3);
		waitpid(pid, NULL, 0);
	}
	qsort(us, count, sizeof *us, cmp_u64);
	double med = count % 2 ? us[count / 2] : (us[count / 2 - 1] + us[count / 2]) / 2.0;
	printf("forks=%d fork_median_us=%.1f fork_min_us=%.1f fork_max_us=%.1f pages=%" PRIu64 " set=%s\n", count,
	       med / 1e3, us[0] / 1e3, us[count - 1] / 1e3, npages, SET_NAMES[set]);
	return 0;
}

int main(int argc, char **argv)
{
	int arg = 1, forks = 0;

	if (arg < argc && !strcmp(argv[arg], "--forever")) {
		forever = 1;
		arg++;
	} else if (arg < argc && !strcmp(argv[arg], "--fork")) {
		if (arg + 1 >= argc || (forks = atoi(argv[arg + 1])) <= 0) {
			fprintf(stderr, "pause_probe: --fork needs a positive COUNT\n");
			return 2;
		}
		arg += 2;
	}
	if (argc - arg < 1 || argc - arg > 2) {
		fprintf(stderr, "usage: pause_probe [--fork COUNT | --forever] SIZE [all|runs64k|scattered4k]\n");
		return 2;
	}
	uint64_t size = parse_size(argv[arg], "SIZE");
	int set = arg + 1 < argc ? parse_set(argv[arg + 1], 0) : ALL;
	if (set < 0) {
		fprintf(stderr, "pause_probe: bad PATTERN '%s' (all, runs64k or scattered4k)\n", argv[arg + 1]);
		return 2;
	}
	npages = size / PAGE;
	mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED) {
		fprintf(stderr, "pause_probe: mmap(%" PRIu64 ") failed: %s\n", size, strerror(errno));
		return 2;
	}
	if (madvise((void *)mem, npages * PAGE, MADV_NOHUGEPAGE) < 0) {
		fprintf(stderr, "pause_probe: madvise(MADV_NOHUGEPAGE) failed: %s\n", strerror(errno));
		return 2;
	}
	return forks ? fork_mode(forks, set) : session(set);
}
