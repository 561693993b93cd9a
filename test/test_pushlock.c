/*
 * Pushlock behaviour (engine/sync/pushlock.h): mutual exclusion under
 * stress, readers inside together, a writer not starved by readers, the
 * try variants in every state, downgrade, convert, no lost wake-ups, and
 * the debug assertions on misuse. Waits for another thread's progress are
 * bounded (synctest.h) so a broken lock fails instead of hanging.
 */
#include "synctest.h"

#include "sync/backoff.h"
#include "sync/pushlock.h"

#define THREADS 8 /* more than the cores of the CI machine */

/* ------------------------------------------------------------------ */
/* State guarded by a pushlock, with detectors for overlapping sections */

typedef struct guarded {
	ntmm__pushlock_t lock;
	atomic_int writers; /* threads inside exclusively */
	atomic_int readers; /* threads inside shared */
	long a, b;          /* plain: written only in exclusive sections; a == b outside */
} guarded_t;

static void write_section(guarded_t *g, bool yield)
{
	WORKER_CHECK(atomic_fetch_add_explicit(&g->writers, 1, memory_order_relaxed) == 0);
	WORKER_CHECK(atomic_load_explicit(&g->readers, memory_order_relaxed) == 0);
	g->a++;
	if (yield)
		sched_yield(); /* let others pile up behind us and sleep */
	g->b++;
	WORKER_CHECK(g->a == g->b);
	atomic_fetch_sub_explicit(&g->writers, 1, memory_order_relaxed);
}

static void read_section(guarded_t *g, bool yield)
{
	atomic_fetch_add_explicit(&g->readers, 1, memory_order_relaxed);
	WORKER_CHECK(atomic_load_explicit(&g->writers, memory_order_relaxed) == 0);
	long x = g->a;
	if (yield)
		sched_yield();
	long y = g->b;
	WORKER_CHECK(x == y);
	atomic_fetch_sub_explicit(&g->readers, 1, memory_order_relaxed);
}

typedef struct worker {
	guarded_t *g;
	long iters;
	uint64_t seed;
	long writes; /* exclusive sections this worker completed */
} worker_t;

static void dump_lock(void *p)
{
	guarded_t *g = p;
	fprintf(stderr, "pushlock word = %#lx\n",
	        (unsigned long)atomic_load_explicit(&g->lock.value, memory_order_relaxed));
}

/* ------------------------------------------------------------------ */

static void *mutex_worker(void *p)
{
	worker_t *w = p;
	for (long i = 0; i < w->iters; i++) {
		uint64_t r = test_rand(&w->seed);
		bool yield = (r >> 32) % 64 == 0;
		switch (r % 10) {
		case 0:
		case 1:
		case 2:
		case 3:
			ntmm__pushlock_acquire_exclusive(&w->g->lock);
			write_section(w->g, yield);
			ntmm__pushlock_release_exclusive(&w->g->lock);
			w->writes++;
			break;
		case 4:
		case 5:
		case 6:
		case 7:
			ntmm__pushlock_acquire_shared(&w->g->lock);
			read_section(w->g, yield);
			ntmm__pushlock_release_shared(&w->g->lock);
			break;
		case 8:
			if (ntmm__pushlock_try_acquire_exclusive(&w->g->lock)) {
				write_section(w->g, false);
				ntmm__pushlock_release_exclusive(&w->g->lock);
				w->writes++;
			}
			break;
		default:
			if (ntmm__pushlock_try_acquire_shared(&w->g->lock)) {
				read_section(w->g, false);
				ntmm__pushlock_release_shared(&w->g->lock);
			}
			break;
		}
	}
	return NULL;
}

static void exclusive_sections_exclude_everyone_under_stress(void **state)
{
	guarded_t g = {.lock = NTMM__PUSHLOCK_INIT};
	worker_t w[THREADS];
	for (int i = 0; i < THREADS; i++)
		w[i] = (worker_t){&g, scaled(200000), 0x9e3779b97f4a7c15ull * (i + 1), 0};
	atomic_store(&test_failures, 0);
	run_threads_watched(THREADS, mutex_worker, w, sizeof(w[0]), "mutex stress", dump_lock, &g);
	assert_int_equal(atomic_load(&test_failures), 0);
	long writes = 0;
	for (int i = 0; i < THREADS; i++)
		writes += w[i].writes;
	assert_true(writes > 0);
	assert_int_equal(g.a, writes); /* no increment lost to a racing writer */
	assert_int_equal(g.b, writes);
	assert_int_equal(atomic_load(&g.lock.value), 0);
}

/* ------------------------------------------------------------------ */
/* Two readers inside at once: each waits, holding the lock shared, until
   it sees the other inside. A lock that excluded readers from each other
   would leave the first one waiting in vain. */

typedef struct pair {
	ntmm__pushlock_t *lock;
	atomic_int *inside;
	int me;
	bool saw_other;
} pair_t;

static void *pair_reader(void *p)
{
	pair_t *r = p;
	ntmm__pushlock_acquire_shared(r->lock);
	atomic_store_explicit(&r->inside[r->me], 1, memory_order_release);
	r->saw_other = WAIT_UNTIL(atomic_load_explicit(&r->inside[!r->me], memory_order_acquire));
	ntmm__pushlock_release_shared(r->lock);
	return NULL;
}

static void readers_are_inside_together(void **state)
{
	for (int round = 0; round < 20; round++) {
		ntmm__pushlock_t lock = NTMM__PUSHLOCK_INIT;
		atomic_int inside[2] = {0, 0};
		pair_t r[2] = {{&lock, inside, 0, false}, {&lock, inside, 1, false}};
		run_threads(2, pair_reader, r, sizeof(r[0]));
		assert_true(r[0].saw_other);
		assert_true(r[1].saw_other);
		assert_int_equal(atomic_load(&lock.value), 0);
	}
}

/* ------------------------------------------------------------------ */
/* A writer is not starved by a continuous stream of readers. Readers count
   their entries; a reader inside that sees someone waiting (only the writer
   can be waiting here: readers wait only behind a writer) records the count.
   When the writer gets in it reads the count again: the difference is the
   number of reader entries after the writer was seen waiting. */

#define STARVE_READERS 4
/* Reader entries allowed past a waiting writer: none may enter, but a
   reader that got in just before the writer queued may count its entry
   just after a reader inside saw the writer waiting; at most one such late
   count per other reader. */
#define STARVE_BOUND (STARVE_READERS - 1)

typedef struct starve {
	ntmm__pushlock_t lock;
	atomic_long entries; /* reader entries so far */
	atomic_long mark;    /* entries when the writer was first seen waiting; -1 none */
	atomic_int stop;
	long cap;      /* readers give up here: the writer was starved */
	long rounds;   /* writer rounds */
	long waited;   /* rounds in which the writer was seen waiting */
	long worst;    /* most reader entries past a waiting writer */
	long finished; /* rounds the writer completed */
} starve_t;

static void *starve_reader(void *p)
{
	starve_t *s = p;
	while (!atomic_load_explicit(&s->stop, memory_order_acquire)) {
		ntmm__pushlock_acquire_shared(&s->lock);
		long e = atomic_fetch_add_explicit(&s->entries, 1, memory_order_relaxed) + 1;
		for (int k = 0; k < 64; k++)
			ntmm__cpu_relax();
		if (ntmm__pushlock_has_waiters(&s->lock)) {
			/* the count now, not our own entry number: we may have
			   entered long before the writer came */
			long none = -1;
			long seen = atomic_load_explicit(&s->entries, memory_order_relaxed);
			atomic_compare_exchange_strong_explicit(
			    &s->mark, &none, seen, memory_order_relaxed, memory_order_relaxed);
		}
		ntmm__pushlock_release_shared(&s->lock);
		if (e > s->cap)
			break;
	}
	return NULL;
}

static void *starve_writer(void *p)
{
	starve_t *s = p;
	for (long r = 0; r < s->rounds; r++) {
		/* let the readers stream first */
		long from = atomic_load_explicit(&s->entries, memory_order_relaxed);
		if (!WAIT_UNTIL(atomic_load_explicit(&s->entries, memory_order_relaxed) >=
		                    from + 200 ||
		                atomic_load_explicit(&s->entries, memory_order_relaxed) > s->cap))
			break;
		atomic_store_explicit(&s->mark, -1, memory_order_relaxed);
		ntmm__pushlock_acquire_exclusive(&s->lock);
		long now = atomic_load_explicit(&s->entries, memory_order_relaxed);
		long mark = atomic_load_explicit(&s->mark, memory_order_relaxed);
		ntmm__pushlock_release_exclusive(&s->lock);
		if (mark >= 0) {
			s->waited++;
			if (now - mark > s->worst)
				s->worst = now - mark;
		}
		s->finished++;
	}
	atomic_store_explicit(&s->stop, 1, memory_order_release);
	return NULL;
}

static void *starve_thread(void *p)
{
	void **a = p;
	return a[1] ? starve_writer(a[0]) : starve_reader(a[0]);
}

static void writer_not_starved_by_a_stream_of_readers(void **state)
{
	starve_t s = {.lock = NTMM__PUSHLOCK_INIT, .mark = -1};
	s.rounds = scaled(400);
	s.cap = s.rounds * 20000; /* far past any fair bound */
	void *args[STARVE_READERS + 1][2];
	for (int i = 0; i <= STARVE_READERS; i++) {
		args[i][0] = &s;
		args[i][1] = i == STARVE_READERS ? (void *)1 : NULL;
	}
	run_threads_watched(STARVE_READERS + 1, starve_thread, args, sizeof(args[0]),
	                    "writer starvation", NULL, NULL);
	printf("writer: %ld rounds, waited behind readers in %ld, worst %ld reader entries "
	       "past a waiting writer (bound %d)\n",
	       s.finished, s.waited, s.worst, STARVE_BOUND);
	assert_int_equal(s.finished, s.rounds);
	assert_true(s.waited > 0); /* the test observed the writer waiting at all */
	assert_true(s.worst <= STARVE_BOUND);
}

/* ------------------------------------------------------------------ */
/* A helper thread that blocks on the lock, to put it in "held with a
   waiter" states; main waits (bounded) until its wait block is pushed. */

typedef struct blocker {
	ntmm__pushlock_t *lock;
	bool exclusive;
	atomic_int inside;   /* 1 while the helper holds the lock */
	atomic_int leave;    /* main sets it to let the helper release */
	atomic_int *holding; /* main's "I hold it exclusive" flag, checked */
} blocker_t;

static void *blocker_thread(void *p)
{
	blocker_t *b = p;
	if (b->exclusive)
		ntmm__pushlock_acquire_exclusive(b->lock);
	else
		ntmm__pushlock_acquire_shared(b->lock);
	if (b->holding)
		WORKER_CHECK(atomic_load_explicit(b->holding, memory_order_acquire) == 0);
	atomic_store_explicit(&b->inside, 1, memory_order_release);
	WORKER_CHECK(WAIT_UNTIL(atomic_load_explicit(&b->leave, memory_order_acquire)));
	atomic_store_explicit(&b->inside, 0, memory_order_release);
	if (b->exclusive)
		ntmm__pushlock_release_exclusive(b->lock);
	else
		ntmm__pushlock_release_shared(b->lock);
	return NULL;
}

static void start_blocker(pthread_t *t, blocker_t *b)
{
	assert_int_equal(pthread_create(t, NULL, blocker_thread, b), 0);
	assert_true(WAIT_UNTIL(ntmm__pushlock_has_waiters(b->lock)));
}

static void try_acquire_in_every_state(void **state)
{
	ntmm__pushlock_t lock = NTMM__PUSHLOCK_INIT;
	atomic_store(&test_failures, 0);

	/* free */
	assert_true(ntmm__pushlock_try_acquire_exclusive(&lock));
	ntmm__pushlock_release_exclusive(&lock);
	assert_true(ntmm__pushlock_try_acquire_shared(&lock));
	ntmm__pushlock_release_shared(&lock);
	assert_int_equal(atomic_load(&lock.value), 0);

	/* held exclusive */
	ntmm__pushlock_acquire_exclusive(&lock);
	assert_false(ntmm__pushlock_try_acquire_exclusive(&lock));
	assert_false(ntmm__pushlock_try_acquire_shared(&lock));
	ntmm__pushlock_release_exclusive(&lock);
	assert_int_equal(atomic_load(&lock.value), 0);

	/* held shared, once and twice */
	ntmm__pushlock_acquire_shared(&lock);
	assert_false(ntmm__pushlock_try_acquire_exclusive(&lock));
	assert_true(ntmm__pushlock_try_acquire_shared(&lock));
	assert_false(ntmm__pushlock_try_acquire_exclusive(&lock));
	ntmm__pushlock_release_shared(&lock);
	ntmm__pushlock_release_shared(&lock);
	assert_int_equal(atomic_load(&lock.value), 0);

	/* held shared, a writer waiting: shared try fails too (writers first) */
	ntmm__pushlock_acquire_shared(&lock);
	pthread_t t;
	blocker_t w = {.lock = &lock, .exclusive = true};
	start_blocker(&t, &w);
	assert_false(ntmm__pushlock_try_acquire_shared(&lock));
	assert_false(ntmm__pushlock_try_acquire_exclusive(&lock));
	assert_false(atomic_load(&w.inside));
	atomic_store(&w.leave, 1);
	ntmm__pushlock_release_shared(&lock);
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&lock.value), 0);

	/* held exclusive, a reader waiting */
	ntmm__pushlock_acquire_exclusive(&lock);
	blocker_t r = {.lock = &lock, .exclusive = false};
	start_blocker(&t, &r);
	assert_false(ntmm__pushlock_try_acquire_shared(&lock));
	assert_false(ntmm__pushlock_try_acquire_exclusive(&lock));
	atomic_store(&r.leave, 1);
	ntmm__pushlock_release_exclusive(&lock);
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&lock.value), 0);
	assert_int_equal(atomic_load(&test_failures), 0);
}

/* ------------------------------------------------------------------ */

static void downgrade_keeps_the_lock_shared(void **state)
{
	ntmm__pushlock_t lock = NTMM__PUSHLOCK_INIT;
	ntmm__pushlock_acquire_exclusive(&lock);
	ntmm__pushlock_downgrade(&lock);
	assert_true(ntmm__pushlock_is_locked(&lock));
	assert_false(ntmm__pushlock_try_acquire_exclusive(&lock));
	assert_true(ntmm__pushlock_try_acquire_shared(&lock)); /* readers may join */
	ntmm__pushlock_release_shared(&lock);
	ntmm__pushlock_release_shared(&lock);
	assert_int_equal(atomic_load(&lock.value), 0);
}

static void downgrade_lets_waiting_readers_in(void **state)
{
	ntmm__pushlock_t lock = NTMM__PUSHLOCK_INIT;
	atomic_int holding = 0;
	atomic_store(&test_failures, 0);
	ntmm__pushlock_acquire_exclusive(&lock);
	atomic_store(&holding, 1);
	pthread_t t[2];
	blocker_t r[2] = {{.lock = &lock}, {.lock = &lock}};
	for (int i = 0; i < 2; i++)
		start_blocker(&t[i], &r[i]);
	atomic_store(&holding, 0); /* readers may be inside with us from here */
	ntmm__pushlock_downgrade(&lock);
	/* both readers get in while we still hold the lock shared */
	assert_true(WAIT_UNTIL(atomic_load(&r[0].inside) && atomic_load(&r[1].inside)));
	assert_false(ntmm__pushlock_try_acquire_exclusive(&lock));
	for (int i = 0; i < 2; i++)
		atomic_store(&r[i].leave, 1);
	ntmm__pushlock_release_shared(&lock);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&lock.value), 0);
	assert_int_equal(atomic_load(&test_failures), 0);
}

/* The downgrading holder meets the wait list owned for a moment by another
   thread (K set: a new waiter fixing its links). It waits for K and then
   lets the queued reader in; it used to return and leave the reader asleep
   until its release. White box: the test plays the K owner. */
typedef struct downgrader {
	ntmm__pushlock_t *lock;
	atomic_int done;
} downgrader_t;

static void *downgrader_thread(void *p)
{
	downgrader_t *d = p;
	ntmm__pushlock_downgrade(d->lock);
	atomic_store(&d->done, 1);
	return NULL;
}

static void downgrade_waits_out_a_list_owner_and_lets_readers_in(void **state)
{
	ntmm__pushlock_t lock = NTMM__PUSHLOCK_INIT;
	atomic_store(&test_failures, 0);
	ntmm__pushlock_acquire_exclusive(&lock);
	pthread_t rt, dt;
	blocker_t r = {.lock = &lock};
	start_blocker(&rt, &r);
	/* the reader's own K (its link fix after the push) is given back */
	assert_true(WAIT_UNTIL(!(atomic_load(&lock.value) & NTMM__PL_WAKING)));
	uintptr_t v = atomic_load(&lock.value);
	assert_true(atomic_compare_exchange_strong(&lock.value, &v, v | NTMM__PL_WAKING));
	downgrader_t d = {.lock = &lock};
	assert_int_equal(pthread_create(&dt, NULL, downgrader_thread, &d), 0);
	struct timespec ms = {0, 20 * 1000 * 1000};
	nanosleep(&ms, NULL);
	assert_int_equal(atomic_load(&r.inside), 0);                /* K still ours: nobody woken */
	atomic_fetch_and(&lock.value, ~(uintptr_t)NTMM__PL_WAKING); /* K given back */
	assert_true(WAIT_UNTIL(atomic_load(&d.done) && atomic_load(&r.inside)));
	pthread_join(dt, NULL);
	atomic_store(&r.leave, 1);
	pthread_join(rt, NULL);
	ntmm__pushlock_release_shared(&lock); /* the downgraded hold */
	assert_int_equal(atomic_load(&lock.value), 0);
	assert_int_equal(atomic_load(&test_failures), 0);
}

static void downgrade_keeps_a_waiting_writer_out(void **state)
{
	ntmm__pushlock_t lock = NTMM__PUSHLOCK_INIT;
	atomic_int holding = 0;
	atomic_store(&test_failures, 0);
	ntmm__pushlock_acquire_exclusive(&lock);
	atomic_store(&holding, 1);
	pthread_t t;
	blocker_t w = {.lock = &lock, .exclusive = true, .holding = &holding};
	start_blocker(&t, &w);
	ntmm__pushlock_downgrade(&lock);
	/* still held (shared) by us: the writer stays out, and so do new
	   readers, since a writer waits */
	assert_false(ntmm__pushlock_try_acquire_shared(&lock));
	assert_false(ntmm__pushlock_try_acquire_exclusive(&lock));
	assert_false(atomic_load(&w.inside));
	atomic_store(&holding, 0);
	atomic_store(&w.leave, 1);
	ntmm__pushlock_release_shared(&lock);
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&lock.value), 0);
	assert_int_equal(atomic_load(&test_failures), 0);
}

static void convert_succeeds_only_for_a_sole_sharer_without_waiters(void **state)
{
	ntmm__pushlock_t lock = NTMM__PUSHLOCK_INIT;
	atomic_store(&test_failures, 0);

	/* sole sharer: becomes exclusive */
	ntmm__pushlock_acquire_shared(&lock);
	assert_true(ntmm__pushlock_try_convert_to_exclusive(&lock));
	assert_false(ntmm__pushlock_try_acquire_shared(&lock));
	assert_false(ntmm__pushlock_try_acquire_exclusive(&lock));
	ntmm__pushlock_release_exclusive(&lock);
	assert_int_equal(atomic_load(&lock.value), 0);

	/* two sharers: fails, both still hold it shared */
	ntmm__pushlock_acquire_shared(&lock);
	ntmm__pushlock_acquire_shared(&lock);
	assert_false(ntmm__pushlock_try_convert_to_exclusive(&lock));
	assert_false(ntmm__pushlock_try_acquire_exclusive(&lock));
	ntmm__pushlock_release_shared(&lock);
	assert_true(ntmm__pushlock_try_convert_to_exclusive(&lock)); /* now alone */
	ntmm__pushlock_release_exclusive(&lock);
	assert_int_equal(atomic_load(&lock.value), 0);

	/* sole sharer but a writer waits: fails, and the writer gets in after */
	ntmm__pushlock_acquire_shared(&lock);
	pthread_t t;
	blocker_t w = {.lock = &lock, .exclusive = true};
	start_blocker(&t, &w);
	assert_false(ntmm__pushlock_try_convert_to_exclusive(&lock));
	atomic_store(&w.leave, 1);
	ntmm__pushlock_release_shared(&lock);
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&lock.value), 0);
	assert_int_equal(atomic_load(&test_failures), 0);
}

/* Several sharers hold the lock when a writer queues (their count moves
   into the writer's wait block): the writer gets in only after the last
   of them leaves, and then gets in. */
static void writer_waits_for_every_earlier_sharer(void **state)
{
	enum { SHARERS = 3 };
	ntmm__pushlock_t lock = NTMM__PUSHLOCK_INIT;
	atomic_int sharers_inside = SHARERS;
	atomic_store(&test_failures, 0);
	for (int i = 0; i < SHARERS; i++)
		ntmm__pushlock_acquire_shared(&lock); /* no owner: one thread may hold it n times */
	pthread_t t;
	blocker_t w = {.lock = &lock, .exclusive = true, .holding = &sharers_inside};
	start_blocker(&t, &w);
	for (int i = 0; i < SHARERS; i++) {
		assert_false(atomic_load(&w.inside));
		atomic_fetch_sub(&sharers_inside, 1);
		ntmm__pushlock_release_shared(&lock);
	}
	assert_true(WAIT_UNTIL(atomic_load(&w.inside)));
	atomic_store(&w.leave, 1);
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&lock.value), 0);
	assert_int_equal(atomic_load(&test_failures), 0);
}

/* ------------------------------------------------------------------ */
/* No lost wake-ups: a long randomized run over every operation, with
   sections that yield so that waiters really go to sleep. Every thread
   must finish (the watchdog aborts otherwise) and the counts be exact. */

static void *random_worker(void *p)
{
	worker_t *w = p;
	ntmm__pushlock_t *l = &w->g->lock;
	for (long i = 0; i < w->iters; i++) {
		uint64_t r = test_rand(&w->seed);
		bool yield = (r >> 40) % 8 == 0;
		switch (r % 8) {
		case 0:
		case 1:
			ntmm__pushlock_acquire_exclusive(l);
			write_section(w->g, yield);
			ntmm__pushlock_release_exclusive(l);
			w->writes++;
			break;
		case 2:
		case 3:
			ntmm__pushlock_acquire_shared(l);
			read_section(w->g, yield);
			ntmm__pushlock_release_shared(l);
			break;
		case 4: /* write, then keep reading after a downgrade */
			ntmm__pushlock_acquire_exclusive(l);
			write_section(w->g, false);
			w->writes++;
			ntmm__pushlock_downgrade(l);
			read_section(w->g, yield);
			ntmm__pushlock_release_shared(l);
			break;
		case 5: /* read, and write too if we can convert */
			ntmm__pushlock_acquire_shared(l);
			read_section(w->g, false);
			if (ntmm__pushlock_try_convert_to_exclusive(l)) {
				write_section(w->g, yield);
				w->writes++;
				ntmm__pushlock_release_exclusive(l);
			} else {
				ntmm__pushlock_release_shared(l);
			}
			break;
		case 6:
			if (ntmm__pushlock_try_acquire_exclusive(l)) {
				write_section(w->g, yield);
				w->writes++;
				ntmm__pushlock_release_exclusive(l);
			}
			break;
		default:
			if (ntmm__pushlock_try_acquire_shared(l)) {
				read_section(w->g, yield);
				ntmm__pushlock_release_shared(l);
			}
			break;
		}
	}
	return NULL;
}

static void no_lost_wakeups_in_a_long_random_run(void **state)
{
	guarded_t g = {.lock = NTMM__PUSHLOCK_INIT};
	worker_t w[THREADS];
	for (int i = 0; i < THREADS; i++)
		w[i] = (worker_t){&g, scaled(60000), 0xd1b54a32d192ed03ull * (i + 7), 0};
	atomic_store(&test_failures, 0);
	run_threads_watched(THREADS, random_worker, w, sizeof(w[0]), "random run", dump_lock, &g);
	assert_int_equal(atomic_load(&test_failures), 0);
	long writes = 0;
	for (int i = 0; i < THREADS; i++)
		writes += w[i].writes;
	assert_int_equal(g.a, writes);
	assert_int_equal(g.b, writes);
	assert_int_equal(atomic_load(&g.lock.value), 0);
}

/* ------------------------------------------------------------------ */
/* Debug builds catch a release without a matching acquire. */

#if NTMM_DEBUG >= 1
static void release_exclusive_unlocked(void *p)
{
	ntmm__pushlock_t l = NTMM__PUSHLOCK_INIT;
	ntmm__pushlock_release_exclusive(&l);
}
static void release_shared_unlocked(void *p)
{
	ntmm__pushlock_t l = NTMM__PUSHLOCK_INIT;
	ntmm__pushlock_release_shared(&l);
}
static void release_shared_of_exclusive(void *p)
{
	ntmm__pushlock_t l = NTMM__PUSHLOCK_INIT;
	ntmm__pushlock_acquire_exclusive(&l);
	ntmm__pushlock_release_shared(&l);
}
static void release_exclusive_of_shared(void *p)
{
	ntmm__pushlock_t l = NTMM__PUSHLOCK_INIT;
	ntmm__pushlock_acquire_shared(&l);
	ntmm__pushlock_release_exclusive(&l);
}
static void downgrade_of_shared(void *p)
{
	ntmm__pushlock_t l = NTMM__PUSHLOCK_INIT;
	ntmm__pushlock_acquire_shared(&l);
	ntmm__pushlock_acquire_shared(&l);
	ntmm__pushlock_downgrade(&l);
}
static void correct_use(void *p)
{
	ntmm__pushlock_t l = NTMM__PUSHLOCK_INIT;
	ntmm__pushlock_acquire_shared(&l);
	ntmm__pushlock_release_shared(&l);
	ntmm__pushlock_acquire_exclusive(&l);
	ntmm__pushlock_release_exclusive(&l);
}
#endif

static void debug_builds_assert_on_release_without_acquire(void **state)
{
#if NTMM_DEBUG >= 1
	assert_false(aborts_in_child(correct_use, NULL));
	assert_true(aborts_in_child(release_exclusive_unlocked, NULL));
	assert_true(aborts_in_child(release_shared_unlocked, NULL));
	assert_true(aborts_in_child(release_shared_of_exclusive, NULL));
	assert_true(aborts_in_child(release_exclusive_of_shared, NULL));
	assert_true(aborts_in_child(downgrade_of_shared, NULL));
#else
	skip();
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(try_acquire_in_every_state),
	    cmocka_unit_test(readers_are_inside_together),
	    cmocka_unit_test(writer_waits_for_every_earlier_sharer),
	    cmocka_unit_test(downgrade_keeps_the_lock_shared),
	    cmocka_unit_test(downgrade_lets_waiting_readers_in),
	    cmocka_unit_test(downgrade_waits_out_a_list_owner_and_lets_readers_in),
	    cmocka_unit_test(downgrade_keeps_a_waiting_writer_out),
	    cmocka_unit_test(convert_succeeds_only_for_a_sole_sharer_without_waiters),
	    cmocka_unit_test(debug_builds_assert_on_release_without_acquire),
	    cmocka_unit_test(exclusive_sections_exclude_everyone_under_stress),
	    cmocka_unit_test(writer_not_starved_by_a_stream_of_readers),
	    cmocka_unit_test(no_lost_wakeups_in_a_long_random_run),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
