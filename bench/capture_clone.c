/*
 * capture_clone: the kernel facts a fork-as-snapshot design rests on (docs/BENCHMARKS.md
 * "Stop 24"), checked the way numactlx would meet them: a tracer injects clone() into a
 * ptrace-stopped process of the program that is NOT its child (a worker the program
 * forked), holds the new child stopped, reads the freeze's bytes out of it while the
 * worker writes on, kills it, and reaps it. Exits 1 naming the first fact that does not
 * hold; prints one line of measurements otherwise.
 *
 *   capture_clone [SIZE_MIB=256]
 *
 * Facts checked, in order:
 *   clone_event   the injected clone (exit signal 0, no CLONE_PARENT) stops the injecting
 *                 thread at PTRACE_EVENT_CLONE, and GETEVENTMSG names the child
 *   child_held    the child starts traced and stopped (its first stop), never running
 *   uffd_fork     with the worker's memory on a userfaultfd with EVENT_FORK (+ WP_ASYNC),
 *                 the clone returns once the worker's own monitor thread read the event
 *   image         process_vm_readv of the child gives the bytes of the instant of the
 *                 clone while the worker has since rewritten them
 *   invisible     the worker's waitpid(-1, WNOHANG) does not see the child (exit signal 0)
 *   zombie        killed and waited for by the tracer, the child stays a zombie of the
 *                 worker (its real parent)
 *   reaped        waitid(P_PID, child, WEXITED|__WALL) injected into the worker reaps it
 * x86_64 only (register layout).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define FEATURE_WP_UNPOPULATED (1 << 13)
#ifndef __WALL
#define __WALL 0x40000000
#endif

static void fact(int ok, const char *name, const char *what) {
  if (ok) return;
  fprintf(stderr, "capture_clone: fact %s does not hold: %s (%s)\n", name, what, strerror(errno));
  exit(1);
}

/* ---- the worker: memory on a uffd with EVENT_FORK, a monitor thread, a writer loop ---- */
static volatile uint64_t *mem;
static size_t pages;
static int uffd, report_fd;
#define FORK_READ (2ull << 62)
#define SEEN (1ull << 63)

static void *monitor(void *arg) {
  (void)arg;
  struct pollfd p = { .fd = uffd, .events = POLLIN };
  for (;;) {
    if (poll(&p, 1, -1) <= 0) continue;
    struct uffd_msg m;
    if (read(uffd, &m, sizeof m) == sizeof m && m.event == UFFD_EVENT_FORK) {
      close((int)m.arg.fork.ufd);
      uint64_t note = FORK_READ;
      write(report_fd, &note, sizeof note);
    }
  }
  return NULL;
}

static void worker(int report) {
  report_fd = report;
  size_t size = pages * 4096;
  mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  madvise((void *)mem, size, MADV_NOHUGEPAGE);
  for (size_t i = 0; i < pages; i++) mem[i * 512] = 1;
  uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  struct uffdio_api api = { .api = UFFD_API, .features = FEATURE_WP_ASYNC | FEATURE_WP_UNPOPULATED | UFFD_FEATURE_EVENT_FORK };
  struct uffdio_register reg = { .range = { (uint64_t)mem, size }, .mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP };
  if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) || ioctl(uffd, UFFDIO_REGISTER, &reg)) _exit(3);
  pthread_t t;
  pthread_create(&t, NULL, monitor, NULL);
  uint64_t addr = (uint64_t)mem;
  write(report, &addr, sizeof addr);
  for (uint64_t gen = 2;; gen++) {
    for (size_t i = 0; i < pages; i++) mem[i * 512] = gen;
    int st;
    pid_t r = waitpid(-1, &st, WNOHANG);
    if (r > 0) { uint64_t seen = (uint64_t)r | SEEN; write(report, &seen, sizeof seen); }
  }
}

/* ---- the tracer's injection ---- */
static long inject(pid_t tid, long nr, long a0, long a1, long a2, long a3, long a4, pid_t *child, double *ms) {
  struct user_regs_struct saved, regs;
  ptrace(PTRACE_GETREGS, tid, 0, &saved);
  long word = ptrace(PTRACE_PEEKTEXT, tid, saved.rip, 0);
  ptrace(PTRACE_POKETEXT, tid, saved.rip, (word & ~0xffffL) | 0x050f);
  regs = saved;
  regs.orig_rax = (unsigned long)-1; regs.rax = nr;
  regs.rdi = a0; regs.rsi = a1; regs.rdx = a2; regs.r10 = a3; regs.r8 = a4;
  ptrace(PTRACE_SETREGS, tid, 0, &regs);
  double t0 = now_ms();
  long ret = -1;
  for (int step = 0; step < 8; step++) {
    ptrace(PTRACE_SINGLESTEP, tid, 0, 0);
    int st;
    if (waitpid(tid, &st, __WALL) != tid || !WIFSTOPPED(st)) break;
    int event = st >> 16;
    if (event == PTRACE_EVENT_CLONE || event == PTRACE_EVENT_FORK) {
      unsigned long msg = 0;
      ptrace(PTRACE_GETEVENTMSG, tid, 0, &msg);
      if (child) *child = (pid_t)msg;
      continue;
    }
    if (event != 0 || WSTOPSIG(st) != SIGTRAP) continue;
    ptrace(PTRACE_GETREGS, tid, 0, &regs);
    if (regs.rip == saved.rip + 2) { ret = (long)regs.rax; break; }
  }
  if (ms) *ms = now_ms() - t0;
  ptrace(PTRACE_POKETEXT, tid, saved.rip, word);
  ptrace(PTRACE_SETREGS, tid, 0, &saved);
  return ret;
}

static void stop(pid_t tid) {
  int st;
  ptrace(PTRACE_INTERRUPT, tid, 0, 0);
  while (waitpid(tid, &st, __WALL) == tid && !(WIFSTOPPED(st) && (st >> 16) == PTRACE_EVENT_STOP)) ptrace(PTRACE_CONT, tid, 0, 0);
}

static char state_of(pid_t pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return '-';
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return '-';
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  return p && p[1] == ' ' ? p[2] : '?';
}

int main(int argc, char **argv) {
  pages = (size_t)(argc > 1 ? atoi(argv[1]) : 256) * 256;
  int pipefd[2];
  if (pipe(pipefd)) return 2;
  /* The program: its first process forks the worker and waits; the worker is not our child. */
  pid_t program = fork();
  if (program == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* gone with this program, whichever way it ends */
    pid_t w = fork();
    if (w == 0) worker(pipefd[1]);
    uint64_t wp = (uint64_t)w;
    write(pipefd[1], &wp, sizeof wp);
    for (;;) pause();
  }
  uint64_t wpid, addr;
  if (read(pipefd[0], &wpid, sizeof wpid) != sizeof wpid || read(pipefd[0], &addr, sizeof addr) != sizeof addr) return 2;
  if (wpid > 0xffffffffull) { uint64_t t = wpid; wpid = addr; addr = t; } /* either order */
  pid_t w = (pid_t)wpid;
  usleep(200000); /* the writer loop runs (a measurement program: no event to wait for here) */

  fact(ptrace(PTRACE_SEIZE, w, 0, PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_EXITKILL) == 0, "setup", "PTRACE_SEIZE of the worker");
  stop(w);
  uint64_t frozen;
  struct iovec l = { &frozen, 8 }, r = { (void *)addr, 8 };
  fact(process_vm_readv(w, &l, 1, &r, 1, 0) == 8, "setup", "reading the worker");

  pid_t child = 0;
  double clone_ms;
  long ret = inject(w, SYS_clone, 0 /* flags: exit signal 0 */, 0, 0, 0, 0, &child, &clone_ms);
  fact(ret > 0 && child == ret, "clone_event", "no PTRACE_EVENT_CLONE naming the child");
  uint64_t note = 0;
  fact(read(pipefd[0], &note, sizeof note) == sizeof note && note == FORK_READ, "uffd_fork",
       "the worker's monitor did not read a UFFD_EVENT_FORK for the clone");
  int st;
  fact(waitpid(child, &st, __WALL) == child && WIFSTOPPED(st), "child_held", "the child's first stop did not come");
  ptrace(PTRACE_CONT, w, 0, 0); /* the worker runs on and rewrites its memory */
  uint64_t now_w = frozen, now_c;
  l.iov_base = &now_w;
  /* Until its next pass has begun (every write of this pass is a copy-on-write fault now). */
  for (double until = now_ms() + 20000; now_w == frozen && now_ms() < until; usleep(1000))
    fact(process_vm_readv(w, &l, 1, &r, 1, 0) == 8, "image", "reading the worker again");
  l.iov_base = &now_c;
  double t0 = now_ms();
  fact(process_vm_readv(child, &l, 1, &r, 1, 0) == 8, "image", "reading the child");
  double read_ms = now_ms() - t0;
  if (!(now_w != frozen && now_c == frozen)) fprintf(stderr, "frozen %llu worker %llu child %llu\n", (unsigned long long)frozen, (unsigned long long)now_w, (unsigned long long)now_c);
  fact(now_w != frozen && now_c == frozen, "image", "the child's bytes are not the instant's");

  kill(child, SIGKILL);
  fact(waitpid(child, &st, __WALL) == child && WIFSIGNALED(st), "zombie", "the tracer was not told of the child's death");
  usleep(100000);
  char s = state_of(child);
  fact(s == 'Z', "zombie", "the killed child is not a zombie of the worker");

  stop(w);
  long reaped = inject(w, SYS_waitid, 1 /* P_PID */, child, 0, WEXITED | __WALL, 0, NULL, NULL);
  ptrace(PTRACE_CONT, w, 0, 0);
  fact(reaped == 0 && state_of(child) == '-', "reaped", "waitid injected into the worker did not reap it");

  /* invisible: the worker reports any pid its waitpid(-1) returned (none expected). */
  fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
  uint64_t seen;
  fact(read(pipefd[0], &seen, sizeof seen) != sizeof seen, "invisible", "the worker's waitpid(-1) saw the child");

  printf("facts=all clone_ms=%.2f size_mib=%zu child_read_ms=%.3f frozen=%llu worker_now=%llu child_now=%llu\n",
         clone_ms, pages / 256, read_ms, (unsigned long long)frozen, (unsigned long long)now_w, (unsigned long long)now_c);
  kill(program, SIGKILL);
  kill(w, SIGKILL);
  return 0;
}
