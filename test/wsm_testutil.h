/*
 * Helpers for the working set manager and system-thread tests: engines
 * with or without the system threads and a short balance tick, a process
 * with a committed region, page patterns, RSS, and liveness waits (a
 * minute without the awaited progress is a hang, not a slow machine).
 */
#ifndef NTMM_TEST_WSM_TESTUTIL_H
#define NTMM_TEST_WSM_TESTUTIL_H

#include "testutil.h"

#include <ntmm/stats.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

#define PG  4096ull
#define MiB (1024ull * 1024)

#define LIVENESS_NS (60ull * 1000000000ull)

typedef struct wsm_opts {
	size_t mib;           /* pool size */
	bool threads;         /* start the system threads */
	unsigned tick_ms;     /* balance tick (0: 10 ms) */
	unsigned idle_ms;     /* swap idle time (0: never) */
	const char *pagefile; /* path or NULL */
	size_t pf_initial, pf_max;
	int backing;
} wsm_opts_t;

static inline ntmm_engine_t *wsm_engine(const wsm_opts_t *o)
{
	ntmm_config_t c;
	ntmm_config_init(&c);
	c.physical_bytes = o->mib * MiB;
	c.start_threads = o->threads;
	c.balance_tick_ms = o->tick_ms ? o->tick_ms : 10;
	c.swap_idle_ms = o->idle_ms;
	c.pagefile_path = o->pagefile;
	c.pagefile_initial = o->pf_initial;
	c.pagefile_maximum = o->pf_max;
	c.backing = o->backing;
	ntmm_engine_t *e = NULL;
	assert_int_equal(ntmm_engine_create(&c, &e), 0);
	assert_int_equal(ntmm_thread_register(e), 0);
	return e;
}

static inline void wsm_engine_done(ntmm_engine_t *e)
{
	assert_int_equal(ntmm_audit(e), 0);
	ntmm_thread_unregister(e);
	ntmm_engine_destroy(e);
}

/* A process with `pages` committed read-write pages at *base. */
static inline ntmm_process_t *wsm_process(ntmm_engine_t *e, size_t pages, uint64_t *base)
{
	ntmm_process_t *p = NULL;
	assert_int_equal(ntmm_process_create(e, &p), 0);
	*base = 0;
	assert_int_equal(ntmm_allocate(p, base, pages * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT,
	                               NTMM_PAGE_READWRITE),
	                 0);
	return p;
}

static inline uint64_t wsm_pattern(uint64_t tag, size_t page, size_t word)
{
	uint64_t x = (tag << 40) ^ ((uint64_t)page << 12) ^ word;
	x *= 0x9e3779b97f4a7c15ull;
	return x ^ (x >> 29);
}

/* Writes a page-unique pattern into pages [first, first + n). */
static inline void wsm_fill(ntmm_process_t *p, uint64_t base, uint64_t tag, size_t first, size_t n)
{
	uint64_t buf[PG / 8];
	for (size_t i = first; i < first + n; i++) {
		for (size_t w = 0; w < PG / 8; w++)
			buf[w] = wsm_pattern(tag, i, w);
		assert_int_equal(ntmm_write(p, base + i * PG, buf, PG), 0);
	}
}

/* Number of pages in [first, first + n) whose pattern is wrong. */
static inline size_t wsm_check(ntmm_process_t *p, uint64_t base, uint64_t tag, size_t first,
                               size_t n)
{
	uint64_t buf[PG / 8];
	size_t bad = 0;
	for (size_t i = first; i < first + n; i++) {
		if (ntmm_read(p, base + i * PG, buf, PG) != 0) {
			bad++;
			continue;
		}
		for (size_t w = 0; w < PG / 8; w++)
			if (buf[w] != wsm_pattern(tag, i, w)) {
				bad++;
				break;
			}
	}
	return bad;
}

/* Reads one byte of each page of [first, first + n) (sets Accessed). */
static inline void wsm_touch(ntmm_process_t *p, uint64_t base, size_t first, size_t n)
{
	for (size_t i = first; i < first + n; i++) {
		uint8_t b;
		assert_int_equal(ntmm_read(p, base + i * PG, &b, 1), 0);
	}
}

static inline ntmm_process_info_t wsm_info(ntmm_process_t *p)
{
	ntmm_process_info_t in;
	assert_int_equal(ntmm_process_info(p, &in), 0);
	return in;
}

static inline ntmm_stats_t wsm_stats(ntmm_engine_t *e)
{
	ntmm_stats_t st;
	assert_int_equal(ntmm_stats_get(e, &st), 0);
	return st;
}

static inline size_t wsm_rss(void)
{
	long size, resident;
	FILE *f = fopen("/proc/self/statm", "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%ld %ld", &size, &resident), 2);
	fclose(f);
	return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

static inline uint64_t wsm_load(_Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

/* Waits (1 ms naps) until cond(arg) holds; fails after LIVENESS_NS with
   no success. */
#define WSM_WAIT_UNTIL(cond)                                                            \
	do {                                                                            \
		uint64_t t0_ = test_now_ns();                                           \
		while (!(cond)) {                                                       \
			if (test_now_ns() - t0_ > LIVENESS_NS)                          \
				fail_msg("no progress in 60 s waiting for: %s", #cond); \
			usleep(1000);                                                   \
		}                                                                       \
	} while (0)

/* A scratch path under NTMM_TEST_TMPDIR (or /tmp); caller frees. */
static inline char *wsm_tmp_path(const char *name)
{
	const char *base = getenv("NTMM_TEST_TMPDIR");
	char *p = malloc(600);
	snprintf(p, 600, "%s/ntmm-wsm-%d-%s", base && *base ? base : "/tmp", (int)getpid(), name);
	return p;
}

#endif
