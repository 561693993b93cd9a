/* Concurrency: more threads than cores allocate, fill, check and free
   frames while the zero page thread runs; owners trim, soft-fault back and
   delete while others repurpose their Standby frames and a writer cleans
   Modified ones. No frame is ever handed out twice (each owner's pattern
   survives until it frees), zero requests always see zeros, and the audit
   holds at the end. */
#include "phys_testutil.h"
#include "fixture.h"

/* The engine of each test that needs one comes from its setup; the
   teardown destroys it even after a failed assert. */
static struct {
	ntmm_engine_t *e;
} fx;

static int setup_8mib_threads(void **state)
{
	fx.e = phys_engine(8, NULL, NTMM_BACKING_AUTO, 1);
	*state = fx.e;
	return 0;
}
static int setup_2mib_threads(void **state)
{
	fx.e = phys_engine(2, NULL, NTMM_BACKING_AUTO, 1);
	*state = fx.e;
	return 0;
}
static int teardown(void **state)
{
	fixture_engine_destroy(fx.e);
	fx.e = NULL;
	return 0;
}

#define THREADS 6

typedef struct worker {
	ntmm_engine_t *e;
	int id;
	long iters;
} worker_t;

static void fill(ntmm_engine_t *e, ntmm__pfn_t pfn, uint64_t tag)
{
	uint64_t *p = ntmm__pfn_host(e, pfn);
	for (size_t i = 0; i < 4096 / 8; i += 64)
		p[i] = tag;
	p[511] = tag;
}

static bool holds(ntmm_engine_t *e, ntmm__pfn_t pfn, uint64_t tag)
{
	uint64_t *p = ntmm__pfn_host(e, pfn);
	for (size_t i = 0; i < 4096 / 8; i += 64)
		if (p[i] != tag)
			return false;
	return p[511] == tag;
}

static void *alloc_free_worker(void *arg)
{
	worker_t *w = arg;
	enum { HOLD = 48 };
	ntmm__pfn_t held[HOLD];
	int n = 0;
	uint64_t seed = 0x9e3779b97f4a7c15ull * (uint64_t)(w->id + 1);
	uint64_t tag = 0x1111000000000000ull | (uint64_t)w->id;
	for (long it = 0; it < w->iters; it++) {
		bool want_alloc = n == 0 || (n < HOLD && (test_rand(&seed) & 1));
		if (want_alloc) {
			bool zero = test_rand(&seed) & 1;
			ntmm__pfn_t pfn;
			int err = ntmm__page_alloc(w->e, zero ? NTMM__ALLOC_ZERO : 0,
			                           NTMM__ALLOC_NODE_ANY, (uint32_t)it, &pfn);
			WORKER_CHECK(err == 0);
			if (err)
				continue;
			WORKER_CHECK(loc(w->e, pfn) == NTMM__LOC_ACTIVE);
			if (zero)
				WORKER_CHECK(frame_is(w->e, pfn, 0));
			fill(w->e, pfn, tag);
			held[n++] = pfn;
		} else {
			int i = (int)(test_rand(&seed) % (uint64_t)n);
			WORKER_CHECK(holds(w->e, held[i], tag));
			/* leave a different owner's bytes behind */
			memset(ntmm__pfn_host(w->e, held[i]), 0xa5, 4096);
			ntmm__page_free(w->e, held[i]);
			held[i] = held[--n];
		}
	}
	for (int i = 0; i < n; i++) {
		WORKER_CHECK(holds(w->e, held[i], tag));
		ntmm__page_free(w->e, held[i]);
	}
	return NULL;
}

static void many_threads_never_share_a_frame(void **state)
{
	ntmm_engine_t *e = *state;
	worker_t w[THREADS];
	for (int i = 0; i < THREADS; i++)
		w[i] = (worker_t){e, i, scaled(100000)};
	atomic_store(&test_failures, 0);
	run_threads(THREADS, alloc_free_worker, w, sizeof(w[0]));
	assert_int_equal(atomic_load(&test_failures), 0);
	assert_int_equal(ntmm_audit(e), 0);
	ntmm_stats_t s;
	ntmm_stats_get(e, &s);
	assert_int_equal(s.active_pages, 0);
	assert_int_equal(s.frame_allocs, s.frame_frees);
}

static void *pressure_worker(void *arg)
{
	/* a pool smaller than the threads' demand: ENOMEM is allowed, a crash
	   or a shared frame is not */
	worker_t *w = arg;
	uint64_t seed = 77 + (uint64_t)w->id;
	ntmm__pfn_t held[200];
	for (long it = 0; it < w->iters; it++) {
		int n = 0;
		int want = 1 + (int)(test_rand(&seed) % 200);
		for (; n < want; n++) {
			if (ntmm__page_alloc(w->e, NTMM__ALLOC_ZERO, NTMM__ALLOC_NODE_ANY,
			                     NTMM__COLOUR_ANY, &held[n]))
				break;
			WORKER_CHECK(frame_is(w->e, held[n], 0));
			fill(w->e, held[n], (uint64_t)w->id << 32 | (uint64_t)n);
		}
		for (int i = 0; i < n; i++) {
			WORKER_CHECK(holds(w->e, held[i], (uint64_t)w->id << 32 | (uint64_t)i));
			memset(ntmm__pfn_host(w->e, held[i]), 0x3c, 64);
			ntmm__page_free(w->e, held[i]);
		}
	}
	return NULL;
}

static void exhausted_pool_under_contention_stays_consistent(void **state)
{
	/* 2 MiB = 512 frames for 6 threads wanting up to 200 each */
	ntmm_engine_t *e = *state;
	worker_t w[THREADS];
	for (int i = 0; i < THREADS; i++)
		w[i] = (worker_t){e, i, scaled(300)};
	atomic_store(&test_failures, 0);
	run_threads(THREADS, pressure_worker, w, sizeof(w[0]));
	assert_int_equal(atomic_load(&test_failures), 0);
	assert_int_equal(ntmm_audit(e), 0);
}

/* ---- owners, trimming, soft faults, repurposing and a writer ---- */

enum { SLOTS = 128 };
typedef struct owner {
	ntmm_engine_t *e;
	int id;
	long iters;
	_Atomic uint64_t pte[SLOTS]; /* the "PTE" each frame belongs to */
	ntmm__pfn_t pfn[SLOTS];
	int state[SLOTS]; /* 0 none, 1 active, 2 trimmed */
} owner_t;

static _Atomic int g_stop_writer;
static _Atomic long g_repurposed;

static void repurpose_cb(ntmm_engine_t *e, ntmm__pfn_t pfn, uint64_t pte_addr, uint64_t orig)
{
	/* turn the old owner's "PTE" back into its OriginalPte */
	atomic_store((_Atomic uint64_t *)(uintptr_t)pte_addr, orig);
	atomic_fetch_add(&g_repurposed, 1);
}

static uint64_t owner_tag(owner_t *o, int slot)
{
	return (uint64_t)(o->id + 1) << 40 | (uint64_t)slot;
}

static void *owner_worker(void *arg)
{
	owner_t *o = arg;
	ntmm_engine_t *e = o->e;
	uint64_t seed = 1234567 + (uint64_t)o->id;
	for (long it = 0; it < o->iters; it++) {
		int i = (int)(test_rand(&seed) % SLOTS);
		uint64_t pte_addr = (uint64_t)(uintptr_t)&o->pte[i];
		switch (o->state[i]) {
		case 0: {
			ntmm__pfn_t pfn;
			if (ntmm__page_alloc(e, NTMM__ALLOC_ZERO, NTMM__ALLOC_NODE_ANY, (uint32_t)i,
			                     &pfn))
				break;
			WORKER_CHECK(frame_is(e, pfn, 0));
			fill(e, pfn, owner_tag(o, i));
			atomic_store(&ntmm__pfn(e, pfn)->pte, pte_addr);
			atomic_store(&ntmm__pfn(e, pfn)->original_pte, 0xdead0000u + (uint64_t)i);
			atomic_store(&o->pte[i], pfn + 1ull);
			o->pfn[i] = pfn;
			o->state[i] = 1;
			break;
		}
		case 1: {
			WORKER_CHECK(holds(e, o->pfn[i], owner_tag(o, i)));
			unsigned r = (unsigned)(test_rand(&seed) % 4);
			if (r == 0) {
				ntmm__page_free(e, o->pfn[i]);
				atomic_store(&o->pte[i], 0);
				o->state[i] = 0;
			} else {
				ntmm__page_set_priority(e, o->pfn[i], r);
				WORKER_CHECK(ntmm__page_unmap(e, o->pfn[i], r == 1, false));
				ntmm__page_release_batch(e, &o->pfn[i], 1);
				o->state[i] = 2;
			}
			break;
		}
		case 2: {
			if (test_rand(&seed) % 3 == 0) {
				if (!ntmm__page_delete_transition(e, o->pfn[i], pte_addr))
					WORKER_CHECK(loc(e, o->pfn[i]) != NTMM__LOC_STANDBY ||
					             atomic_load(&ntmm__pfn(e, o->pfn[i])->pte) !=
					                 pte_addr);
				o->state[i] = 0;
				atomic_store(&o->pte[i], 0);
				break;
			}
			int err;
			do
				err = ntmm__page_reclaim(e, o->pfn[i], pte_addr, false);
			while (err == NTMM_EBUSY &&
			       ntmm__pfn_loc(st(e, o->pfn[i])) != NTMM__LOC_ACTIVE);
			if (err == 0) {
				/* nobody touched it while it was on a list */
				WORKER_CHECK(holds(e, o->pfn[i], owner_tag(o, i)));
				o->state[i] = 1;
			} else {
				WORKER_CHECK(err == NTMM_ECONFLICT || err == NTMM_EBUSY);
				if (err == NTMM_EBUSY) { /* under write: retry later */
					break;
				}
				o->state[i] = 0; /* repurposed: the frame is someone else's */
			}
			break;
		}
		}
	}
	/* teardown */
	for (int i = 0; i < SLOTS; i++) {
		uint64_t pte_addr = (uint64_t)(uintptr_t)&o->pte[i];
		if (o->state[i] == 1)
			ntmm__page_free(e, o->pfn[i]);
		else if (o->state[i] == 2)
			ntmm__page_delete_transition(e, o->pfn[i], pte_addr);
	}
	return NULL;
}

static void *writer_worker(void *arg)
{
	ntmm_engine_t *e = arg;
	ntmm__pfn_t batch[16];
	uint64_t orig[16];
	unsigned round = 0;
	while (!atomic_load(&g_stop_writer)) {
		size_t k = ntmm__page_writer_take(e, NTMM__ALLOC_NODE_ANY, batch, 16);
		for (size_t i = 0; i < k; i++)
			orig[i] = 0xf11e0000u + i;
		if (k)
			ntmm__page_writer_done(e, batch, orig, k, (++round % 5) != 0);
		else
			sched_yield();
	}
	/* drain so the audit sees no frame in flight */
	size_t k;
	while ((k = ntmm__page_writer_take(e, NTMM__ALLOC_NODE_ANY, batch, 16)))
		ntmm__page_writer_done(e, batch, NULL, k, true);
	return NULL;
}

static void trim_reclaim_repurpose_and_write_race_safely(void **state)
{
	/* 2 MiB: 512 frames for 6 × 128 slots, so Standby gets repurposed */
	ntmm_engine_t *e = *state;
	e->phys.repurpose = repurpose_cb;
	atomic_store(&g_stop_writer, 0);
	atomic_store(&g_repurposed, 0);
	owner_t *o = calloc(THREADS, sizeof(*o));
	for (int i = 0; i < THREADS; i++) {
		o[i].e = e;
		o[i].id = i;
		o[i].iters = scaled(150000);
	}
	atomic_store(&test_failures, 0);
	pthread_t wt;
	assert_int_equal(pthread_create(&wt, NULL, writer_worker, e), 0);
	run_threads(THREADS, owner_worker, o, sizeof(o[0]));
	atomic_store(&g_stop_writer, 1);
	pthread_join(wt, NULL);
	assert_int_equal(atomic_load(&test_failures), 0);
	ntmm_stats_t s;
	ntmm_stats_get(e, &s);
	fprintf(stderr, "repurposed %ld standby frames; %lu allocation failures\n",
	        atomic_load(&g_repurposed), (unsigned long)s.frame_alloc_fails);
	assert_true(atomic_load(&g_repurposed) > 0);
	assert_int_equal(s.active_pages + s.transition_pages, 0);
	assert_int_equal(s.standby_pages + s.modified_pages, 0);
	assert_int_equal(ntmm_audit(e), 0);
	free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(many_threads_never_share_a_frame, setup_8mib_threads,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(exhausted_pool_under_contention_stays_consistent,
	                                    setup_2mib_threads, teardown),
	    cmocka_unit_test_setup_teardown(trim_reclaim_repurpose_and_write_race_safely,
	                                    setup_2mib_threads, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
