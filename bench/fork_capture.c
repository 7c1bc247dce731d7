/*
 * fork_capture: what a program writing at full speed would feel if a snapshot were taken
 * by a fork the snapshotter makes it do (the kernel's copy-on-write holds the freeze's
 * image in a child that never runs; the snapshotter copies the written pages out of the
 * child), next to Redis BGSAVE's way, in one binary with one writer and one clock.
 * A measurement of a design (issue 10), not numactlx code: numactlx would make the
 * fork by injecting clone() in a ptrace stop; here the program's own controller thread
 * forks while the writer is held at a flag (the freeze), which leaves out the ptrace
 * stops (10–20 ms here, measured elsewhere) and keeps everything else.
 *
 *   fork_capture SIZE VARIANT SECONDS DUMPFILE
 *
 * SIZE (k/m/g) of private anonymous memory, 4 KiB pages (MADV_NOHUGEPAGE), all written
 * first. The writer writes one word into each of 64 random pages a turn (fast_writer.c's
 * random64) and counts turns in 10 ms bins and the longest gap between turns. After
 * SECONDS/3 the controller takes one snapshot, then the run goes on to SECONDS.
 * VARIANT:
 *   capture  the memory is registered on a userfaultfd with WP_ASYNC and EVENT_FORK (as
 *            numactlx's asynchronous mode makes it; a monitor thread reads the fork event);
 *            a first PAGEMAP_SCAN write-protects everything at start, and every page is
 *            written once more before the writer starts (its faults are not in "before"). The snapshot: hold
 *            the writer; PAGEMAP_SCAN read-and-reset of the written pages; fork (the child
 *            pauses); release the writer; process_vm_readv of the written pages from the
 *            child into DUMPFILE (mapped shared, MADV_POPULATE_WRITE per batch of 256
 *            pages, as numactlx's frames); msync + fsync; SIGKILL the child.
 *   late     capture, with the read-and-reset out of the pause (numactlx's held-staging.ts):
 *            hold the writer; fork; release it; then the written pages from the child's
 *            pagemap (PAGEMAP_SCAN, read only: its ptes are the freeze's while its uffd is
 *            open), the program's reset, and the pages the program wrote since the fork (the
 *            present pages pagemap no longer shows shared: bit 56, exclusive), on stderr.
 *   bgsave   fork; the child write()s the whole memory to DUMPFILE, fsyncs and exits; the
 *            controller waits for it (Redis BGSAVE).
 * Prints one line of figures (key=value): pause and fork ms, request→durable ms, the
 * writer's turns/s before, its slowest 250 ms during the snapshot ÷ before, its longest
 * gap (ms) from the request to durable, and its rate in the second after durable ÷ before.
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
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FIXTURE "fork_capture"
#include "../test/fixtures/fixture.h" /* parse_size, die, xorshift */
#include "bench.h"
/* <linux/userfaultfd.h> of Linux 6.4 */
#define FEATURE_WP_UNPOPULATED (1 << 13)
#define BIN_NS 10000000ull
#define BATCH 256

static char *mem;
static size_t size, pages;
static volatile int hold, holding, stop_all;
static uint32_t *bins;
static uint64_t *gaps;
static size_t nbins;
static uint64_t t0;
static int late;                 /* variant late: the fork's uffd is kept open until its child is scanned */
static volatile int fork_ufd = -1;

/* The writer: 64 random pages a turn; turns and the longest gap per 10 ms bin. */
static void *writer(void *arg) {
  (void)arg;
  uint64_t x = 88172645463325252ull, last = now_ns();
  while (!stop_all) {
    if (hold) {
      holding = 1;
      while (hold) __asm__ volatile("pause");
      holding = 0;
    }
    for (int i = 0; i < 64; i++) {
      xorshift(&x);
      ((volatile uint64_t *)(mem + (x % pages) * PAGE))[0] = x;
    }
    uint64_t t = now_ns();
    size_t b = (t - t0) / BIN_NS;
    if (b < nbins) {
      bins[b]++;
      if (t - last > gaps[b]) gaps[b] = t - last;
    }
    last = t;
  }
  return NULL;
}

/* Reads the uffd's events: a fork's (its new uffd is closed: the child never runs). */
static void *monitor(void *arg) {
  int uffd = (int)(intptr_t)arg;
  struct pollfd p = { .fd = uffd, .events = POLLIN };
  while (!stop_all) {
    if (poll(&p, 1, 100) <= 0) continue;
    struct uffd_msg m;
    if (read(uffd, &m, sizeof m) != sizeof m) continue;
    if (m.event != UFFD_EVENT_FORK) continue;
    if (late) fork_ufd = (int)m.arg.fork.ufd; /* closing it clears the child's uffd-wp bits */
    else close((int)m.arg.fork.ufd);
  }
  return NULL;
}

/* PAGEMAP_SCAN over the memory: written pages into `out` (addresses), reset if asked. */
static size_t scan_written(int pagemap, int reset, uint64_t *out, size_t max) {
  if (pagemap < 0) die("pagemap");
  struct page_region regions[1024];
  size_t n = 0;
  uint64_t start = (uint64_t)mem, end = start + size;
  while (start < end) {
    struct pm_scan_arg a = {
      .size = sizeof a, .start = start, .end = end, .vec = (uint64_t)regions, .vec_len = 1024,
      .flags = reset ? PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC : 0,
      .category_mask = PAGE_IS_WRITTEN, .return_mask = PAGE_IS_WRITTEN,
    };
    long r = ioctl(pagemap, PAGEMAP_SCAN, &a);
    if (r < 0) die("PAGEMAP_SCAN");
    for (long i = 0; i < r; i++)
      for (uint64_t p = regions[i].start; p < regions[i].end && n < max; p += PAGE) out[n++] = p;
    if (a.walk_end <= start) break;
    start = a.walk_end;
  }
  return n;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: fork_capture SIZE capture|late|bgsave SECONDS DUMPFILE\n");
    return 2;
  }
  size = parse_size(argv[1]);
  pages = size / PAGE;
  late = strcmp(argv[2], "late") == 0;
  int capture = late || strcmp(argv[2], "capture") == 0;
  double seconds = atof(argv[3]);
  nbins = (size_t)(seconds * 1e9 / BIN_NS) + 1;
  bins = calloc(nbins, sizeof *bins);
  gaps = calloc(nbins, sizeof *gaps);
  mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) die("mmap");
  madvise(mem, size, MADV_NOHUGEPAGE);
  memset(mem, 1, size);

  int uffd = -1, pagemap = -1;
  uint64_t *written = calloc(pages, sizeof *written);
  if (capture) {
    uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (uffd < 0) die("userfaultfd");
    struct uffdio_api api = { .api = UFFD_API,
      .features = FEATURE_WP_ASYNC | FEATURE_WP_UNPOPULATED | UFFD_FEATURE_EVENT_FORK };
    if (ioctl(uffd, UFFDIO_API, &api)) die("UFFDIO_API with WP_ASYNC (Linux 6.7)");
    struct uffdio_register reg = { .range = { (uint64_t)mem, size },
      .mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP };
    if (ioctl(uffd, UFFDIO_REGISTER, &reg)) die("UFFDIO_REGISTER");
    pagemap = open("/proc/self/pagemap", O_RDONLY);
    if (pagemap < 0) die("/proc/self/pagemap");
    scan_written(pagemap, 1, written, pages); /* protect all: tracking starts */
    memset(mem, 2, size); /* every page written since: the steady state between snapshots */
  }
  pthread_t w, m;
  if (capture) pthread_create(&m, NULL, monitor, (void *)(intptr_t)uffd);
  int dump = open(argv[4], O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (dump < 0) die("open %s", argv[4]);
  char *frames = NULL;
  if (capture) {
    if (fallocate(dump, 0, 0, (off_t)size)) die("fallocate");
    frames = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, dump, 0);
    if (frames == MAP_FAILED) die("mmap dump");
  }

  t0 = now_ns();
  pthread_create(&w, NULL, writer, NULL);
  struct timespec pre = { (time_t)(seconds / 3), (long)((seconds / 3 - (time_t)(seconds / 3)) * 1e9) };
  nanosleep(&pre, NULL);

  uint64_t t_req = now_ns(), t_fork0, t_fork1, t_resume, t_durable;
  size_t nwritten = pages;
  pid_t child;
  if (capture) {
    hold = 1;
    while (!holding) __asm__ volatile("pause");
    if (!late) nwritten = scan_written(pagemap, 1, written, pages);
    t_fork0 = now_ns();
    child = fork();
    if (child == 0) { for (;;) pause(); }
    t_fork1 = now_ns();
    hold = 0;
    t_resume = now_ns();
    if (late) {
      /* The cut's written pages from the child, which never runs; then the program's reset,
       * and the pages it wrote between the cut and the reset: its copy-on-write made them
       * exclusive (pagemap bit 56) while the child shares the rest. */
      char path[64];
      snprintf(path, sizeof path, "/proc/%d/pagemap", (int)child);
      int cpm = open(path, O_RDONLY);
      while (fork_ufd < 0) __asm__ volatile("pause");
      nwritten = scan_written(cpm, 0, written, pages);
      close(cpm);
      close(fork_ufd);
      uint64_t t_scan = now_ns();
      uint64_t *again = calloc(pages, sizeof *again);
      size_t reset = scan_written(pagemap, 1, again, pages);
      uint64_t t_reset = now_ns();
      uint64_t *pm = malloc(pages * 8);
      if (pread(pagemap, pm, pages * 8, (off_t)((uint64_t)mem / PAGE * 8)) != (ssize_t)(pages * 8)) die("pagemap read");
      size_t exclusive = 0;
      for (size_t i = 0; i < pages; i++) if (pm[i] & (1ull << 56)) exclusive++;
      fprintf(stderr, "late: child scan %.1f ms (%zu written), reset %.1f ms (%zu), exclusive read %.1f ms: %zu pages written after the cut\n",
              (t_scan - t_resume) / 1e6, nwritten, (t_reset - t_scan) / 1e6, reset, (now_ns() - t_reset) / 1e6, exclusive);
      free(pm); free(again);
    }
    struct iovec local[BATCH], remote[BATCH];
    for (size_t i = 0; i < nwritten; i += BATCH) {
      size_t n = nwritten - i < BATCH ? nwritten - i : BATCH;
      for (size_t k = 0; k < n; k++) {
        size_t off = written[i + k] - (uint64_t)mem;
        local[k] = (struct iovec){ frames + off, PAGE };
        remote[k] = (struct iovec){ (void *)written[i + k], PAGE };
      }
      /* one populate per batch, as numactlx's RemoteCopier (its frames are not contiguous) */
      for (size_t k = 0; k < n; k++) madvise(local[k].iov_base, PAGE, MADV_POPULATE_WRITE);
      if (process_vm_readv(child, local, n, remote, n, 0) != (ssize_t)(n * PAGE)) die("process_vm_readv");
    }
    if (msync(frames, size, MS_SYNC) || fsync(dump)) die("sync");
    t_durable = now_ns();
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
  } else {
    t_fork0 = now_ns();
    child = fork();
    if (child == 0) {
      for (size_t off = 0; off < size;) {
        ssize_t n = write(dump, mem + off, size - off < (1 << 20) ? size - off : (1 << 20));
        if (n <= 0) _exit(1);
        off += (size_t)n;
      }
      _exit(fsync(dump) ? 1 : 0);
    }
    t_fork1 = t_resume = now_ns();
    int st;
    waitpid(child, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st)) { errno = EIO; die("the bgsave child"); }
    t_durable = now_ns();
  }
  uint64_t t_end = t_durable + 1000000000ull;
  while (now_ns() < t_end && (t_end - t0) / BIN_NS < nbins) usleep(10000);
  stop_all = 1;
  pthread_join(w, NULL);
  if (capture) pthread_join(m, NULL);

  /* Figures from the bins: before = the second before the request. */
  size_t breq = (t_req - t0) / BIN_NS, bdur = (t_durable - t0) / BIN_NS, bend = (t_end - t0) / BIN_NS;
  if (bend > nbins) bend = nbins;
  double before = 0;
  for (size_t b = breq >= 100 ? breq - 100 : 0; b < breq; b++) before += bins[b];
  before /= (breq >= 100 ? 100 : breq) * 0.01;
  double slowest = 1e18;
  for (size_t b = breq; b + 25 <= bdur + 1 && b + 25 <= nbins; b++) {
    double s = 0;
    for (size_t k = 0; k < 25; k++) s += bins[b + k];
    if (s / 0.25 < slowest) slowest = s / 0.25;
  }
  if (slowest == 1e18) slowest = 0;
  uint64_t gap = 0;
  for (size_t b = breq; b <= bdur && b < nbins; b++) if (gaps[b] > gap) gap = gaps[b];
  double after = 0;
  for (size_t b = bdur + 1; b < bend; b++) after += bins[b];
  after /= (bend - bdur - 1) * 0.01;
  printf("variant=%s size=%zu written_pages=%zu pause_ms=%.1f fork_ms=%.1f req_to_durable_ms=%.0f "
         "turns_per_s_before=%.0f slowest_250ms_ratio=%.3f longest_gap_ms=%.1f after_durable_ratio=%.3f\n",
         argv[2], size, nwritten, (t_resume - t_req) / 1e6, (t_fork1 - t_fork0) / 1e6, (t_durable - t_req) / 1e6,
         before, slowest / before, gap / 1e6, after / before);
  return 0;
}
