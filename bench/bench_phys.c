/*
 * Physical-layer benchmarks beside their peers, all on frames of the same
 * pool:
 *   BM_frame_alloc_free            alloc+free pairs through the per-CPU path
 *   BM_peer_mutex_list_alloc_free  a pthread-mutex-protected free list
 *   BM_peer_lfstack_alloc_free     liburcu's cds_lfs stack (pop_blocking/push)
 *   BM_zero_page / BM_peer_memset_page   zeroing 4 KiB pages over a working
 *                                  set four times the last-level cache
 *   BM_pfn_transition / BM_peer_raw_cas  one checked PFN state change
 *                                  (alternately Active→Free and Free→Active)
 *                                  vs one iteration of a bare CAS loop
 * The peers' lists are intrusive (the link lives in the free frame), as a
 * real frame free list would be.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <urcu/lfstack.h>

#include "engine.h"
#include "shim.h"

static ntmm_engine_t *bench_engine(size_t mib)
{
	ntmm_config_t c;
	ntmm_config_init(&c);
	c.physical_bytes = mib << 20;
	c.start_threads = 0;
	ntmm_engine_t *e = NULL;
	if (ntmm_engine_create(&c, &e)) {
		fprintf(stderr, "bench: engine: %s\n", ntmm_error_detail());
		return NULL;
	}
	return e;
}

/* ---------------------------------------------------------- frame alloc/free */

static void *frame_setup(int threads)
{
	ntmm_engine_t *e = bench_engine(64);
	/* warm: commit a chunk and fill the magazines */
	ntmm__pfn_t f[256];
	for (int i = 0; e && i < 256; i++)
		ntmm__page_alloc(e, 0, NTMM__ALLOC_NODE_ANY, NTMM__COLOUR_ANY, &f[i]);
	for (int i = 0; e && i < 256; i++)
		ntmm__page_free(e, f[i]);
	return e;
}

static void engine_teardown(void *ctx)
{
	if (ctx)
		ntmm_engine_destroy(ctx);
}

static void frame_run(ntmm_bench_state_t *st, void *ctx)
{
	ntmm_engine_t *e = ctx;
	if (!e) {
		ntmm_bench_skip(st, "engine");
		return;
	}
	while (ntmm_bench_keep_running_batch(st, 64)) {
		for (int i = 0; i < 64; i++) {
			ntmm__pfn_t pfn;
			if (ntmm__page_alloc(e, 0, NTMM__ALLOC_NODE_ANY, NTMM__COLOUR_ANY, &pfn) ==
			    0)
				ntmm__page_free(e, pfn);
		}
	}
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st));
}
NTMM_BENCH(BM_frame_alloc_free, .run = frame_run, .setup = frame_setup, .teardown = engine_teardown,
           .threads = {1, 2})

/* ------------------------------------------------------- peer: mutex list */

enum { PEER_FRAMES = 4096 };

typedef struct mutex_list {
	ntmm_engine_t *e;
	pthread_mutex_t lock;
	void *head; /* first free frame; each frame's first word links the next */
} mutex_list_t;

static void *mutex_list_setup(int threads)
{
	mutex_list_t *m = calloc(1, sizeof(*m));
	m->e = bench_engine(64);
	pthread_mutex_init(&m->lock, NULL);
	for (int i = 0; m->e && i < PEER_FRAMES; i++) {
		ntmm__pfn_t pfn;
		if (ntmm__page_alloc(m->e, 0, NTMM__ALLOC_NODE_ANY, NTMM__COLOUR_ANY, &pfn))
			break;
		void *f = ntmm__pfn_host(m->e, pfn);
		*(void **)f = m->head;
		m->head = f;
	}
	return m;
}

static void mutex_list_teardown(void *ctx)
{
	mutex_list_t *m = ctx;
	if (m->e)
		ntmm_engine_destroy(m->e);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static void mutex_list_run(ntmm_bench_state_t *st, void *ctx)
{
	mutex_list_t *m = ctx;
	while (ntmm_bench_keep_running_batch(st, 64)) {
		for (int i = 0; i < 64; i++) {
			pthread_mutex_lock(&m->lock);
			void *f = m->head;
			if (f)
				m->head = *(void **)f;
			pthread_mutex_unlock(&m->lock);
			ntmm_bench_escape(f);
			if (!f)
				continue;
			pthread_mutex_lock(&m->lock);
			*(void **)f = m->head;
			m->head = f;
			pthread_mutex_unlock(&m->lock);
		}
	}
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st));
}
NTMM_BENCH(BM_peer_mutex_list_alloc_free, .run = mutex_list_run, .setup = mutex_list_setup,
           .teardown = mutex_list_teardown, .threads = {1, 2})

/* ----------------------------------------------------- peer: liburcu lfstack */

typedef struct lfs_peer {
	ntmm_engine_t *e;
	struct cds_lfs_stack stack;
} lfs_peer_t;

static void *lfs_setup(int threads)
{
	lfs_peer_t *l = calloc(1, sizeof(*l));
	l->e = bench_engine(64);
	cds_lfs_init(&l->stack);
	for (int i = 0; l->e && i < PEER_FRAMES; i++) {
		ntmm__pfn_t pfn;
		if (ntmm__page_alloc(l->e, 0, NTMM__ALLOC_NODE_ANY, NTMM__COLOUR_ANY, &pfn))
			break;
		struct cds_lfs_node *n = ntmm__pfn_host(l->e, pfn);
		cds_lfs_node_init(n);
		cds_lfs_push(&l->stack, n);
	}
	return l;
}

static void lfs_teardown(void *ctx)
{
	lfs_peer_t *l = ctx;
	if (l->e)
		ntmm_engine_destroy(l->e);
	cds_lfs_destroy(&l->stack);
	free(l);
}

static void lfs_run(ntmm_bench_state_t *st, void *ctx)
{
	lfs_peer_t *l = ctx;
	while (ntmm_bench_keep_running_batch(st, 64)) {
		for (int i = 0; i < 64; i++) {
			/* pop_blocking: the ABA-safe pop for nodes reused at once */
			struct cds_lfs_node *n = cds_lfs_pop_blocking(&l->stack);
			ntmm_bench_escape(n);
			if (n)
				cds_lfs_push(&l->stack, n);
		}
	}
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st));
}
NTMM_BENCH(BM_peer_lfstack_alloc_free, .run = lfs_run, .setup = lfs_setup, .teardown = lfs_teardown,
           .threads = {1, 2})

/* ----------------------------------------------------------------- zeroing */

enum { ZERO_SET_MIB = 128 }; /* 4 × the 32 MiB L3 of the reference box */

typedef struct zero_set {
	ntmm_engine_t *e;
	size_t n;
	void **pages;
} zero_set_t;

static void *zero_setup(int threads)
{
	zero_set_t *z = calloc(1, sizeof(*z));
	z->e = bench_engine(ZERO_SET_MIB);
	size_t want = (size_t)ZERO_SET_MIB << 8;
	z->pages = calloc(want, sizeof(void *));
	for (; z->e && z->n < want; z->n++) {
		ntmm__pfn_t pfn;
		if (ntmm__page_alloc(z->e, 0, NTMM__ALLOC_NODE_ANY, NTMM__COLOUR_ANY, &pfn))
			break;
		z->pages[z->n] = ntmm__pfn_host(z->e, pfn);
		memset(z->pages[z->n], 1, 4096);
	}
	return z;
}

static void zero_teardown(void *ctx)
{
	zero_set_t *z = ctx;
	if (z->e)
		ntmm_engine_destroy(z->e);
	free(z->pages);
	free(z);
}

static void zero_run(ntmm_bench_state_t *st, void *ctx)
{
	zero_set_t *z = ctx;
	size_t i = 0;
	if (!z->n) {
		ntmm_bench_skip(st, "no frames");
		return;
	}
	while (ntmm_bench_keep_running_batch(st, 16)) {
		for (int k = 0; k < 16; k++) {
			ntmm__zero_page_nt(z->pages[i]);
			if (++i == z->n)
				i = 0;
		}
		ntmm__zero_fence(); /* once per batch, as the zero page thread does */
	}
	ntmm_bench_counter(st, "working_set_MiB", (double)z->n / 256);
	ntmm_bench_set_bytes(st, (int64_t)ntmm_bench_iterations(st) * 4096);
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st));
}
NTMM_BENCH(BM_zero_page, .run = zero_run, .setup = zero_setup, .teardown = zero_teardown)

static void memset_run(ntmm_bench_state_t *st, void *ctx)
{
	zero_set_t *z = ctx;
	size_t i = 0;
	if (!z->n) {
		ntmm_bench_skip(st, "no frames");
		return;
	}
	while (ntmm_bench_keep_running_batch(st, 16)) {
		for (int k = 0; k < 16; k++) {
			memset(z->pages[i], 0, 4096);
			ntmm_bench_escape(z->pages[i]);
			if (++i == z->n)
				i = 0;
		}
	}
	ntmm_bench_counter(st, "working_set_MiB", (double)z->n / 256);
	ntmm_bench_set_bytes(st, (int64_t)ntmm_bench_iterations(st) * 4096);
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st));
}
NTMM_BENCH(BM_peer_memset_page, .run = memset_run, .setup = zero_setup, .teardown = zero_teardown)

/* ------------------------------------------------------ PFN transitions */

typedef struct pfn_ctx {
	ntmm_engine_t *e;
	ntmm__pfn_t pfn;
} pfn_ctx_t;

static void *pfn_setup(int threads)
{
	pfn_ctx_t *c = calloc(1, sizeof(*c));
	c->e = bench_engine(2);
	if (c->e && ntmm__page_alloc(c->e, 0, NTMM__ALLOC_NODE_ANY, NTMM__COLOUR_ANY, &c->pfn)) {
		ntmm_engine_destroy(c->e);
		c->e = NULL;
	}
	return c;
}

static void pfn_teardown(void *ctx)
{
	pfn_ctx_t *c = ctx;
	if (c->e) {
		ntmm__page_free(c->e, c->pfn);
		ntmm_engine_destroy(c->e);
	}
	free(c);
}

static void pfn_run(ntmm_bench_state_t *st, void *ctx)
{
	pfn_ctx_t *c = ctx;
	if (!c->e) {
		ntmm_bench_skip(st, "engine");
		return;
	}
	/* The frame is ACTIVE and ours. Each iteration is one checked state
	   change (legality check, generation bump, CAS), alternating
	   ACTIVE → FREE and FREE → ACTIVE, so a Free→Active→Free round trip
	   is two iterations; the frame ends ACTIVE again. */
	uint64_t active =
	    atomic_load_explicit(&ntmm__pfn(c->e, c->pfn)->state, memory_order_relaxed);
	uint64_t free_w = (active & ~(NTMM__PFN_LOC_MASK | NTMM__PFN_SHARE_MASK |
	                              NTMM__PFN_REF_MASK | NTMM__PFN_FLAGS_MASK)) |
	                  NTMM__LOC_FREE;
	uint64_t s = active;
	while (ntmm_bench_keep_running_batch(st, 64)) {
		for (int i = 0; i < 32; i++) {
			if (ntmm__pfn_transition(c->e, c->pfn, &s, free_w))
				abort();
			if (ntmm__pfn_transition(c->e, c->pfn, &s, active))
				abort();
		}
	}
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st));
}
NTMM_BENCH(BM_pfn_transition, .run = pfn_run, .setup = pfn_setup, .teardown = pfn_teardown)

static void raw_cas_run(ntmm_bench_state_t *st, void *ctx)
{
	_Atomic uint64_t word = 0;
	while (ntmm_bench_keep_running_batch(st, 64)) {
		for (int i = 0; i < 64; i++) {
			uint64_t v = atomic_load_explicit(&word, memory_order_relaxed);
			while (!atomic_compare_exchange_weak_explicit(
			    &word, &v, v + 1, memory_order_acq_rel, memory_order_relaxed))
				;
		}
	}
	ntmm_bench_escape(&word);
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st));
}
NTMM_BENCH(BM_peer_raw_cas, .run = raw_cas_run)
