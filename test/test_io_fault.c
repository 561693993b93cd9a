/* The fault-injecting driver: the Nth write or read fails, short reads and
   writes, ENOSPC on growth, random failures under concurrency — each is
   NTMM_EIO (or NTMM_ECOMMIT for space) to the caller and loses nothing
   already stored. Also the driver registry's rules. */
#include "iotest.h"

#include <errno.h>

typedef struct fixture {
	char *dir, *path;
	ntmm__stats_t stats;
	ntmm__io_t io;
	ntmm__faultdrv_t fd;
	unsigned idx;
} fixture_t;

static int setup_backend(void **state, int backend)
{
	fixture_t *f = calloc(1, sizeof(*f));
	f->dir = io_tmpdir();
	f->path = io_path(f->dir, "faulty");
	assert_int_equal(ntmm__stats_init(&f->stats, 4), 0);
	assert_int_equal(ntmm__io_setup(&f->io, &f->stats, backend, 0), 0);
	ntmm__faultdrv_init(&f->fd, "faulty", &f->io.file_driver);
	assert_int_equal(ntmm__io_driver_register(&f->io, &f->fd.drv), 0);
	assert_int_equal(ntmm__pagefile_add(&f->io, f->path, 256 << 10, 4 << 20, "faulty", &f->idx),
	                 0);
	ntmm__rcu_thread_online();
	*state = f;
	return 0;
}
static int setup(void **state)
{
	return setup_backend(state, NTMM__IO_AUTO);
}
static int setup_sync(void **state)
{
	return setup_backend(state, NTMM__IO_SYNC);
}
static int teardown(void **state)
{
	fixture_t *f = *state;
	ntmm__rcu_thread_offline();
	ntmm__io_teardown(&f->io);
	ntmm__stats_fini(&f->stats);
	free(f->path);
	io_rmtree(f->dir);
	free(f);
	return 0;
}

/* Allocates n clusters of c pages, writes version v of each; returns locs. */
static void write_clusters(fixture_t *f, ntmm__pfloc_t *locs, unsigned n, unsigned c, uint64_t v)
{
	void *buf = page_alloc(c);
	void *pv[64];
	for (unsigned i = 0; i < n; i++) {
		size_t got;
		if (v == 0)
			assert_int_equal(ntmm__pagefile_alloc(&f->io, c, c, &locs[i], &got), 0);
		for (unsigned p = 0; p < c; p++) {
			pv[p] = (char *)buf + p * PAGE;
			page_fill(pv[p], ntmm__pfloc_add(locs[i], p), v);
		}
		assert_int_equal(ntmm__pagefile_write(&f->io, locs[i], pv, c), 0);
	}
	free(buf);
}

static void check_clusters(fixture_t *f, const ntmm__pfloc_t *locs, unsigned n, unsigned c,
                           uint64_t v)
{
	void *buf = page_alloc(c);
	void *pv[64];
	for (unsigned p = 0; p < c; p++)
		pv[p] = (char *)buf + p * PAGE;
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(ntmm__pagefile_read(&f->io, locs[i], pv, c), 0);
		for (unsigned p = 0; p < c; p++)
			assert_true(page_check(pv[p], ntmm__pfloc_add(locs[i], p), v));
	}
	free(buf);
}

static void nth_write_fails_and_loses_nothing(void **state)
{
	fixture_t *f = *state;
	ntmm__pfloc_t locs[6];
	write_clusters(f, locs, 6, 8, 0);
	/* rewrite all six with version 1; the 3rd write fails */
	ntmm__faultdrv_fail_write_in(&f->fd, 3);
	void *buf = page_alloc(8);
	void *pv[8];
	for (unsigned p = 0; p < 8; p++)
		pv[p] = (char *)buf + p * PAGE;
	for (unsigned i = 0; i < 6; i++) {
		for (unsigned p = 0; p < 8; p++)
			page_fill(pv[p], ntmm__pfloc_add(locs[i], p), 1);
		int err = ntmm__pagefile_write(&f->io, locs[i], pv, 8);
		assert_int_equal(err, i == 2 ? NTMM_EIO : 0);
		if (err)
			assert_non_null(strstr(ntmm_error_detail(), "Input/output error"));
	}
	/* the failed one still holds version 0: nothing stored was lost */
	check_clusters(f, locs, 2, 8, 1);
	check_clusters(f, &locs[2], 1, 8, 0);
	check_clusters(f, &locs[3], 3, 8, 1);
	/* a retry succeeds */
	for (unsigned p = 0; p < 8; p++)
		page_fill(pv[p], ntmm__pfloc_add(locs[2], p), 1);
	assert_int_equal(ntmm__pagefile_write(&f->io, locs[2], pv, 8), 0);
	check_clusters(f, locs, 6, 8, 1);
	ntmm_stats_t st = {0};
	ntmm__stats_sum(&f->stats, &st);
	assert_int_equal(st.io_errors, 1);
	assert_int_equal(st.pages_written, 6 * 8 + 5 * 8 + 8);
	free(buf);
}

static void nth_read_fails_and_a_retry_succeeds(void **state)
{
	fixture_t *f = *state;
	ntmm__pfloc_t locs[4];
	write_clusters(f, locs, 4, 4, 0);
	ntmm__faultdrv_fail_read_in(&f->fd, 2);
	void *buf = page_alloc(4);
	void *pv[4];
	for (unsigned p = 0; p < 4; p++)
		pv[p] = (char *)buf + p * PAGE;
	assert_int_equal(ntmm__pagefile_read(&f->io, locs[0], pv, 4), 0);
	assert_int_equal(ntmm__pagefile_read(&f->io, locs[1], pv, 4), NTMM_EIO);
	assert_int_equal(ntmm__pagefile_read(&f->io, locs[1], pv, 4), 0);
	for (unsigned p = 0; p < 4; p++)
		assert_true(page_check(pv[p], ntmm__pfloc_add(locs[1], p), 0));
	free(buf);
}

static void short_read_is_eio_not_a_partial_page(void **state)
{
	fixture_t *f = *state;
	ntmm__pfloc_t locs[2];
	write_clusters(f, locs, 2, 4, 0);
	ntmm__faultdrv_short_read_in(&f->fd, 1);
	void *buf = page_alloc(4);
	void *pv[4];
	for (unsigned p = 0; p < 4; p++)
		pv[p] = (char *)buf + p * PAGE;
	assert_int_equal(ntmm__pagefile_read(&f->io, locs[0], pv, 4), NTMM_EIO);
	assert_non_null(strstr(ntmm_error_detail(), "short read"));
	/* one page alone, shortened too */
	ntmm__faultdrv_short_read_in(&f->fd, 1);
	assert_int_equal(ntmm__pagefile_read(&f->io, locs[1], pv, 1), NTMM_EIO);
	check_clusters(f, locs, 2, 4, 0);
	free(buf);
}

static void short_write_is_eio_and_other_slots_keep_their_data(void **state)
{
	fixture_t *f = *state;
	ntmm__pfloc_t locs[3];
	write_clusters(f, locs, 3, 4, 0);
	ntmm__faultdrv_short_write_in(&f->fd, 2);
	void *buf = page_alloc(4);
	void *pv[4];
	for (unsigned p = 0; p < 4; p++)
		pv[p] = (char *)buf + p * PAGE;
	int results[3];
	for (unsigned i = 0; i < 3; i++) {
		for (unsigned p = 0; p < 4; p++)
			page_fill(pv[p], ntmm__pfloc_add(locs[i], p), 1);
		results[i] = ntmm__pagefile_write(&f->io, locs[i], pv, 4);
	}
	assert_int_equal(results[0], 0);
	assert_int_equal(results[1], NTMM_EIO);
	assert_int_equal(results[2], 0);
	check_clusters(f, &locs[0], 1, 4, 1);
	check_clusters(f, &locs[2], 1, 4, 1);
	/* the shortened cluster: its caller still holds the data (the page
	   stays Modified); a retry stores it whole */
	for (unsigned p = 0; p < 4; p++)
		page_fill(pv[p], ntmm__pfloc_add(locs[1], p), 1);
	assert_int_equal(ntmm__pagefile_write(&f->io, locs[1], pv, 4), 0);
	check_clusters(f, locs, 3, 4, 1);
	free(buf);
}

static void failure_inside_a_batch_fails_only_that_entry(void **state)
{
	fixture_t *f = *state;
	ntmm__pfloc_t locs[5];
	write_clusters(f, locs, 5, 2, 0);
	void *buf = page_alloc(10);
	void *pv[5][2];
	ntmm__pfio_t v[5];
	for (unsigned i = 0; i < 5; i++) {
		for (unsigned p = 0; p < 2; p++) {
			pv[i][p] = (char *)buf + (i * 2 + p) * PAGE;
			page_fill(pv[i][p], ntmm__pfloc_add(locs[i], p), 1);
		}
		v[i] = (ntmm__pfio_t){.loc = locs[i], .pages = pv[i], .npages = 2};
	}
	ntmm__faultdrv_fail_write_in(&f->fd, 4);
	assert_int_equal(ntmm__pagefile_io(&f->io, true, v, 5), NTMM_EIO);
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(v[i].result, i == 3 ? NTMM_EIO : 0);
	check_clusters(f, &locs[3], 1, 2, 0);
	check_clusters(f, &locs[4], 1, 2, 1);
	free(buf);
}

static void enospc_on_growth_lowers_the_maximum_until_a_retry(void **state)
{
	fixture_t *f = *state;
	atomic_store(&f->fd.grow_enospc, true);
	assert_int_equal(ntmm__pagefile_maximum_pages(&f->io), 1023);
	enum { N = 63 }; /* 256 KiB initial: 63 usable slots */
	ntmm__pfloc_t locs[N + 1];
	write_clusters(f, locs, N, 1, 0);
	size_t got;
	assert_int_equal(ntmm__pagefile_alloc(&f->io, 1, 1, &locs[N], &got), NTMM_ECOMMIT);
	assert_non_null(strstr(ntmm_error_detail(), "No space left on device"));
	assert_int_equal(ntmm__pagefile_maximum_pages(&f->io), 63);
	assert_int_equal(ntmm__pagefile_grow(&f->io, f->idx, 1), NTMM_ECOMMIT);
	check_clusters(f, locs, N, 1, 0);
	assert_int_equal(ntmm__pagefile_audit(&f->io), 0);

	/* the disk has room again: after a retry (the segment dereference
	   thread's, every few passes) the file grows as before */
	atomic_store(&f->fd.grow_enospc, false);
	assert_int_equal(ntmm__pagefile_retry_growth(&f->io), 1);
	assert_int_equal(ntmm__pagefile_retry_growth(&f->io), 0); /* nothing left to restore */
	assert_int_equal(ntmm__pagefile_maximum_pages(&f->io), 1023);
	assert_int_equal(ntmm__pagefile_alloc(&f->io, 1, 1, &locs[N], &got), 0);
	assert_int_equal(got, 1);
	check_clusters(f, locs, N, 1, 0);
	ntmm__pagefile_free(&f->io, locs[N], 1);
	assert_int_equal(ntmm__pagefile_audit(&f->io), 0);
}

/* Random failures on 6 threads: every failure is reported, every retried
   page is finally stored, and the error count matches the injections. */
typedef struct rnd_worker {
	fixture_t *f;
	unsigned id;
	_Atomic uint64_t *failures;
} rnd_worker_t;

static void *rnd_worker(void *arg)
{
	rnd_worker_t *w = arg;
	ntmm__rcu_thread_online();
	enum { N = 16, C = 4 };
	ntmm__pfloc_t locs[N];
	void *buf = page_alloc(C);
	void *pv[C];
	for (unsigned p = 0; p < C; p++)
		pv[p] = (char *)buf + p * PAGE;
	long rounds = scaled(12);
	for (long r = 0; r < rounds; r++) {
		for (unsigned i = 0; i < N; i++) {
			size_t got;
			WORKER_CHECK(ntmm__pagefile_alloc(&w->f->io, C, C, &locs[i], &got) == 0);
			for (unsigned p = 0; p < C; p++)
				page_fill(pv[p], ntmm__pfloc_add(locs[i], p), (uint64_t)r);
			int err;
			while ((err = ntmm__pagefile_write(&w->f->io, locs[i], pv, C)) == NTMM_EIO)
				atomic_fetch_add(w->failures, 1);
			WORKER_CHECK(err == 0);
		}
		for (unsigned i = 0; i < N; i++) {
			int err;
			while ((err = ntmm__pagefile_read(&w->f->io, locs[i], pv, C)) == NTMM_EIO)
				atomic_fetch_add(w->failures, 1);
			WORKER_CHECK(err == 0);
			for (unsigned p = 0; p < C; p++)
				WORKER_CHECK(
				    page_check(pv[p], ntmm__pfloc_add(locs[i], p), (uint64_t)r));
			ntmm__pagefile_free(&w->f->io, locs[i], C);
		}
	}
	free(buf);
	ntmm__rcu_thread_offline();
	return NULL;
}

static void random_failures_under_concurrency_lose_nothing(void **state)
{
	fixture_t *f = *state;
	atomic_store(&f->fd.fail_read_ppm, 50000);
	atomic_store(&f->fd.fail_write_ppm, 50000);
	_Atomic uint64_t failures = 0;
	enum { T = 6 };
	rnd_worker_t w[T];
	for (unsigned i = 0; i < T; i++)
		w[i] = (rnd_worker_t){f, i, &failures};
	atomic_store(&test_failures, 0);
	run_threads(T, rnd_worker, w, sizeof(w[0]));
	assert_int_equal(atomic_load(&test_failures), 0);
	assert_true(atomic_load(&failures) > 0);
	assert_int_equal(atomic_load(&failures), atomic_load(&f->fd.injected));
	ntmm_stats_t st = {0};
	ntmm__stats_sum(&f->stats, &st);
	assert_int_equal(st.io_errors, atomic_load(&failures));
	assert_int_equal(ntmm__pagefile_used_pages(&f->io), 0);
	assert_int_equal(ntmm__pagefile_audit(&f->io), 0);
}

static void driver_registry_rules(void **state)
{
	fixture_t *f = *state;
	ntmm__faultdrv_t dup;
	ntmm__faultdrv_init(&dup, "faulty", &f->io.file_driver);
	assert_int_equal(ntmm__io_driver_register(&f->io, &dup.drv), NTMM_EBUSY);
	ntmm__faultdrv_init(&dup, "faulty2", &f->io.file_driver);
	assert_int_equal(ntmm__io_driver_register(&f->io, &dup.drv), 0);
	/* in use by the fixture's paging file */
	assert_int_equal(ntmm__io_driver_unregister(&f->io, &f->fd.drv), NTMM_EBUSY);
	assert_int_equal(ntmm__io_driver_unregister(&f->io, &dup.drv), 0);
	assert_int_equal(ntmm__io_driver_unregister(&f->io, &dup.drv), NTMM_EINVAL);
	ntmm__rcu_read_lock();
	assert_ptr_equal(ntmm__io_driver_find(&f->io, "file"), &f->io.file_driver);
	assert_null(ntmm__io_driver_find(&f->io, "faulty2"));
	ntmm__rcu_read_unlock();
	assert_int_equal(ntmm__pagefile_remove(&f->io, f->path, 0), 0);
	assert_int_equal(ntmm__io_driver_unregister(&f->io, &f->fd.drv), 0);
}

int main(void)
{
#define T(fn)  cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define TS(fn) cmocka_unit_test_setup_teardown(fn, setup_sync, teardown)
	const struct CMUnitTest tests[] = {
	    T(nth_write_fails_and_loses_nothing),
	    TS(nth_write_fails_and_loses_nothing),
	    T(nth_read_fails_and_a_retry_succeeds),
	    T(short_read_is_eio_not_a_partial_page),
	    TS(short_read_is_eio_not_a_partial_page),
	    T(short_write_is_eio_and_other_slots_keep_their_data),
	    T(failure_inside_a_batch_fails_only_that_entry),
	    T(enospc_on_growth_lowers_the_maximum_until_a_retry),
	    T(random_failures_under_concurrency_lose_nothing),
	    TS(random_failures_under_concurrency_lose_nothing),
	    T(driver_registry_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
