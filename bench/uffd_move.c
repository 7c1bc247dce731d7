/*
 * uffd_move: what moving a program's ranges between two userfaultfds costs — the
 * "two uffds per process" way to have asynchronous dirty tracking between snapshots
 * (a uffd made with UFFD_FEATURE_WP_ASYNC: the kernel resolves write-protect faults) and
 * synchronous copy-before-write during a snapshot's copy (WP_ASYNC is a property of the
 * uffd, so copy-before-write needs another one). Run by bench/uffd-move.sh.
 *
 *   uffd_move SIZE_MIB
 *
 * SIZE MiB of private anonymous 4 KiB pages (MADV_NOHUGEPAGE), written, registered
 * (MODE_WP) with the asynchronous uffd and all write-protected. Times, in ms:
 *   wp_all        UFFDIO_WRITEPROTECT of the whole range (what the synchronous mode's
 *                 full snapshot does in its pause; the yardstick)
 *   unreg_async   UFFDIO_UNREGISTER from the asynchronous uffd. Kernel fact (checked
 *                 below): unregistering a MODE_WP range clears the uffd-wp bit of every
 *                 pte, so the protection does not survive the move
 *   reg_sync      UFFDIO_REGISTER (MISSING|WP) with the synchronous uffd
 *   wp_sync       UFFDIO_WRITEPROTECT of the range again, on the synchronous uffd
 *   to_sync       the three above: the move at a freeze
 *   to_async      unregister from the synchronous uffd, register with the asynchronous
 *                 one, write-protect all: the move back after the copy (a second pause:
 *                 a write between the unregister and the protection would go untracked)
 *   fork          fork() of the same process (the pause a forking snapshot costs)
 * It fails (exit 1) when the kernel keeps the uffd-wp bits across the unregister (then
 * the move would be cheaper than measured here, and this comment wrong).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "bench.h"
#define PG 4096

static struct page_region vec[4096];

static void must(int ok, const char *what) {
  if (!ok) { perror(what); exit(2); }
}

static int make_uffd(uint64_t features) {
  int u = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  struct uffdio_api api = { .api = UFFD_API, .features = features };
  must(u >= 0 && ioctl(u, UFFDIO_API, &api) == 0, "uffd_move: userfaultfd");
  return u;
}

static void reg(int u, char *base, size_t len, uint64_t mode) {
  struct uffdio_register r = { .range = { (uint64_t)base, len }, .mode = mode };
  must(ioctl(u, UFFDIO_REGISTER, &r) == 0, "uffd_move: UFFDIO_REGISTER");
}

static void unreg(int u, char *base, size_t len) {
  struct uffdio_range r = { (uint64_t)base, len };
  must(ioctl(u, UFFDIO_UNREGISTER, &r) == 0, "uffd_move: UFFDIO_UNREGISTER");
}

static void protect(int u, char *base, size_t len) {
  struct uffdio_writeprotect w = { .range = { (uint64_t)base, len }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
  must(ioctl(u, UFFDIO_WRITEPROTECT, &w) == 0, "uffd_move: UFFDIO_WRITEPROTECT");
}

/* Present pages of [base, base+len) whose pte has no uffd-wp bit (read only, nothing reset). */
static long unprotected(int pm, char *base, size_t len) {
  long pages = 0;
  uint64_t from = (uint64_t)base, end = from + len;
  while (from < end) {
    struct pm_scan_arg a = { .size = sizeof a, .start = from, .end = end, .vec = (uint64_t)vec,
      .vec_len = 4096, .category_mask = PAGE_IS_WRITTEN | PAGE_IS_PRESENT, .return_mask = PAGE_IS_WRITTEN };
    long n = ioctl(pm, PAGEMAP_SCAN, &a);
    must(n >= 0, "uffd_move: PAGEMAP_SCAN");
    for (long i = 0; i < n; i++) pages += (vec[i].end - vec[i].start) / PG;
    if (a.walk_end <= from) break;
    from = a.walk_end;
  }
  return pages;
}

int main(int argc, char **argv) {
  size_t len = (size_t)atol(argc > 1 ? argv[1] : "1024") << 20, np = len / PG;
  char *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  must(base != MAP_FAILED, "uffd_move: mmap");
  madvise(base, len, MADV_NOHUGEPAGE);
  memset(base, 1, len);
  int pm = open("/proc/self/pagemap", O_RDONLY);
  int async = make_uffd(FEATURE_WP_ASYNC), sync = make_uffd(0);
  reg(async, base, len, UFFDIO_REGISTER_MODE_WP);
  double t0 = now_ms(); protect(async, base, len); double t1 = now_ms();
  long before = unprotected(pm, base, len);
  double t2 = now_ms(); unreg(async, base, len); double t3 = now_ms();
  long after = unprotected(pm, base, len);
  if (before != 0 || after != (long)np) {
    fprintf(stderr, "uffd_move: %ld unprotected pages before the unregister, %ld after, of %zu: not the kernel fact this bench assumes\n", before, after, np);
    return 1;
  }
  double t4 = now_ms(); reg(sync, base, len, UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP); double t5 = now_ms();
  protect(sync, base, len); double t6 = now_ms();
  unreg(sync, base, len); reg(async, base, len, UFFDIO_REGISTER_MODE_WP); protect(async, base, len); double t7 = now_ms();
  double t8 = now_ms();
  pid_t pid = fork();
  if (pid == 0) { pause(); _exit(0); }
  double t9 = now_ms();
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  printf("size_mib=%zu wp_all=%.2f unreg_async=%.2f reg_sync=%.2f wp_sync=%.2f to_sync=%.2f to_async=%.2f fork=%.2f\n",
    len >> 20, t1 - t0, t3 - t2, t5 - t4, t6 - t5, (t3 - t2) + (t6 - t4), t7 - t6, t9 - t8);
  return 0;
}
