/*
 * Per-CPU counter adds (engine/sync/percpu.h): no add is lost with more
 * threads than CPUs, threads migrating between CPUs on every few adds and
 * another thread adding to the shared slot with locked adds at the same
 * time; signal handlers adding to the slot the interrupted thread is adding
 * to lose nothing either (a signal inside the sequence restarts it); an
 * add lands in the slot of the CPU the thread runs on (the restartable
 * sequence is in use), and a CPU past the last slot adds to the shared
 * slot. Batch takes (ntmm__percpu_take_batch, with refills by CAS as the
 * working-set list does them) never hand out one number twice.
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

static unsigned conf_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_CONF);
	return n > 0 ? (unsigned)n : 1u;
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
	unsigned nslots = conf_cpus();
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
	int sig;
} sigrun_t;

static void *signaller_thread(void *p)
{
	sigrun_t *r = p;
	while (!atomic_load(&r->stop)) {
		pthread_kill(r->target, r->sig);
		for (volatile int k = 0; k < 200; k++)
			;
	}
	return NULL;
}

/* Runs body(arg) `iterations` times on this thread while another thread
   sends it `sig` (handled by `handler`) as fast as it can; returns how many
   signals were handled. The signal is left blocked and ignored after, so
   the count is final. */
static long run_under_signals(int sig, void (*handler)(int), void (*body)(void *), void *arg,
                              long iterations)
{
	atomic_store(&sig_handled, 0);
	struct sigaction sa = {.sa_handler = handler};
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	assert_int_equal(sigaction(sig, &sa, NULL), 0);
	sigrun_t r = {.target = pthread_self(), .sig = sig};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, signaller_thread, &r), 0);
	for (long i = 0; i < iterations; i++)
		body(arg);
	atomic_store(&r.stop, true);
	pthread_join(t, NULL);
	/* a signal still pending is handled when it is unblocked: block it
	   now, read the count, then ignore the signal and unblock */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	long handled = atomic_load(&sig_handled);
	signal(sig, SIG_IGN);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	printf("%ld signals handled during %ld iterations\n", handled, iterations);
	return handled;
}

static void add_one(void *arg)
{
	(void)arg;
	ntmm__percpu_add(&sig_slots[0].v, sizeof(slot_t), sig_nslots, 1);
}

static void signal_handler_adds_interleave_without_loss(void **state)
{
	sig_nslots = conf_cpus();
	sig_slots = calloc(sig_nslots + 1, sizeof(slot_t));
	long adds = scaled(2000000);
	long handled = run_under_signals(SIGUSR1, on_sigusr1, add_one, NULL, adds);
	assert_true(handled > 0);
	assert_int_equal(sum(sig_slots, sig_nslots), (uint64_t)adds + 1000ull * (uint64_t)handled);
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

static bool rseq_in_use(void)
{
#ifdef NTMM__RSEQ_ADD
	return __rseq_size > 0;
#else
	return false;
#endif
}

/* Adds 1000 on CPU `cpu` with slots 0..nslots-1; returns the slots. */
static slot_t *add_on(int cpu, unsigned nslots)
{
	slot_t *slots = calloc(nslots + 1, sizeof(slot_t));
	placed_t a = {.cpu = cpu, .nslots = nslots, .slots = slots};
	run_threads(1, placed_thread, &a, sizeof(a));
	assert_true(a.pinned);
	assert_int_equal(sum(slots, nslots), 1000);
	return slots;
}

static void adds_land_in_the_running_cpus_slot_or_the_shared_one(void **state)
{
	int cpus[2] = {0, 0};
	int n = allowed_cpus(cpus, 2);
	assert_true(n >= 1);
	/* each allowed CPU in turn, with room for it: its own slot when the
	   restartable sequence runs (glibc registered rseq), else the shared
	   one (GLIBC_TUNABLES=glibc.pthread.rseq=0: the test_percpu_norseq
	   run) */
	for (int k = 0; k < n; k++) {
		unsigned nslots = (unsigned)cpus[k] + 1;
		slot_t *slots = add_on(cpus[k], nslots);
		assert_int_equal(atomic_load(&slots[rseq_in_use() ? (unsigned)cpus[k] : nslots].v),
		                 1000);
		free(slots);
	}
	/* a CPU past the last slot: the shared slot either way */
	unsigned nslots = (unsigned)cpus[n - 1]; /* slots 0..c-1 only; shared at c */
	slot_t *slots = add_on(cpus[n - 1], nslots);
	assert_int_equal(atomic_load(&slots[nslots].v), 1000);
	free(slots);
}

/* ---- batch takes */

#define TAKE_LIMIT (1u << 22) /* numbers to hand out at scale 1; more at larger scales */
#define TAKE_BATCH 64u

typedef struct takers {
	slot_t *slots; /* nslots + 1 batch words */
	unsigned nslots;
	_Atomic uint32_t next;  /* numbers handed to batches */
	_Atomic uint64_t *seen; /* bitmap of numbers taken */
	uint32_t limit;         /* numbers there are: TAKE_LIMIT, scaled with the takes */
	long takes;
	int cpus[2], ncpus;
} takers_t;

typedef struct taker {
	takers_t *t;
	int id;
} taker_t;

static void takers_init(takers_t *t, long takes)
{
	*t = (takers_t){.nslots = conf_cpus(), .takes = takes, .limit = TAKE_LIMIT};
	/* room for every take with the same headroom as at scale 1 (a batch
	   left unfinished wastes numbers) */
	double want = (double)TAKE_LIMIT * test_scale();
	if (want > TAKE_LIMIT)
		t->limit = want < (double)(1u << 31) ? (uint32_t)want & ~63u : 1u << 31;
	t->slots = calloc(t->nslots + 1, sizeof(slot_t));
	t->seen = calloc(t->limit / 64, sizeof(*t->seen));
	t->ncpus = allowed_cpus(t->cpus, 2);
}

/* Numbers taken (bits set), and frees the takers. */
static uint64_t takers_done(takers_t *t)
{
	uint64_t seen = 0;
	for (unsigned i = 0; i < t->limit / 64; i++)
		seen += (uint64_t)__builtin_popcountll(atomic_load(&t->seen[i]));
	free(t->seen);
	free(t->slots);
	return seen;
}

static bool take_one(takers_t *t, uint32_t *out)
{
	for (;;) {
		uint32_t nx;
		unsigned c;
		if (ntmm__percpu_take_batch(&t->slots[0].v, sizeof(slot_t), t->nslots, &nx, &c)) {
			*out = nx;
			return true;
		}
		_Atomic uint64_t *w = &t->slots[c].v;
		uint64_t v = atomic_load(w);
		nx = (uint32_t)v;
		if (nx < (uint32_t)(v >> 32)) {
			if (c < t->nslots)
				continue;
			if (atomic_compare_exchange_weak(w, &v, v + 1)) {
				*out = nx;
				return true;
			}
			continue;
		}
		uint32_t i = atomic_fetch_add(&t->next, TAKE_BATCH);
		if (i + TAKE_BATCH > t->limit)
			return false;
		uint64_t want = (uint64_t)(i + 1) | ((uint64_t)(i + TAKE_BATCH) << 32);
		if (atomic_compare_exchange_strong(w, &v, want)) { /* expects the used-up batch */
			*out = i;
			return true;
		}
	}
}

/* Takes one number and marks it: false when the numbers ran out. A
   number seen twice is a failure. */
static bool take_and_mark(takers_t *t)
{
	uint32_t n;
	if (!take_one(t, &n))
		return false;
	uint64_t bit = 1ull << (n % 64);
	uint64_t old = atomic_fetch_or(&t->seen[n / 64], bit);
	WORKER_CHECK(!(old & bit)); /* no number twice */
	return true;
}

static void *taker_thread(void *p)
{
	taker_t *k = p;
	takers_t *t = k->t;
	for (long i = 0; i < t->takes && take_and_mark(t); i++) {
		if (t->ncpus == 2 && i % 500 == 499)
			pin_to_cpu(t->cpus[(i / 500 + (unsigned)k->id) & 1]);
		else if (i % 89 == 0)
			sched_yield();
	}
	return NULL;
}

static void batch_takes_never_hand_out_a_number_twice(void **state)
{
	takers_t t;
	takers_init(&t, scaled(200000));
	taker_t k[THREADS];
	for (int i = 0; i < THREADS; i++)
		k[i] = (taker_t){&t, i};
	run_threads_watched(THREADS, taker_thread, k, sizeof(k[0]), "batch takers", NULL, NULL);
	assert_int_equal(atomic_load(&test_failures), 0);
	/* and every take happened: as many numbers seen as taken */
	assert_int_equal(takers_done(&t), (uint64_t)t.takes * THREADS);
}

/* A signal handler takes from the batch the interrupted thread is taking
   from: a signal between the sequence's load and store restarts it. */
static takers_t *sig_takers;

static void on_sigusr2(int sig)
{
	(void)sig;
	take_and_mark(sig_takers);
	atomic_fetch_add_explicit(&sig_handled, 1, memory_order_relaxed);
}

static void take_and_mark_arg(void *arg)
{
	(void)take_and_mark(arg);
}

static void signal_handler_batch_takes_are_unique(void **state)
{
	takers_t t;
	long takes = scaled(1000000);
	takers_init(&t, takes);
	sig_takers = &t;
	long handled = run_under_signals(SIGUSR2, on_sigusr2, take_and_mark_arg, &t, takes);
	assert_true(handled > 0);
	assert_int_equal(atomic_load(&test_failures), 0);
	assert_int_equal(takers_done(&t), (uint64_t)takes + (uint64_t)handled);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(no_add_is_lost_with_migrations_and_a_shared_adder),
	    cmocka_unit_test(signal_handler_adds_interleave_without_loss),
	    cmocka_unit_test(adds_land_in_the_running_cpus_slot_or_the_shared_one),
	    cmocka_unit_test(batch_takes_never_hand_out_a_number_twice),
	    cmocka_unit_test(signal_handler_batch_takes_are_unique),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
