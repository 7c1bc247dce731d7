/*
 * evict_drop: what it costs to take pages away from another process — the drop paths
 * numactlx could evict with (issue 12, docs/BENCHMARKS.md "Eviction: drop paths").
 *
 *   evict_drop PATH SIZE RUN [spin|sleep] [ROUNDS]
 *
 * A "program" (a forked child) holds SIZE bytes (k/m/g) of touched private anonymous
 * memory; the "engine" (this process) takes them away RUN pages (4 KiB) per call, ROUNDS
 * times (the memory is touched again between rounds, untimed). The child spins (a CPU
 * of its own: TLB flushes need an IPI) or sleeps in a futex. PATH:
 *
 *   self-dontneed   baseline: the process's own madvise(MADV_DONTNEED), no uffd
 *   self-remove     the same on a uffd-registered range with UFFD_FEATURE_EVENT_REMOVE:
 *                   each madvise waits until a handler thread has read its REMOVE event
 *   remote-madvise  process_madvise(pidfd, MADV_DONTNEED) on the child (EINVAL on 6.18),
 *                   and MADV_PAGEOUT (reclaims anonymous pages only to swap)
 *   move            UFFDIO_MOVE (6.8) of the child's pages into a "graveyard" range of
 *                   the child registered with the same uffd (ioctl by the engine, no
 *                   stop); the graveyard is emptied by the child's own madvise, timed
 *                   separately (grave_ns_per_page)
 *   move-forked     the same after the child forked (its pages shared copy-on-write)
 *   inject          ptrace: a queued signal stops the child, madvise(DONTNEED) is run in
 *                   it (syscall instruction poked at rip, single-step), it resumes
 *   inject-remove   the same on a uffd-registered range with EVENT_REMOVE, the REMOVE
 *                   read by a handler thread of the engine
 *   memfd-punch     the child's memory is a MAP_SHARED memfd mapping; the engine punches
 *                   holes (fallocate PUNCH_HOLE)
 *
 * Prints: path=… run=… mode=… pages=… calls=… ns_per_page=… ns_per_call=… [extra]
 * Build: cc -O2 -pthread -o evict_drop bench/evict_drop.c
 * Follows <linux/userfaultfd.h> of Linux 6.18 for UFFDIO_MOVE (defined here: the build
 * host's headers are 6.1's).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1ULL << 16)
struct uffdio_move { uint64_t dst, src, len, mode; int64_t move; };
#define UFFDIO_MOVE _IOWR(UFFDIO, 0x05, struct uffdio_move)
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

static const char *path;
static uint64_t size, run_pages, rounds = 8;
static int spin;
static char *region, *grave;
static volatile uint32_t *shared; /* [0] command, [1] ack, [2..3] child-side ns */

enum { CMD_NONE, CMD_TOUCH, CMD_ZAP_GRAVE, CMD_FORK, CMD_EXIT };

static void die(const char *call)
{
	fprintf(stderr, "evict_drop: %s failed: %s\n", call, strerror(errno));
	exit(2);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static uint64_t parse_size(const char *s)
{
	char *e;
	uint64_t v = strtoull(s, &e, 10);
	switch (*e) {
	case 'k': case 'K': return v << 10;
	case 'm': case 'M': return v << 20;
	case 'g': case 'G': return v << 30;
	default: return v;
	}
}

static void touch(char *p, uint64_t len)
{
	for (uint64_t off = 0; off < len; off += PAGE) p[off] = (char)(off >> 12 | 1);
}

static int uffd_open(uint64_t features)
{
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) die("userfaultfd");
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	if (ioctl(fd, UFFDIO_API, &api)) die("UFFDIO_API");
	return fd;
}

static void uffd_register(int fd, void *addr, uint64_t len)
{
	struct uffdio_register r = { .range = { (uintptr_t)addr, len }, .mode = UFFDIO_REGISTER_MODE_MISSING };
	if (ioctl(fd, UFFDIO_REGISTER, &r)) die("UFFDIO_REGISTER");
}

/* ---- the child ("program") ------------------------------------------------------ */
static void futex_wait(volatile uint32_t *w, uint32_t v)
{
	syscall(SYS_futex, w, FUTEX_WAIT, v, NULL, NULL, 0);
}

static void futex_wake(volatile uint32_t *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* The child's loop: wait for a command (spinning or in a futex), run it, ack. */
static void child_loop(void)
{
	for (;;) {
		uint32_t cmd;
		while ((cmd = __atomic_load_n(&shared[0], __ATOMIC_ACQUIRE)) == CMD_NONE) {
			if (!spin) futex_wait(&shared[0], CMD_NONE);
		}
		uint64_t t0 = now_ns();
		if (cmd == CMD_TOUCH) touch(region, size);
		else if (cmd == CMD_ZAP_GRAVE) {
			if (madvise(grave, size, MADV_DONTNEED)) die("madvise(graveyard)");
		} else if (cmd == CMD_FORK) {
			if (fork() == 0) { pause(); _exit(0); }
		} else if (cmd == CMD_EXIT) {
			_exit(0);
		}
		uint64_t dt = now_ns() - t0;
		shared[2] = (uint32_t)dt;
		shared[3] = (uint32_t)(dt >> 32);
		__atomic_store_n(&shared[0], CMD_NONE, __ATOMIC_RELEASE);
		__atomic_store_n(&shared[1], shared[1] + 1, __ATOMIC_RELEASE);
		futex_wake(&shared[1]);
	}
}

/* Engine side: run a command in the child and wait for its ack; returns the child's ns. */
static uint64_t child_do(uint32_t cmd)
{
	uint32_t ack = __atomic_load_n(&shared[1], __ATOMIC_ACQUIRE);
	__atomic_store_n(&shared[0], cmd, __ATOMIC_RELEASE);
	futex_wake(&shared[0]);
	while (__atomic_load_n(&shared[1], __ATOMIC_ACQUIRE) == ack) futex_wait(&shared[1], ack);
	return shared[2] | (uint64_t)shared[3] << 32;
}

/* ---- REMOVE reader (self-remove, inject-remove) ---------------------------------- */
static int reader_uffd;
static volatile int reader_stop;
static uint64_t removes;

static void *reader(void *arg)
{
	(void)arg;
	struct uffd_msg msgs[64];
	struct pollfd p = { .fd = reader_uffd, .events = POLLIN };
	while (!reader_stop) {
		if (poll(&p, 1, 10) <= 0) continue;
		ssize_t n = read(reader_uffd, msgs, sizeof msgs);
		if (n <= 0) continue;
		for (ssize_t i = 0; i < n / (ssize_t)sizeof msgs[0]; i++) {
			if (msgs[i].event == UFFD_EVENT_REMOVE) { removes++; continue; }
			if (msgs[i].event == UFFD_EVENT_PAGEFAULT) {
				struct uffdio_zeropage z = { .range = { msgs[i].arg.pagefault.address & ~(PAGE - 1), PAGE } };
				ioctl(reader_uffd, UFFDIO_ZEROPAGE, &z);
			}
		}
	}
	return NULL;
}

static void report(uint64_t ns, uint64_t pages, uint64_t calls, const char *extra)
{
	printf("path=%s run=%" PRIu64 " mode=%s pages=%" PRIu64 " calls=%" PRIu64 " ns_per_page=%.1f ns_per_call=%.1f%s%s\n",
	       path, run_pages, spin ? "spin" : "sleep", pages, calls, (double)ns / pages, (double)ns / calls,
	       extra ? " " : "", extra ? extra : "");
}

/* ---- self-dontneed, self-remove --------------------------------------------------- */
static void self_paths(int with_uffd)
{
	region = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED) die("mmap");
	pthread_t th;
	if (with_uffd) {
		reader_uffd = uffd_open(UFFD_FEATURE_EVENT_REMOVE);
		uffd_register(reader_uffd, region, size);
		pthread_create(&th, NULL, reader, NULL);
	}
	uint64_t ns = 0, calls = 0;
	for (uint64_t r = 0; r < rounds; r++) {
		touch(region, size);
		uint64_t t0 = now_ns();
		for (uint64_t off = 0; off < size; off += run_pages * PAGE, calls++) {
			if (madvise(region + off, run_pages * PAGE, MADV_DONTNEED)) die("madvise");
		}
		ns += now_ns() - t0;
	}
	if (with_uffd) { reader_stop = 1; pthread_join(th, NULL); }
	report(ns, rounds * size / PAGE, calls, NULL);
}

/* ---- child set-up for the remote paths -------------------------------------------- */
static pid_t child_pid;
static int child_uffd = -1;

/* Forks the child; `features` != 0: it makes a uffd over region and graveyard. */
static void start_child(uint64_t features, int memfd)
{
	int pipefd[2];
	if (pipe(pipefd)) die("pipe");
	if (memfd >= 0) {
		region = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	} else {
		region = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	}
	grave = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (region == MAP_FAILED || grave == MAP_FAILED) die("mmap");
	child_pid = fork();
	if (child_pid == 0) {
		touch(region, size);
		int fd = -1;
		if (features) {
			fd = uffd_open(features);
			uffd_register(fd, region, size);
			uffd_register(fd, grave, size);
		}
		if (write(pipefd[1], &fd, sizeof fd) != sizeof fd) _exit(3);
		child_loop();
	}
	int fd;
	if (read(pipefd[0], &fd, sizeof fd) != sizeof fd) die("read(child)");
	if (fd >= 0) {
		int pidfd = syscall(SYS_pidfd_open, child_pid, 0);
		if (pidfd < 0) die("pidfd_open");
		child_uffd = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
		if (child_uffd < 0) die("pidfd_getfd");
		close(pidfd);
	}
}

static void stop_child(void)
{
	shared[0] = CMD_EXIT;
	futex_wake(&shared[0]);
	waitpid(child_pid, NULL, 0);
}

/* Fills the child's region again (UFFDIO_COPY into the holes the moves left). */
static void refill(void)
{
	static char *src;
	if (!src) {
		src = malloc(size);
		touch(src, size);
	}
	struct uffdio_copy c = { .dst = (uintptr_t)region, .src = (uintptr_t)src, .len = size };
	if (ioctl(child_uffd, UFFDIO_COPY, &c) && errno != EEXIST) die("UFFDIO_COPY(refill)");
}

/* ---- move, move-forked -------------------------------------------------------------- */
static void move_path(int forked)
{
	start_child(UFFD_FEATURE_MOVE, -1);
	if (forked) child_do(CMD_FORK);
	uint64_t ns = 0, grave_ns = 0, calls = 0, moved = 0, ebusy = 0;
	for (uint64_t r = 0; r < rounds; r++) {
		uint64_t t0 = now_ns();
		for (uint64_t off = 0; off < size; off += run_pages * PAGE, calls++) {
			struct uffdio_move m = { .dst = (uintptr_t)grave + off, .src = (uintptr_t)region + off, .len = run_pages * PAGE };
			if (ioctl(child_uffd, UFFDIO_MOVE, &m) == 0) { moved += run_pages; continue; }
			if (errno == EBUSY) { ebusy++; continue; }
			die("UFFDIO_MOVE");
		}
		ns += now_ns() - t0;
		grave_ns += child_do(CMD_ZAP_GRAVE);
		refill();
	}
	char extra[128];
	snprintf(extra, sizeof extra, "moved=%" PRIu64 " ebusy_calls=%" PRIu64 " grave_ns_per_page=%.1f",
		 moved, ebusy, moved ? (double)grave_ns / moved : 0.0);
	report(ns, rounds * size / PAGE, calls, extra);
	stop_child();
}

/* ---- remote-madvise ----------------------------------------------------------------- */
static long rss_kb(pid_t pid)
{
	char file[64], line[256];
	snprintf(file, sizeof file, "/proc/%d/status", pid);
	FILE *f = fopen(file, "r");
	long kb = -1;
	while (f && fgets(line, sizeof line, f)) if (sscanf(line, "VmRSS: %ld", &kb) == 1) break;
	if (f) fclose(f);
	return kb;
}

static void remote_madvise_path(void)
{
	start_child(0, -1);
	int pidfd = syscall(SYS_pidfd_open, child_pid, 0);
	struct iovec iov = { region, size };
	long r = syscall(SYS_process_madvise, pidfd, &iov, 1, MADV_DONTNEED, 0);
	int e1 = r < 0 ? errno : 0;
	long before = rss_kb(child_pid);
	uint64_t t0 = now_ns();
	r = syscall(SYS_process_madvise, pidfd, &iov, 1, MADV_PAGEOUT, 0);
	uint64_t dt = now_ns() - t0;
	int e2 = r < 0 ? errno : 0;
	printf("path=remote-madvise dontneed=%s pageout=%s pageout_ns_per_page=%.1f rss_kb_before=%ld rss_kb_after=%ld swap=%s\n",
	       e1 ? strerrorname_np(e1) : "ok", e2 ? strerrorname_np(e2) : "ok", (double)dt / (size / PAGE),
	       before, rss_kb(child_pid), access("/proc/swaps", R_OK) == 0 ? "see /proc/swaps" : "?");
	close(pidfd);
	stop_child();
}

/* ---- inject, inject-remove ------------------------------------------------------------ */
/* Runs madvise(addr, len, MADV_DONTNEED) in the stopped child; returns its result. */
static long inject_madvise(pid_t pid, uint64_t addr, uint64_t len)
{
	struct user_regs_struct saved, regs;
	if (ptrace(PTRACE_GETREGS, pid, 0, &saved)) die("PTRACE_GETREGS");
	long word = ptrace(PTRACE_PEEKTEXT, pid, saved.rip, 0);
	if (ptrace(PTRACE_POKETEXT, pid, saved.rip, (word & ~0xffffL) | 0x050f)) die("PTRACE_POKETEXT");
	regs = saved;
	regs.orig_rax = -1;
	regs.rax = SYS_madvise;
	regs.rdi = addr;
	regs.rsi = len;
	regs.rdx = MADV_DONTNEED;
	if (ptrace(PTRACE_SETREGS, pid, 0, &regs)) die("PTRACE_SETREGS");
	long ret = -1;
	for (int step = 0; step < 4; step++) {
		int status;
		if (ptrace(PTRACE_SINGLESTEP, pid, 0, 0)) die("PTRACE_SINGLESTEP");
		if (waitpid(pid, &status, __WALL) < 0) die("waitpid");
		struct user_regs_struct now;
		ptrace(PTRACE_GETREGS, pid, 0, &now);
		if (now.rip == saved.rip + 2) { ret = (long)now.rax; break; }
	}
	ptrace(PTRACE_POKETEXT, pid, saved.rip, word);
	ptrace(PTRACE_SETREGS, pid, 0, &saved);
	return ret;
}

static void inject_path(int with_uffd)
{
	start_child(with_uffd ? UFFD_FEATURE_EVENT_REMOVE : 0, -1);
	pthread_t th;
	if (with_uffd) {
		reader_uffd = child_uffd;
		pthread_create(&th, NULL, reader, NULL);
	}
	if (ptrace(PTRACE_SEIZE, child_pid, 0, 0)) die("PTRACE_SEIZE");
	uint64_t ns = 0, calls = 0, stop_ns = 0;
	for (uint64_t r = 0; r < rounds; r++) {
		uint64_t t0 = now_ns();
		for (uint64_t off = 0; off < size; off += run_pages * PAGE, calls++) {
			uint64_t s0 = now_ns();
			union sigval v = { .sival_int = 0x6e756d61 };
			if (sigqueue(child_pid, SIGURG, v)) die("sigqueue");
			int status;
			if (waitpid(child_pid, &status, __WALL) < 0 || !WIFSTOPPED(status)) die("waitpid(stop)");
			stop_ns += now_ns() - s0;
			long ret = inject_madvise(child_pid, (uintptr_t)region + off, run_pages * PAGE);
			if (ret != 0) { errno = (int)-ret; die("injected madvise"); }
			if (ptrace(PTRACE_CONT, child_pid, 0, 0)) die("PTRACE_CONT"); /* SIGURG suppressed */
		}
		ns += now_ns() - t0;
		/* The child touches its memory again (with the uffd: the reader serves zero pages). */
		child_do(CMD_TOUCH);
	}
	char extra[96];
	snprintf(extra, sizeof extra, "stop_ns_per_call=%.1f removes=%" PRIu64, (double)stop_ns / calls, removes);
	report(ns, rounds * size / PAGE, calls, extra);
	ptrace(PTRACE_DETACH, child_pid, 0, 0);
	if (with_uffd) { reader_stop = 1; pthread_join(th, NULL); }
	stop_child();
}

/* ---- memfd-punch ---------------------------------------------------------------------- */
static void memfd_path(void)
{
	int fd = memfd_create("evict_drop", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, size)) die("memfd_create");
	start_child(0, fd);
	uint64_t ns = 0, calls = 0;
	for (uint64_t r = 0; r < rounds; r++) {
		uint64_t t0 = now_ns();
		for (uint64_t off = 0; off < size; off += run_pages * PAGE, calls++) {
			if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, run_pages * PAGE)) die("fallocate");
		}
		ns += now_ns() - t0;
		child_do(CMD_TOUCH);
	}
	report(ns, rounds * size / PAGE, calls, NULL);
	stop_child();
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: evict_drop PATH SIZE RUN [spin|sleep] [ROUNDS]\n");
		return 2;
	}
	path = argv[1];
	size = parse_size(argv[2]) & ~(PAGE - 1);
	run_pages = strtoull(argv[3], NULL, 10);
	spin = argc > 4 && strcmp(argv[4], "spin") == 0;
	if (argc > 5) rounds = strtoull(argv[5], NULL, 10);
	if (!size || !run_pages || size % (run_pages * PAGE)) {
		fprintf(stderr, "evict_drop: SIZE must be a multiple of RUN pages\n");
		return 2;
	}
	shared = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (!strcmp(path, "self-dontneed")) self_paths(0);
	else if (!strcmp(path, "self-remove")) self_paths(1);
	else if (!strcmp(path, "remote-madvise")) remote_madvise_path();
	else if (!strcmp(path, "move")) move_path(0);
	else if (!strcmp(path, "move-forked")) move_path(1);
	else if (!strcmp(path, "inject")) inject_path(0);
	else if (!strcmp(path, "inject-remove")) inject_path(1);
	else if (!strcmp(path, "memfd-punch")) memfd_path();
	else { fprintf(stderr, "evict_drop: unknown path %s\n", path); return 2; }
	return 0;
}
