/*
 * Paging-file size against the commit charge, driven pass by pass with the
 * system threads off (ntmm__segderef_pass is what the segment dereference
 * thread runs each tick):
 *   - a file grown at commit time for committed, not yet written pages
 *     keeps that space through the thread's shrink passes (it is neither
 *     cut nor grown back), and the commit limit stays above the charge;
 *   - once the charge is gone, the passes shrink the file back to its
 *     initial size and the limit follows the space;
 *   - with the system threads running, a modified page writer that finds
 *     every file full gets room from the segment dereference thread;
 *   - a full disk: commits beyond the space obtained are NTMM_ECOMMIT,
 *     nothing stored is lost, and after the thread's periodic retry the
 *     file grows again once the disk has room.
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

static fixture_t *fixture(size_t initial, size_t max, bool threads)
{
	fixture_t *f = calloc(1, sizeof(*f));
	f->dir = io_tmpdir();
	snprintf(f->path, sizeof(f->path), "%s/pagefile.sys", f->dir);
	wsm_opts_t o = {.mib = POOL_MIB,
	                .threads = threads,
	                .tick_ms = 10,
	                .pagefile = f->path,
	                .pf_initial = initial,
	                .pf_max = max};
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
	fixture_t *f = fixture(1 * MiB, 64 * MiB, false);
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
	uint64_t need = s.commit_pages - e->virt.commit_frames;
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
	assert_int_equal(s.commit_limit_pages, e->virt.commit_frames + initial - 1);
	fixture_done(f);
}

/* A full disk: growth for a commit fails, the commit is NTMM_ECOMMIT, the
   limit counts only the space obtained, and nothing committed earlier is
   lost. Once the disk has room, the segment dereference thread's periodic
   retry lets the same commit succeed. */
static void a_full_disk_refuses_commits_until_it_has_room(void **state)
{
	(void)state;
	char *dir = io_tmpdir();
	char path[600];
	snprintf(path, sizeof(path), "%s/pagefile.sys", dir);
	wsm_opts_t o = {.mib = POOL_MIB};
	ntmm_engine_t *e = wsm_engine(&o);
	ntmm__faultdrv_t *fd = calloc(1, sizeof(*fd));
	ntmm__faultdrv_init(fd, "faulty", &e->io.file_driver);
	assert_int_equal(ntmm__io_driver_register(&e->io, &fd->drv), 0);
	assert_int_equal(ntmm__pagefile_add(&e->io, path, 1 * MiB, 64 * MiB, "faulty", NULL), 0);
	uint64_t slots = 1 * MiB / PG - 1; /* slot 0 is reserved */
	uint64_t cf = e->virt.commit_frames;
	assert_int_equal(wsm_stats(e).commit_limit_pages, cf + slots);

	/* the disk is full: what the initial size holds can be committed, no
	   more (16 pages left for the region's page tables). Near the limit
	   only the 64 uncommitted pages are spare, so the pages are written
	   and read 32 at a time, trimmed in between. */
	atomic_store(&fd->grow_enospc, true);
	uint64_t base, npg = cf + slots - 64 - 16;
	ntmm_process_t *p = wsm_process(e, npg, &base);
	for (size_t first = 0; first < npg; first += 32) {
		size_t n = npg - first < 32 ? npg - first : 32;
		wsm_fill(p, base, 3, first, n);
		ntmm_ws_empty(p);
		while (ntmm__mpw_write_batch(e, NTMM__MPW_BATCH, NULL) > 0)
			;
	}
	uint64_t more = 0;
	assert_int_equal(ntmm_allocate(p, &more, 1024 * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT,
	                               NTMM_PAGE_READWRITE),
	                 NTMM_ECOMMIT);
	ntmm_stats_t s = wsm_stats(e);
	assert_int_equal(s.commit_limit_pages, cf + slots);
	assert_true(s.commit_pages <= s.commit_limit_pages);
	for (size_t first = 0; first < npg; first += 32) {
		size_t n = npg - first < 32 ? npg - first : 32;
		assert_int_equal(wsm_check(p, base, 3, first, n), 0);
		ntmm_ws_empty(p);
	}

	/* room again: after the thread's retry the commit goes through */
	atomic_store(&fd->grow_enospc, false);
	passes(e, NTMM__SEGDEREF_GROWTH_RETRY);
	more = 0;
	assert_int_equal(ntmm_allocate(p, &more, 1024 * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT,
	                               NTMM_PAGE_READWRITE),
	                 0);
	assert_true(wsm_stats(e).commit_limit_pages >= cf + slots + 1024 - 80);
	assert_int_equal(ntmm_process_destroy(p), 0);
	wsm_engine_done(e);
	free(fd);
	io_rmtree(dir);
}

/* With the system threads running, a modified page writer that finds
   every paging file full does not grow one itself (it must not block in
   fallocate): it asks the segment dereference thread, which grows a file
   and wakes it, and the pages are written. */
static void the_writer_gets_room_from_the_segment_dereference_thread(void **state)
{
	(void)state;
	fixture_t *f = fixture(1 * MiB, 64 * MiB, true);
	ntmm_engine_t *e = f->e;
	ntmm__segderef_thread_t *sd = &e->systhreads.segderef;
	ntmm__pagefile_t *pf = file0(e);

	/* take every free slot, so the writer finds the file full */
	enum { HELD = 64 };
	ntmm__pfloc_t held[HELD];
	size_t held_n[HELD], nheld = 0;
	while (nheld < HELD &&
	       ntmm__pagefile_alloc_nogrow(&e->io, 64, 1, &held[nheld], &held_n[nheld]) == 0)
		nheld++;
	assert_true(nheld > 0 && nheld < HELD);
	uint64_t size0 = atomic_load(&pf->size_pages), grows0 = wsm_load(&sd->grows);
	uint64_t written0 = wsm_stats(e).pages_written;

	/* 512 dirty pages trimmed to Modified (the charge fits in the frames:
	   no commit-time growth), then the writer is woken */
	enum { N = 512 };
	uint64_t base;
	ntmm_process_t *p = wsm_process(e, N, &base);
	wsm_fill(p, base, 5, 0, N);
	ntmm_ws_empty(p);
	ntmm__writer_wake(&e->phys);
	WSM_WAIT_UNTIL(wsm_stats(e).pages_written >= written0 + N);
	assert_true(wsm_load(&sd->grows) > grows0);
	assert_true(atomic_load(&pf->size_pages) > size0);

	for (size_t i = 0; i < nheld; i++)
		ntmm__pagefile_free(&e->io, held[i], held_n[i]);
	assert_int_equal(wsm_check(p, base, 5, 0, N), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	fixture_done(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(shrink_passes_keep_the_space_the_charge_needs),
	    cmocka_unit_test(a_full_disk_refuses_commits_until_it_has_room),
	    cmocka_unit_test(the_writer_gets_room_from_the_segment_dereference_thread),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
