/*
 * frame_write: what writing a snapshot's pages into a file backing's frames costs, by the
 * two ways the copier could (src/engine-thread/remote-copy.ts uses the first), on a fresh
 * fallocated file as a new backing's frames are:
 *
 *   frame_write mapping|random|warmed|pwrite SIZE_MIB FILE
 *
 *   mapping  MAP_SHARED mapping; per 1 MiB batch MADV_POPULATE_WRITE, then memcpy into it
 *            (the copier before stop 36: process_vm_readv into the mapping after the populate)
 *   random   the same with MADV_RANDOM on the mapping: faults fill one page each, no
 *            readahead, no large folio (the engine since stop 36: faultPagesOneByOne)
 *   warmed   as random, after a pread(2) of the whole file in 128 KiB calls through a second
 *            open of it with POSIX_FADV_RANDOM, timed apart (the checksum worker's idle-time
 *            warming: backing/frame-warmer.ts)
 *   pwrite   pwrite(2) of each 1 MiB batch from a buffer (tried in stop 24, 6c18875, reverted)
 *
 * Then fsync. Prints one line: [warm ms,] fill ms, µs a page, fsync ms. The file is removed.
 * Memory the guest freed goes back to the host ≈ 2 s later and is slow to touch again
 * (BENCHMARKS "Oddities"): sleep a few seconds before each run, or the first run pays for
 * the second's pages; alternate the two ways.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"

#define BATCH (256 * 4096)

int main(int argc, char **argv) {
  if (argc != 4 || (strcmp(argv[1], "mapping") && strcmp(argv[1], "random") && strcmp(argv[1], "warmed") && strcmp(argv[1], "pwrite"))) {
    fprintf(stderr, "usage: frame_write mapping|random|warmed|pwrite SIZE_MIB FILE\n");
    return 2;
  }
  size_t size = (size_t)atoi(argv[2]) << 20;
  int by_pwrite = strcmp(argv[1], "pwrite") == 0;
  int fd = open(argv[3], O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || fallocate(fd, 0, 0, (off_t)size)) { perror("frame_write: file"); return 1; }
  char *src = malloc(BATCH);
  memset(src, 7, BATCH);
  char *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) { perror("frame_write: mmap"); return 1; }
  double warm_ms = -1;
  if (strcmp(argv[1], "warmed") == 0) {
    static char chunk[128 << 10];
    int rfd = open(argv[3], O_RDONLY);
    if (rfd < 0) { perror("frame_write: open"); return 1; }
    posix_fadvise(rfd, 0, 0, POSIX_FADV_RANDOM);
    double w0 = now_ms();
    for (size_t off = 0; off < size; off += sizeof chunk)
      if (pread(rfd, chunk, sizeof chunk, (off_t)off) != (ssize_t)sizeof chunk) { perror("frame_write: pread"); return 1; }
    warm_ms = now_ms() - w0;
    close(rfd);
  }
  if (strcmp(argv[1], "random") == 0 || strcmp(argv[1], "warmed") == 0) madvise(map, size, MADV_RANDOM);
  double t0 = now_ms();
  for (size_t off = 0; off < size; off += BATCH) {
    if (by_pwrite) {
      if (pwrite(fd, src, BATCH, (off_t)off) != BATCH) { perror("frame_write: pwrite"); return 1; }
    } else {
      madvise(map + off, BATCH, MADV_POPULATE_WRITE);
      memcpy(map + off, src, BATCH);
    }
  }
  double t1 = now_ms();
  if (fsync(fd)) { perror("frame_write: fsync"); return 1; }
  double t2 = now_ms();
  if (warm_ms >= 0) printf("warm %.0f ms (%.2f us a page), ", warm_ms, warm_ms * 1e3 / (double)(size / 4096));
  printf("%s %zu MiB: fill %.0f ms (%.2f us a page), fsync %.0f ms\n", argv[1], size >> 20, t1 - t0,
         (t1 - t0) * 1e3 / (double)(size / 4096), t2 - t1);
  unlink(argv[3]);
  return 0;
}
