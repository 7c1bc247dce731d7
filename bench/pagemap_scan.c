/*
 * pagemap_scan: what asynchronous dirty tracking costs the engine, next to what the
 * synchronous mode and fork() cost (docs/BENCHMARKS.md, "A program writing at full
 * speed"). Run by bench/pagemap-scan.sh (pinned and unpinned, repetitions, medians).
 *
 *   pagemap_scan SIZE_MIB
 *
 * SIZE MiB of private anonymous 4 KiB pages (MADV_NOHUGEPAGE), written, then registered
 * with a userfaultfd made with UFFD_FEATURE_WP_ASYNC (MODE_WP). Times, in ms:
 *   scan_all     PAGEMAP_SCAN read-and-reset (WRITTEN, anyof PRESENT|SWAPPED,
 *                WP_MATCHING|CHECK_WPASYNC) with every page written — the first pass of a
 *                pre-copy of a program that wrote all its memory
 *   rewrite      writing one word in every page again after that (each write an
 *                asynchronous write-protect fault the kernel resolves)
 *   scan_all2    the same scan after the rewrite
 *   scan_1pct    the scan with 1% of the pages (random) written
 *   scan_none    the scan with nothing written
 *   wp_all       UFFDIO_WRITEPROTECT of the whole range on a synchronous uffd (the
 *                synchronous mode's protection of everything, for comparison)
 *   fork         fork() of the process holding the memory (the BGSAVE pause)
 *   cow_rewrite  writing one word in every page after that fork, the child alive (each
 *                write a copy-on-write fault: what a forking program pays, next to rewrite)
 * One line: name=value pairs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
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

static int uffd_with(uint64_t features, char *base, size_t len) {
  int u = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  struct uffdio_api api = { .api = UFFD_API, .features = features };
  struct uffdio_register r = { .range = { (uint64_t)base, len }, .mode = UFFDIO_REGISTER_MODE_WP };
  if (u < 0 || ioctl(u, UFFDIO_API, &api) || ioctl(u, UFFDIO_REGISTER, &r)) { perror("pagemap_scan: userfaultfd"); exit(2); }
  return u;
}

/* Read-and-reset of [base, base+len); returns the pages reported. */
static long scan(int pm, char *base, size_t len) {
  long pages = 0;
  uint64_t from = (uint64_t)base, end = (uint64_t)base + len;
  while (from < end) {
    struct pm_scan_arg a = { .size = sizeof a, .flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
      .start = from, .end = end, .vec = (uint64_t)vec, .vec_len = 4096, .category_mask = PAGE_IS_WRITTEN,
      .category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED, .return_mask = PAGE_IS_WRITTEN };
    long n = ioctl(pm, PAGEMAP_SCAN, &a);
    if (n < 0) { perror("pagemap_scan: PAGEMAP_SCAN"); exit(2); }
    for (long i = 0; i < n; i++) pages += (vec[i].end - vec[i].start) / PG;
    if (a.walk_end <= from) break;
    from = a.walk_end;
  }
  return pages;
}

int main(int argc, char **argv) {
  size_t len = (size_t)atol(argc > 1 ? argv[1] : "1024") << 20, np = len / PG;
  char *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  madvise(base, len, MADV_NOHUGEPAGE);
  memset(base, 1, len);
  int u = uffd_with(FEATURE_WP_ASYNC | UFFD_FEATURE_PAGEFAULT_FLAG_WP, base, len);
  int pm = open("/proc/self/pagemap", O_RDONLY);
  double t0 = now_ms(); long all = scan(pm, base, len); double t1 = now_ms();
  for (size_t i = 0; i < len; i += PG) base[i]++;
  double t2 = now_ms(); long all2 = scan(pm, base, len); double t3 = now_ms();
  uint64_t x = 88172645463325252ull;
  for (size_t k = 0; k < np / 100; k++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; base[(x % np) * PG]++; }
  double t4 = now_ms(); long pct = scan(pm, base, len); double t5 = now_ms();
  long none = scan(pm, base, len); double t6 = now_ms();
  if (all != (long)np || all2 != (long)np || none != 0) { fprintf(stderr, "pagemap_scan: reported %ld/%ld/%ld pages of %zu\n", all, all2, none, np); return 1; }
  close(u);
  /* The synchronous mode's write protection of everything, on a fresh synchronous uffd. */
  u = uffd_with(UFFD_FEATURE_PAGEFAULT_FLAG_WP, base, len);
  struct uffdio_writeprotect wp = { .range = { (uint64_t)base, len }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
  double t7 = now_ms();
  if (ioctl(u, UFFDIO_WRITEPROTECT, &wp)) { perror("pagemap_scan: UFFDIO_WRITEPROTECT"); return 2; }
  double t8 = now_ms();
  close(u);
  double t9 = now_ms();
  pid_t pid = fork();
  if (pid == 0) { pause(); _exit(0); }
  double t10 = now_ms();
  for (size_t i = 0; i < len; i += PG) base[i]++;
  double t11 = now_ms();
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  printf("size_mib=%zu scan_all=%.2f rewrite=%.2f scan_all2=%.2f scan_1pct=%.2f pages_1pct=%ld scan_none=%.3f wp_all=%.2f fork=%.2f cow_rewrite=%.2f\n",
    len >> 20, t1 - t0, t2 - t1, t3 - t2, t5 - t4, pct, t6 - t5, t8 - t7, t10 - t9, t11 - t10);
  return 0;
}
