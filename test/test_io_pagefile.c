/* Paging files: locations, page I/O, the slot allocator under concurrency,
   growth to the maximum and refusal, shrink, add/remove at run time while
   others do I/O, bad paths and a full disk. */
#include "iotest.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/mount.h>
#include <sys/xattr.h>

typedef struct fixture {
	char *dir;
	ntmm__stats_t stats;
	ntmm__io_t io;
} fixture_t;

static int setup_backend(void **state, int backend)
{
	fixture_t *f = calloc(1, sizeof(*f));
	f->dir = io_tmpdir();
	assert_int_equal(ntmm__stats_init(&f->stats, 4), 0);
	assert_int_equal(ntmm__io_setup(&f->io, &f->stats, backend, 0), 0);
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
/* io_uring for every request, single ones and writes included */
static int setup_uring_all(void **state)
{
	return setup_backend(state, NTMM__IO_URING);
}
static int teardown(void **state)
{
	fixture_t *f = *state;
	ntmm__rcu_thread_offline();
	ntmm__io_teardown(&f->io);
	ntmm__stats_fini(&f->stats);
	io_rmtree(f->dir);
	free(f);
	return 0;
}

static unsigned add_file(fixture_t *f, const char *name, size_t initial, size_t maximum)
{
	char *p = io_path(f->dir, name);
	unsigned idx;
	int err = ntmm__pagefile_add(&f->io, p, initial, maximum, NULL, &idx);
	if (err)
		fprintf(stderr, "add %s: %s: %s\n", p, ntmm_strerror(err), ntmm_error_detail());
	assert_int_equal(err, 0);
	free(p);
	return idx;
}

/* ----------------------------------------------------------- locations */

static void location_encoding_round_trips_file_and_slot(void **state)
{
	for (unsigned file = 0; file < NTMM__PF_MAX_FILES; file++) {
		uint64_t slots[] = {1, 2, 63, 64, 65, 12345, 0xffffffffull};
		for (unsigned i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
			ntmm__pfloc_t loc = ntmm__pfloc_make(file, slots[i]);
			assert_true(ntmm__pfloc_valid(loc));
			assert_int_equal(ntmm__pfloc_file(loc), file);
			assert_int_equal(ntmm__pfloc_slot(loc), slots[i]);
		}
	}
	assert_false(ntmm__pfloc_valid(NTMM__PFLOC_NONE));
	assert_false(ntmm__pfloc_valid(ntmm__pfloc_make(5, 0))); /* slot 0 is reserved */
	assert_false(ntmm__pfloc_valid(ntmm__pfloc_make(0, NTMM__PF_MAX_SLOTS)));
	assert_int_equal(ntmm__pfloc_slot(ntmm__pfloc_add(ntmm__pfloc_make(3, 10), 5)), 15);
}

/* ---------------------------------------------------------------- I/O */

static void round_trip(fixture_t *f, unsigned cluster)
{
	add_file(f, "pf0", 1 << 20, 4 << 20);
	void *pages = page_alloc(cluster), *back = page_alloc(cluster);
	void *pv[NTMM__PF_MAX_CLUSTER], *bv[NTMM__PF_MAX_CLUSTER];
	ntmm__pfloc_t locs[20];
	unsigned rounds = cluster > 64 ? 3 : 20; /* within the 4 MiB maximum */
	for (unsigned r = 0; r < rounds; r++) {
		size_t got;
		assert_int_equal(ntmm__pagefile_alloc(&f->io, cluster, cluster, &locs[r], &got), 0);
		assert_int_equal(got, cluster);
		for (unsigned p = 0; p < cluster; p++) {
			pv[p] = (char *)pages + p * PAGE;
			page_fill(pv[p], ntmm__pfloc_add(locs[r], p), 0);
		}
		assert_int_equal(ntmm__pagefile_write(&f->io, locs[r], pv, cluster), 0);
	}
	for (unsigned r = 0; r < rounds; r++) {
		for (unsigned p = 0; p < cluster; p++)
			bv[p] = (char *)back + p * PAGE;
		memset(back, 0, (size_t)cluster * PAGE);
		assert_int_equal(ntmm__pagefile_read(&f->io, locs[r], bv, cluster), 0);
		for (unsigned p = 0; p < cluster; p++)
			assert_true(page_check(bv[p], ntmm__pfloc_add(locs[r], p), 0));
		/* and page by page */
		for (unsigned p = 0; p < cluster; p++) {
			memset(bv[0], 0, PAGE);
			assert_int_equal(
			    ntmm__pagefile_read(&f->io, ntmm__pfloc_add(locs[r], p), bv, 1), 0);
			assert_true(page_check(bv[0], ntmm__pfloc_add(locs[r], p), 0));
		}
		ntmm__pagefile_free(&f->io, locs[r], cluster);
	}
	ntmm_stats_t st = {0};
	ntmm__stats_sum(&f->stats, &st);
	assert_int_equal(st.pages_written, rounds * cluster);
	assert_int_equal(st.write_ios, rounds);
	assert_int_equal(st.pages_read, rounds * cluster * 2);
	assert_int_equal(st.io_errors, 0);
	assert_int_equal(ntmm__pagefile_used_pages(&f->io), 0);
	assert_int_equal(ntmm__pagefile_audit(&f->io), 0);
	/* singles go through the ring only when asked to */
	bool ring = f->io.rings.backend == NTMM__IO_URING && f->io.rings.uring_min_batch[1] <= 1;
	assert_int_equal(ntmm__ioring_batches(&f->io.rings) > 0, ring);
	free(pages);
	free(back);
}

static void single_pages_round_trip(void **state)
{
	round_trip(*state, 1);
}
static void clusters_round_trip(void **state)
{
	round_trip(*state, 16);
}
static void largest_clusters_round_trip(void **state)
{
	round_trip(*state, NTMM__PF_MAX_CLUSTER);
}

/* A batch with clusters in three files, one submission per file. */
static void batch_spans_files(void **state)
{
	fixture_t *f = *state;
	add_file(f, "a", 256 << 10, 1 << 20);
	add_file(f, "b", 256 << 10, 1 << 20);
	add_file(f, "c", 256 << 10, 1 << 20);
	enum { N = 12, C = 4 };
	void *buf = page_alloc(N * C);
	void *pv[N][C];
	ntmm__pfio_t v[N];
	for (unsigned i = 0; i < N; i++) {
		size_t got;
		/* spread over files: allocate in each file in turn by draining
		   the rotor's choice is not guaranteed; use the index directly */
		ntmm__pfloc_t loc;
		assert_int_equal(ntmm__pagefile_alloc(&f->io, C, C, &loc, &got), 0);
		for (unsigned p = 0; p < C; p++) {
			pv[i][p] = (char *)buf + (i * C + p) * PAGE;
			page_fill(pv[i][p], i * C + p, 7);
		}
		v[i] = (ntmm__pfio_t){.loc = loc, .pages = pv[i], .npages = C};
	}
	uint64_t before = ntmm__ioring_batches(&f->io.rings);
	assert_int_equal(ntmm__pagefile_io(&f->io, true, v, N), 0);
	memset(buf, 0, N * C * PAGE);
	assert_int_equal(ntmm__pagefile_io(&f->io, false, v, N), 0);
	/* with io_uring, each file's share of the read batch is one submission */
	if (f->io.rings.backend == NTMM__IO_URING)
		assert_true(ntmm__ioring_batches(&f->io.rings) >= before + 1);
	else
		assert_int_equal(ntmm__ioring_batches(&f->io.rings), 0);
	for (unsigned i = 0; i < N; i++) {
		assert_int_equal(v[i].result, 0);
		for (unsigned p = 0; p < C; p++)
			assert_true(page_check(pv[i][p], i * C + p, 7));
		ntmm__pagefile_free(&f->io, v[i].loc, C);
	}
	/* a batch entry naming a missing file fails alone */
	v[0].loc = ntmm__pfloc_make(9, 1);
	assert_int_equal(ntmm__pagefile_io(&f->io, false, v, 1), NTMM_EINVAL);
	free(buf);
}

static void io_on_bad_locations_is_einval(void **state)
{
	fixture_t *f = *state;
	unsigned idx = add_file(f, "pf", 64 << 10, 64 << 10);
	void *pg = page_alloc(1);
	void *pv[1] = {pg};
	assert_int_equal(ntmm__pagefile_read(&f->io, ntmm__pfloc_make(idx, 0), pv, 1), NTMM_EINVAL);
	assert_int_equal(ntmm__pagefile_read(&f->io, ntmm__pfloc_make(idx, 16), pv, 1),
	                 NTMM_EINVAL);
	assert_int_equal(ntmm__pagefile_read(&f->io, ntmm__pfloc_make(idx + 1, 1), pv, 1),
	                 NTMM_EINVAL);
	assert_int_equal(ntmm__pagefile_write(&f->io, ntmm__pfloc_make(idx, 1), pv, 0),
	                 NTMM_EINVAL);
	assert_int_equal(ntmm__pagefile_write(&f->io, ntmm__pfloc_make(idx, 1), NULL, 1),
	                 NTMM_EINVAL);
	ntmm__pfloc_t loc;
	size_t got;
	assert_int_equal(ntmm__pagefile_alloc(&f->io, 0, 0, &loc, &got), NTMM_EINVAL);
	assert_int_equal(ntmm__pagefile_alloc(&f->io, 4, 5, &loc, &got), NTMM_EINVAL);
	assert_int_equal(ntmm__pagefile_alloc(&f->io, NTMM__PF_MAX_CLUSTER + 1, 1, &loc, &got),
	                 NTMM_EINVAL);
	free(pg);
}

/* ------------------------------------------------------------ allocator */

typedef struct alloc_worker {
	fixture_t *f;
	_Atomic uint8_t *owner; /* per slot of file 0: 0 free, else holder id */
	unsigned id;
	uint64_t seed;
} alloc_worker_t;

static void *alloc_worker(void *arg)
{
	alloc_worker_t *w = arg;
	ntmm__rcu_thread_online();
	enum { HELD = 24 };
	ntmm__pfloc_t held[HELD];
	size_t held_n[HELD];
	unsigned nheld = 0;
	long rounds = scaled(3000);
	for (long r = 0; r < rounds; r++) {
		if (nheld == HELD || (nheld && test_rand(&w->seed) % 3 == 0)) {
			unsigned k = (unsigned)(test_rand(&w->seed) % nheld);
			uint64_t s = ntmm__pfloc_slot(held[k]);
			for (size_t i = 0; i < held_n[k]; i++) {
				uint8_t me = (uint8_t)w->id;
				WORKER_CHECK(
				    atomic_compare_exchange_strong(&w->owner[s + i], &me, 0));
			}
			ntmm__pagefile_free(&w->f->io, held[k], held_n[k]);
			held[k] = held[nheld - 1];
			held_n[k] = held_n[--nheld];
			continue;
		}
		size_t want = 1 + test_rand(&w->seed) % 32, got;
		ntmm__pfloc_t loc;
		int err = ntmm__pagefile_alloc_nogrow(&w->f->io, want, 1, &loc, &got);
		if (err) {
			WORKER_CHECK(err == NTMM_ECOMMIT);
			continue;
		}
		WORKER_CHECK(got >= 1 && got <= want);
		WORKER_CHECK(ntmm__pfloc_file(loc) == 0);
		uint64_t s = ntmm__pfloc_slot(loc);
		for (size_t i = 0; i < got; i++) {
			uint8_t none = 0;
			/* a slot handed out twice fails here */
			WORKER_CHECK(atomic_compare_exchange_strong(&w->owner[s + i], &none,
			                                            (uint8_t)w->id));
		}
		held[nheld] = loc;
		held_n[nheld++] = got;
	}
	for (unsigned k = 0; k < nheld; k++) {
		uint64_t s = ntmm__pfloc_slot(held[k]);
		for (size_t i = 0; i < held_n[k]; i++)
			atomic_store(&w->owner[s + i], 0);
		ntmm__pagefile_free(&w->f->io, held[k], held_n[k]);
	}
	ntmm__rcu_thread_offline();
	return NULL;
}

static void no_slot_is_handed_out_twice_under_contention(void **state)
{
	fixture_t *f = *state;
	/* small enough that threads run it full and fight over runs */
	enum { SLOTS = 2048 };
	add_file(f, "pf", SLOTS * PAGE, SLOTS * PAGE);
	_Atomic uint8_t *owner = calloc(SLOTS, 1);
	enum { T = 8 }; /* more threads than the machine's cores */
	alloc_worker_t w[T];
	for (unsigned i = 0; i < T; i++)
		w[i] = (alloc_worker_t){f, owner, i + 1, 0x1234567ull * (i + 1)};
	atomic_store(&test_failures, 0);
	run_threads(T, alloc_worker, w, sizeof(w[0]));
	assert_int_equal(atomic_load(&test_failures), 0);
	assert_int_equal(ntmm__pagefile_used_pages(&f->io), 0);
	assert_int_equal(ntmm__pagefile_audit(&f->io), 0);
	free(owner);
}

static void runs_are_contiguous_and_next_fit(void **state)
{
	fixture_t *f = *state;
	add_file(f, "pf", 1 << 20, 1 << 20); /* 256 slots */
	ntmm__pfloc_t a, b, c;
	size_t got;
	assert_int_equal(ntmm__pagefile_alloc(&f->io, 100, 100, &a, &got), 0);
	assert_int_equal(ntmm__pfloc_slot(a), 1);
	assert_int_equal(ntmm__pagefile_alloc(&f->io, 100, 100, &b, &got), 0);
	assert_int_equal(ntmm__pfloc_slot(b), 101); /* crosses words */
	/* 55 slots remain at the end: a want of 60 with min 8 gets a shorter run */
	assert_int_equal(ntmm__pagefile_alloc_nogrow(&f->io, 60, 8, &c, &got), 0);
	assert_true(got >= 8 && got < 60);
	ntmm__pagefile_free(&f->io, c, got);
	assert_int_equal(ntmm__pagefile_alloc_nogrow(&f->io, 56, 56, &c, &got), NTMM_ECOMMIT);
	ntmm__pagefile_free(&f->io, a, 100);
	assert_int_equal(ntmm__pagefile_alloc_nogrow(&f->io, 56, 56, &c, &got), 0);
	assert_int_equal(ntmm__pfloc_slot(c), 1); /* wrapped around to the freed start */
	assert_int_equal(ntmm__pagefile_audit(&f->io), 0);
}

/* A fragmented file (the state a paging file reaches under overcommit:
   pages faulted back and re-dirtied free single slots all over it): one
   allocation takes the longest run it finds when no run of `want` exists,
   takes a whole run of `want` when one exists, and only then fails. */
static void fragmented_file_yields_longest_runs(void **state)
{
	fixture_t *f = *state;
	add_file(f, "pf", 4 << 20, 4 << 20); /* 1024 slots, 1023 usable */
	enum { N = 1023 };
	static ntmm__pfloc_t one[N];
	size_t got;
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(ntmm__pagefile_alloc_nogrow(&f->io, 1, 1, &one[i], &got), 0);
	/* one[i] is slot i + 1. Free a checkerboard (the odd slots: runs of
	   1), then slots 502 and 504 as well: one run of 5, 501..505 */
	for (unsigned i = 0; i < N; i += 2)
		ntmm__pagefile_free(&f->io, one[i], 1);
	ntmm__pagefile_free(&f->io, one[501], 1);
	ntmm__pagefile_free(&f->io, one[503], 1);
	assert_int_equal(ntmm__pagefile_audit(&f->io), 0);
	ntmm__pfloc_t loc;
	assert_int_equal(ntmm__pagefile_alloc_nogrow(&f->io, 64, 2, &loc, &got), 0);
	assert_int_equal(got, 5); /* the only run of 2 or more */
	assert_int_equal(ntmm__pfloc_slot(loc), 501);
	assert_int_equal(ntmm__pagefile_alloc_nogrow(&f->io, 64, 2, &loc, &got), NTMM_ECOMMIT);
	/* a run of `want` appears at the low end (slots 1..9): found across
	   the wrap, and only `want` of it is taken */
	for (unsigned i = 1; i < 9; i += 2)
		ntmm__pagefile_free(&f->io, one[i], 1);
	ntmm__pfloc_t run;
	assert_int_equal(ntmm__pagefile_alloc_nogrow(&f->io, 8, 2, &run, &got), 0);
	assert_int_equal(got, 8);
	assert_int_equal(ntmm__pfloc_slot(run), 1);
	/* min 1 still finds the single slots left */
	size_t singles = 0;
	ntmm__pfloc_t s;
	while (ntmm__pagefile_alloc_nogrow(&f->io, 16, 1, &s, &got) == 0) {
		assert_int_equal(got, 1);
		singles++;
	}
	assert_true(singles > 400);
	assert_int_equal(ntmm__pagefile_used_pages(&f->io), N);
	assert_int_equal(ntmm__pagefile_audit(&f->io), 0);
}

/* ---------------------------------------------------- growth and shrink */

static void grows_to_maximum_then_refuses_with_ecommit(void **state)
{
	fixture_t *f = *state;
	char *path = io_path(f->dir, "grow");
	unsigned idx;
	assert_int_equal(ntmm__pagefile_add(&f->io, path, 64 << 10, 2 << 20, NULL, &idx), 0);
	assert_int_equal(pf_size(&f->io, idx), 64 << 10);
	assert_int_equal(file_size(path), -1); /* the store has no name */
	assert_int_equal(ntmm__pagefile_total_pages(&f->io), 15);
	assert_int_equal(ntmm__pagefile_maximum_pages(&f->io), 511);

	enum { MAXP = 511 };
	ntmm__pfloc_t locs[MAXP];
	void *pg = page_alloc(1);
	void *pv[1] = {pg};
	unsigned n = 0;
	for (;; n++) {
		size_t got;
		int err = ntmm__pagefile_alloc(&f->io, 1, 1, &locs[n % MAXP], &got);
		if (err) {
			assert_int_equal(err, NTMM_ECOMMIT);
			assert_non_null(strstr(ntmm_error_detail(), "maximum"));
			break;
		}
		assert_true(n < MAXP);
		page_fill(pg, ntmm__pfloc_slot(locs[n]), 1);
		assert_int_equal(ntmm__pagefile_write(&f->io, locs[n], pv, 1), 0);
	}
	assert_int_equal(n, MAXP);
	assert_int_equal(pf_size(&f->io, idx), 2 << 20);
	assert_int_equal(ntmm__pagefile_total_pages(&f->io), MAXP);
	/* refusal lost nothing */
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(ntmm__pagefile_read(&f->io, locs[i], pv, 1), 0);
		assert_true(page_check(pg, ntmm__pfloc_slot(locs[i]), 1));
	}
	/* an explicit grow at the maximum is refused the same way */
	assert_int_equal(ntmm__pagefile_grow(&f->io, idx, 1), NTMM_ECOMMIT);
	assert_int_equal(ntmm__pagefile_audit(&f->io), 0);
	free(pg);
	free(path);
}

static void shrinks_free_tail_down_to_initial(void **state)
{
	fixture_t *f = *state;
	char *path = io_path(f->dir, "shrink");
	unsigned idx;
	assert_int_equal(ntmm__pagefile_add(&f->io, path, 64 << 10, 4 << 20, NULL, &idx), 0);
	assert_int_equal(ntmm__pagefile_grow(&f->io, idx, 1000), 0);
	uint64_t grown = ntmm__pagefile_total_pages(&f->io) + 1;
	assert_true(grown >= 1016);
	assert_int_equal(pf_size(&f->io, idx), (off_t)(grown * PAGE));

	/* hold a page at slot 300 and one early; the rest is free */
	enum { N = 300 };
	ntmm__pfloc_t locs[N];
	void *pg = page_alloc(1);
	void *pv[1] = {pg};
	for (unsigned i = 0; i < N; i++) {
		size_t got;
		assert_int_equal(ntmm__pagefile_alloc(&f->io, 1, 1, &locs[i], &got), 0);
		assert_int_equal(ntmm__pfloc_slot(locs[i]), i + 1);
		page_fill(pg, i + 1, 2);
		assert_int_equal(ntmm__pagefile_write(&f->io, locs[i], pv, 1), 0);
	}
	for (unsigned i = 1; i < N - 1; i++)
		ntmm__pagefile_free(&f->io, locs[i], 1);

	/* the tail above slot 300 goes; slot 300 stops it */
	assert_int_equal(ntmm__pagefile_shrink(&f->io, 0), (int64_t)(grown - 301));
	assert_int_equal(ntmm__pagefile_total_pages(&f->io), 300);
	assert_int_equal(pf_size(&f->io, idx), 301 * PAGE);
	assert_int_equal(ntmm__pagefile_shrink(&f->io, 0), 0);
	assert_int_equal(ntmm__pagefile_audit(&f->io), 0);
	for (unsigned i = 0; i < N; i += N - 1) {
		assert_int_equal(ntmm__pagefile_read(&f->io, locs[i], pv, 1), 0);
		assert_true(page_check(pg, i + 1, 2));
	}
	/* free the last one: shrink stops at the initial size, not at slot 1 */
	ntmm__pagefile_free(&f->io, locs[N - 1], 1);
	assert_int_equal(ntmm__pagefile_shrink(&f->io, 0), 301 - 16);
	assert_int_equal(pf_size(&f->io, idx), 64 << 10);
	assert_int_equal(ntmm__pagefile_read(&f->io, locs[0], pv, 1), 0);
	assert_true(page_check(pg, 1, 2));
	/* and it can grow again, into slots the shrink had claimed */
	ntmm__pfloc_t more[40];
	for (unsigned i = 0; i < 40; i++) {
		size_t got;
		assert_int_equal(ntmm__pagefile_alloc(&f->io, 1, 1, &more[i], &got), 0);
	}
	assert_int_equal(ntmm__pagefile_used_pages(&f->io), 41);
	assert_int_equal(ntmm__pagefile_audit(&f->io), 0);
	free(pg);
	free(path);
}

/* Allocators race a thread that keeps shrinking: nothing is lost. */
typedef struct shrink_ctx {
	fixture_t *f;
	atomic_int stop;
} shrink_ctx_t;

static void *shrinker(void *arg)
{
	shrink_ctx_t *c = arg;
	while (!atomic_load(&c->stop)) {
		int64_t r = ntmm__pagefile_shrink(&c->f->io, 0);
		WORKER_CHECK(r >= 0);
		sched_yield();
	}
	return NULL;
}

typedef struct grow_worker {
	fixture_t *f;
	unsigned id;
} grow_worker_t;

static void *grow_worker(void *arg)
{
	grow_worker_t *w = arg;
	ntmm__rcu_thread_online();
	enum { N = 64 };
	ntmm__pfloc_t locs[N];
	void *pg = page_alloc(1);
	void *pv[1] = {pg};
	long rounds = scaled(30);
	for (long r = 0; r < rounds; r++) {
		for (unsigned i = 0; i < N; i++) {
			size_t got;
			int err = ntmm__pagefile_alloc(&w->f->io, 1, 1, &locs[i], &got);
			WORKER_CHECK(err == 0);
			if (err) {
				locs[i] = 0;
				continue;
			}
			page_fill(pg, ntmm__pfloc_slot(locs[i]) * 16 + w->id, (uint64_t)r);
			WORKER_CHECK(ntmm__pagefile_write(&w->f->io, locs[i], pv, 1) == 0);
		}
		for (unsigned i = 0; i < N; i++) {
			if (!locs[i])
				continue;
			WORKER_CHECK(ntmm__pagefile_read(&w->f->io, locs[i], pv, 1) == 0);
			WORKER_CHECK(
			    page_check(pg, ntmm__pfloc_slot(locs[i]) * 16 + w->id, (uint64_t)r));
			ntmm__pagefile_free(&w->f->io, locs[i], 1);
		}
	}
	free(pg);
	ntmm__rcu_thread_offline();
	return NULL;
}

static void growth_and_shrink_race_allocators_safely(void **state)
{
	fixture_t *f = *state;
	add_file(f, "race", 64 << 10, 8 << 20);
	shrink_ctx_t sc = {f, 0};
	pthread_t t;
	atomic_store(&test_failures, 0);
	assert_int_equal(pthread_create(&t, NULL, shrinker, &sc), 0);
	enum { T = 5 };
	grow_worker_t w[T];
	for (unsigned i = 0; i < T; i++)
		w[i] = (grow_worker_t){f, i};
	run_threads(T, grow_worker, w, sizeof(w[0]));
	atomic_store(&sc.stop, 1);
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&test_failures), 0);
	assert_int_equal(ntmm__pagefile_used_pages(&f->io), 0);
	assert_int_equal(ntmm__pagefile_audit(&f->io), 0);
}

/* ------------------------------------------------------- add and remove */

static void a_file_beyond_the_maximum_is_ebusy(void **state)
{
	fixture_t *f = *state;
	char name[16];
	for (unsigned i = 0; i < NTMM__PF_MAX_FILES; i++) {
		snprintf(name, sizeof(name), "pf%u", i);
		assert_int_equal(add_file(f, name, 8192, 8192), i);
	}
	snprintf(name, sizeof(name), "pf%u", NTMM__PF_MAX_FILES);
	char *p = io_path(f->dir, name);
	assert_int_equal(ntmm__pagefile_add(&f->io, p, 8192, 8192, NULL, NULL), NTMM_EBUSY);
	free(p);
	p = io_path(f->dir, "pf3");
	assert_int_equal(dir_entries(f->dir), 0); /* no paging file has a name */
	ntmm__pagefile_t *pf3 = atomic_load(&f->io.files[3]);
	uint64_t dev = pf3->dev, ino = pf3->ino;
	assert_true(io_fd_on(dev, ino) >= 0);
	assert_int_equal(ntmm__pagefile_remove(&f->io, p, 0), 0);
	assert_int_equal(io_fd_on(dev, ino), -1); /* closed: its space is freed */
	unsigned idx;
	assert_int_equal(ntmm__pagefile_add(&f->io, p, 8192, 8192, NULL, &idx), 0);
	assert_int_equal(idx, 3); /* the freed index is reused */
	free(p);
}

static void remove_refuses_while_slots_are_held(void **state)
{
	fixture_t *f = *state;
	unsigned a = add_file(f, "a", 64 << 10, 64 << 10);
	char *pb = io_path(f->dir, "b");
	assert_int_equal(ntmm__pagefile_add(&f->io, pb, 64 << 10, 64 << 10, NULL, NULL), 0);
	ntmm__pfloc_t loc;
	size_t got;
	assert_int_equal(ntmm__pagefile_alloc(&f->io, 1, 1, &loc, &got), 0);
	assert_int_equal(ntmm__pfloc_file(loc), a);
	char *pa = io_path(f->dir, "a");
	assert_int_equal(ntmm__pagefile_remove(&f->io, pa, 0), NTMM_EBUSY);
	assert_non_null(strstr(ntmm_error_detail(), "holds 1 pages"));
	/* refused without side effects: a still takes allocations */
	ntmm__pfloc_t l2;
	assert_int_equal(ntmm__pagefile_alloc(&f->io, 1, 1, &l2, &got), 0);
	assert_int_equal(ntmm__pfloc_file(l2), a);
	ntmm__pagefile_free(&f->io, l2, 1);
	/* draining: new allocations go elsewhere; the removal completes once
	   the held slot is freed */
	assert_int_equal(ntmm__pagefile_remove(&f->io, pa, NTMM__PF_REMOVE_KEEP_DRAINING),
	                 NTMM_EBUSY);
	assert_int_equal(ntmm__pagefile_alloc(&f->io, 1, 1, &l2, &got), 0);
	assert_int_not_equal(ntmm__pfloc_file(l2), a);
	ntmm__pagefile_free(&f->io, l2, 1);
	ntmm__pagefile_free(&f->io, loc, 1);
	assert_int_equal(ntmm__pagefile_remove(&f->io, pa, 0), 0);
	assert_int_equal(ntmm__pagefile_remove(&f->io, pa, 0), NTMM_EINVAL);
	assert_int_equal(ntmm__pagefile_total_pages(&f->io), 15);
	free(pa);
	free(pb);
}

/* Workers allocate, write, read back and free while the main thread adds
   and removes paging files under them. */
typedef struct churn_worker {
	fixture_t *f;
	unsigned id;
	atomic_int *stop;
} churn_worker_t;

static void *churn_worker(void *arg)
{
	churn_worker_t *w = arg;
	ntmm__rcu_thread_online();
	void *buf = page_alloc(8), *back = page_alloc(8);
	void *pv[8], *bv[8];
	for (unsigned p = 0; p < 8; p++)
		pv[p] = (char *)buf + p * PAGE, bv[p] = (char *)back + p * PAGE;
	uint64_t seed = w->id + 99;
	for (uint64_t r = 0; !atomic_load(w->stop); r++) {
		size_t want = 1 + test_rand(&seed) % 8, got;
		ntmm__pfloc_t loc;
		int err = ntmm__pagefile_alloc(&w->f->io, want, 1, &loc, &got);
		WORKER_CHECK(err == 0);
		if (err)
			continue;
		for (unsigned p = 0; p < got; p++)
			page_fill(pv[p], w->id * 1000003 + p, r);
		WORKER_CHECK(ntmm__pagefile_write(&w->f->io, loc, pv, got) == 0);
		WORKER_CHECK(ntmm__pagefile_read(&w->f->io, loc, bv, got) == 0);
		for (unsigned p = 0; p < got; p++)
			WORKER_CHECK(page_check(bv[p], w->id * 1000003 + p, r));
		ntmm__pagefile_free(&w->f->io, loc, got);
	}
	free(buf);
	free(back);
	ntmm__rcu_thread_offline();
	return NULL;
}

static void *churn_run(void *arg)
{
	return churn_worker(arg);
}

static void add_and_remove_while_others_do_io(void **state)
{
	fixture_t *f = *state;
	add_file(f, "base", 1 << 20, 4 << 20);
	atomic_int stop = 0;
	enum { T = 4 };
	churn_worker_t w[T];
	pthread_t t[T];
	atomic_store(&test_failures, 0);
	for (unsigned i = 0; i < T; i++) {
		w[i] = (churn_worker_t){f, i, &stop};
		assert_int_equal(pthread_create(&t[i], NULL, churn_run, &w[i]), 0);
	}
	long cycles = scaled(40);
	for (long c = 0; c < cycles; c++) {
		char name[32];
		snprintf(name, sizeof(name), "extra%ld", c % 3);
		char *p = io_path(f->dir, name);
		assert_int_equal(ntmm__pagefile_add(&f->io, p, 128 << 10, 1 << 20, NULL, NULL), 0);
		sched_yield();
		int err;
		while ((err = ntmm__pagefile_remove(&f->io, p, NTMM__PF_REMOVE_KEEP_DRAINING)) ==
		       NTMM_EBUSY)
			sched_yield();
		assert_int_equal(err, 0);
		free(p);
	}
	atomic_store(&stop, 1);
	for (unsigned i = 0; i < T; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&test_failures), 0);
	assert_int_equal(ntmm__pagefile_used_pages(&f->io), 0);
	assert_int_equal(ntmm__pagefile_audit(&f->io), 0);
}

/* The commit limit reads the totals from anywhere, even inside an RCU
   read-side section while a removal waits for a grace period. */
typedef struct totals_reader {
	fixture_t *f;
	atomic_int stop;
	uint64_t reads;
} totals_reader_t;

static void *totals_reader(void *arg)
{
	totals_reader_t *r = arg;
	ntmm__rcu_thread_online();
	while (!atomic_load(&r->stop)) {
		ntmm__rcu_read_lock();
		uint64_t t, m;
		ntmm__pagefile_totals(&r->f->io, &t, &m);
		/* the single figures too (not a consistent pair, but no lock) */
		WORKER_CHECK(ntmm__pagefile_total_pages(&r->f->io) >= 15);
		WORKER_CHECK(ntmm__pagefile_maximum_pages(&r->f->io) >= 15);
		ntmm__rcu_read_unlock();
		WORKER_CHECK(t <= m);
		r->reads++;
	}
	ntmm__rcu_thread_offline();
	return NULL;
}

static void totals_are_readable_inside_rcu_sections_during_removal(void **state)
{
	fixture_t *f = *state;
	add_file(f, "base", 64 << 10, 64 << 10);
	totals_reader_t r = {.f = f};
	pthread_t t;
	atomic_store(&test_failures, 0);
	assert_int_equal(pthread_create(&t, NULL, totals_reader, &r), 0);
	long cycles = scaled(30);
	for (long c = 0; c < cycles; c++) {
		char *p = io_path(f->dir, "extra");
		assert_int_equal(ntmm__pagefile_add(&f->io, p, 128 << 10, 1 << 20, NULL, NULL), 0);
		assert_int_equal(ntmm__pagefile_remove(&f->io, p, 0), 0);
		free(p);
	}
	atomic_store(&r.stop, 1);
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&test_failures), 0);
	assert_int_equal(ntmm__pagefile_total_pages(&f->io), 15);
	assert_int_equal(ntmm__pagefile_maximum_pages(&f->io), 15);
	assert_int_equal(ntmm__pagefile_audit(&f->io), 0);
}

/* -------------------------------------------------------------- bad paths */

static void expect_add_fails(fixture_t *f, const char *path, int code, const char *detail)
{
	int err = ntmm__pagefile_add(&f->io, path, 64 << 10, 1 << 20, NULL, NULL);
	assert_int_equal(err, code);
	if (detail && !strstr(ntmm_error_detail(), detail)) {
		fprintf(stderr, "detail \"%s\" lacks \"%s\"\n", ntmm_error_detail(), detail);
		fail();
	}
}

static void bad_paths_are_clear_errors(void **state)
{
	fixture_t *f = *state;
	char *p = io_path(f->dir, "no/such/dir/pf");
	expect_add_fails(f, p, NTMM_EIO, "No such file or directory");
	free(p);

	/* a parent that is a regular file */
	char *reg = io_path(f->dir, "regular");
	FILE *fp = fopen(reg, "w");
	fclose(fp);
	p = io_path(f->dir, "regular/pf");
	expect_add_fails(f, p, NTMM_EIO, "Not a directory");
	free(p);

	/* a directory, a device, /proc */
	expect_add_fails(f, f->dir, NTMM_EIO, f->dir);
	expect_add_fails(f, "/dev/null", NTMM_EIO, "/dev/null");
	expect_add_fails(f, "/proc/ntmm-pagefile", NTMM_EIO, "/proc/ntmm-pagefile");

	/* bad arguments */
	assert_int_equal(ntmm__pagefile_add(&f->io, NULL, 8192, 8192, NULL, NULL), NTMM_EINVAL);
	assert_int_equal(ntmm__pagefile_add(&f->io, "", 8192, 8192, NULL, NULL), NTMM_EINVAL);
	p = io_path(f->dir, "pf");
	assert_int_equal(ntmm__pagefile_add(&f->io, p, 1 << 20, 64 << 10, NULL, NULL), NTMM_EINVAL);
	assert_int_equal(ntmm__pagefile_add(&f->io, p, 0, 4096, NULL, NULL), NTMM_EINVAL);
	assert_int_equal(ntmm__pagefile_add(&f->io, p, 8192, 8192, "nosuchdriver", NULL),
	                 NTMM_EINVAL);
	/* the same file twice, also under another name */
	assert_int_equal(ntmm__pagefile_add(&f->io, p, 8192, 8192, NULL, NULL), 0);
	assert_int_equal(ntmm__pagefile_add(&f->io, p, 8192, 8192, NULL, NULL), NTMM_EINVAL);
	char *alias = malloc(700);
	snprintf(alias, 700, "%s/./pf", f->dir);
	assert_int_equal(ntmm__pagefile_add(&f->io, alias, 8192, 8192, NULL, NULL), NTMM_EINVAL);
	/* the same path in another io (another engine): ours has no name
	   there, so the other gets a file of its own, and tearing it down
	   leaves ours alone */
	int mine = ntmm__pagefile_index_of(&f->io, alias);
	assert_true(mine >= 0);
	ntmm__io_t other;
	unsigned oi;
	assert_int_equal(ntmm__io_setup(&other, NULL, NTMM__IO_SYNC, 1), 0);
	assert_int_equal(ntmm__pagefile_add(&other, p, 16384, 16384, NULL, &oi), 0);
	assert_true(other.files[oi]->ino != f->io.files[mine]->ino);
	assert_int_equal(pf_size(&other, oi), 16384);
	ntmm__io_teardown(&other);
	assert_int_equal(pf_size(&f->io, (unsigned)mine), 8192);
	assert_int_equal(file_size(p), -1);
	assert_int_equal(ntmm__pagefile_remove(&f->io, alias, 0), 0);
	assert_int_equal(ntmm__pagefile_total_pages(&f->io), 0);
	free(alias);
	free(p);
	free(reg);
}

/* A real full disk: a 1 MiB tmpfs (we run as root; skipped if mount is
   not permitted here — the fault-injecting driver covers ENOSPC then). */
static void full_disk_is_eio_at_add_and_ecommit_at_growth(void **state)
{
	fixture_t *f = *state;
	char *mnt = io_path(f->dir, "tmpfs");
	assert_int_equal(mkdir(mnt, 0700), 0);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=1M") != 0) {
		fprintf(stderr, "tmpfs mount not permitted (%s): skipped\n", strerror(errno));
		rmdir(mnt);
		free(mnt);
		skip();
		return;
	}
	char *p = io_path(mnt, "big");
	int err = ntmm__pagefile_add(&f->io, p, 4 << 20, 8 << 20, NULL, NULL);
	assert_int_equal(err, NTMM_EIO);
	assert_non_null(strstr(ntmm_error_detail(), "No space left on device"));
	assert_int_equal(file_size(p), -1); /* nothing left behind */
	free(p);

	p = io_path(mnt, "small");
	unsigned idx;
	assert_int_equal(ntmm__pagefile_add(&f->io, p, 256 << 10, 8 << 20, NULL, &idx), 0);
	ntmm__pfloc_t locs[512];
	void *pg = page_alloc(1);
	void *pv[1] = {pg};
	unsigned n = 0;
	for (; n < 512; n++) {
		size_t got;
		err = ntmm__pagefile_alloc(&f->io, 1, 1, &locs[n], &got);
		if (err)
			break;
		page_fill(pg, n, 3);
		assert_int_equal(ntmm__pagefile_write(&f->io, locs[n], pv, 1), 0);
	}
	assert_int_equal(err, NTMM_ECOMMIT);
	assert_non_null(strstr(ntmm_error_detail(), "No space left on device"));
	/* the space obtained is what counts: below 1 MiB, and the maximum now
	   reports what the disk gave */
	assert_true(n >= 63 && n < 256);
	assert_int_equal(ntmm__pagefile_maximum_pages(&f->io), ntmm__pagefile_total_pages(&f->io));
	assert_int_equal(ntmm__pagefile_total_pages(&f->io), n);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(ntmm__pagefile_read(&f->io, locs[i], pv, 1), 0);
		assert_true(page_check(pg, i, 3));
	}
	assert_int_equal(ntmm__pagefile_audit(&f->io), 0);
	for (unsigned i = 0; i < n; i++)
		ntmm__pagefile_free(&f->io, locs[i], 1);
	assert_int_equal(ntmm__pagefile_remove(&f->io, p, 0), 0);
	free(pg);
	free(p);
	assert_int_equal(umount(mnt), 0);
	free(mnt);
}

/* Growth on behalf of others (the segment dereference thread for the
   writer): the file with the most room is named, and a request larger
   than the room left grows the file to its maximum instead of failing. */
static void growth_requests_go_where_there_is_room(void **state)
{
	fixture_t *f = *state;
	unsigned a = add_file(f, "small", 64 << 10, 128 << 10); /* room: 16 slots */
	unsigned b = add_file(f, "large", 64 << 10, 4 << 20);
	assert_int_equal(ntmm__pagefile_growable(&f->io), (int)b);
	assert_int_equal(ntmm__pagefile_grow_upto(&f->io, a, 1000), 0);
	assert_int_equal(atomic_load(&f->io.files[a]->size_pages), 32);
	assert_int_equal(ntmm__pagefile_grow_upto(&f->io, a, 1), NTMM_ECOMMIT); /* at maximum */
	assert_int_equal(ntmm__pagefile_grow_upto(&f->io, b, 1024 - 16), 0);
	assert_int_equal(atomic_load(&f->io.files[b]->size_pages), 1024);
	assert_int_equal(ntmm__pagefile_growable(&f->io), -1); /* both at maximum */
	assert_int_equal(ntmm__pagefile_audit(&f->io), 0);
}

/* An existing file at the path is reused only when nothing in it can be
   lost: an empty file, or a paging file an earlier engine left behind
   (marked with the user.ntmm.pagefile attribute). A file with other data
   is refused and left exactly as it was. */
static void an_existing_file_is_reused_only_when_it_is_a_paging_file(void **state)
{
	fixture_t *f = *state;
	char *p = io_path(f->dir, "data");
	const char text[] = "somebody's data, not a paging file\n";
	FILE *fp = fopen(p, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, sizeof(text), fp), sizeof(text));
	fclose(fp);
	assert_int_equal(ntmm__pagefile_add(&f->io, p, 8192, 8192, NULL, NULL), NTMM_EIO);
	assert_non_null(strstr(ntmm_error_detail(), "not a paging file"));
	char back[sizeof(text)] = {0};
	fp = fopen(p, "r");
	assert_non_null(fp);
	assert_int_equal(fread(back, 1, sizeof(back), fp), sizeof(text));
	fclose(fp);
	assert_memory_equal(back, text, sizeof(text));
	assert_int_equal(ntmm__pagefile_total_pages(&f->io), 0);

	/* an empty file: taken over (its name goes at once) */
	char *q = io_path(f->dir, "empty");
	fp = fopen(q, "w");
	fclose(fp);
	struct stat st;
	assert_int_equal(stat(q, &st), 0);
	unsigned idx;
	assert_int_equal(ntmm__pagefile_add(&f->io, q, 8192, 8192, NULL, &idx), 0);
	assert_int_equal(access(q, F_OK), -1);
	assert_int_equal(f->io.files[idx]->ino, st.st_ino); /* that very file */
	assert_int_equal(pf_size(&f->io, idx), 8192);
	assert_int_equal(ntmm__pagefile_remove(&f->io, q, 0), 0);

	/* a paging file left behind: marked, so reclaimed (and truncated) */
	fp = fopen(q, "w");
	assert_int_equal(fwrite(text, 1, sizeof(text), fp), sizeof(text));
	fclose(fp);
	if (setxattr(q, "user.ntmm.pagefile", "1", 1, 0) != 0) {
		fprintf(stderr,
		        "note: %s has no user extended attributes (%s): the reuse of a "
		        "marked file is not checked here\n",
		        f->dir, strerror(errno));
	} else {
		assert_int_equal(ntmm__pagefile_add(&f->io, q, 8192, 8192, NULL, &idx), 0);
		assert_int_equal(access(q, F_OK), -1);
		assert_int_equal(pf_size(&f->io, idx), 8192);
		/* nothing of the old contents is left: the first page reads 0 */
		char zero[PAGE] = {0}, *pg = page_alloc(1);
		assert_int_equal(pread(pf_fd(&f->io, idx), pg, PAGE, 0), PAGE);
		assert_memory_equal(pg, zero, PAGE);
		free(pg);
		assert_int_equal(ntmm__pagefile_remove(&f->io, q, 0), 0);
	}
	unlink(q);
	unlink(p);
	free(q);
	free(p);
}

/* ------------------------------------------------------------ atime */

/* The open flags (octal, from /proc/self/fdinfo) of descriptor fd. */
static long open_flags_of(int fd)
{
	char name[64], line[128];
	snprintf(name, sizeof(name), "/proc/self/fdinfo/%d", fd);
	FILE *fp = fopen(name, "r");
	assert_non_null(fp);
	long flags = -1;
	while (fgets(line, sizeof(line), fp))
		if (sscanf(line, "flags: %lo", &flags) == 1)
			break;
	fclose(fp);
	return flags;
}

static void set_atime(int fd, time_t when)
{
	struct timespec ts[2] = {{.tv_sec = when}, {.tv_nsec = UTIME_OMIT}};
	assert_int_equal(futimens(fd, ts), 0);
}

static time_t atime_of(int fd)
{
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	return st.st_atim.tv_sec;
}

/* Paging-file reads leave the file's access time alone: the file is
   opened O_NOATIME, so a hard fault's read skips the kernel's atime check
   (which buys nothing for a paging file). */
static void reads_leave_the_access_time_alone(void **state)
{
	fixture_t *f = *state;
	unsigned idx = add_file(f, "pf0", 1 << 20, 1 << 20);
	int fd = pf_fd(&f->io, idx);
	assert_true(fd >= 0);
	long flags = open_flags_of(fd);
	assert_true(flags >= 0);
	assert_true(flags & O_NOATIME);

	void *page = page_alloc(1), *back = page_alloc(1);
	ntmm__pfloc_t loc;
	size_t got;
	assert_int_equal(ntmm__pagefile_alloc(&f->io, 1, 1, &loc, &got), 0);
	page_fill(page, loc, 0);
	assert_int_equal(ntmm__pagefile_write(&f->io, loc, &page, 1), 0);
	/* an access time older than the last write: a plain read under
	   relatime (or strictatime) would update it */
	set_atime(fd, 1000);
	assert_int_equal(ntmm__pagefile_read(&f->io, loc, &back, 1), 0);
	assert_true(page_check(back, loc, 0));
	assert_int_equal(atime_of(fd), 1000);

	/* the control: the same read through a plain descriptor (a new open of
	   the unnamed file, through /proc) does update it on this file system
	   (not when it is mounted noatime; the flag check above still holds
	   there) */
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	int plain = open(proc, O_RDONLY | O_CLOEXEC);
	assert_true(plain >= 0);
	assert_false(open_flags_of(plain) & O_NOATIME);
	assert_int_equal(pread(plain, back, PAGE, (off_t)(ntmm__pfloc_slot(loc) * PAGE)), PAGE);
	close(plain);
	if (atime_of(fd) == 1000)
		fprintf(stderr, "note: %s does not update access times (noatime mount)\n", f->dir);
	ntmm__pagefile_free(&f->io, loc, 1);
	free(page);
	free(back);
}

int main(void)
{
#define T(fn)  cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define TS(fn) cmocka_unit_test_setup_teardown(fn, setup_sync, teardown)
#define TU(fn) cmocka_unit_test_setup_teardown(fn, setup_uring_all, teardown)
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(location_encoding_round_trips_file_and_slot),
	    T(single_pages_round_trip),
	    T(clusters_round_trip),
	    T(largest_clusters_round_trip),
	    TU(single_pages_round_trip),
	    TU(clusters_round_trip),
	    TS(single_pages_round_trip),
	    TS(clusters_round_trip),
	    T(batch_spans_files),
	    TS(batch_spans_files),
	    T(io_on_bad_locations_is_einval),
	    T(no_slot_is_handed_out_twice_under_contention),
	    T(runs_are_contiguous_and_next_fit),
	    T(fragmented_file_yields_longest_runs),
	    T(grows_to_maximum_then_refuses_with_ecommit),
	    T(shrinks_free_tail_down_to_initial),
	    T(growth_and_shrink_race_allocators_safely),
	    T(a_file_beyond_the_maximum_is_ebusy),
	    T(remove_refuses_while_slots_are_held),
	    T(add_and_remove_while_others_do_io),
	    T(totals_are_readable_inside_rcu_sections_during_removal),
	    T(bad_paths_are_clear_errors),
	    T(full_disk_is_eio_at_add_and_ecommit_at_growth),
	    T(growth_requests_go_where_there_is_room),
	    T(an_existing_file_is_reused_only_when_it_is_a_paging_file),
	    T(reads_leave_the_access_time_alone),
	    TU(reads_leave_the_access_time_alone),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
