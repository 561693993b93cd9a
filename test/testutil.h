/*
 * Shared test helpers: cmocka includes, a scale factor for stress sizes
 * (NTMM_TEST_SCALE, e.g. 0.25 under TSan), a failure counter that worker
 * threads bump (cmocka's asserts must run on the main thread), and small
 * thread/engine helpers.
 */
#ifndef NTMM_TESTUTIL_H
#define NTMM_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <ntmm.h>

/* Stress sizes are multiplied by this (default 1). */
static inline double test_scale(void)
{
	const char *s = getenv("NTMM_TEST_SCALE");
	double v = s ? atof(s) : 1.0;
	return v > 0 ? v : 1.0;
}
static inline long scaled(long n)
{
	long v = (long)(n * test_scale());
	return v > 0 ? v : 1;
}

/* A pool size (MiB) for a test whose page counts are scaled: grows with
   a scale above 1 (rounded up to whole 2 MiB chunks), never shrinks. */
static inline size_t scaled_mib(size_t mib)
{
	double s = test_scale();
	if (s <= 1.0)
		return mib;
	size_t v = (size_t)((double)mib * s + 0.999);
	return (v + 1) & ~(size_t)1;
}

/* Worker threads record failures here; the main thread asserts it is 0. */
static __attribute__((unused)) atomic_long test_failures;
#define WORKER_CHECK(cond)                                                                       \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			if (atomic_fetch_add(&test_failures, 1) < 10)                            \
				fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
				        #cond);                                                  \
		}                                                                                \
	} while (0)

static inline uint64_t test_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Runs fn(i) on n threads and joins them. */
typedef void *(*test_thread_fn)(void *);
static inline void run_threads(int n, test_thread_fn fn, void *args, size_t arg_size)
{
	pthread_t *t = calloc((size_t)n, sizeof(*t));
	for (int i = 0; i < n; i++)
		assert_int_equal(
		    pthread_create(&t[i], NULL, fn, (char *)args + (size_t)i * arg_size), 0);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	free(t);
}

/* xorshift64* for repeatable randomized tests */
static inline uint64_t test_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

#endif
