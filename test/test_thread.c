/*
 * System-thread framework: start/stop, wake-ups (none lost), bad input,
 * the NT priority → Linux policy mapping as the kernel reports it, CPU
 * pinning, and degradation when the process may not raise its priority
 * (checked in a re-executed child that drops CAP_SYS_NICE).
 *
 * Waits on the bodies are liveness watchdogs (a lost wake-up would hang),
 * not timing assertions: they allow a minute of no progress.
 */
#include "testutil.h"

#include "sync/event.h"
#include "threads/thread.h"

#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <spawn.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define LIVENESS_NS (60LL * 1000000000LL)

/* A counter the body bumps and an event it signals after each bump. */
typedef struct ack {
	_Atomic uint64_t count;
	ntmm__event_t ev;
} ack_t;

static void ack_init(ack_t *a)
{
	atomic_store_explicit(&a->count, 0, memory_order_relaxed);
	ntmm__event_init(&a->ev);
}

static void ack_bump(ack_t *a, uint64_t v)
{
	/* release: pairs with the acquire in ack_wait */
	atomic_store_explicit(&a->count, v, memory_order_release);
	ntmm__event_signal(&a->ev);
}

/* Blocks until count >= target; false if a minute passes with no progress. */
static bool ack_wait(ack_t *a, uint64_t target)
{
	for (;;) {
		uint32_t key = ntmm__event_prepare(&a->ev);
		if (atomic_load_explicit(&a->count, memory_order_acquire) >= target)
			return true;
		if (!ntmm__event_wait(&a->ev, key, LIVENESS_NS))
			return atomic_load_explicit(&a->count, memory_order_acquire) >= target;
	}
}

/* ------------------------------------------------------------ simple body */

typedef struct simple {
	ack_t ack;          /* count = wake-ups seen by the body */
	ntmm__gate_t hold;  /* body blocks here before its first wait */
	ntmm__gate_t ready; /* opened once the two fields below are set */
	bool use_hold;
	int sched_at_start;        /* sched_getscheduler(0) inside the body */
	cpu_set_t mask_at_start;   /* sched_getaffinity(0) inside the body */
	int64_t timeout_ns;        /* for ntmm__thread_wait */
	_Atomic uint64_t timeouts; /* waits that returned without a wake */
	_Atomic int exited;
} simple_t;

static void simple_init(simple_t *s)
{
	memset(s, 0, sizeof(*s));
	ack_init(&s->ack);
	ntmm__gate_init(&s->hold, false);
	ntmm__gate_init(&s->ready, false);
	s->timeout_ns = -1;
}

static void simple_body(ntmm__thread_t *self, void *arg)
{
	simple_t *s = arg;
	s->sched_at_start = sched_getscheduler(0) & ~SCHED_RESET_ON_FORK;
	CPU_ZERO(&s->mask_at_start);
	sched_getaffinity(0, sizeof(s->mask_at_start), &s->mask_at_start);
	ntmm__gate_open(&s->ready); /* publishes the two fields above */
	if (s->use_hold)
		ntmm__gate_wait(&s->hold);
	uint64_t seen = 0;
	for (;;) {
		uint64_t before = atomic_load_explicit(&self->wakeups, memory_order_relaxed);
		if (!ntmm__thread_wait(self, s->timeout_ns))
			break;
		if (atomic_load_explicit(&self->wakeups, memory_order_relaxed) == before) {
			atomic_fetch_add_explicit(&s->timeouts, 1, memory_order_relaxed);
			continue;
		}
		ack_bump(&s->ack, ++seen);
	}
	atomic_store_explicit(&s->exited, 1, memory_order_release);
}

static ntmm__thread_attr_t attr_of(const char *name, int prio, int cpu)
{
	ntmm__thread_attr_t a = {.name = name, .nt_priority = prio, .cpu = cpu};
	return a;
}

static void start_ok(ntmm__thread_t *t, ntmm__thread_attr_t a, simple_t *s)
{
	memset(t, 0, sizeof(*t));
	int r = ntmm__thread_start(t, &a, simple_body, s);
	if (r != 0)
		fprintf(stderr, "start: %s (%s)\n", ntmm_strerror(r), ntmm_error_detail());
	assert_int_equal(r, 0);
	ntmm__gate_wait(&s->ready);
}

/* ------------------------------------------------------------ lifecycle */

static void starts_runs_and_stops(void **state)
{
	ntmm__thread_t t;
	simple_t s;
	simple_init(&s);
	start_ok(&t, attr_of("ntmm-test", 8, -1), &s);
	assert_int_equal(atomic_load(&t.state), 1);
	assert_true(t.tid_os > 0);
	assert_int_not_equal(t.tid_os, (pid_t)syscall(SYS_gettid));
	char name[16];
	assert_int_equal(pthread_getname_np(t.tid, name, sizeof(name)), 0);
	assert_string_equal(name, "ntmm-test");
	assert_string_equal(t.name, "ntmm-test");
	assert_int_equal(t.cpu, -1);

	assert_int_equal(ntmm__thread_stop(&t), 0);
	assert_int_equal(atomic_load_explicit(&s.exited, memory_order_acquire), 1);
	assert_int_equal(atomic_load(&t.state), 2);
	/* stop does not count as a wake-up of the body */
	assert_int_equal(atomic_load(&s.ack.count), 0);
}

static void long_names_are_truncated_to_15_chars(void **state)
{
	ntmm__thread_t t;
	simple_t s;
	simple_init(&s);
	start_ok(&t, attr_of("a-very-long-thread-name", 8, -1), &s);
	char name[16];
	assert_int_equal(pthread_getname_np(t.tid, name, sizeof(name)), 0);
	assert_string_equal(name, "a-very-long-thr");
	assert_int_equal(ntmm__thread_stop(&t), 0);
}

static void stop_of_never_started_thread_is_einval(void **state)
{
	ntmm__thread_t t;
	memset(&t, 0, sizeof(t));
	assert_int_equal(ntmm__thread_stop(&t), NTMM_EINVAL);
	assert_non_null(strstr(ntmm_error_detail(), "never started"));
	assert_int_equal(ntmm__thread_stop(NULL), NTMM_EINVAL);
}

static void second_stop_is_einval(void **state)
{
	ntmm__thread_t t;
	simple_t s;
	simple_init(&s);
	start_ok(&t, attr_of("twice", 8, -1), &s);
	assert_int_equal(ntmm__thread_stop(&t), 0);
	assert_int_equal(ntmm__thread_stop(&t), NTMM_EINVAL);
	assert_non_null(strstr(ntmm_error_detail(), "already stopped"));
}

static void start_of_running_thread_is_einval(void **state)
{
	ntmm__thread_t t;
	simple_t s;
	simple_init(&s);
	start_ok(&t, attr_of("restart", 8, -1), &s);
	ntmm__thread_attr_t a = attr_of("restart", 8, -1);
	assert_int_equal(ntmm__thread_start(&t, &a, simple_body, &s), NTMM_EINVAL);
	assert_int_equal(ntmm__thread_stop(&t), 0);
	assert_int_equal(ntmm__thread_start(&t, &a, simple_body, &s), NTMM_EINVAL);
	assert_int_equal(ntmm__thread_start(&t, &a, NULL, &s), NTMM_EINVAL);
	assert_int_equal(ntmm__thread_start(&t, NULL, simple_body, &s), NTMM_EINVAL);
	assert_int_equal(ntmm__thread_start(NULL, &a, simple_body, &s), NTMM_EINVAL);
}

static void bad_priorities_are_einval(void **state)
{
	simple_t s;
	simple_init(&s);
	int bad[] = {-1, 32, -1000, 1000};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ntmm__thread_t t;
		memset(&t, 0, sizeof(t));
		ntmm__thread_attr_t a = attr_of("badprio", bad[i], -1);
		assert_int_equal(ntmm__thread_start(&t, &a, simple_body, &s), NTMM_EINVAL);
		assert_non_null(strstr(ntmm_error_detail(), "priority"));
		/* nothing started: the object is still unstarted */
		assert_int_equal(atomic_load(&t.state), 0);
		assert_int_equal(ntmm__thread_stop(&t), NTMM_EINVAL);
	}
}

static void bad_cpus_are_einval(void **state)
{
	simple_t s;
	simple_init(&s);
	int bad[] = {100000, 4096, -2};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ntmm__thread_t t;
		memset(&t, 0, sizeof(t));
		ntmm__thread_attr_t a = attr_of("badcpu", 8, bad[i]);
		assert_int_equal(ntmm__thread_start(&t, &a, simple_body, &s), NTMM_EINVAL);
		assert_non_null(strstr(ntmm_error_detail(), "cpu"));
		assert_int_equal(atomic_load(&t.state), 0);
	}
	/* a CPU the machine has but this process may not use: one outside the
	   process's mask, if any exists among the configured CPUs */
	cpu_set_t mask;
	assert_int_equal(sched_getaffinity(0, sizeof(mask), &mask), 0);
	long conf = sysconf(_SC_NPROCESSORS_CONF);
	for (int c = 0; c < conf && c < CPU_SETSIZE; c++) {
		if (CPU_ISSET(c, &mask))
			continue;
		ntmm__thread_t t;
		memset(&t, 0, sizeof(t));
		ntmm__thread_attr_t a = attr_of("badcpu", 8, c);
		int r = ntmm__thread_start(&t, &a, simple_body, &s);
		if (r == 0) /* allowed by the cgroup though not in our mask */
			assert_int_equal(ntmm__thread_stop(&t), 0);
		else
			assert_int_equal(r, NTMM_EINVAL);
	}
}

/* ------------------------------------------------------------ wake/wait */

static void each_wake_wakes_the_body_once(void **state)
{
	ntmm__thread_t t;
	simple_t s;
	simple_init(&s);
	start_ok(&t, attr_of("wake", 8, -1), &s);
	long n = scaled(2000);
	for (long i = 1; i <= n; i++) {
		ntmm__thread_wake(&t);
		assert_true(ack_wait(&s.ack, (uint64_t)i));
	}
	assert_int_equal(ntmm__thread_stop(&t), 0);
	assert_int_equal(atomic_load(&s.ack.count), (uint64_t)n);
	assert_int_equal(atomic_load(&t.wakeups), (uint64_t)n);
}

static void wake_while_the_body_works_is_not_lost(void **state)
{
	ntmm__thread_t t;
	simple_t s;
	simple_init(&s);
	s.use_hold = true; /* the body is "working" (blocked on hold) */
	start_ok(&t, attr_of("busy", 8, -1), &s);
	ntmm__thread_wake(&t);
	ntmm__thread_wake(&t); /* two wakes during one piece of work: one wake-up */
	ntmm__gate_open(&s.hold);
	assert_true(ack_wait(&s.ack, 1));
	ntmm__thread_wake(&t);
	assert_true(ack_wait(&s.ack, 2));
	assert_int_equal(ntmm__thread_stop(&t), 0);
	assert_int_equal(atomic_load(&t.wakeups), 2);
}

static void wait_timeout_returns_true_without_a_wakeup(void **state)
{
	ntmm__thread_t t;
	simple_t s;
	simple_init(&s);
	s.timeout_ns = 1000000; /* 1 ms */
	start_ok(&t, attr_of("timeout", 8, -1), &s);
	/* the body keeps timing out; a wake still gets through */
	ntmm__thread_wake(&t);
	assert_true(ack_wait(&s.ack, 1));
	assert_int_equal(ntmm__thread_stop(&t), 0);
	assert_int_equal(atomic_load(&t.wakeups), 1);
	assert_int_equal(atomic_load_explicit(&s.exited, memory_order_acquire), 1);
}

/*
 * Randomized producer/consumer: producers post work and wake; bodies take
 * a snapshot, work a random while (bounded spin, yield or short sleep,
 * during which more wakes arrive), then acknowledge the snapshot. A lost
 * wake-up leaves an acknowledgement behind the posted count forever.
 */
typedef struct pc {
	ntmm__thread_t t;
	_Atomic uint64_t posted;
	ack_t done; /* count = posted value the body has consumed */
	uint64_t seed;
	uint64_t wakes_sent;
	long rounds;
	bool stuck;
} pc_t;

static void pc_body(ntmm__thread_t *self, void *arg)
{
	pc_t *p = arg;
	uint64_t seed = p->seed ^ 0x9e3779b97f4a7c15ULL;
	while (ntmm__thread_wait(self, -1)) {
		/* acquire: pairs with the producer's release increment */
		uint64_t snap = atomic_load_explicit(&p->posted, memory_order_acquire);
		switch (test_rand(&seed) % 4) {
		case 0:
			break;
		case 1:
			for (unsigned i = (unsigned)(test_rand(&seed) % 2000); i > 0; i--)
				__asm__ __volatile__("" ::: "memory");
			break;
		case 2:
			sched_yield();
			break;
		default: {
			struct timespec ts = {0, (long)(test_rand(&seed) % 20000)};
			nanosleep(&ts, NULL);
		}
		}
		ack_bump(&p->done, snap);
	}
}

static void *pc_producer(void *arg)
{
	pc_t *p = arg;
	uint64_t seed = p->seed;
	for (long r = 0; r < p->rounds; r++) {
		uint64_t k = 1 + test_rand(&seed) % 3;
		/* release: the work "published" with the post is seen by the body */
		uint64_t now = atomic_fetch_add_explicit(&p->posted, k, memory_order_release) + k;
		switch (test_rand(&seed) % 5) {
		case 0:
			ntmm__thread_wake(&p->t);
			break;
		case 1:
			ntmm__thread_wake(&p->t);
			ntmm__thread_wake(&p->t);
			p->wakes_sent++;
			break;
		case 2:
			sched_yield();
			ntmm__thread_wake(&p->t);
			break;
		case 3:
			ntmm__thread_wake(&p->t);
			if (!ack_wait(&p->done, now)) {
				p->stuck = true;
				return NULL;
			}
			break;
		default:
			for (unsigned i = (unsigned)(test_rand(&seed) % 500); i > 0; i--)
				__asm__ __volatile__("" ::: "memory");
			ntmm__thread_wake(&p->t);
		}
		p->wakes_sent++;
	}
	if (!ack_wait(&p->done, atomic_load_explicit(&p->posted, memory_order_relaxed)))
		p->stuck = true;
	return NULL;
}

static void run_pc(const int *prios, int n, long rounds)
{
	pc_t *p = calloc((size_t)n, sizeof(*p));
	assert_non_null(p);
	for (int i = 0; i < n; i++) {
		ack_init(&p[i].done);
		p[i].seed = 0x1234567ULL * (uint64_t)(i + 1);
		p[i].rounds = rounds;
		char name[16];
		snprintf(name, sizeof(name), "pc%d-p%d", i, prios[i]);
		ntmm__thread_attr_t a = attr_of(name, prios[i], -1);
		assert_int_equal(ntmm__thread_start(&p[i].t, &a, pc_body, &p[i]), 0);
	}
	run_threads(n, pc_producer, p, sizeof(*p));
	for (int i = 0; i < n; i++) {
		assert_int_equal(ntmm__thread_stop(&p[i].t), 0);
		assert_false(p[i].stuck);
		uint64_t posted = atomic_load(&p[i].posted);
		assert_int_equal(atomic_load(&p[i].done.count), posted);
		uint64_t w = atomic_load(&p[i].t.wakeups);
		assert_true(w >= 1 && w <= p[i].wakes_sent);
	}
	free(p);
}

static void no_wakeup_is_lost_in_randomized_cycles(void **state)
{
	int prios[] = {8, 1, 12};
	run_pc(prios, 3, scaled(100000));
}

/* Several SCHED_FIFO threads (more threads than cores) driven hard: their
   bodies block between wake-ups, so the machine keeps running. */
static void fifo_threads_block_and_do_not_freeze_the_machine(void **state)
{
	int prios[] = {16, 23, 31, 17};
	run_pc(prios, 4, scaled(100000));
}

/* ------------------------------------------------------------ policies */

static int kernel_policy(pid_t tid)
{
	int p = sched_getscheduler(tid);
	assert_true(p >= 0);
	return p & ~SCHED_RESET_ON_FORK;
}

static int kernel_nice(pid_t tid)
{
	errno = 0;
	int n = getpriority(PRIO_PROCESS, (id_t)tid);
	assert_int_equal(errno, 0);
	return n;
}

static void priority_0_gets_sched_idle(void **state)
{
	ntmm__thread_t t;
	simple_t s;
	simple_init(&s);
	start_ok(&t, attr_of("idle", 0, -1), &s);
	assert_int_equal(t.policy, NTMM__SCHED_IDLE);
	assert_false(t.degraded);
	assert_int_equal(kernel_policy(t.tid_os), SCHED_IDLE);
	assert_int_equal(s.sched_at_start, SCHED_IDLE);
	char buf[32];
	assert_string_equal(ntmm__thread_policy_str(&t, buf, sizeof(buf)), "SCHED_IDLE");
	/* an idle-class thread still wakes */
	ntmm__thread_wake(&t);
	assert_true(ack_wait(&s.ack, 1));
	assert_int_equal(ntmm__thread_stop(&t), 0);
}

static void priority_23_gets_fifo_8_or_degrades_with_a_reason(void **state)
{
	ntmm__thread_t t;
	simple_t s;
	simple_init(&s);
	start_ok(&t, attr_of("fifo23", 23, -1), &s);
	char buf[32];
	ntmm__thread_policy_str(&t, buf, sizeof(buf));
	if (kernel_policy(t.tid_os) == SCHED_FIFO) {
		struct sched_param sp;
		assert_int_equal(sched_getparam(t.tid_os, &sp), 0);
		assert_int_equal(sp.sched_priority, 8);
		assert_int_equal(t.policy, NTMM__SCHED_FIFO);
		assert_int_equal(t.rt_priority, 8);
		assert_false(t.degraded);
		assert_string_equal(buf, "SCHED_FIFO/8");
	} else {
		print_message("machine refused SCHED_FIFO: %s\n", t.degraded_reason);
		assert_int_equal(kernel_policy(t.tid_os), SCHED_OTHER);
		assert_int_equal(t.policy, NTMM__SCHED_OTHER);
		assert_true(t.degraded);
		assert_non_null(strstr(t.degraded_reason, "SCHED_FIFO"));
		assert_int_equal(kernel_nice(t.tid_os), t.nice);
	}
	assert_int_equal(s.sched_at_start, kernel_policy(t.tid_os));
	ntmm__thread_wake(&t);
	assert_true(ack_wait(&s.ack, 1));
	assert_int_equal(ntmm__thread_stop(&t), 0);
}

static void priorities_1_to_15_get_sched_other_with_nice(void **state)
{
	struct {
		int prio, nice;
	} cases[] = {{1, 7}, {4, 4}, {8, 0}, {12, -4}, {15, -7}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ntmm__thread_t t;
		simple_t s;
		simple_init(&s);
		start_ok(&t, attr_of("other", cases[i].prio, -1), &s);
		assert_int_equal(t.policy, NTMM__SCHED_OTHER);
		assert_int_equal(kernel_policy(t.tid_os), SCHED_OTHER);
		assert_int_equal(kernel_nice(t.tid_os), t.nice);
		if (t.degraded) /* a negative nice refused: nice 0 and a reason */
			assert_true(cases[i].nice < 0 && t.nice == 0 &&
			            strstr(t.degraded_reason, "nice") != NULL);
		else
			assert_int_equal(t.nice, cases[i].nice);
		assert_int_equal(t.rt_priority, 0);
		assert_int_equal(ntmm__thread_stop(&t), 0);
	}
}

/* A FIFO creator's policy is not inherited by a lower-priority thread. */
static void *start_from_fifo_thread(void *arg)
{
	ntmm__thread_t *t = arg;
	struct sched_param sp = {.sched_priority = 1};
	if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) != 0)
		return NULL; /* machine refuses FIFO: nothing to check */
	simple_t s;
	simple_init(&s);
	ntmm__thread_attr_t a = attr_of("child", 8, -1);
	WORKER_CHECK(ntmm__thread_start(t, &a, simple_body, &s) == 0);
	WORKER_CHECK((sched_getscheduler(t->tid_os) & ~SCHED_RESET_ON_FORK) == SCHED_OTHER);
	WORKER_CHECK(t->policy == NTMM__SCHED_OTHER && t->nice == 0);
	WORKER_CHECK(ntmm__thread_stop(t) == 0);
	return NULL;
}

static void creator_policy_is_not_inherited(void **state)
{
	ntmm__thread_t t;
	memset(&t, 0, sizeof(t));
	atomic_store(&test_failures, 0);
	run_threads(1, start_from_fifo_thread, &t, sizeof(t));
	assert_int_equal(atomic_load(&test_failures), 0);
}

/* ------------------------------------------------------------ pinning */

static void pinning_sets_the_affinity(void **state)
{
	cpu_set_t allowed;
	assert_int_equal(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
	int tested = 0;
	for (int cpu = 0; cpu < 2; cpu++) {
		if (!CPU_ISSET(cpu, &allowed))
			continue;
		ntmm__thread_t t;
		simple_t s;
		simple_init(&s);
		start_ok(&t, attr_of("pinned", 16, cpu), &s);
		assert_false(t.degraded);
		assert_int_equal(t.cpu, cpu);
		assert_int_equal(CPU_COUNT(&s.mask_at_start), 1);
		assert_true(CPU_ISSET(cpu, &s.mask_at_start));
		cpu_set_t m;
		assert_int_equal(pthread_getaffinity_np(t.tid, sizeof(m), &m), 0);
		assert_int_equal(CPU_COUNT(&m), 1);
		assert_true(CPU_ISSET(cpu, &m));
		ntmm__thread_wake(&t);
		assert_true(ack_wait(&s.ack, 1));
		assert_int_equal(ntmm__thread_stop(&t), 0);
		tested++;
	}
	if (tested == 0)
		skip();
	/* the creator's own affinity is untouched */
	cpu_set_t after;
	assert_int_equal(sched_getaffinity(0, sizeof(after), &after), 0);
	assert_true(CPU_EQUAL(&after, &allowed));
}

static void unpinned_thread_keeps_the_process_mask(void **state)
{
	ntmm__thread_t t;
	simple_t s;
	simple_init(&s);
	cpu_set_t allowed;
	assert_int_equal(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
	start_ok(&t, attr_of("free", 8, -1), &s);
	assert_true(CPU_EQUAL(&s.mask_at_start, &allowed));
	assert_int_equal(ntmm__thread_stop(&t), 0);
}

/* ------------------------------------------------------------ degradation */

/*
 * Child mode (the test re-executes itself): set this thread's nice to
 * `start_nice` (new threads inherit it), drop CAP_SYS_NICE from its
 * capability sets (new threads inherit them too), set RLIMIT_RTPRIO and
 * RLIMIT_NICE to 0, start a priority-23 thread, wake it once and print what
 * it obtained. Without the capability a thread may still raise its nice
 * value, so a start_nice of -20 lets the nice -8 fallback succeed.
 */
static int degraded_child(int start_nice)
{
	if (setpriority(PRIO_PROCESS, 0, start_nice) != 0)
		return 9;
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) != 0)
		return 10;
	unsigned bit = 1u << (CAP_SYS_NICE % 32);
	d[CAP_SYS_NICE / 32].effective &= ~bit;
	d[CAP_SYS_NICE / 32].permitted &= ~bit;
	d[CAP_SYS_NICE / 32].inheritable &= ~bit;
	if (syscall(SYS_capset, &h, d) != 0)
		return 11;
	struct rlimit zero = {0, 0};
	if (setrlimit(RLIMIT_RTPRIO, &zero) != 0 || setrlimit(RLIMIT_NICE, &zero) != 0)
		return 12;
	/* the restriction is real: this thread itself can get neither FIFO
	   nor a lower nice now */
	struct sched_param sp = {.sched_priority = 1};
	if (sched_setscheduler(0, SCHED_FIFO, &sp) == 0 ||
	    (start_nice > -20 && setpriority(PRIO_PROCESS, 0, start_nice - 1) == 0))
		return 13;

	ntmm__thread_t t;
	simple_t s;
	memset(&t, 0, sizeof(t));
	simple_init(&s);
	ntmm__thread_attr_t a = attr_of("degraded", 23, -1);
	if (ntmm__thread_start(&t, &a, simple_body, &s) != 0)
		return 14;
	ntmm__thread_wake(&t);
	int woke = ack_wait(&s.ack, 1);
	int sched = sched_getscheduler(t.tid_os) & ~SCHED_RESET_ON_FORK;
	errno = 0;
	int kn = getpriority(PRIO_PROCESS, (id_t)t.tid_os);
	if (ntmm__thread_stop(&t) != 0)
		return 15;
	printf("policy=%d sched=%d nice=%d knice=%d degraded=%d woke=%d reason=%s\n", t.policy,
	       sched, t.nice, kn, (int)t.degraded, woke, t.degraded_reason);
	fflush(stdout);
	return 0;
}

typedef struct child_report {
	int policy, sched, nice, knice, degraded, woke;
	char reason[128];
} child_report_t;

static void run_degraded_child(int start_nice, child_report_t *out)
{
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	char lim[16];
	snprintf(lim, sizeof(lim), "%d", start_nice);
	char *argv[] = {"test_thread", "--degraded-child", lim, NULL};
	pid_t pid;
	assert_int_equal(posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	char buf[512];
	size_t len = 0;
	ssize_t r;
	while (len < sizeof(buf) - 1 && (r = read(fds[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)r;
	buf[len] = '\0';
	close(fds[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("child failed: status 0x%x, output: %s", status, buf);
	memset(out, 0, sizeof(*out));
	assert_int_equal(sscanf(buf,
	                        "policy=%d sched=%d nice=%d knice=%d degraded=%d woke=%d "
	                        "reason=%127[^\n]",
	                        &out->policy, &out->sched, &out->nice, &out->knice, &out->degraded,
	                        &out->woke, out->reason),
	                 7);
}

static void fifo_refused_falls_back_to_nice_0(void **state)
{
	child_report_t c;
	run_degraded_child(0, &c); /* from nice 0: no negative nice allowed */
	assert_int_equal(c.policy, NTMM__SCHED_OTHER);
	assert_int_equal(c.sched, SCHED_OTHER);
	assert_int_equal(c.degraded, 1);
	assert_int_equal(c.woke, 1); /* the degraded thread still runs */
	assert_int_equal(c.nice, 0);
	assert_int_equal(c.knice, 0);
	assert_non_null(strstr(c.reason, "SCHED_FIFO/8: Operation not permitted"));
	assert_non_null(strstr(c.reason, "nice -8"));
}

static void fifo_refused_falls_back_to_negative_nice(void **state)
{
	child_report_t c;
	run_degraded_child(-20, &c); /* raising nice from -20 to -8 is allowed */
	assert_int_equal(c.policy, NTMM__SCHED_OTHER);
	assert_int_equal(c.sched, SCHED_OTHER);
	assert_int_equal(c.degraded, 1);
	assert_int_equal(c.woke, 1);
	assert_int_equal(c.nice, -8);
	assert_int_equal(c.knice, -8);
	assert_non_null(strstr(c.reason, "SCHED_FIFO/8"));
	assert_null(strstr(c.reason, "nice"));
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--degraded-child") == 0)
		return degraded_child(atoi(argv[2]));
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(starts_runs_and_stops),
	    cmocka_unit_test(long_names_are_truncated_to_15_chars),
	    cmocka_unit_test(stop_of_never_started_thread_is_einval),
	    cmocka_unit_test(second_stop_is_einval),
	    cmocka_unit_test(start_of_running_thread_is_einval),
	    cmocka_unit_test(bad_priorities_are_einval),
	    cmocka_unit_test(bad_cpus_are_einval),
	    cmocka_unit_test(each_wake_wakes_the_body_once),
	    cmocka_unit_test(wake_while_the_body_works_is_not_lost),
	    cmocka_unit_test(wait_timeout_returns_true_without_a_wakeup),
	    cmocka_unit_test(no_wakeup_is_lost_in_randomized_cycles),
	    cmocka_unit_test(fifo_threads_block_and_do_not_freeze_the_machine),
	    cmocka_unit_test(priority_0_gets_sched_idle),
	    cmocka_unit_test(priority_23_gets_fifo_8_or_degrades_with_a_reason),
	    cmocka_unit_test(priorities_1_to_15_get_sched_other_with_nice),
	    cmocka_unit_test(creator_policy_is_not_inherited),
	    cmocka_unit_test(pinning_sets_the_affinity),
	    cmocka_unit_test(unpinned_thread_keeps_the_process_mask),
	    cmocka_unit_test(fifo_refused_falls_back_to_nice_0),
	    cmocka_unit_test(fifo_refused_falls_back_to_negative_nice),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
