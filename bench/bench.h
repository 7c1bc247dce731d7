/*
 * What bench/'s C programs share: a monotonic clock in ns, ms and µs, a comparison for qsort of doubles, and PAGEMAP_SCAN's uapi (<linux/fs.h> of Linux 6.7: the local
 * headers may be older).
 */
#ifndef NUMACTLX_BENCH_H
#define NUMACTLX_BENCH_H
#include <stdint.h>
#include <time.h>
#include <sys/ioctl.h>

static inline uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static inline double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static inline double now_us(void)
{
	return now_ms() * 1e3;
}

static inline int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct page_region { uint64_t start, end, categories; };
struct pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages, category_inverted,
		category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_WRITTEN (1 << 1)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PM_SCAN_WP_MATCHING (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
/* <linux/userfaultfd.h> of Linux 6.7 */
#define FEATURE_WP_ASYNC (1 << 15)
#endif
