/*
 * Event counts and gates (engine/sync/event.h): a signal between prepare
 * and wait is not lost, a wait without a signal times out, a signal wakes
 * a sleeping waiter, a producer/consumer run loses no wake-up (also with
 * counted waiting, where the producer skips the signal when no waiter is
 * counted), and opening a gate wakes every waiter and publishes what the
 * opener wrote.
 */
#include "synctest.h"

#include "sync/event.h"

#define MS 1000000ll

static void signal_before_wait_is_not_lost(void **state)
{
	ntmm__event_t ev;
	ntmm__event_init(&ev);
	uint32_t key = ntmm__event_prepare(&ev);
	ntmm__event_signal(&ev);
	/* the signal came after prepare: the wait returns at once, signalled
	   (the timeout only keeps a broken event from hanging the test) */
	assert_true(ntmm__event_wait(&ev, key, 60000 * MS));
	/* a key taken after the signal waits for the next one */
	key = ntmm__event_prepare(&ev);
	assert_false(ntmm__event_wait(&ev, key, 1 * MS));
}

static void wait_times_out_without_a_signal(void **state)
{
	ntmm__event_t ev;
	ntmm__event_init(&ev);
	uint32_t key = ntmm__event_prepare(&ev);
	assert_false(ntmm__event_wait(&ev, key, 20 * MS));
	assert_false(ntmm__event_wait(&ev, key, 0));
	assert_int_equal(atomic_load(&ev.waiters), 0);
}

typedef struct sleeper {
	ntmm__event_t *ev;
	atomic_int *flag; /* the "work" the signaller publishes */
	bool signalled;
	int seen;
} sleeper_t;

static void *sleeper_thread(void *p)
{
	sleeper_t *s = p;
	uint32_t key = ntmm__event_prepare(s->ev);
	if (atomic_load_explicit(s->flag, memory_order_relaxed) == 0)
		s->signalled = ntmm__event_wait(s->ev, key, 120000 * MS);
	else
		s->signalled = true;
	s->seen = atomic_load_explicit(s->flag, memory_order_relaxed);
	return NULL;
}

static void signal_wakes_every_sleeping_waiter(void **state)
{
	enum { N = 4 };
	ntmm__event_t ev;
	ntmm__event_init(&ev);
	atomic_int flag = 0;
	sleeper_t s[N];
	pthread_t t[N];
	for (int i = 0; i < N; i++) {
		s[i] = (sleeper_t){&ev, &flag, false, 0};
		assert_int_equal(pthread_create(&t[i], NULL, sleeper_thread, &s[i]), 0);
	}
	/* all of them inside the wait (white box: the waiter count) */
	assert_true(WAIT_UNTIL(atomic_load(&ev.waiters) == N));
	atomic_store_explicit(&flag, 1, memory_order_relaxed);
	ntmm__event_signal(&ev); /* release: publishes flag */
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		assert_true(s[i].signalled);
		assert_int_equal(s[i].seen, 1);
	}
	assert_int_equal(atomic_load(&ev.waiters), 0);
}

/* A consumer that sleeps whenever it sees no work, a producer that signals
   after each item: every item is consumed (a lost wake-up would leave the
   consumer asleep with work pending; the watchdog catches that). */

typedef struct pc {
	ntmm__event_t ev;
	atomic_long produced;
	long total;
	long consumed;
	long sleeps;
} pc_t;

static void *pc_thread(void *p)
{
	void **a = p;
	pc_t *pc = a[0];
	if (a[1]) {
		/* the consumer asleep before the first item (white box: the
		   waiter count), so the wake-up path is taken at least once
		   however the two threads are scheduled */
		WORKER_CHECK(WAIT_UNTIL(atomic_load(&pc->ev.waiters) > 0));
		for (long i = 0; i < pc->total; i++) {
			atomic_fetch_add_explicit(&pc->produced, 1, memory_order_relaxed);
			ntmm__event_signal(&pc->ev);
			if (i % 64 == 0)
				sched_yield();
		}
		return NULL;
	}
	while (pc->consumed < pc->total) {
		uint32_t key = ntmm__event_prepare(&pc->ev);
		long avail = atomic_load_explicit(&pc->produced, memory_order_relaxed);
		if (avail > pc->consumed) {
			pc->consumed = avail;
			continue;
		}
		pc->sleeps++;
		ntmm__event_wait(&pc->ev, key, -1);
	}
	return NULL;
}

static void producer_consumer_loses_no_wakeup(void **state)
{
	pc_t pc = {.total = scaled(200000)};
	ntmm__event_init(&pc.ev);
	void *args[2][2] = {{&pc, NULL}, {&pc, (void *)1}};
	run_threads_watched(2, pc_thread, args, sizeof(args[0]), "producer/consumer", NULL, NULL);
	printf("consumer slept %ld times for %ld items\n", pc.sleeps, pc.total);
	assert_int_equal(atomic_load(&test_failures), 0);
	assert_int_equal(pc.consumed, pc.total);
	assert_true(pc.sleeps > 0); /* the wake-up path was exercised */
}

/* Counted waiting (ntmm__event_enter / ntmm__event_signal_waiters): the
   producer publishes with a seq_cst add and signals only when it sees a
   waiter counted. A lost wake-up leaves the consumer asleep for ever (no
   timeout here): the watchdog reports it. */
static void *pcc_thread(void *p)
{
	void **a = p;
	pc_t *pc = a[0];
	if (a[1]) {
		WORKER_CHECK(WAIT_UNTIL(atomic_load(&pc->ev.waiters) > 0));
		for (long i = 0; i < pc->total; i++) {
			atomic_fetch_add_explicit(&pc->produced, 1, memory_order_seq_cst);
			ntmm__event_signal_waiters(&pc->ev);
			if (i % 64 == 0)
				sched_yield();
		}
		return NULL;
	}
	while (pc->consumed < pc->total) {
		uint32_t key = ntmm__event_enter(&pc->ev);
		long avail = atomic_load_explicit(&pc->produced, memory_order_seq_cst);
		if (avail > pc->consumed) {
			ntmm__event_leave(&pc->ev);
			pc->consumed = avail;
			continue;
		}
		pc->sleeps++;
		ntmm__event_wait_entered(&pc->ev, key, -1);
	}
	return NULL;
}

static void counted_waiting_loses_no_wakeup(void **state)
{
	pc_t pc = {.total = scaled(200000)};
	ntmm__event_init(&pc.ev);
	void *args[2][2] = {{&pc, NULL}, {&pc, (void *)1}};
	run_threads_watched(2, pcc_thread, args, sizeof(args[0]), "counted producer/consumer", NULL,
	                    NULL);
	printf("consumer slept %ld times for %ld items\n", pc.sleeps, pc.total);
	assert_int_equal(atomic_load(&test_failures), 0);
	assert_int_equal(pc.consumed, pc.total);
	assert_true(pc.sleeps > 0);
	/* every enter was matched by a leave or a wait */
	assert_int_equal(atomic_load(&pc.ev.waiters), 0);
}

/* ------------------------------------------------------------------ */

typedef struct gate_waiter {
	ntmm__gate_t *g;
	atomic_int *arrived;
	long *payload; /* plain: written by the opener before it opens */
	long seen;
} gate_waiter_t;

static void *gate_waiter_thread(void *p)
{
	gate_waiter_t *w = p;
	atomic_fetch_add(w->arrived, 1);
	ntmm__gate_wait(w->g);
	w->seen = *w->payload; /* ordered by the gate: no data race */
	return NULL;
}

static void gate_open_wakes_all_waiters(void **state)
{
	enum { N = 6 };
	for (int round = 0; round < 5; round++) {
		ntmm__gate_t g;
		ntmm__gate_init(&g, false);
		atomic_int arrived = 0;
		long payload = 0;
		gate_waiter_t w[N];
		pthread_t t[N];
		for (int i = 0; i < N; i++) {
			w[i] = (gate_waiter_t){&g, &arrived, &payload, -1};
			assert_int_equal(pthread_create(&t[i], NULL, gate_waiter_thread, &w[i]), 0);
		}
		assert_true(WAIT_UNTIL(atomic_load(&arrived) == N));
		/* let some of them reach the futex (sleepers mark the gate) */
		assert_true(WAIT_UNTIL(atomic_load(&g.state) == 2u));
		assert_false(ntmm__gate_is_open(&g));
		payload = 1000 + round;
		ntmm__gate_open(&g);
		for (int i = 0; i < N; i++) {
			pthread_join(t[i], NULL);
			assert_int_equal(w[i].seen, 1000 + round); /* none passed early */
		}
		assert_true(ntmm__gate_is_open(&g));
	}
}

static void open_gate_lets_waiters_through_and_close_stops_them(void **state)
{
	ntmm__gate_t g;
	ntmm__gate_init(&g, true);
	ntmm__gate_wait(&g); /* open: returns at once */
	ntmm__gate_close(&g);
	assert_false(ntmm__gate_is_open(&g));
	ntmm__gate_close(&g); /* closing a closed gate changes nothing */
	assert_false(ntmm__gate_is_open(&g));

	atomic_int arrived = 0;
	long payload = 0;
	gate_waiter_t w = {&g, &arrived, &payload, -1};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, gate_waiter_thread, &w), 0);
	assert_true(WAIT_UNTIL(atomic_load(&arrived) == 1));
	payload = 7;
	ntmm__gate_open(&g);
	pthread_join(t, NULL);
	assert_int_equal(w.seen, 7);
	ntmm__gate_open(&g); /* opening twice is harmless */
	assert_true(ntmm__gate_is_open(&g));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(signal_before_wait_is_not_lost),
	    cmocka_unit_test(wait_times_out_without_a_signal),
	    cmocka_unit_test(signal_wakes_every_sleeping_waiter),
	    cmocka_unit_test(producer_consumer_loses_no_wakeup),
	    cmocka_unit_test(counted_waiting_loses_no_wakeup),
	    cmocka_unit_test(gate_open_wakes_all_waiters),
	    cmocka_unit_test(open_gate_lets_waiters_through_and_close_stops_them),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
