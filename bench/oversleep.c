/*
 * oversleep: how long the CPU it runs on is taken from a thread that wants it — sleeps of
 * 1 ms in a loop for SECONDS, each measured; prints the longest overshoot and how many were
 * over 5 and over 10 ms. Run at nice -20 next to the work under test, both pinned to one
 * CPU (bench/frame-stall.sh): a long overshoot is a stretch that nothing on that CPU could
 * preempt, whatever its priority.
 *
 *   oversleep SECONDS
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench.h"

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: oversleep SECONDS\n");
    return 2;
  }
  double end = now_ms() + atof(argv[1]) * 1e3, worst = 0;
  int over5 = 0, over10 = 0;
  while (now_ms() < end) {
    double t = now_ms();
    usleep(1000);
    double late = now_ms() - t - 1.0;
    if (late > worst) worst = late;
    over5 += late > 5;
    over10 += late > 10;
  }
  printf("oversleep: longest %.1f ms, %d over 5 ms, %d over 10 ms\n", worst, over5, over10);
  return 0;
}
