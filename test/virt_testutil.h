/* Helpers shared by the virtual-layer tests: a small engine without system
   threads, registered for the calling thread. */
#ifndef NTMM_VIRT_TESTUTIL_H
#define NTMM_VIRT_TESTUTIL_H

#include "testutil.h"
#include <ntmm/stats.h>
#include <string.h>

#define KiB  (1024ull)
#define MiB  (1024ull * 1024)
#define PG   4096ull
#define GRAN 65536ull

static inline ntmm_engine_t *virt_engine(size_t bytes, uint64_t seed)
{
	ntmm_config_t c;
	ntmm_config_init(&c);
	c.physical_bytes = bytes;
	c.start_threads = 0;
	c.aslr_seed = seed;
	c.pagefile_path = NULL;
	ntmm_engine_t *e = NULL;
	assert_int_equal(ntmm_engine_create(&c, &e), 0);
	assert_int_equal(ntmm_thread_register(e), 0);
	return e;
}

static inline void virt_engine_done(ntmm_engine_t *e)
{
	assert_int_equal(ntmm_audit(e), 0);
	ntmm_thread_unregister(e);
	ntmm_engine_destroy(e);
}

static inline ntmm_process_t *virt_process(ntmm_engine_t *e)
{
	ntmm_process_t *p = NULL;
	assert_int_equal(ntmm_process_create(e, &p), 0);
	assert_non_null(p);
	return p;
}

static inline uint64_t stat_of(ntmm_engine_t *e, size_t offset)
{
	ntmm_stats_t st;
	assert_int_equal(ntmm_stats_get(e, &st), 0);
	return *(uint64_t *)((char *)&st + offset);
}
#define STAT(e, field) stat_of((e), offsetof(ntmm_stats_t, field))

#endif
