/*
 * The commit limit is a promise: every page committed within it can be
 * written and read back, whatever the margin left below the limit, with
 * the system threads running or not.
 *   - commit_limit_pages - m pages (m = 0, 1, 8, 16, 64, 256) of a 16 MiB
 *     pool with a fixed 32 MiB paging file (initial = maximum): each page
 *     written once, then each read back and checked; no access fails;
 *   - without the system threads, 3× the pool's frames committed, written
 *     with a pattern and read back: faults that find no frame trim and
 *     write inline;
 *   - reads of never-written pages beyond the frames, without the threads;
 *   - two threads faulting past the frames at once, without the threads;
 *   - the limit counts what committed pages can really use: page-table
 *     pages are charged with the commit that needs them and given back
 *     with the release, so sparse commits cannot take the frames the
 *     limit promised to others;
 *   - a modified page writer with no slot left blocks until one is freed
 *     instead of trying batch after batch on every wake-up.
 * The audit runs after each. NTMM_TEST_VERBOSE=1 prints the page lists at
 * each step; NTMM_TEST_FILTER picks tests (cmocka patterns).
 */
#include "iotest.h"
#include "wsm_testutil.h"

#include "threads/writers.h"

#define POOL_MIB 16
#define PF_MIB   32

static bool verbose(void)
{
	return getenv("NTMM_TEST_VERBOSE") != NULL;
}

static void dump(ntmm_engine_t *e, const char *what)
{
	if (!verbose())
		return;
	ntmm_stats_t s = wsm_stats(e);
	fprintf(stderr,
	        "%s: commit %llu/%llu zeroed %llu free %llu standby %llu modified %llu "
	        "active %llu transition %llu pf %llu/%llu pt %llu trimmed %llu written %llu "
	        "read %llu allocfail %llu\n",
	        what, (unsigned long long)s.commit_pages, (unsigned long long)s.commit_limit_pages,
	        (unsigned long long)s.zeroed_pages, (unsigned long long)s.free_pages,
	        (unsigned long long)s.standby_pages, (unsigned long long)s.modified_pages,
	        (unsigned long long)s.active_pages, (unsigned long long)s.transition_pages,
	        (unsigned long long)s.pagefile_pages, (unsigned long long)s.pagefile_size_pages,
	        (unsigned long long)s.pagetable_pages, (unsigned long long)s.pages_trimmed,
	        (unsigned long long)s.pages_written, (unsigned long long)s.pages_read,
	        (unsigned long long)s.frame_alloc_fails);
}

typedef struct env {
	char *dir, path[600];
	ntmm_engine_t *e;
} env_t;

static env_t env(bool threads, size_t pool_mib, size_t pf_init_mib, size_t pf_max_mib)
{
	env_t v = {0};
	v.dir = io_tmpdir();
	snprintf(v.path, sizeof(v.path), "%s/pagefile.sys", v.dir);
	wsm_opts_t o = {.mib = pool_mib,
	                .threads = threads,
	                .tick_ms = 1000, /* the default: reclaim must not need fast ticks */
	                .pagefile = v.path,
	                .pf_initial = pf_init_mib * MiB,
	                .pf_max = pf_max_mib * MiB};
	v.e = wsm_engine(&o);
	return v;
}

static void env_done(env_t *v)
{
	wsm_engine_done(v->e); /* audits */
	io_rmtree(v->dir);
}

static uint64_t word_of(size_t page, uint64_t tag)
{
	return wsm_pattern(tag, page, 0);
}

/* Writes one word in each of pages [0, n) (each page dirtied once), then
   reads each back; returns the first failing error (0 if none) and counts
   the failures in *bad. */
static int write_then_read(ntmm_engine_t *e, ntmm_process_t *p, uint64_t base, size_t n,
                           size_t *bad)
{
	int first = 0;
	*bad = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t w = word_of(i, 7);
		int r = ntmm_write(p, base + i * PG + (i % 512) * 8, &w, sizeof(w));
		if (r) {
			if (!first) {
				first = r;
				if (verbose())
					fprintf(stderr, "write of page %zu/%zu: %s (%s)\n", i, n,
					        ntmm_strerror(r), ntmm_error_detail());
				dump(e, "write failed");
			}
			++*bad;
			if (*bad > 4)
				return first; /* each failure may wait: do not wait for all */
		}
	}
	dump(e, "written");
	for (size_t i = 0; i < n; i++) {
		uint64_t w = 0;
		int r = ntmm_read(p, base + i * PG + (i % 512) * 8, &w, sizeof(w));
		if (!r && w != word_of(i, 7))
			r = NTMM_EINVAL; /* wrong bytes */
		if (r) {
			if (!first) {
				first = r;
				if (verbose())
					fprintf(stderr, "read of page %zu/%zu: %s (%s)\n", i, n,
					        ntmm_strerror(r), ntmm_error_detail());
				dump(e, "read failed");
			}
			++*bad;
			if (*bad > 4)
				return first;
		}
	}
	dump(e, "read back");
	return first;
}

/* Commits limit - charge - m pages and writes and reads every one. */
static void margin(bool threads, size_t m)
{
	env_t v = env(threads, POOL_MIB, PF_MIB, PF_MIB);
	ntmm_process_t *p = NULL;
	assert_int_equal(ntmm_process_create(v.e, &p), 0);
	ntmm_stats_t s = wsm_stats(v.e);
	assert_true(s.commit_limit_pages > s.commit_pages + m);
	/* The regions' page-table pages are charged too, one per 2 MiB span
	   (and per 1 GiB, 512 GiB) holding a committed page. So that exactly m
	   pages of the limit are left: a small region B (its own span), a
	   large region A whose size brings the charge within 16 of the
	   target, then B topped up page by page (each costs one page). */
	uint64_t target = s.commit_limit_pages - m, b = 0, a = 0;
	assert_int_equal(ntmm_allocate(p, &b, 16 * PG, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE), 0);
	uint64_t one = b;
	assert_int_equal(ntmm_allocate(p, &one, PG, NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE), 0);
	uint64_t charge = wsm_stats(v.e).commit_pages;
	size_t n = target - charge - 8;
	for (;;) {
		a = 0;
		int r = ntmm_allocate(p, &a, n * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT,
		                      NTMM_PAGE_READWRITE);
		assert_true(r == 0 || r == NTMM_ECOMMIT);
		charge = wsm_stats(v.e).commit_pages;
		if (r == 0 && charge <= target && target - charge < 16)
			break;
		if (r == 0)
			assert_int_equal(ntmm_free(p, a, 0, NTMM_MEM_RELEASE), 0);
		if (r == 0 && charge < target)
			n += target - charge - 8;
		else
			n -= r ? 8 : charge - target + 8;
	}
	size_t nb = 1 + (size_t)(target - charge);
	one = b;
	assert_int_equal(ntmm_allocate(p, &one, nb * PG, NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE), 0);
	s = wsm_stats(v.e);
	assert_int_equal(s.commit_pages + m, s.commit_limit_pages);
	size_t bad;
	int r = write_then_read(v.e, p, a, n, &bad);
	if (!r)
		r = write_then_read(v.e, p, b, nb, &bad);
	if (r)
		fprintf(stderr, "threads %d, margin %zu: %zu accesses failed, first %s\n", threads,
		        m, bad, ntmm_strerror(r));
	assert_int_equal(r, 0);
	assert_int_equal(ntmm_audit(v.e), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	env_done(&v);
}

static void margin_0_threads(void **s)
{
	(void)s;
	margin(true, 0);
}
static void margin_1_threads(void **s)
{
	(void)s;
	margin(true, 1);
}
static void margin_8_threads(void **s)
{
	(void)s;
	margin(true, 8);
}
static void margin_16_threads(void **s)
{
	(void)s;
	margin(true, 16);
}
static void margin_64_threads(void **s)
{
	(void)s;
	margin(true, 64);
}
static void margin_256_threads(void **s)
{
	(void)s;
	margin(true, 256);
}
static void margin_0_no_threads(void **s)
{
	(void)s;
	margin(false, 0);
}
static void margin_1_no_threads(void **s)
{
	(void)s;
	margin(false, 1);
}
static void margin_8_no_threads(void **s)
{
	(void)s;
	margin(false, 8);
}
static void margin_16_no_threads(void **s)
{
	(void)s;
	margin(false, 16);
}
static void margin_64_no_threads(void **s)
{
	(void)s;
	margin(false, 64);
}
static void margin_256_no_threads(void **s)
{
	(void)s;
	margin(false, 256);
}

/* Without the system threads nothing else pages out: faults that find no
   frame trim and write inline. 3x the pool committed (the paging file
   grows to hold it), every page written with a full-page pattern, then
   every page read back and checked. */
static void no_threads_three_times_the_frames_round_trip(void **st)
{
	(void)st;
	env_t v = env(false, POOL_MIB, 8, 64);
	size_t frames = POOL_MIB * MiB / PG, n = 3 * frames;
	uint64_t base;
	ntmm_process_t *p = wsm_process(v.e, n, &base);
	wsm_fill(p, base, 11, 0, n);
	dump(v.e, "3x written");
	assert_int_equal(wsm_check(p, base, 11, 0, n), 0);
	dump(v.e, "3x checked");
	ntmm_stats_t s = wsm_stats(v.e);
	assert_true(s.reclaims > 0);
	assert_true(s.pages_written >= n - frames);
	assert_true(s.hard_faults > 0);
	assert_int_equal(s.io_errors, 0);
	assert_int_equal(ntmm_audit(v.e), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	env_done(&v);
}

/* Reads of never-written pages beyond the frames: each is a zeroed frame,
   clean, so the inline trim can take it back without writing. */
static void no_threads_reads_beyond_the_frames_are_zero(void **st)
{
	(void)st;
	env_t v = env(false, POOL_MIB, 32, 32);
	size_t n = 2 * (POOL_MIB * MiB / PG);
	uint64_t base;
	ntmm_process_t *p = wsm_process(v.e, n, &base);
	for (size_t i = 0; i < n; i++) {
		uint64_t w = 1;
		assert_int_equal(ntmm_read(p, base + i * PG + 8 * (i % 512), &w, sizeof(w)), 0);
		assert_int_equal(w, 0);
	}
	ntmm_stats_t s = wsm_stats(v.e);
	assert_true(s.reclaims > 0);
	assert_int_equal(s.pages_written, 0); /* nothing dirty: trimmed pages are dropped */
	assert_int_equal(ntmm_audit(v.e), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	env_done(&v);
}

typedef struct worker {
	ntmm_engine_t *e;
	ntmm_process_t *p;
	uint64_t base;
	size_t n;
	uint64_t tag;
} worker_t;

static void *worker_run(void *arg)
{
	worker_t *w = arg;
	WORKER_CHECK(ntmm_thread_register(w->e) == 0);
	uint64_t buf[PG / 8];
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < w->n; i++) {
			for (size_t k = 0; k < PG / 8; k++)
				buf[k] = wsm_pattern(w->tag + (uint64_t)round, i, k);
			WORKER_CHECK(ntmm_write(w->p, w->base + i * PG, buf, PG) == 0);
		}
	for (size_t i = 0; i < w->n; i++) {
		WORKER_CHECK(ntmm_read(w->p, w->base + i * PG, buf, PG) == 0);
		WORKER_CHECK(buf[i % (PG / 8)] == wsm_pattern(w->tag + 1, i, i % (PG / 8)));
	}
	ntmm_thread_unregister(w->e);
	return NULL;
}

/* Two threads of two processes fault past the frames at once without the
   system threads: their inline reclaims take turns (one reclaimer at a
   time) and neither ever sees NTMM_ENOMEM or a wrong byte. */
static void no_threads_two_faulting_threads_share_the_reclaim(void **st)
{
	(void)st;
	env_t v = env(false, POOL_MIB, 8, 64);
	size_t frames = POOL_MIB * MiB / PG;
	worker_t w[2];
	for (int i = 0; i < 2; i++) {
		w[i] = (worker_t){.e = v.e, .n = frames, .tag = 20 + 2 * (uint64_t)i};
		w[i].p = wsm_process(v.e, w[i].n, &w[i].base);
	}
	atomic_store(&test_failures, 0);
	run_threads(2, worker_run, w, sizeof(w[0]));
	assert_int_equal(atomic_load(&test_failures), 0);
	dump(v.e, "two threads");
	ntmm_stats_t s = wsm_stats(v.e);
	assert_true(s.reclaims > 0 && s.hard_faults > 0);
	assert_int_equal(ntmm_audit(v.e), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(ntmm_process_destroy(w[i].p), 0);
	env_done(&v);
}

/* Page-table pages are charged with the commit that needs them: one page
   committed in each of many separate 2 MiB spans costs two (the page and
   its leaf table), so commits stop where the frames would run out, and
   every page committed can then be written (no paging file: everything
   stays resident). Releasing gives the tables back. */
static void sparse_commits_pay_for_their_page_tables(void **st)
{
	(void)st;
	wsm_opts_t o = {.mib = 8};
	ntmm_engine_t *e = wsm_engine(&o);
	ntmm_process_t *p;
	assert_int_equal(ntmm_process_create(e, &p), 0);
	size_t frames = 8 * MiB / PG, n = 0;
	uint64_t *va = calloc(frames, sizeof(*va));
	uint64_t charge0 = wsm_stats(e).commit_pages;
	for (; n < frames; n++) {
		uint64_t a = 0;
		/* a 2 MiB reservation each, one page committed at its start */
		assert_int_equal(
		    ntmm_allocate(p, &a, 2 * MiB, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE), 0);
		int r = ntmm_allocate(p, &a, PG, NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE);
		if (r == NTMM_ECOMMIT)
			break;
		assert_int_equal(r, 0);
		va[n] = a;
	}
	ntmm_stats_t s = wsm_stats(e);
	assert_true(n < frames / 2); /* each page brought a leaf table */
	assert_true(s.commit_pages - charge0 >= 2 * n);
	assert_true(s.commit_pages <= s.commit_limit_pages);
	for (size_t i = 0; i < n; i++) {
		uint64_t w = i;
		assert_int_equal(ntmm_write(p, va[i], &w, sizeof(w)), 0);
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t w = ~0ull;
		assert_int_equal(ntmm_read(p, va[i], &w, sizeof(w)), 0);
		assert_int_equal(w, i);
	}
	assert_int_equal(ntmm_audit(e), 0);
	/* the tables go back with the commits */
	for (size_t i = 0; i < n; i++)
		assert_int_equal(ntmm_free(p, va[i], 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(wsm_stats(e).commit_pages, charge0);
	free(va);
	assert_int_equal(ntmm_process_destroy(p), 0);
	wsm_engine_done(e);
}

/* A modified page writer with no slot to write into blocks until one is
   freed: wake-ups meanwhile (allocators short of frames, faults) do not
   make it try batch after batch. */
static void a_writer_without_slots_blocks_until_one_is_freed(void **st)
{
	(void)st;
	env_t v = env(true, 8, 1, 1); /* 255 slots, never more */
	ntmm__mpw_t *w = &v.e->systhreads.mpw;
	size_t frames = 8 * MiB / PG, n = frames + 128;
	uint64_t base;
	ntmm_process_t *p = wsm_process(v.e, n, &base);
	wsm_fill(p, base, 5, 0, n);
	/* every slot holds a page now, and dirty pages are left over */
	WSM_WAIT_UNTIL(wsm_stats(v.e).pagefile_pages == wsm_stats(v.e).pagefile_size_pages &&
	               wsm_load(&w->space_waits) >= 1);
	ntmm_stats_t s = wsm_stats(v.e);
	assert_true(s.modified_pages > 0);
	uint64_t failures = wsm_load(&w->failures), batches = wsm_load(&w->batches);
	for (int i = 0; i < 100; i++) {
		ntmm__writer_wake(&v.e->phys);
		usleep(1000);
	}
	/* woken 100 times, it tried no batch: nothing changed for it */
	assert_true(wsm_load(&w->failures) - failures <= 1);
	assert_int_equal(wsm_load(&w->batches), batches);
	/* reading back gives slots back (they are short) and wakes it; every
	   page is intact */
	assert_int_equal(wsm_check(p, base, 5, 0, n), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	env_done(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(margin_0_no_threads),
	    cmocka_unit_test(margin_1_no_threads),
	    cmocka_unit_test(margin_8_no_threads),
	    cmocka_unit_test(margin_16_no_threads),
	    cmocka_unit_test(margin_64_no_threads),
	    cmocka_unit_test(margin_256_no_threads),
	    cmocka_unit_test(margin_0_threads),
	    cmocka_unit_test(margin_1_threads),
	    cmocka_unit_test(margin_8_threads),
	    cmocka_unit_test(margin_16_threads),
	    cmocka_unit_test(margin_64_threads),
	    cmocka_unit_test(margin_256_threads),
	    cmocka_unit_test(no_threads_three_times_the_frames_round_trip),
	    cmocka_unit_test(no_threads_reads_beyond_the_frames_are_zero),
	    cmocka_unit_test(no_threads_two_faulting_threads_share_the_reclaim),
	    cmocka_unit_test(sparse_commits_pay_for_their_page_tables),
	    cmocka_unit_test(a_writer_without_slots_blocks_until_one_is_freed),
	};
	if (getenv("NTMM_TEST_FILTER")) /* e.g. "margin_*_threads" */
		cmocka_set_test_filter(getenv("NTMM_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
