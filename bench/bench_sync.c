/*
 * Synchronization benchmarks: the pushlock and the cache-aware pushlock
 * beside the locks a C programmer would otherwise pick (pthread mutex and
 * rwlock), measured in the same run. The names are fixed (bench/targets.txt
 * refers to them) so results compare over time. Threaded variants share
 * one lock object made by .setup; the protected datum sits on its own
 * cache line, read-mostly, so the figures measure the lock, not the data. In threaded runs thread i is
 * pinned to CPU i (mod the CPUs it may use), for every lock alike: "two
 * threads" then means two cores contending for the lock, not two threads
 * taking turns on one core, which would hide the cost of sharing a line.
 */
#include "shim.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "sync/cache_pushlock.h"
#include "sync/event.h"
#include "sync/pushlock.h"

#define BATCH 64

/* Pins the calling benchmark thread for a threaded run; restores its mask
   at the end (thread 0 is the main thread, which runs the other
   benchmarks too). */
typedef struct pin {
	cpu_set_t saved;
	int pinned;
} pin_t;

static void pin_begin(ntmm_bench_state_t *st, pin_t *p)
{
	p->pinned = 0;
	if (ntmm_bench_threads(st) < 2 || sched_getaffinity(0, sizeof(p->saved), &p->saved) != 0)
		return;
	int n = CPU_COUNT(&p->saved), want = ntmm_bench_thread_index(st) % (n > 0 ? n : 1);
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (CPU_ISSET(cpu, &p->saved) && want-- == 0) {
			cpu_set_t one;
			CPU_ZERO(&one);
			CPU_SET(cpu, &one);
			p->pinned = sched_setaffinity(0, sizeof(one), &one) == 0;
			return;
		}
	}
}

static void pin_end(pin_t *p)
{
	if (p->pinned)
		sched_setaffinity(0, sizeof(p->saved), &p->saved);
}

typedef struct sync_ctx {
	ntmm__pushlock_t pl NTMM__ALIGNED_CL;
	pthread_mutex_t mutex NTMM__ALIGNED_CL;
	pthread_rwlock_t rwlock NTMM__ALIGNED_CL;
	ntmm__cache_pushlock_t cpl NTMM__ALIGNED_CL;
	long data NTMM__ALIGNED_CL; /* the guarded datum */
} sync_ctx_t;

static void *sync_setup(int threads)
{
	sync_ctx_t *c = aligned_alloc(NTMM__CACHELINE, sizeof(*c));
	if (!c)
		abort();
	memset(c, 0, sizeof(*c));
	ntmm__pushlock_init(&c->pl);
	pthread_mutex_init(&c->mutex, NULL);
	pthread_rwlock_init(&c->rwlock, NULL);
	if (ntmm__cache_pushlock_init(&c->cpl, 0) != 0)
		abort();
	return c;
}

static void sync_teardown(void *p)
{
	sync_ctx_t *c = p;
	pthread_mutex_destroy(&c->mutex);
	pthread_rwlock_destroy(&c->rwlock);
	ntmm__cache_pushlock_destroy(&c->cpl);
	free(c);
}

static inline long read_datum(sync_ctx_t *c)
{
	return *(volatile long *)&c->data;
}

/* ---- exclusive, one thread, uncontended: acquire + a tiny write + release */

static void pushlock_exclusive(ntmm_bench_state_t *st, void *ctx)
{
	sync_ctx_t *c = ctx;
	while (ntmm_bench_keep_running_batch(st, BATCH)) {
		for (int i = 0; i < BATCH; i++) {
			ntmm__pushlock_acquire_exclusive(&c->pl);
			c->data++;
			ntmm__pushlock_release_exclusive(&c->pl);
		}
	}
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st));
}
NTMM_BENCH(BM_pushlock_exclusive, .run = pushlock_exclusive, .setup = sync_setup,
           .teardown = sync_teardown)

static void pthread_mutex(ntmm_bench_state_t *st, void *ctx)
{
	sync_ctx_t *c = ctx;
	while (ntmm_bench_keep_running_batch(st, BATCH)) {
		for (int i = 0; i < BATCH; i++) {
			pthread_mutex_lock(&c->mutex);
			c->data++;
			pthread_mutex_unlock(&c->mutex);
		}
	}
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st));
}
NTMM_BENCH(BM_pthread_mutex, .run = pthread_mutex, .setup = sync_setup, .teardown = sync_teardown)

/* ---- shared: read lock + a tiny read + unlock, 1 and 2 threads */

static void pushlock_shared(ntmm_bench_state_t *st, void *ctx)
{
	sync_ctx_t *c = ctx;
	long sum = 0;
	pin_t pin;
	pin_begin(st, &pin);
	while (ntmm_bench_keep_running_batch(st, BATCH)) {
		for (int i = 0; i < BATCH; i++) {
			ntmm__pushlock_acquire_shared(&c->pl);
			sum += read_datum(c);
			ntmm__pushlock_release_shared(&c->pl);
		}
	}
	pin_end(&pin);
	ntmm_bench_escape(&sum);
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st));
}
NTMM_BENCH(BM_pushlock_shared, .run = pushlock_shared, .setup = sync_setup,
           .teardown = sync_teardown, .threads = {1, 2})

static void pushlock_cache_aware_shared(ntmm_bench_state_t *st, void *ctx)
{
	sync_ctx_t *c = ctx;
	long sum = 0;
	pin_t pin;
	pin_begin(st, &pin);
	while (ntmm_bench_keep_running_batch(st, BATCH)) {
		for (int i = 0; i < BATCH; i++) {
			unsigned slot = ntmm__cache_pushlock_acquire_shared(&c->cpl);
			sum += read_datum(c);
			ntmm__cache_pushlock_release_shared(&c->cpl, slot);
		}
	}
	pin_end(&pin);
	ntmm_bench_escape(&sum);
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st));
}
NTMM_BENCH(BM_pushlock_cache_aware_shared, .run = pushlock_cache_aware_shared, .setup = sync_setup,
           .teardown = sync_teardown, .threads = {1, 2})

static void pthread_rwlock_shared(ntmm_bench_state_t *st, void *ctx)
{
	sync_ctx_t *c = ctx;
	long sum = 0;
	pin_t pin;
	pin_begin(st, &pin);
	while (ntmm_bench_keep_running_batch(st, BATCH)) {
		for (int i = 0; i < BATCH; i++) {
			pthread_rwlock_rdlock(&c->rwlock);
			sum += read_datum(c);
			pthread_rwlock_unlock(&c->rwlock);
		}
	}
	pin_end(&pin);
	ntmm_bench_escape(&sum);
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st));
}
NTMM_BENCH(BM_pthread_rwlock_shared, .run = pthread_rwlock_shared, .setup = sync_setup,
           .teardown = sync_teardown, .threads = {1, 2})

/* ---- mixed: 99% shared (tiny read), 1% exclusive (tiny write), 2 threads.
   The exclusive iteration is every 100th, staggered between threads. */

static void pushlock_mixed(ntmm_bench_state_t *st, void *ctx)
{
	sync_ctx_t *c = ctx;
	long sum = 0;
	pin_t pin;
	pin_begin(st, &pin);
	unsigned k = (unsigned)ntmm_bench_thread_index(st) * 50u;
	while (ntmm_bench_keep_running_batch(st, BATCH)) {
		for (int i = 0; i < BATCH; i++) {
			if (++k == 100) {
				k = 0;
				ntmm__pushlock_acquire_exclusive(&c->pl);
				c->data++;
				ntmm__pushlock_release_exclusive(&c->pl);
			} else {
				ntmm__pushlock_acquire_shared(&c->pl);
				sum += read_datum(c);
				ntmm__pushlock_release_shared(&c->pl);
			}
		}
	}
	pin_end(&pin);
	ntmm_bench_escape(&sum);
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st));
}
NTMM_BENCH(BM_pushlock_mixed, .run = pushlock_mixed, .setup = sync_setup, .teardown = sync_teardown,
           .threads = {2})

static void pthread_rwlock_mixed(ntmm_bench_state_t *st, void *ctx)
{
	sync_ctx_t *c = ctx;
	long sum = 0;
	pin_t pin;
	pin_begin(st, &pin);
	unsigned k = (unsigned)ntmm_bench_thread_index(st) * 50u;
	while (ntmm_bench_keep_running_batch(st, BATCH)) {
		for (int i = 0; i < BATCH; i++) {
			if (++k == 100) {
				k = 0;
				pthread_rwlock_wrlock(&c->rwlock);
				c->data++;
				pthread_rwlock_unlock(&c->rwlock);
			} else {
				pthread_rwlock_rdlock(&c->rwlock);
				sum += read_datum(c);
				pthread_rwlock_unlock(&c->rwlock);
			}
		}
	}
	pin_end(&pin);
	ntmm_bench_escape(&sum);
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st));
}
NTMM_BENCH(BM_pthread_rwlock_mixed, .run = pthread_rwlock_mixed, .setup = sync_setup,
           .teardown = sync_teardown, .threads = {2})

/* ---- the exclusive pair again, in a process that has a second thread.
   glibc's mutex (and the pushlock) skip atomics while a process has never
   had a second thread, which is what BM_pushlock_exclusive and
   BM_pthread_mutex measure when they run first; an engine always has
   threads, so these two show the atomic paths, side by side. */

typedef struct mt_ctx {
	sync_ctx_t *c;
	ntmm__gate_t quit;
	pthread_t idle;
} mt_ctx_t;

static void *idle_thread(void *p)
{
	ntmm__gate_wait(&((mt_ctx_t *)p)->quit);
	return NULL;
}

static void *mt_setup(int threads)
{
	mt_ctx_t *m = malloc(sizeof(*m));
	if (!m)
		abort();
	m->c = sync_setup(threads);
	ntmm__gate_init(&m->quit, false);
	if (pthread_create(&m->idle, NULL, idle_thread, m) != 0)
		abort();
	return m;
}

static void mt_teardown(void *p)
{
	mt_ctx_t *m = p;
	ntmm__gate_open(&m->quit);
	pthread_join(m->idle, NULL);
	sync_teardown(m->c);
	free(m);
}

static void pushlock_exclusive_mt(ntmm_bench_state_t *st, void *ctx)
{
	pushlock_exclusive(st, ((mt_ctx_t *)ctx)->c);
}
NTMM_BENCH(BM_pushlock_exclusive_in_mt_process, .run = pushlock_exclusive_mt, .setup = mt_setup,
           .teardown = mt_teardown)

static void pthread_mutex_mt(ntmm_bench_state_t *st, void *ctx)
{
	pthread_mutex(st, ((mt_ctx_t *)ctx)->c);
}
NTMM_BENCH(BM_pthread_mutex_in_mt_process, .run = pthread_mutex_mt, .setup = mt_setup,
           .teardown = mt_teardown)
