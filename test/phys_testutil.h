/*
 * Helpers shared by the phys tests: engines with a given pool size,
 * topology and backing, and white-box access to frames and their state.
 */
#ifndef NTMM_PHYS_TESTUTIL_H
#define NTMM_PHYS_TESTUTIL_H

#include "testutil.h"

#include <string.h>

#include "engine.h"

static inline ntmm_engine_t *phys_engine(size_t mib, const char *topology, int backing,
                                         int start_threads)
{
	ntmm_config_t c;
	ntmm_config_init(&c);
	c.physical_bytes = mib << 20;
	c.topology = topology;
	c.backing = backing;
	c.start_threads = start_threads;
	ntmm_engine_t *e = NULL;
	int err = ntmm_engine_create(&c, &e);
	if (err)
		fprintf(stderr, "engine create: %s (%s)\n", ntmm_strerror(err),
		        ntmm_error_detail());
	assert_int_equal(err, 0);
	return e;
}

static inline uint64_t st(ntmm_engine_t *e, ntmm__pfn_t pfn)
{
	return atomic_load(&ntmm__pfn(e, pfn)->state);
}

static inline unsigned loc(ntmm_engine_t *e, ntmm__pfn_t pfn)
{
	return ntmm__pfn_loc(st(e, pfn));
}

static inline bool frame_is(ntmm_engine_t *e, ntmm__pfn_t pfn, uint8_t byte)
{
	const uint8_t *p = ntmm__pfn_host(e, pfn);
	for (size_t i = 0; i < 4096; i++)
		if (p[i] != byte)
			return false;
	return true;
}

static inline ntmm__pfn_t must_alloc(ntmm_engine_t *e, unsigned flags)
{
	ntmm__pfn_t pfn = NTMM__PFN_NONE;
	assert_int_equal(ntmm__page_alloc(e, flags, NTMM__ALLOC_NODE_ANY, NTMM__COLOUR_ANY, &pfn),
	                 0);
	return pfn;
}

#endif
