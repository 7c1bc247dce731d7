/*
 * fast_writer: a program that writes its memory at full speed and records what it felt,
 * for bench/fast-writer.mjs (the snapshot-speed issue's "program writing at full speed").
 *
 *   fast_writer SIZE MODE SECONDS
 *
 * SIZE (k/m/g) bytes of private anonymous memory, 4 KiB pages (MADV_NOHUGEPAGE), every
 * page written once before `ready` is printed. MODE:
 *   random64   each loop turn writes one word into each of 64 random pages (xorshift)
 *   seq        each loop turn writes one word into the next page, cycling
 *   idle       no writes: sleeps until the end (the request-to-durable baseline)
 * For SECONDS after `ready`, the turns done in every 10 ms bin are counted, and so is
 * the longest gap between two turns that ended in each bin (µs).
 *
 * SIGUSR2: fork now, as Redis BGSAVE does: the child writes the whole memory to the file
 * named by FAST_WRITER_DUMP (default /dev/null) and _exits; the parent goes on writing
 * and notes when the child ended (waitpid WNOHANG every 1,024 turns), printing
 * `fork_ns START DURATION` after the fork and `child_done NS` when it reaped the child,
 * each at once (a driver that cannot know in advance how long the child takes, as in the
 * TCG guest, waits for that line).
 * SIGUSR1: end now, as if SECONDS had passed (SECONDS is then only an upper bound).
 *
 * `ready pages=N pid=P` once the memory is written. At the end it prints, one per line:
 * `start NS` (CLOCK_MONOTONIC of bin 0), `bins N`, the N counts on one line and the N
 * longest gaps (µs) on the next (N covers up to the end, early or not).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BIN_NS 10000000ull

static volatile sig_atomic_t fork_wanted, end_wanted;

static void on_usr2(int sig) { (void)sig; fork_wanted = 1; }
static void on_usr1(int sig) { (void)sig; end_wanted = 1; }

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static size_t parse_size(const char *s) {
  char *end;
  double v = strtod(s, &end);
  switch (*end) {
    case 'k': case 'K': v *= 1024; break;
    case 'm': case 'M': v *= 1024 * 1024; break;
    case 'g': case 'G': v *= 1024.0 * 1024 * 1024; break;
  }
  return (size_t)v;
}

static void dump_child(const char *mem, size_t size) {
  const char *path = getenv("FAST_WRITER_DUMP");
  int fd = open(path ? path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) _exit(1);
  for (size_t off = 0; off < size;) {
    ssize_t n = write(fd, mem + off, size - off < (1 << 20) ? size - off : (1 << 20));
    if (n <= 0) _exit(1);
    off += (size_t)n;
  }
  _exit(0);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: fast_writer SIZE random64|seq|idle SECONDS\n");
    return 2;
  }
  size_t size = parse_size(argv[1]);
  const char *mode = argv[2];
  double seconds = atof(argv[3]);
  size_t pages = size / 4096;
  char *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) { perror("mmap"); return 1; }
  madvise(mem, size, MADV_NOHUGEPAGE);
  for (size_t p = 0; p < pages; p++) mem[p * 4096] = 1;
  signal(SIGUSR2, on_usr2);
  signal(SIGUSR1, on_usr1);

  size_t nbins = (size_t)(seconds * 1e9 / BIN_NS) + 1;
  uint32_t *bins = calloc(nbins, sizeof *bins);
  uint32_t *gaps = calloc(nbins, sizeof *gaps);
  printf("ready pages=%zu pid=%d\n", pages, (int)getpid());
  fflush(stdout);

  uint64_t start = now_ns(), end = start + (uint64_t)(seconds * 1e9);
  uint64_t last = start;
  int forks = 0;
  pid_t child = 0;
  uint64_t x = 88172645463325252ull, turns = 0;
  size_t next = 0;
  int idle = strcmp(mode, "idle") == 0, seq = strcmp(mode, "seq") == 0;
  for (;;) {
    if (idle) {
      struct timespec ts = { 0, 1000000 };
      nanosleep(&ts, NULL);
    } else if (seq) {
      ((volatile uint64_t *)(mem + next * 4096))[0] = turns;
      if (++next == pages) next = 0;
    } else {
      for (int i = 0; i < 64; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        ((volatile uint64_t *)(mem + (x % pages) * 4096))[1] = turns;
      }
    }
    turns++;
    uint64_t t = now_ns();
    if (t >= end || end_wanted) break;
    size_t bin = (t - start) / BIN_NS;
    uint32_t gap_us = (uint32_t)((t - last) / 1000);
    if (gap_us > gaps[bin]) gaps[bin] = gap_us;
    last = t;
    bins[bin]++;
    if (fork_wanted && child == 0 && forks < 4) {
      fork_wanted = 0;
      uint64_t fork_start = now_ns();
      child = fork();
      if (child == 0) dump_child(mem, size);
      uint64_t fork_end = now_ns();
      forks++;
      printf("fork_ns %llu %llu\n", (unsigned long long)fork_start, (unsigned long long)(fork_end - fork_start));
      fflush(stdout);
      last = now_ns();
    }
    if (child > 0 && (turns & 1023) == 0 && waitpid(child, NULL, WNOHANG) == child) {
      printf("child_done %llu\n", (unsigned long long)now_ns());
      fflush(stdout);
      child = 0;
    }
  }
  uint64_t stopped = now_ns();
  if (child > 0) { waitpid(child, NULL, 0); printf("child_done %llu\n", (unsigned long long)now_ns()); }
  size_t used = (stopped - start) / BIN_NS + 1;
  if (used > nbins) used = nbins;
  printf("start %llu\nbins %zu\n", (unsigned long long)start, used);
  for (size_t i = 0; i < used; i++) printf("%u%c", bins[i], i + 1 == used ? '\n' : ' ');
  for (size_t i = 0; i < used; i++) printf("%u%c", gaps[i], i + 1 == used ? '\n' : ' ');
  return 0;
}
