/*
 * Virtual-layer benchmarks beside the peers a user would otherwise pick:
 *   BM_fault_demand_zero/threads:1|2 — a write to a fresh page of a large
 *     committed region (one process; the Zeroed list is refilled with the
 *     timer paused) vs BM_peer_kernel_minor_fault — the kernel's fault on an
 *     anonymous 4 KiB page made absent with MADV_DONTNEED, then written.
 *   BM_fault_soft — a read of a page trimmed to Standby (a transition fault).
 *   BM_translate_valid — translate of a resident page inside one access
 *     section vs BM_peer_lfht_lookup — a liburcu cds_lfht lookup over the
 *     same number of keys inside one read-side section.
 */
#include "shim.h"

#include <ntmm.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "engine.h"

#define PG   4096ull
#define MAXT 4

static ntmm_engine_t *bench_engine(size_t bytes, int threads)
{
	ntmm_config_t c;
	ntmm_config_init(&c);
	c.physical_bytes = bytes;
	c.start_threads = threads;
	c.pagefile_path = NULL;
	ntmm_engine_t *e = NULL;
	if (ntmm_engine_create(&c, &e)) {
		fprintf(stderr, "bench_virt: engine: %s\n", ntmm_error_detail());
		abort();
	}
	return e;
}

/* Moves Free frames to Zeroed on every node until the Zeroed lists are at
   their high-water mark (what the zero page thread does in the background;
   the engines here run without system threads, and the zeroing pass of a
   node must not run twice at once, hence the lock). */
static pthread_mutex_t prezero_lock = PTHREAD_MUTEX_INITIALIZER;
static void prezero(ntmm_engine_t *e)
{
	pthread_mutex_lock(&prezero_lock);
	for (unsigned n = 0; n < e->phys.nnodes; n++) {
		bool more = true;
		while (more)
			ntmm__phys_zero_pass(e, n, 4096, &more);
	}
	pthread_mutex_unlock(&prezero_lock);
}

/* Backs every 2 MiB chunk of the pool now (the pool grows lazily, and a
   first-touch chunk commit is the kernel's work, not a fault's): takes
   every frame once, then frees them all. */
static void precommit(ntmm_engine_t *e)
{
	size_t n = e->cfg.physical_bytes / PG, got = 0;
	ntmm__pfn_t *pfns = malloc(n * sizeof(*pfns));
	while (got < n && !ntmm__page_alloc(e, NTMM__ALLOC_NO_STANDBY, NTMM__ALLOC_NODE_ANY,
	                                    NTMM__COLOUR_ANY, &pfns[got]))
		got++;
	for (size_t i = 0; i < got; i++)
		ntmm__page_free(e, pfns[i]);
	free(pfns);
}

/* ------------------------------------------------------- demand-zero */

#define DZ_PAGES  (128u * 1024) /* committed per thread: 512 MiB */
#define DZ_REFILL 8192u         /* Zeroed list refilled every this many faults per thread */

/* The refill and recycle work runs with every thread paused at a barrier
   (each thread runs the same iterations, so all reach each refill point),
   so one thread's maintenance never overlaps another's timed faults. */
typedef struct dz {
	ntmm_engine_t *e;
	ntmm_process_t *p;
	uint64_t base[MAXT];
	pthread_barrier_t bar;
} dz_t;

static void *dz_setup(int threads)
{
	dz_t *c = calloc(1, sizeof(*c));
	c->e = bench_engine(1536ull << 20, 0);
	ntmm_thread_register(c->e);
	precommit(c->e);
	ntmm_process_create(c->e, &c->p);
	for (int t = 0; t < threads && t < MAXT; t++)
		if (ntmm_allocate(c->p, &c->base[t], DZ_PAGES * PG,
		                  NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE))
			abort();
	prezero(c->e);
	pthread_barrier_init(&c->bar, NULL, (unsigned)threads);
	return c;
}

static void dz_teardown(void *ctx)
{
	dz_t *c = ctx;
	pthread_barrier_destroy(&c->bar);
	ntmm_process_destroy(c->p);
	ntmm_thread_unregister(c->e);
	ntmm_engine_destroy(c->e);
	free(c);
}

static void dz_run(ntmm_bench_state_t *st, void *ctx)
{
	dz_t *c = ctx;
	int t = ntmm_bench_thread_index(st);
	ntmm_thread_register(c->e);
	uint64_t base = c->base[t];
	size_t i = 0;
	ntmm_stats_t s0, s1;
	ntmm_stats_get(c->e, &s0);
	while (ntmm_bench_keep_running(st)) {
		if (i % DZ_REFILL == 0 && i) {
			ntmm_bench_pause(st);
			pthread_barrier_wait(&c->bar);
			if (i == DZ_PAGES) { /* region used up: decommit, recommit */
				ntmm_free(c->p, base, DZ_PAGES * PG, NTMM_MEM_DECOMMIT);
				uint64_t b = base;
				ntmm_allocate(c->p, &b, DZ_PAGES * PG, NTMM_MEM_COMMIT,
				              NTMM_PAGE_READWRITE);
				i = 0;
			}
			pthread_barrier_wait(&c->bar);
			if (t == 0)
				prezero(c->e); /* what the zero page thread does meanwhile */
			pthread_barrier_wait(&c->bar);
			ntmm_bench_resume(st);
		}
		char *h;
		ntmm_access_begin(c->e);
		if (ntmm_translate(c->p, base + i * PG, NTMM_ACCESS_WRITE, (void **)&h)) {
			ntmm_access_end(c->e);
			ntmm_bench_skip(st, ntmm_error_detail());
			break;
		}
		*h = 1;
		ntmm_access_end(c->e);
		i++;
	}
	ntmm_stats_get(c->e, &s1);
	if (t == 0) /* stays near 0 when faults take pre-zeroed frames */
		ntmm_bench_counter(st, "zeroed_inline_per_fault",
		                   (double)(s1.frames_zeroed_inline - s0.frames_zeroed_inline) /
		                       (double)(s1.demand_zero_faults - s0.demand_zero_faults + 1));
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st));
	ntmm_thread_unregister(c->e);
}

NTMM_BENCH(BM_fault_demand_zero, .run = dz_run, .setup = dz_setup, .teardown = dz_teardown,
           .threads = {1, 2})

static void kernel_minor_run(ntmm_bench_state_t *st, void *ctx)
{
	volatile char *p =
	    mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		ntmm_bench_skip(st, "mmap failed");
		return;
	}
	while (ntmm_bench_keep_running(st)) {
		madvise((void *)p, PG, MADV_DONTNEED);
		*p = 1;
	}
	munmap((void *)p, PG);
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st));
}

NTMM_BENCH(BM_peer_kernel_minor_fault, .run = kernel_minor_run)

/* ------------------------------------------------------------ soft */

#define SOFT_PAGES 4096u

typedef struct soft {
	ntmm_engine_t *e;
	ntmm_process_t *p;
	uint64_t base;
} soft_t;

static void *soft_setup(int threads)
{
	soft_t *c = calloc(1, sizeof(*c));
	c->e = bench_engine(256ull << 20, 0);
	ntmm_thread_register(c->e);
	ntmm_process_create(c->e, &c->p);
	if (ntmm_allocate(c->p, &c->base, SOFT_PAGES * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT,
	                  NTMM_PAGE_READWRITE))
		abort();
	/* read-touch: the pages stay clean, so a trim sends them to Standby */
	for (size_t i = 0; i < SOFT_PAGES; i++) {
		char b;
		ntmm_read(c->p, c->base + i * PG, &b, 1);
	}
	return c;
}

static void soft_run(ntmm_bench_state_t *st, void *ctx)
{
	soft_t *c = ctx;
	ntmm_thread_register(c->e);
	size_t i = SOFT_PAGES;
	while (ntmm_bench_keep_running(st)) {
		if (i == SOFT_PAGES) {
			ntmm_bench_pause(st);
			ntmm_ws_empty(c->p); /* all pages → Standby, one grace period */
			i = 0;
			ntmm_bench_resume(st);
		}
		volatile char *h;
		ntmm_access_begin(c->e);
		if (ntmm_translate(c->p, c->base + i * PG, NTMM_ACCESS_READ, (void **)&h)) {
			ntmm_access_end(c->e);
			ntmm_bench_skip(st, ntmm_error_detail());
			break;
		}
		(void)*h;
		ntmm_access_end(c->e);
		i++;
	}
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st));
	ntmm_thread_unregister(c->e);
}

static void soft_teardown(void *ctx)
{
	soft_t *c = ctx;
	ntmm_process_destroy(c->p);
	ntmm_thread_unregister(c->e);
	ntmm_engine_destroy(c->e);
	free(c);
}

NTMM_BENCH(BM_fault_soft, .run = soft_run, .setup = soft_setup, .teardown = soft_teardown)

/* -------------------------------------------------------- translate */

#define KEYS 1024u

static void *tr_setup(int threads)
{
	soft_t *c = calloc(1, sizeof(*c));
	c->e = bench_engine(64ull << 20, 0);
	ntmm_thread_register(c->e);
	ntmm_process_create(c->e, &c->p);
	if (ntmm_allocate(c->p, &c->base, KEYS * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT,
	                  NTMM_PAGE_READWRITE))
		abort();
	for (size_t i = 0; i < KEYS; i++) {
		char b = 1;
		ntmm_write(c->p, c->base + i * PG, &b, 1);
	}
	return c;
}

static void tr_run(ntmm_bench_state_t *st, void *ctx)
{
	soft_t *c = ctx;
	ntmm_thread_register(c->e);
	uint64_t i = 0;
	ntmm_access_begin(c->e);
	while (ntmm_bench_keep_running_batch(st, 64)) {
		for (int k = 0; k < 64; k++) {
			void *h;
			ntmm_translate(c->p, c->base + (i++ % KEYS) * PG + 8, NTMM_ACCESS_READ, &h);
			ntmm_bench_escape(h);
		}
	}
	ntmm_access_end(c->e);
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st));
	ntmm_thread_unregister(c->e);
}

NTMM_BENCH(BM_translate_valid, .run = tr_run, .setup = tr_setup, .teardown = soft_teardown)

extern const struct rcu_flavor_struct urcu_memb_flavor;

typedef struct lf_node {
	uint64_t key;
	struct cds_lfht_node node;
	struct rcu_head rcu;
} lf_node_t;

typedef struct lf {
	struct cds_lfht *ht;
	lf_node_t *nodes;
} lf_t;

static inline unsigned long lf_hash(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return (unsigned long)k;
}

static int lf_match(struct cds_lfht_node *n, const void *key)
{
	return caa_container_of(n, lf_node_t, node)->key == *(const uint64_t *)key;
}

static void *lf_setup(int threads)
{
	lf_t *c = calloc(1, sizeof(*c));
	ntmm__rcu_thread_online();
	c->ht = cds_lfht_new_flavor(KEYS, KEYS, 0, 0, &urcu_memb_flavor, NULL);
	c->nodes = calloc(KEYS, sizeof(*c->nodes));
	ntmm__rcu_read_lock();
	for (uint64_t i = 0; i < KEYS; i++) {
		c->nodes[i].key = i;
		cds_lfht_node_init(&c->nodes[i].node);
		cds_lfht_add(c->ht, lf_hash(i), &c->nodes[i].node);
	}
	ntmm__rcu_read_unlock();
	return c;
}

static void lf_teardown(void *ctx)
{
	lf_t *c = ctx;
	ntmm__rcu_read_lock();
	for (uint64_t i = 0; i < KEYS; i++)
		cds_lfht_del(c->ht, &c->nodes[i].node);
	ntmm__rcu_read_unlock();
	ntmm__rcu_synchronize();
	cds_lfht_destroy(c->ht, NULL);
	free(c->nodes);
	free(c);
	ntmm__rcu_thread_offline();
}

static void lf_run(ntmm_bench_state_t *st, void *ctx)
{
	lf_t *c = ctx;
	ntmm__rcu_thread_online();
	uint64_t i = 0;
	ntmm__rcu_read_lock();
	while (ntmm_bench_keep_running_batch(st, 64)) {
		for (int k = 0; k < 64; k++) {
			uint64_t key = i++ % KEYS;
			struct cds_lfht_iter it;
			cds_lfht_lookup(c->ht, lf_hash(key), lf_match, &key, &it);
			ntmm_bench_escape(cds_lfht_iter_get_node(&it));
		}
	}
	ntmm__rcu_read_unlock();
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st));
	ntmm__rcu_thread_offline();
}

NTMM_BENCH(BM_peer_lfht_lookup, .run = lf_run, .setup = lf_setup, .teardown = lf_teardown)
