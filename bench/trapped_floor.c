/*
 * trapped_floor: the floor cost of numactlx's trap mechanism, in C with nothing else —
 * what a perfect implementation would pay per trapped call on this machine — for the
 * loops of trapped_syscalls.c:
 *
 *   mmap  mmap 4 KiB anonymous private + one write + munmap (µs per pair)
 *   brk   sbrk(+4 KiB) + one write to the new page (the break is given back at the end)
 *
 *   trapped_floor [--pin CPU] native|trapped mmap|brk N
 *
 * native runs the loop. trapped forks: the child (the program) creates a userfaultfd
 * (EVENT_UNMAP | EVENT_REMOVE) and hands its number over a pipe; the parent (the
 * supervisor) takes the file with pidfd_getfd, PTRACE_SEIZEs the child
 * (TRACESECCOMP | TRACESYSGOOD | EXITKILL) and starts its fault thread; then the child
 * installs a seccomp filter (RET_TRACE for anonymous private mmap without MAP_HUGETLB and
 * for brk, as numactlx's) and runs the loop. The hand-offs, exactly numactlx's:
 *
 *   call → seccomp stop → tracer (main thread) PTRACE_SYSCALL → the call runs → exit stop
 *        → tracer PTRACE_GETREGS, UFFDIO_REGISTER (MISSING) of the new range, PTRACE_CONT
 *   first write → missing fault → fault thread (poll + read) UFFDIO_COPY of a zero page
 *   munmap (and brk's shrink) → UFFD_EVENT_UNMAP, which the call waits for until the fault
 *        thread has read it
 *
 * --pin CPU pins everything (both supervisor threads and the child) to one CPU before
 * the fork. Prints, from the program (the supervisor prints nothing unless it fails):
 *
 *   op=OP mode=native|trapped pin=CPU|none iters=N us_per_op=X
 *
 * Exit status 0, or 2 with a one-line message on any failure.
 *
 * Build: cc -O2 -pthread -o bench/bin/trapped_floor bench/trapped_floor.c
 *        (or any bench/run.mjs run: bench/lib/build.mjs)
 * Run:   bench/bin/trapped_floor --pin 0 trapped mmap 20000
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#define FIXTURE "trapped_floor"
#include "../test/fixtures/fixture.h" /* die, PAGE */
#include "bench.h"                    /* now_ns */

#define PAGE_UP(x) (((x) + PAGE - 1) & ~(PAGE - 1))

#include "trapped_loops.h"

static void timed(const char *op, const char *mode, const char *pin, long n)
{
	void (*run)(long) = strcmp(op, "mmap") == 0 ? run_mmap : run_brk;
	run(n < 10 ? n : 10); /* warm-up, untimed */
	uint64_t t0 = now_ns();
	run(n);
	uint64_t t1 = now_ns();
	printf("op=%s mode=%s pin=%s iters=%ld us_per_op=%.3f\n", op, mode, pin, n, (t1 - t0) / 1e3 / n);
	fflush(stdout);
}

/* numactlx's filter, cut down to mmap and brk: arch, then nr, then mmap's flags */
static void install_filter(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 6),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_brk, 5, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mmap, 0, 3),
		/* args[3] low 32 bits: little-endian, so the first word of the u64 */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[3])),
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, MAP_PRIVATE | MAP_ANONYMOUS, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE),
	};
	struct sock_fprog prog = { .len = sizeof f / sizeof f[0], .filter = f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		die("prctl(PR_SET_NO_NEW_PRIVS)");
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog))
		die("seccomp(SECCOMP_SET_MODE_FILTER)");
}

/* The program: its own userfaultfd (it must be on the child's mm), then the loop */
static void program(int ready, int go, const char *op, const char *pin, long n)
{
	int uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		die("userfaultfd");
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_EVENT_REMOVE };
	if (ioctl(uffd, UFFDIO_API, &api))
		die("UFFDIO_API");
	if (write(ready, &uffd, sizeof uffd) != sizeof uffd)
		die("write(ready)");
	/* The supervisor has seized us when this returns: a RET_TRACE with no tracer
	 * would fail the call with ENOSYS */
	char c;
	if (read(go, &c, 1) != 1)
		die("read(go)");
	install_filter();
	syscall(SYS_brk, 0); /* trapped: tells the tracer the current break */
	timed(op, "trapped", pin, n);
	exit(0);
}

static int uffd;
static char zeros[PAGE] __attribute__((aligned(PAGE)));

/* The fault thread: missing faults get a page copied in; UNMAP/REMOVE events only need
 * reading (munmap waits in the kernel until its event has been read) */
static void *fault_thread(void *arg)
{
	(void)arg;
	struct pollfd pfd = { .fd = uffd, .events = POLLIN };
	struct uffd_msg msgs[16];
	for (;;) {
		if (poll(&pfd, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll(uffd)");
		}
		ssize_t got = read(uffd, msgs, sizeof msgs);
		if (got < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			die("read(uffd)");
		}
		for (size_t i = 0; i < got / sizeof msgs[0]; i++) {
			if (msgs[i].event != UFFD_EVENT_PAGEFAULT)
				continue; /* UNMAP, REMOVE: read is all they need */
			struct uffdio_copy copy = {
				.dst = msgs[i].arg.pagefault.address & ~(PAGE - 1),
				.src = (uintptr_t)zeros,
				.len = PAGE,
			};
			/* EEXIST/EAGAIN: raced with another resolution or a layout change;
			 * ESRCH: the program's mm is gone (it exited) */
			if (ioctl(uffd, UFFDIO_COPY, &copy) && errno != EEXIST && errno != EAGAIN && errno != ESRCH)
				die("UFFDIO_COPY");
		}
	}
	return NULL;
}

static void do_ptrace(int req, pid_t pid, void *data, const char *what)
{
	if (ptrace(req, pid, 0, data))
		die("%s", what);
}

/* The tracer (the supervisor's main thread, which seized): returns the child's status */
static int tracer(pid_t child)
{
	uint64_t brk_now = 0; /* the program's break, learnt from its brk results */
	for (;;) {
		int st;
		if (waitpid(child, &st, __WALL) != child) {
			if (errno == EINTR)
				continue;
			die("waitpid");
		}
		if (WIFEXITED(st))
			return WEXITSTATUS(st);
		if (WIFSIGNALED(st)) {
			fprintf(stderr, FIXTURE ": program killed by signal %d\n", WTERMSIG(st));
			return 2;
		}
		int event = st >> 8;
		if (event == (SIGTRAP | (PTRACE_EVENT_SECCOMP << 8))) {
			/* Entry: let the call run to its exit stop (seccomp stops come after
			 * syscall-entry-stop since Linux 4.8, so the next stop is the exit) */
			do_ptrace(PTRACE_SYSCALL, child, 0, "PTRACE_SYSCALL");
			continue;
		}
		if (event == (SIGTRAP | 0x80)) {
			/* Exit stop: rax is the result; rdi/rsi still hold the arguments (the
			 * kernel saves them in pt_regs at entry and only rax is written back) */
			struct user_regs_struct r;
			do_ptrace(PTRACE_GETREGS, child, &r, "PTRACE_GETREGS");
			uint64_t start = 0, end = 0;
			if (r.orig_rax == __NR_mmap && r.rax < -4095UL) {
				start = r.rax;
				end = r.rax + PAGE_UP(r.rsi);
			} else if (r.orig_rax == __NR_brk) {
				if (brk_now && r.rax > brk_now) { /* grown: register the new pages */
					start = PAGE_UP(brk_now);
					end = PAGE_UP(r.rax);
				}
				brk_now = r.rax;
			}
			if (end > start) {
				struct uffdio_register reg = {
					.range = { .start = start, .len = end - start },
					.mode = UFFDIO_REGISTER_MODE_MISSING,
				};
				if (ioctl(uffd, UFFDIO_REGISTER, &reg))
					die("UFFDIO_REGISTER(%#llx, %#llx)", reg.range.start, reg.range.len);
			}
			do_ptrace(PTRACE_CONT, child, 0, "PTRACE_CONT");
			continue;
		}
		/* A group-stop (PTRACE_EVENT_STOP, seized) resumes with no signal; a
		 * signal-delivery-stop passes its signal on */
		int sig = (st >> 16) ? 0 : WSTOPSIG(st);
		do_ptrace(PTRACE_CONT, child, (void *)(long)sig, "PTRACE_CONT(signal)");
	}
}

int main(int argc, char **argv)
{
	const char *pin = "none";
	if (argc > 2 && strcmp(argv[1], "--pin") == 0) {
		pin = argv[2];
		argc -= 2, argv += 2;
	}
	char *e = "";
	long n = argc == 4 ? strtol(argv[3], &e, 0) : 0;
	const char *mode = argc == 4 ? argv[1] : "", *op = argc == 4 ? argv[2] : "";
	if (argc != 4 || *e || n < 1 || (strcmp(mode, "native") && strcmp(mode, "trapped")) ||
	    (strcmp(op, "mmap") && strcmp(op, "brk"))) {
		fprintf(stderr, "usage: trapped_floor [--pin CPU] native|trapped mmap|brk N\n");
		return 2;
	}
	if (strcmp(pin, "none")) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(atoi(pin), &set);
		if (sched_setaffinity(0, sizeof set, &set)) /* inherited by threads and child */
			die("sched_setaffinity(%s)", pin);
	}
	if (strcmp(mode, "native") == 0) {
		timed(op, "native", pin, n);
		return 0;
	}

	int ready[2], go[2];
	if (pipe2(ready, O_CLOEXEC) || pipe2(go, O_CLOEXEC))
		die("pipe2");
	fflush(NULL);
	pid_t child = fork(); /* single-threaded still: the fault thread comes after */
	if (child < 0)
		die("fork");
	if (child == 0) {
		close(ready[0]);
		close(go[1]);
		program(ready[1], go[0], op, pin, n);
	}
	close(ready[1]);
	close(go[0]);
	int child_fd;
	if (read(ready[0], &child_fd, sizeof child_fd) != sizeof child_fd)
		die("read(ready)");
	int pidfd = syscall(SYS_pidfd_open, child, 0);
	if (pidfd < 0)
		die("pidfd_open");
	uffd = syscall(SYS_pidfd_getfd, pidfd, child_fd, 0);
	if (uffd < 0)
		die("pidfd_getfd");
	/* The calling thread is the tracer: only it may issue ptrace requests and get the
	 * child's stops from waitpid */
	if (ptrace(PTRACE_SEIZE, child, 0, (void *)(long)(PTRACE_O_TRACESECCOMP | PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL)))
		die("PTRACE_SEIZE");
	pthread_t t;
	if ((errno = pthread_create(&t, NULL, fault_thread, NULL)))
		die("pthread_create");
	if (write(go[1], "g", 1) != 1)
		die("write(go)");
	return tracer(child); /* exit() ends the fault thread */
}
