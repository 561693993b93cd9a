/*
 * Per-CPU counter adds (engine/sync/percpu.h): no add is lost with more
 * threads than CPUs, threads migrating between CPUs on every few adds and
 * another thread adding to the shared slot with locked adds at the same
 * time; signal handlers adding to the slot the interrupted thread is adding
 * to lose nothing either (a signal inside the sequence restarts it); an
 * add lands in the slot of the CPU the thread runs on (the restartable
 * sequence is in use), and a CPU past the last slot adds to the shared
 * slot.
 */
#include "synctest.h"

#include <sched.h>
#include <signal.h>

#include "sync/percpu.h"

#define THREADS 8 /* more than the machine's 2 cores */

typedef struct slot {
	_Atomic uint64_t v;
	char pad[56];
} slot_t;

static int allowed_cpus(int *cpu, int max)
{
	cpu_set_t set;
	int n = 0;
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 0;
	for (int c = 0; c < CPU_SETSIZE && n < max; c++)
		if (CPU_ISSET(c, &set))
			cpu[n++] = c;
	return n;
}

static bool pin_to_cpu(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) == 0;
}

static uint64_t sum(slot_t *s, unsigned nslots)
{
	uint64_t t = 0;
	for (unsigned i = 0; i <= nslots; i++) /* with the shared slot */
		t += atomic_load(&s[i].v);
	return t;
}

typedef struct adder {
	slot_t *slots;
	unsigned nslots;
	long adds;
	int cpus[2], ncpus; /* migrate between these (ncpus 2) */
	bool shared_only;   /* a locked adder on the shared slot */
} adder_t;

static void *adder_thread(void *p)
{
	adder_t *a = p;
	for (long i = 0; i < a->adds; i++) {
		if (a->shared_only) {
			atomic_fetch_add_explicit(&a->slots[a->nslots].v, 3, memory_order_relaxed);
			continue;
		}
		ntmm__percpu_add(&a->slots[0].v, sizeof(slot_t), a->nslots, 1);
		if (a->ncpus == 2 && i % 1000 == 999)
			pin_to_cpu(a->cpus[(i / 1000) & 1]); /* a migration */
		else if (i % 97 == 0)
			sched_yield(); /* preemptions, some inside sequences */
	}
	return NULL;
}

static void no_add_is_lost_with_migrations_and_a_shared_adder(void **state)
{
	long nconf = sysconf(_SC_NPROCESSORS_CONF);
	unsigned nslots = nconf > 0 ? (unsigned)nconf : 1;
	slot_t *slots = calloc(nslots + 1, sizeof(slot_t));
	int cpus[2] = {0, 0};
	int ncpus = allowed_cpus(cpus, 2);
	adder_t a[THREADS + 1];
	long adds = scaled(400000);
	for (int i = 0; i <= THREADS; i++) {
		a[i] = (adder_t){.slots = slots,
		                 .nslots = nslots,
		                 .adds = adds,
		                 .ncpus = ncpus,
		                 .shared_only = i == THREADS};
		a[i].cpus[0] = cpus[ncpus == 2 ? i & 1 : 0];
		a[i].cpus[1] = cpus[ncpus == 2 ? (i + 1) & 1 : 0];
	}
	run_threads_watched(THREADS + 1, adder_thread, a, sizeof(a[0]), "per-CPU adders", NULL,
	                    NULL);
	assert_int_equal(atomic_load(&test_failures), 0);
	assert_int_equal(sum(slots, nslots), (uint64_t)adds * THREADS + 3ull * (uint64_t)adds);
	free(slots);
}

/* The handler adds to the same slots as the thread it interrupts. */
static slot_t *sig_slots;
static unsigned sig_nslots;
static atomic_long sig_handled;

static void on_sigusr1(int sig)
{
	(void)sig;
	ntmm__percpu_add(&sig_slots[0].v, sizeof(slot_t), sig_nslots, 1000);
	atomic_fetch_add_explicit(&sig_handled, 1, memory_order_relaxed);
}

typedef struct sigrun {
	pthread_t target;
	atomic_bool stop;
	long adds;
} sigrun_t;

static void *signaller_thread(void *p)
{
	sigrun_t *r = p;
	while (!atomic_load(&r->stop)) {
		pthread_kill(r->target, SIGUSR1);
		for (volatile int k = 0; k < 200; k++)
			;
	}
	return NULL;
}

static void signal_handler_adds_interleave_without_loss(void **state)
{
	long nconf = sysconf(_SC_NPROCESSORS_CONF);
	sig_nslots = nconf > 0 ? (unsigned)nconf : 1;
	sig_slots = calloc(sig_nslots + 1, sizeof(slot_t));
	struct sigaction sa = {.sa_handler = on_sigusr1};
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	assert_int_equal(sigaction(SIGUSR1, &sa, NULL), 0);
	sigrun_t r = {.target = pthread_self(), .adds = scaled(2000000)};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, signaller_thread, &r), 0);
	for (long i = 0; i < r.adds; i++)
		ntmm__percpu_add(&sig_slots[0].v, sizeof(slot_t), sig_nslots, 1);
	atomic_store(&r.stop, true);
	pthread_join(t, NULL);
	/* a signal still pending is handled when it is unblocked: block it
	   now so the count read below is final */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	long handled = atomic_load(&sig_handled);
	printf("%ld signals handled during %ld adds\n", handled, r.adds);
	assert_true(handled > 0);
	assert_int_equal(sum(sig_slots, sig_nslots),
	                 (uint64_t)r.adds + 1000ull * (uint64_t)handled);
	signal(SIGUSR1, SIG_IGN);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	free(sig_slots);
}

typedef struct placed {
	int cpu;
	unsigned nslots;
	slot_t *slots;
	bool pinned;
} placed_t;

static void *placed_thread(void *p)
{
	placed_t *a = p;
	a->pinned = pin_to_cpu(a->cpu);
	if (a->pinned)
		for (int i = 0; i < 1000; i++)
			ntmm__percpu_add(&a->slots[0].v, sizeof(slot_t), a->nslots, 1);
	return NULL;
}

static void adds_land_in_the_running_cpus_slot_or_the_shared_one(void **state)
{
	int cpus[2] = {0, 0};
	int n = allowed_cpus(cpus, 2);
	assert_true(n >= 1);
#ifndef NTMM__RSEQ_ADD
	skip(); /* no restartable-sequence add on this target: all adds are shared */
#else
	if (__rseq_size == 0)
		skip(); /* glibc did not register rseq (tunable): all adds are shared */
#endif
	/* each allowed CPU in turn, with room for it: its own slot */
	for (int k = 0; k < n; k++) {
		unsigned nslots = (unsigned)cpus[k] + 1;
		slot_t *slots = calloc(nslots + 1, sizeof(slot_t));
		placed_t a = {.cpu = cpus[k], .nslots = nslots, .slots = slots};
		run_threads(1, placed_thread, &a, sizeof(a));
		assert_true(a.pinned);
		assert_int_equal(atomic_load(&slots[cpus[k]].v), 1000);
		assert_int_equal(sum(slots, nslots), 1000);
		free(slots);
	}
	/* a CPU past the last slot: the shared slot */
	int c = cpus[n - 1];
	unsigned nslots = (unsigned)c; /* slots 0..c-1 only; shared at c */
	slot_t *slots = calloc(nslots + 1, sizeof(slot_t));
	placed_t a = {.cpu = c, .nslots = nslots, .slots = slots};
	run_threads(1, placed_thread, &a, sizeof(a));
	assert_true(a.pinned);
	assert_int_equal(atomic_load(&slots[nslots].v), 1000);
	assert_int_equal(sum(slots, nslots), 1000);
	free(slots);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(no_add_is_lost_with_migrations_and_a_shared_adder),
	    cmocka_unit_test(signal_handler_adds_interleave_without_loss),
	    cmocka_unit_test(adds_land_in_the_running_cpus_slot_or_the_shared_one),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
