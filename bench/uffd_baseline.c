/*
 * uffd_baseline: what an in-process C userfaultfd handler gets, the baseline the
 * launcher's handler is compared with.
 *
 *   uffd_baseline [--pin CPU] SIZE [CHUNK]
 *
 * mmaps SIZE bytes (k/m/g suffix) of private anonymous memory and registers it
 * UFFDIO_REGISTER_MODE_MISSING with a userfaultfd opened O_CLOEXEC | O_NONBLOCK |
 * UFFD_USER_MODE_ONLY. A handler thread polls the uffd, reads up to 64 messages per
 * read() and serves each fault with one UFFDIO_COPY of the CHUNK-aligned CHUNK bytes
 * around it (default 4k, i.e. no fault-ahead; 64k and 2m serve ahead; clamped to the
 * region). The main thread writes one byte per 4 KiB page in order; only that loop is
 * timed. Then every page's second word is checked against the source buffer.
 * --pin CPU pins both threads to CPU (the handler inherits the main thread's mask);
 * without it the scheduler places them. Prints one line of key=value pairs:
 *
 *   pages=N chunk=C faults=F ns_per_page=X faults_per_s=Y mb_per_s=Z reads=R
 *   eexist=E pin=CPU|none
 *
 * faults counts UFFD_EVENT_PAGEFAULT messages, reads the read() calls that returned
 * messages, eexist the copies that found pages already there (served by a wake-up).
 * Build: cc -O2 -pthread -o uffd_baseline bench/uffd_baseline.c
 *
 * Follows <linux/userfaultfd.h> of Linux 6.1 (the build host's uapi headers).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define MSGS 64

static int uffd, stop_fd;
static uint64_t base, end, chunk;
static char *src;		/* chunk bytes, the content every served page gets */
static uint64_t faults, reads, eexist;

static void die(const char *call)
{
	fprintf(stderr, "uffd_baseline: %s failed: %s\n", call, strerror(errno));
	exit(2);
}

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
		fprintf(stderr, "uffd_baseline: bad %s '%s' (a number with an optional k, m or g suffix)\n", what, arg);
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

/*
 * A userfaultfd for user-mode faults only (enough here: only the main thread's own
 * stores fault). EINVAL: a kernel before 5.11 without UFFD_USER_MODE_ONLY. EPERM:
 * vm.unprivileged_userfaultfd is 0 and we lack CAP_SYS_PTRACE, so try
 * /dev/userfaultfd (Linux 6.1), whose permissions decide instead.
 */
static int open_uffd(void)
{
	int flags = O_CLOEXEC | O_NONBLOCK;
	int fd = syscall(SYS_userfaultfd, flags | UFFD_USER_MODE_ONLY);

	if (fd < 0 && errno == EINVAL)
		fd = syscall(SYS_userfaultfd, flags);
	if (fd < 0 && errno == EPERM) {
		int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		if (dev < 0)
			die("open(/dev/userfaultfd) after userfaultfd() failed with EPERM");
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, flags);
		close(dev);
	}
	if (fd < 0)
		die("userfaultfd");
	return fd;
}

/* Copies src + from into [dst, dst + len); returns 0, or -1 with errno EEXIST when a
 * page in the range is already mapped (the bytes before it were copied). */
static int copy(uint64_t dst, uint64_t from, uint64_t len)
{
	while (len) {
		struct uffdio_copy c = { .dst = dst, .src = (uint64_t)(src + from), .len = len, .mode = 0 };
		if (ioctl(uffd, UFFDIO_COPY, &c) == 0)
			return 0;
		if (errno == EEXIST)
			return -1;
		/* EAGAIN: the mapping changed under the copy (never here: nothing remaps);
		 * c.copy says how much went in. Anything else is fatal. */
		if (errno != EAGAIN)
			die("ioctl(UFFDIO_COPY)");
		if (c.copy > 0) {
			dst += c.copy;
			from += c.copy;
			len -= c.copy;
		}
	}
	return 0;
}

static void serve(uint64_t addr)
{
	uint64_t page = addr & ~(PAGE - 1);
	uint64_t start = base + (page - base) / chunk * chunk;
	uint64_t len = start + chunk > end ? end - start : chunk;

	if (copy(start, 0, len) == 0)
		return;
	/* EEXIST: part of the chunk is there already (a second message for a chunk an
	 * earlier copy served). Serve the faulting page alone; if it is there too, the
	 * thread only needs waking. */
	eexist++;
	if (copy(page, page - start, PAGE) == 0)
		return;
	struct uffdio_range r = { .start = page, .len = PAGE };
	if (ioctl(uffd, UFFDIO_WAKE, &r) < 0)
		die("ioctl(UFFDIO_WAKE)");
}

static void *handler(void *arg)
{
	struct pollfd fds[2] = { { .fd = uffd, .events = POLLIN }, { .fd = stop_fd, .events = POLLIN } };
	struct uffd_msg msgs[MSGS];

	for (;;) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (fds[1].revents)
			return NULL;
		ssize_t n = read(uffd, msgs, sizeof(msgs));
		if (n < 0) {
			/* EAGAIN: another wake-up took the message (the uffd is non-blocking) */
			if (errno == EAGAIN || errno == EINTR)
				continue;
			die("read(uffd)");
		}
		reads++;
		for (ssize_t i = 0; i < n / (ssize_t)sizeof(msgs[0]); i++) {
			if (msgs[i].event != UFFD_EVENT_PAGEFAULT)
				continue;
			faults++;
			serve(msgs[i].arg.pagefault.address);
		}
	}
}

int main(int argc, char **argv)
{
	int pin = -1, arg = 1;

	if (arg + 1 < argc && !strcmp(argv[arg], "--pin")) {
		char *e;
		pin = (int)strtol(argv[arg + 1], &e, 10);
		if (*e || pin < 0 || pin >= CPU_SETSIZE) {
			fprintf(stderr, "uffd_baseline: bad --pin '%s' (a CPU number)\n", argv[arg + 1]);
			return 2;
		}
		arg += 2;
	}
	if (argc - arg < 1 || argc - arg > 2) {
		fprintf(stderr, "usage: uffd_baseline [--pin CPU] SIZE [CHUNK (4k, 64k, 2m...; default 4k)]\n");
		return 2;
	}
	uint64_t size = (parse_size(argv[arg], "SIZE") + PAGE - 1) / PAGE * PAGE;
	chunk = arg + 1 < argc ? parse_size(argv[arg + 1], "CHUNK") : PAGE;
	if (chunk % PAGE) {
		fprintf(stderr, "uffd_baseline: bad CHUNK '%s' (a multiple of 4k)\n", argv[arg + 1]);
		return 2;
	}
	if (chunk > size)
		chunk = size;

	if (pin >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(pin, &set);
		if (sched_setaffinity(0, sizeof(set), &set) < 0)
			die("sched_setaffinity");
	}

	uffd = open_uffd();
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	if (ioctl(uffd, UFFDIO_API, &api) < 0)
		die("ioctl(UFFDIO_API)");

	char *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap");
	base = (uint64_t)mem;
	end = base + size;
	struct uffdio_register reg = {
		.range = { .start = base, .len = size },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0)
		die("ioctl(UFFDIO_REGISTER)");
	/* Only the bits used here are checked (newer kernels add others) */
	if (!(reg.ioctls & (1ULL << _UFFDIO_COPY)) || !(reg.ioctls & (1ULL << _UFFDIO_WAKE))) {
		fprintf(stderr, "uffd_baseline: UFFDIO_COPY or UFFDIO_WAKE not available on the range\n");
		return 2;
	}

	/* The source: touched now so that copying from it never faults */
	src = aligned_alloc(PAGE, chunk);
	if (!src)
		die("malloc(CHUNK)");
	for (uint64_t i = 0; i < chunk / 8; i++)
		((uint64_t *)src)[i] = 0x9e3779b97f4a7c15ULL * (i + 1);

	stop_fd = eventfd(0, EFD_CLOEXEC);
	if (stop_fd < 0)
		die("eventfd");
	pthread_t thread;
	int err = pthread_create(&thread, NULL, handler, NULL);
	if (err) {
		errno = err;
		die("pthread_create");
	}

	uint64_t pages = size / PAGE, t0 = now_ns();
	for (uint64_t p = 0; p < pages; p++)
		((volatile char *)mem)[p * PAGE] = 1;
	uint64_t ns = now_ns() - t0;

	uint64_t one = 1;
	if (write(stop_fd, &one, sizeof(one)) != sizeof(one))
		die("write(eventfd)");
	pthread_join(thread, NULL);

	for (uint64_t p = 0; p < pages; p++) {
		uint64_t got = ((uint64_t *)(mem + p * PAGE))[1];
		uint64_t want = ((uint64_t *)(src + (p * PAGE) % chunk))[1];
		if (got != want) {
			fprintf(stderr, "FAIL uffd_baseline: page %" PRIu64 " word 1: got 0x%016" PRIx64 " want 0x%016"
				PRIx64 "\n", p, got, want);
			return 1;
		}
	}

	char where[16];
	snprintf(where, sizeof(where), pin >= 0 ? "%d" : "none", pin);
	printf("pages=%" PRIu64 " chunk=%" PRIu64 " faults=%" PRIu64 " ns_per_page=%.1f faults_per_s=%.0f"
	       " mb_per_s=%.0f reads=%" PRIu64 " eexist=%" PRIu64 " pin=%s\n",
	       pages, chunk, faults, (double)ns / pages, faults / (ns / 1e9), size / (ns / 1e9) / 1e6,
	       reads, eexist, where);
	return 0;
}
