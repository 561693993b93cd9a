/*
 * cmocka fixtures for tests that own an engine. A failed assert longjmps
 * out of the test body, past its ntmm_engine_destroy; cmocka still runs
 * the test's teardown, so an engine made by a setup and destroyed by a
 * teardown never outlives its test (with its system threads, its paging
 * file and the pool's address space) to disturb the tests after it.
 *
 * The teardown first closes any access section the failed body left open
 * (ntmm_engine_destroy aborts inside one), then unregisters the thread if
 * its setup registered it and destroys the engine, which frees its live
 * processes and pins.
 */
#ifndef NTMM_TEST_FIXTURE_H
#define NTMM_TEST_FIXTURE_H

#include "testutil.h"

#include "engine.h"
#include "virt/tlb.h"

/* Ends every access section open on this thread, registers nothing. */
static inline void fixture_close_sections(ntmm_engine_t *e)
{
	while (ntmm__tlb.depth > 0)
		ntmm_access_end(e);
}

/* What a teardown does with an engine it made without registering the
   thread (NULL: nothing). */
static inline void fixture_engine_destroy(ntmm_engine_t *e)
{
	if (!e)
		return;
	fixture_close_sections(e);
	ntmm_engine_destroy(e);
}

/* The same for an engine whose setup registered the calling thread. */
static inline void fixture_engine_release(ntmm_engine_t *e)
{
	if (!e)
		return;
	fixture_close_sections(e);
	ntmm_thread_unregister(e);
	ntmm_engine_destroy(e);
}

#endif
