/*
 * Cache-aware pushlock (engine/sync/cache_pushlock.h): slots on their own
 * cache lines, readers inside together, a writer excludes readers on every
 * slot and on `central`, all-or-nothing try-exclusive, release by handle
 * after a migration, mutual exclusion under stress (readers leaving with
 * and without membarrier) and a writer finishing under a reader stream. Waits on other threads are bounded (synctest.h).
 */
#include "synctest.h"

#include "sync/backoff.h"
#include "sync/cache_pushlock.h"

#include <string.h>

#define THREADS 8

static unsigned ncpus_conf(void)
{
	long n = sysconf(_SC_NPROCESSORS_CONF);
	return n > 0 ? (unsigned)n : 1u;
}

static bool pin_to_cpu(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) == 0;
}

/* The first two CPUs this process may run on, in cpu[0..1]; returns how
   many there are (up to 2). */
static int two_allowed_cpus(int cpu[2])
{
	cpu_set_t set;
	int n = 0;
	cpu[0] = cpu[1] = 0;
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 0;
	for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
		if (CPU_ISSET(c, &set))
			cpu[n++] = c;
	return n;
}

/* nothing held: every slot free, no writer, `central` free */
static bool all_slots_free(ntmm__cache_pushlock_t *c)
{
	for (unsigned i = 0; i < c->nslots; i++)
		if (atomic_load(&c->slots[i].reader) != 0)
			return false;
	return atomic_load(&c->writer) == 0 && atomic_load(&c->central.value) == 0;
}

/* ------------------------------------------------------------------ */

static void init_defaults_to_the_cpus_and_rejects_too_many_slots(void **state)
{
	ntmm__cache_pushlock_t c;
	assert_int_equal(ntmm__cache_pushlock_init(&c, 0), 0);
	assert_int_equal(c.nslots, ncpus_conf());
	ntmm__cache_pushlock_destroy(&c);

	assert_int_equal(ntmm__cache_pushlock_init(&c, 1), 0);
	assert_int_equal(c.nslots, 1);
	unsigned s = ntmm__cache_pushlock_acquire_shared(&c);
	assert_int_equal(s, 0);
	ntmm__cache_pushlock_release_shared(&c, s);
	ntmm__cache_pushlock_destroy(&c);

	assert_int_equal(ntmm__cache_pushlock_init(&c, 100000), NTMM_EINVAL);
	assert_true(strlen(ntmm_error_detail()) > 0);
	assert_null(c.slots);
}

static void each_slot_has_its_own_cache_line(void **state)
{
	ntmm__cache_pushlock_t c;
	assert_int_equal(ntmm__cache_pushlock_init(&c, 8), 0);
	/* a line each, and no two slots in one adjacent-line pair */
	assert_true(sizeof(c.slots[0]) >= 2 * NTMM__CACHELINE);
	for (unsigned i = 0; i < c.nslots; i++)
		assert_int_equal((uintptr_t)&c.slots[i] % (2 * NTMM__CACHELINE), 0);
	ntmm__cache_pushlock_destroy(&c);
}

/* ------------------------------------------------------------------ */
/* Readers inside together, on the same or on different slots: each holds
   the lock shared until it sees the other inside. */

typedef struct pair {
	ntmm__cache_pushlock_t *c;
	atomic_int *inside;
	int me;
	int cpu; /* pin here first; -1 = don't */
	bool saw_other;
	unsigned slot;
} pair_t;

static void *pair_reader(void *p)
{
	pair_t *r = p;
	if (r->cpu >= 0)
		WORKER_CHECK(pin_to_cpu(r->cpu));
	r->slot = ntmm__cache_pushlock_acquire_shared(r->c);
	atomic_store_explicit(&r->inside[r->me], 1, memory_order_release);
	r->saw_other = WAIT_UNTIL(atomic_load_explicit(&r->inside[!r->me], memory_order_acquire));
	ntmm__cache_pushlock_release_shared(r->c, r->slot);
	return NULL;
}

static void readers_are_inside_together(void **state)
{
	int cpus[2];
	bool two_cpus = two_allowed_cpus(cpus) == 2;
	atomic_store(&test_failures, 0);
	for (int round = 0; round < 10; round++) {
		ntmm__cache_pushlock_t c;
		assert_int_equal(ntmm__cache_pushlock_init(&c, 0), 0);
		atomic_int inside[2] = {0, 0};
		/* even rounds: both on one CPU — one takes its slot, the other
		   finds it busy and reads under `central`; odd: two CPUs, two
		   slots */
		int cpu1 = (round % 2 && two_cpus) ? cpus[1] : cpus[0];
		pair_t r[2] = {{&c, inside, 0, cpus[0], false, 0}, {&c, inside, 1, cpu1, false, 0}};
		run_threads(2, pair_reader, r, sizeof(r[0]));
		assert_true(r[0].saw_other);
		assert_true(r[1].saw_other);
		unsigned central = NTMM__CACHE_PUSHLOCK_CENTRAL;
		if (round % 2 == 0 || !two_cpus) {
			assert_true((r[0].slot == central) != (r[1].slot == central));
		} else {
			assert_int_not_equal(r[0].slot, r[1].slot); /* different lines */
			assert_int_not_equal(r[0].slot, central);
			assert_int_not_equal(r[1].slot, central);
		}
		assert_true(all_slots_free(&c));
		ntmm__cache_pushlock_destroy(&c);
	}
	assert_int_equal(atomic_load(&test_failures), 0);
}

/* ------------------------------------------------------------------ */

static void writer_excludes_readers_on_every_slot(void **state)
{
	ntmm__cache_pushlock_t c;
	assert_int_equal(ntmm__cache_pushlock_init(&c, 4), 0);
	ntmm__cache_pushlock_acquire_exclusive(&c);
	assert_int_equal(atomic_load(&c.writer), 1);
	unsigned s = 0;
	assert_false(ntmm__cache_pushlock_try_acquire_shared(&c, &s));
	/* a reader on a busy slot (white box: taken as if by a reader
	   preempted inside) is refused by `central` too */
	atomic_store(&c.slots[ntmm__cpu_current(c.nslots)].reader, 1);
	assert_false(ntmm__cache_pushlock_try_acquire_shared(&c, &s));
	atomic_store(&c.slots[ntmm__cpu_current(c.nslots)].reader, 0);
	assert_false(ntmm__cache_pushlock_try_acquire_exclusive(&c));
	for (unsigned i = 0; i < c.nslots; i++)
		assert_int_equal(atomic_load(&c.slots[i].reader), 0); /* readers stepped back */
	ntmm__cache_pushlock_release_exclusive(&c);
	assert_true(all_slots_free(&c));

	assert_true(ntmm__cache_pushlock_try_acquire_exclusive(&c));
	assert_false(ntmm__cache_pushlock_try_acquire_shared(&c, &s));
	ntmm__cache_pushlock_release_exclusive(&c);
	assert_true(all_slots_free(&c));
	ntmm__cache_pushlock_destroy(&c);
}

/* A reader on any one slot keeps writers out; a failed try-exclusive
   leaves nothing held. */
static void reader_on_any_slot_keeps_writers_out(void **state)
{
	ntmm__cache_pushlock_t c;
	assert_int_equal(ntmm__cache_pushlock_init(&c, 4), 0);
	for (unsigned held = 0; held < c.nslots; held++) {
		/* white box: hold slot `held` as a reader on that CPU would */
		uint32_t zero = 0;
		assert_true(atomic_compare_exchange_strong(&c.slots[held].reader, &zero, 1));
		assert_false(ntmm__cache_pushlock_try_acquire_exclusive(&c));
		/* the failed try left nothing behind */
		assert_int_equal(atomic_load(&c.writer), 0);
		assert_int_equal(atomic_load(&c.central.value), 0);
		for (unsigned i = 0; i < c.nslots; i++)
			if (i != held)
				assert_int_equal(atomic_load(&c.slots[i].reader), 0);
		unsigned s = 0;
		assert_true(ntmm__cache_pushlock_try_acquire_shared(&c, &s)); /* readers share */
		ntmm__cache_pushlock_release_shared(&c, s);
		ntmm__cache_pushlock_release_shared(&c, held);
		assert_true(all_slots_free(&c));
	}
	ntmm__cache_pushlock_destroy(&c);
}

typedef struct writer_arg {
	ntmm__cache_pushlock_t *c;
	atomic_int inside;
	atomic_int *reader_holding;
} writer_arg_t;

static void *blocked_writer(void *p)
{
	writer_arg_t *w = p;
	ntmm__cache_pushlock_acquire_exclusive(w->c);
	WORKER_CHECK(atomic_load_explicit(w->reader_holding, memory_order_acquire) == 0);
	atomic_store_explicit(&w->inside, 1, memory_order_release);
	ntmm__cache_pushlock_release_exclusive(w->c);
	return NULL;
}

static void writer_waits_for_a_reader_then_gets_in(void **state)
{
	ntmm__cache_pushlock_t c;
	atomic_int holding = 1;
	atomic_store(&test_failures, 0);
	assert_int_equal(ntmm__cache_pushlock_init(&c, 4), 0);
	unsigned s = ntmm__cache_pushlock_acquire_shared(&c);
	writer_arg_t w = {.c = &c, .reader_holding = &holding};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, blocked_writer, &w), 0);
	/* the writer has announced itself and waits for our slot */
	assert_true(WAIT_UNTIL(atomic_load(&c.writer) == 1));
	assert_false(atomic_load(&w.inside));
	atomic_store(&holding, 0);
	ntmm__cache_pushlock_release_shared(&c, s);
	pthread_join(t, NULL);
	assert_true(atomic_load(&w.inside));
	assert_true(all_slots_free(&c));
	assert_int_equal(atomic_load(&test_failures), 0);
	ntmm__cache_pushlock_destroy(&c);
}

/* The handle, not the CPU at release time, names the slot to release. */
static void release_uses_the_handle_after_a_migration(void **state)
{
	int cpus[2];
	cpu_set_t saved;
	if (two_allowed_cpus(cpus) < 2 || sched_getaffinity(0, sizeof(saved), &saved) != 0)
		skip();
	ntmm__cache_pushlock_t c;
	assert_int_equal(ntmm__cache_pushlock_init(&c, 0), 0);
	assert_true(pin_to_cpu(cpus[0]));
	unsigned s = ntmm__cache_pushlock_acquire_shared(&c);
	assert_int_equal(s, (unsigned)cpus[0] % c.nslots);
	assert_true(pin_to_cpu(cpus[1]));
	assert_int_equal(ntmm__cpu_current(c.nslots), (unsigned)cpus[1] % c.nslots);
	ntmm__cache_pushlock_release_shared(&c, s); /* from the other CPU */
	assert_int_equal(sched_setaffinity(0, sizeof(saved), &saved), 0);
	assert_true(all_slots_free(&c));
	ntmm__cache_pushlock_destroy(&c);
}

/* ------------------------------------------------------------------ */
/* Mutual exclusion under stress: 8 threads on 2 cores, 3 slots (so slots
   are shared by CPUs and CPUs by threads), non-atomic counters. */

typedef struct guarded {
	ntmm__cache_pushlock_t c;
	atomic_int writers, readers;
	long a, b;
} guarded_t;

typedef struct worker {
	guarded_t *g;
	long iters;
	uint64_t seed;
	long writes;
} worker_t;

static void *stress_worker(void *p)
{
	worker_t *w = p;
	guarded_t *g = w->g;
	for (long i = 0; i < w->iters; i++) {
		uint64_t r = test_rand(&w->seed);
		bool yield = (r >> 32) % 32 == 0;
		unsigned s = 0;
		switch (r % 8) {
		case 0:
		case 1:
			if (r % 8 == 0)
				ntmm__cache_pushlock_acquire_exclusive(&g->c);
			else if (!ntmm__cache_pushlock_try_acquire_exclusive(&g->c))
				break;
			WORKER_CHECK(atomic_fetch_add(&g->writers, 1) == 0);
			WORKER_CHECK(atomic_load(&g->readers) == 0);
			g->a++;
			if (yield)
				sched_yield();
			g->b++;
			atomic_fetch_sub(&g->writers, 1);
			ntmm__cache_pushlock_release_exclusive(&g->c);
			w->writes++;
			break;
		default:
			if (r % 8 == 2) {
				if (!ntmm__cache_pushlock_try_acquire_shared(&g->c, &s))
					break;
			} else {
				s = ntmm__cache_pushlock_acquire_shared(&g->c);
			}
			atomic_fetch_add(&g->readers, 1);
			WORKER_CHECK(atomic_load(&g->writers) == 0);
			long x = g->a;
			if (yield)
				sched_yield();
			WORKER_CHECK(x == g->b);
			atomic_fetch_sub(&g->readers, 1);
			ntmm__cache_pushlock_release_shared(&g->c, s);
			break;
		}
	}
	return NULL;
}

static void stress(bool with_membarrier)
{
	guarded_t g = {0};
	assert_int_equal(ntmm__cache_pushlock_init(&g.c, 3), 0);
	if (with_membarrier && !g.c.asymmetric) {
		ntmm__cache_pushlock_destroy(&g.c);
		skip(); /* this kernel has no private expedited membarrier */
	}
	g.c.asymmetric = with_membarrier; /* white box: choose how readers leave */
	worker_t w[THREADS];
	for (int i = 0; i < THREADS; i++)
		w[i] = (worker_t){&g, scaled(100000), 0x2545f4914f6cdd1dull * (i + 3), 0};
	atomic_store(&test_failures, 0);
	run_threads_watched(THREADS, stress_worker, w, sizeof(w[0]), "cache pushlock stress", NULL,
	                    NULL);
	assert_int_equal(atomic_load(&test_failures), 0);
	long writes = 0;
	for (int i = 0; i < THREADS; i++)
		writes += w[i].writes;
	assert_true(writes > 0);
	assert_int_equal(g.a, writes);
	assert_int_equal(g.b, writes);
	assert_true(all_slots_free(&g.c));
	ntmm__cache_pushlock_destroy(&g.c);
}

/* Readers leave with a plain store; writers use membarrier. */
static void exclusive_sections_exclude_everyone_under_stress(void **state)
{
	stress(true);
}

/* Readers leave with a fenced exchange (kernels without membarrier). */
static void exclusive_sections_exclude_everyone_without_membarrier(void **state)
{
	stress(false);
}

/* ------------------------------------------------------------------ */
/* A writer finishes its rounds while readers on every CPU stream without
   pause (they stop only when the writer is done: a starving lock would
   trip the watchdog). */

typedef struct stream {
	ntmm__cache_pushlock_t c;
	atomic_long entries;
	atomic_int stop;
	long rounds, finished;
} stream_t;

static void *stream_thread(void *p)
{
	void **a = p;
	stream_t *s = a[0];
	if (a[1]) {
		for (long r = 0; r < s->rounds; r++) {
			long from = atomic_load_explicit(&s->entries, memory_order_relaxed);
			WORKER_CHECK(WAIT_UNTIL(
			    atomic_load_explicit(&s->entries, memory_order_relaxed) > from + 50));
			ntmm__cache_pushlock_acquire_exclusive(&s->c);
			s->finished++;
			ntmm__cache_pushlock_release_exclusive(&s->c);
		}
		atomic_store_explicit(&s->stop, 1, memory_order_release);
		return NULL;
	}
	while (!atomic_load_explicit(&s->stop, memory_order_acquire)) {
		unsigned slot = ntmm__cache_pushlock_acquire_shared(&s->c);
		atomic_fetch_add_explicit(&s->entries, 1, memory_order_relaxed);
		for (int k = 0; k < 64; k++)
			ntmm__cpu_relax();
		ntmm__cache_pushlock_release_shared(&s->c, slot);
	}
	return NULL;
}

static void writer_finishes_under_a_stream_of_readers(void **state)
{
	enum { READERS = 4 };
	stream_t s = {0};
	s.rounds = scaled(400);
	assert_int_equal(ntmm__cache_pushlock_init(&s.c, 0), 0);
	void *args[READERS + 1][2];
	for (int i = 0; i <= READERS; i++) {
		args[i][0] = &s;
		args[i][1] = i == READERS ? (void *)1 : NULL;
	}
	atomic_store(&test_failures, 0);
	run_threads_watched(READERS + 1, stream_thread, args, sizeof(args[0]), "writer stream",
	                    NULL, NULL);
	assert_int_equal(atomic_load(&test_failures), 0);
	assert_int_equal(s.finished, s.rounds);
	assert_true(all_slots_free(&s.c));
	ntmm__cache_pushlock_destroy(&s.c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(init_defaults_to_the_cpus_and_rejects_too_many_slots),
	    cmocka_unit_test(each_slot_has_its_own_cache_line),
	    cmocka_unit_test(readers_are_inside_together),
	    cmocka_unit_test(writer_excludes_readers_on_every_slot),
	    cmocka_unit_test(reader_on_any_slot_keeps_writers_out),
	    cmocka_unit_test(writer_waits_for_a_reader_then_gets_in),
	    cmocka_unit_test(release_uses_the_handle_after_a_migration),
	    cmocka_unit_test(exclusive_sections_exclude_everyone_under_stress),
	    cmocka_unit_test(exclusive_sections_exclude_everyone_without_membarrier),
	    cmocka_unit_test(writer_finishes_under_a_stream_of_readers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
