/* Concurrency of the virtual layer with more threads than cores: data
   integrity across processes while a trimmer empties working sets, collided
   faults on the same pages, and address-space changes racing with faults.
   Every test ends with the audit. */
#include "virt_testutil.h"

#include "engine.h"

#include <sched.h>

#define NPROC    3
#define NTHREADS 6

typedef struct shared {
	ntmm_engine_t *e;
	ntmm_process_t *p[NPROC];
	uint64_t base[NPROC];
	size_t pages_per_thread;
	int rounds;
	atomic_int running;
	pthread_barrier_t start;
} shared_t;

typedef struct worker {
	shared_t *sh;
	int id;
} worker_t;

static inline uint64_t word(int id, int round, size_t page, size_t k)
{
	return ((uint64_t)id << 48) ^ ((uint64_t)round << 32) ^ (page * 0x9e3779b1u) ^ k;
}

static void *integrity_worker(void *arg)
{
	worker_t *w = arg;
	shared_t *sh = w->sh;
	ntmm_thread_register(sh->e);
	ntmm_process_t *p = sh->p[w->id % NPROC];
	uint64_t base =
	    sh->base[w->id % NPROC] + (uint64_t)(w->id / NPROC) * sh->pages_per_thread * PG;
	uint64_t buf[PG / 8];
	pthread_barrier_wait(&sh->start);
	for (int r = 0; r < sh->rounds; r++) {
		for (size_t i = 0; i < sh->pages_per_thread; i++) {
			uint64_t va = base + i * PG;
			switch ((i + (size_t)r) % 3) {
			case 0:
				for (size_t k = 0; k < PG / 8; k++)
					buf[k] = word(w->id, r, i, k);
				WORKER_CHECK(ntmm_write(p, va, buf, PG) == 0);
				break;
			case 1: {
				uint64_t *h;
				ntmm_access_begin(sh->e);
				int err = ntmm_translate(p, va, NTMM_ACCESS_WRITE, (void **)&h);
				WORKER_CHECK(err == 0);
				if (!err)
					for (size_t k = 0; k < PG / 8; k++)
						h[k] = word(w->id, r, i, k);
				ntmm_access_end(sh->e);
				break;
			}
			default: {
				ntmm_pin_t *pin;
				int err = ntmm_pin(p, va, PG, NTMM_ACCESS_WRITE, &pin);
				WORKER_CHECK(err == 0);
				if (!err) {
					uint64_t *h = ntmm_pin_page(pin, 0);
					for (size_t k = 0; k < PG / 8; k++)
						h[k] = word(w->id, r, i, k);
					ntmm_unpin(pin);
				}
			}
			}
		}
		for (size_t i = 0; i < sh->pages_per_thread; i++) {
			const uint64_t *h;
			ntmm_access_begin(sh->e);
			int err = ntmm_translate(p, base + i * PG, NTMM_ACCESS_READ, (void **)&h);
			WORKER_CHECK(err == 0);
			if (!err)
				for (size_t k = 0; k < PG / 8; k += 61)
					WORKER_CHECK(h[k] == word(w->id, r, i, k));
			ntmm_access_end(sh->e);
		}
	}
	atomic_fetch_sub(&sh->running, 1);
	ntmm_thread_unregister(sh->e);
	return NULL;
}

static void *trimmer(void *arg)
{
	shared_t *sh = arg;
	ntmm_thread_register(sh->e);
	pthread_barrier_wait(&sh->start);
	while (atomic_load(&sh->running) > 0) {
		for (int i = 0; i < NPROC; i++)
			WORKER_CHECK(ntmm_ws_empty(sh->p[i]) == 0);
		sched_yield();
	}
	ntmm_thread_unregister(sh->e);
	return NULL;
}

static void many_threads_and_processes_keep_their_data_under_trimming(void **s)
{
	shared_t sh = {0};
	sh.e = virt_engine(scaled_mib(32) * MiB, 7);
	sh.pages_per_thread = (size_t)scaled(1024);
	sh.rounds = (int)scaled(40);
	size_t per_proc = sh.pages_per_thread * (NTHREADS / NPROC);
	for (int i = 0; i < NPROC; i++) {
		sh.p[i] = virt_process(sh.e);
		assert_int_equal(ntmm_allocate(sh.p[i], &sh.base[i], per_proc * PG,
		                               NTMM_MEM_RESERVE | NTMM_MEM_COMMIT,
		                               NTMM_PAGE_READWRITE),
		                 0);
	}
	atomic_store(&sh.running, NTHREADS);
	pthread_barrier_init(&sh.start, NULL, NTHREADS + 1);
	worker_t w[NTHREADS];
	pthread_t t[NTHREADS], tt;
	assert_int_equal(pthread_create(&tt, NULL, trimmer, &sh), 0);
	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (worker_t){&sh, i};
		assert_int_equal(pthread_create(&t[i], NULL, integrity_worker, &w[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	pthread_join(tt, NULL);
	pthread_barrier_destroy(&sh.start);
	assert_int_equal(atomic_load(&test_failures), 0);
	assert_int_equal(ntmm_audit(sh.e), 0);
	/* after a final trim everything reads back through soft faults */
	uint64_t soft0 = STAT(sh.e, soft_faults);
	for (int i = 0; i < NPROC; i++) {
		assert_int_equal(ntmm_ws_empty(sh.p[i]), 0);
		for (int j = i; j < NTHREADS; j += NPROC) {
			uint64_t base =
			    sh.base[i] + (uint64_t)(j / NPROC) * sh.pages_per_thread * PG;
			for (size_t pg = 0; pg < sh.pages_per_thread; pg++) {
				uint64_t v;
				assert_int_equal(ntmm_read(sh.p[i], base + pg * PG + 8 * 5, &v, 8),
				                 0);
				assert_int_equal(v, word(j, sh.rounds - 1, pg, 5));
			}
		}
	}
	assert_int_equal(STAT(sh.e, soft_faults) - soft0, per_proc * NPROC);
	assert_int_equal(ntmm_audit(sh.e), 0);
	for (int i = 0; i < NPROC; i++)
		assert_int_equal(ntmm_process_destroy(sh.p[i]), 0);
	virt_engine_done(sh.e);
}

/* ------------------------------------------------------- collided faults */

#define CTHREADS 8

typedef struct collide {
	ntmm_engine_t *e;
	ntmm_process_t *p;
	uint64_t base;
	size_t pages;
	int round;
	pthread_barrier_t go;
} collide_t;

typedef struct cworker {
	collide_t *c;
	int id;
} cworker_t;

static void *collide_worker(void *arg)
{
	cworker_t *w = arg;
	collide_t *c = w->c;
	ntmm_thread_register(c->e);
	pthread_barrier_wait(&c->go);
	for (size_t i = 0; i < c->pages; i++) {
		unsigned char *h;
		ntmm_access_begin(c->e);
		int err = ntmm_translate(c->p, c->base + i * PG, NTMM_ACCESS_WRITE, (void **)&h);
		WORKER_CHECK(err == 0);
		if (!err) {
			/* each thread owns one byte per page; the previous round's
			   value must still be there */
			WORKER_CHECK(h[w->id] == (unsigned char)(c->round ? c->round : 0));
			h[w->id] = (unsigned char)(c->round + 1);
		}
		ntmm_access_end(c->e);
	}
	ntmm_thread_unregister(c->e);
	return NULL;
}

static void collided_faults_resolve_once_without_leaking(void **s)
{
	collide_t c = {0};
	c.e = virt_engine(scaled_mib(64) * MiB, 0);
	ntmm_stats_t st0;
	assert_int_equal(ntmm_stats_get(c.e, &st0), 0);
	c.p = virt_process(c.e);
	c.pages = (size_t)scaled(4096);
	assert_int_equal(ntmm_allocate(c.p, &c.base, c.pages * PG,
	                               NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE),
	                 0);
	int rounds = 4;
	for (c.round = 0; c.round < rounds; c.round++) {
		pthread_barrier_init(&c.go, NULL, CTHREADS);
		cworker_t w[CTHREADS];
		pthread_t t[CTHREADS];
		for (int i = 0; i < CTHREADS; i++) {
			w[i] = (cworker_t){&c, i};
			assert_int_equal(pthread_create(&t[i], NULL, collide_worker, &w[i]), 0);
		}
		for (int i = 0; i < CTHREADS; i++)
			pthread_join(t[i], NULL);
		pthread_barrier_destroy(&c.go);
		assert_int_equal(atomic_load(&test_failures), 0);
		ntmm_process_info_t pi;
		assert_int_equal(ntmm_process_info(c.p, &pi), 0);
		assert_int_equal(pi.ws_pages, c.pages); /* each page resolved once */
		assert_int_equal(ntmm_audit(c.e), 0);
		assert_int_equal(ntmm_ws_empty(c.p), 0); /* next round: collided soft faults */
	}
	for (size_t i = 0; i < c.pages; i++) {
		unsigned char b[CTHREADS];
		assert_int_equal(ntmm_read(c.p, c.base + i * PG, b, CTHREADS), 0);
		for (int k = 0; k < CTHREADS; k++)
			assert_int_equal(b[k], rounds);
	}
	assert_int_equal(ntmm_process_destroy(c.p), 0);
	ntmm_stats_t st1;
	assert_int_equal(ntmm_stats_get(c.e, &st1), 0);
	assert_int_equal(st1.active_pages, st0.active_pages); /* no frame leaked */
	virt_engine_done(c.e);
}

/* ------------------------------------------ address-space churn vs faults */

typedef struct churn {
	ntmm_engine_t *e;
	ntmm_process_t *p;
	uint64_t fixed;
	size_t pages;
	atomic_int running;
} churn_t;

static void *churn_faulter(void *arg)
{
	churn_t *c = arg;
	ntmm_thread_register(c->e);
	uint64_t seed = (uint64_t)(uintptr_t)&seed;
	for (int r = 0; r < scaled(20000); r++) {
		size_t i = test_rand(&seed) % c->pages;
		uint32_t v = (uint32_t)i * 3u + 1;
		int err = ntmm_write(c->p, c->fixed + i * PG + (seed & 0xff) * 4, &v, 4);
		WORKER_CHECK(err == 0);
		uint32_t back = 0;
		err = ntmm_read(c->p, c->fixed + i * PG + (seed & 0xff) * 4, &back, 4);
		WORKER_CHECK(err == 0 && back == v);
	}
	atomic_fetch_sub(&c->running, 1);
	ntmm_thread_unregister(c->e);
	return NULL;
}

static void *churner(void *arg)
{
	churn_t *c = arg;
	ntmm_thread_register(c->e);
	while (atomic_load(&c->running) > 0) {
		uint64_t a = 0;
		WORKER_CHECK(ntmm_allocate(c->p, &a, 8 * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT,
		                           NTMM_PAGE_READWRITE) == 0);
		uint64_t x = 42;
		WORKER_CHECK(ntmm_write(c->p, a + 3 * PG, &x, 8) == 0);
		WORKER_CHECK(ntmm_free(c->p, a + 3 * PG, PG, NTMM_MEM_DECOMMIT) == 0);
		unsigned old;
		WORKER_CHECK(ntmm_protect(c->p, a, PG, NTMM_PAGE_READONLY, &old) == 0);
		WORKER_CHECK(ntmm_write(c->p, a, &x, 8) == NTMM_EACCESS);
		WORKER_CHECK(ntmm_free(c->p, a, 0, NTMM_MEM_RELEASE) == 0);
	}
	ntmm_thread_unregister(c->e);
	return NULL;
}

static void address_space_changes_race_with_faults(void **s)
{
	churn_t c = {0};
	c.e = virt_engine(16 * MiB, 3);
	c.p = virt_process(c.e);
	c.pages = 512;
	assert_int_equal(ntmm_allocate(c.p, &c.fixed, c.pages * PG,
	                               NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE),
	                 0);
	int nf = 4;
	atomic_store(&c.running, nf);
	pthread_t t[5];
	for (int i = 0; i < nf; i++)
		assert_int_equal(pthread_create(&t[i], NULL, churn_faulter, &c), 0);
	assert_int_equal(pthread_create(&t[nf], NULL, churner, &c), 0);
	for (int i = 0; i <= nf; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&test_failures), 0);
	assert_int_equal(ntmm_audit(c.e), 0);
	assert_int_equal(ntmm_process_destroy(c.p), 0);
	virt_engine_done(c.e);
}

/* The working set manager runs over every process while processes come
   and go and fault: engine passes (ntmm__wsm_run, the engine's own rule:
   memory is plentiful here, so sets above their maximum are trimmed to
   it) alternate with forced-pressure passes that age every live process
   and trim it toward its minimum (ntmm__wsm_for_each, ntmm__wsm_age,
   ntmm__wsm_trim_oldest). */
typedef struct mgr {
	ntmm_engine_t *e;
	atomic_int running;
} mgr_t;

static void *mgr_churn(void *arg)
{
	mgr_t *m = arg;
	ntmm_thread_register(m->e);
	for (int r = 0; r < scaled(60); r++) {
		ntmm_process_t *p;
		WORKER_CHECK(ntmm_process_create(m->e, &p) == 0);
		WORKER_CHECK(ntmm_ws_set_limits(p, 4, 16) == 0);
		uint64_t a = 0;
		WORKER_CHECK(ntmm_allocate(p, &a, 64 * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT,
		                           NTMM_PAGE_READWRITE) == 0);
		for (int k = 0; k < 64; k++) {
			uint32_t v = (uint32_t)(r * 64 + k);
			WORKER_CHECK(ntmm_write(p, a + (uint64_t)k * PG, &v, 4) == 0);
		}
		for (int k = 0; k < 64; k++) {
			uint32_t v = 0;
			WORKER_CHECK(ntmm_read(p, a + (uint64_t)k * PG, &v, 4) == 0);
			WORKER_CHECK(v == (uint32_t)(r * 64 + k));
		}
		WORKER_CHECK(ntmm_process_destroy(p) == 0);
	}
	atomic_fetch_sub(&m->running, 1);
	ntmm_thread_unregister(m->e);
	return NULL;
}

/* Pressure on one process: age it, then trim pages unused since the last
   aging, oldest first, down to its minimum. */
static void mgr_pressure(ntmm_process_t *p, void *arg)
{
	(void)arg;
	ntmm__pushlock_acquire_shared(&p->as_lock); /* the limits' lock */
	size_t min = p->wsl.min_pages;
	ntmm__pushlock_release_shared(&p->as_lock);
	size_t hist[8], ws = 0;
	ntmm__wsm_age(p, hist);
	for (unsigned k = 0; k < 8; k++)
		ws += hist[k];
	if (ws > min)
		ntmm__wsm_trim_oldest(p, hist, ws - min, 1, NULL);
}

static void *mgr_loop(void *arg)
{
	mgr_t *m = arg;
	ntmm_thread_register(m->e);
	unsigned passes = 0;
	while (atomic_load(&m->running) > 0) {
		if (++passes & 1) /* with and without pressure */
			ntmm__wsm_for_each(m->e, mgr_pressure, NULL);
		else
			ntmm__wsm_run(m->e, NULL);
	}
	ntmm_thread_unregister(m->e);
	return NULL;
}

static void ws_manager_pass_races_with_process_churn(void **s)
{
	mgr_t m = {virt_engine(16 * MiB, 0), 3};
	pthread_t t[4];
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&t[i], NULL, mgr_churn, &m), 0);
	assert_int_equal(pthread_create(&t[3], NULL, mgr_loop, &m), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&test_failures), 0);
	virt_engine_done(m.e);
}

/* Many threads hit the same guard pages at once: per page exactly one gets
   NTMM_EGUARD (the one that cleared the guard), the others the page. */
#define GPAGES 64

typedef struct guard {
	ntmm_engine_t *e;
	ntmm_process_t *p;
	uint64_t base;
	atomic_int hits[GPAGES];
	pthread_barrier_t go;
} guard_t;

static void *guard_worker(void *arg)
{
	guard_t *g = arg;
	ntmm_thread_register(g->e);
	pthread_barrier_wait(&g->go);
	for (int i = 0; i < GPAGES; i++) {
		void *h;
		ntmm_access_begin(g->e);
		int err = ntmm_translate(g->p, g->base + (uint64_t)i * PG, NTMM_ACCESS_WRITE, &h);
		ntmm_access_end(g->e);
		if (err == NTMM_EGUARD)
			atomic_fetch_add(&g->hits[i], 1);
		else
			WORKER_CHECK(err == 0);
	}
	ntmm_thread_unregister(g->e);
	return NULL;
}

static void guard_pages_report_once_under_concurrency(void **s)
{
	static guard_t g;
	g.e = virt_engine(16 * MiB, 0);
	g.p = virt_process(g.e);
	g.base = 0;
	assert_int_equal(ntmm_allocate(g.p, &g.base, GPAGES * PG,
	                               NTMM_MEM_RESERVE | NTMM_MEM_COMMIT,
	                               NTMM_PAGE_READWRITE | NTMM_PAGE_GUARD),
	                 0);
	for (int i = 0; i < GPAGES; i++)
		atomic_store(&g.hits[i], 0);
	pthread_barrier_init(&g.go, NULL, CTHREADS);
	pthread_t t[CTHREADS];
	for (int i = 0; i < CTHREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, guard_worker, &g), 0);
	for (int i = 0; i < CTHREADS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&g.go);
	assert_int_equal(atomic_load(&test_failures), 0);
	for (int i = 0; i < GPAGES; i++)
		assert_int_equal(atomic_load(&g.hits[i]), 1);
	ntmm_region_info_t q;
	assert_int_equal(ntmm_query(g.p, g.base, &q), 0);
	assert_int_equal(q.prot, NTMM_PAGE_READWRITE);
	assert_int_equal(q.size, GPAGES * PG);
	assert_int_equal(ntmm_process_destroy(g.p), 0);
	virt_engine_done(g.e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(many_threads_and_processes_keep_their_data_under_trimming),
	    cmocka_unit_test(collided_faults_resolve_once_without_leaking),
	    cmocka_unit_test(address_space_changes_race_with_faults),
	    cmocka_unit_test(ws_manager_pass_races_with_process_churn),
	    cmocka_unit_test(guard_pages_report_once_under_concurrency),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
