/*
 * The system-thread framework (see thread.h): validation of the requested
 * priority and CPU, a trampoline in which the new thread applies its own
 * scheduling policy and CPU binding and records what it really got, and the
 * wake/wait/stop protocol on an event count.
 *
 * The thread applies its policy itself (rather than the creator through
 * pthread attributes) so that a refusal degrades instead of failing
 * pthread_create, and so that per-thread nice values (setpriority on the
 * kernel tid) land on the right task. The creator waits on the `started`
 * gate, so when ntmm__thread_start returns the `obtained` fields are final.
 *
 * CPU numbers are OS indexes validated against an hwloc topology of this
 * machine: the PU must exist and be in the allowed cpuset (cgroup/cpuset
 * restrictions), and the binding is done with hwloc_set_cpubind.
 */
#include "threads/thread.h"
#include "engine.h"

#include <errno.h>
#include <hwloc.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { STATE_UNSTARTED = 0, STATE_RUNNING = 1, STATE_STOPPED = 2 };

/* What the creator hands to the new thread; lives on the creator's stack,
   which is valid until the `started` gate opens. */
typedef struct thread_boot {
	ntmm__thread_t *t;
	hwloc_topology_t topo; /* NULL when cpu_requested < 0 */
	hwloc_const_cpuset_t pu_set;
} thread_boot_t;

static pid_t current_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* Appends a "; "-separated note to the degradation reason. */
static void degrade(ntmm__thread_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void degrade(ntmm__thread_t *t, const char *fmt, ...)
{
	size_t len = strlen(t->degraded_reason);
	size_t cap = sizeof(t->degraded_reason);
	t->degraded = true;
	if (len > 0 && len + 2 < cap) {
		memcpy(t->degraded_reason + len, "; ", 3);
		len += 2;
	}
	if (len + 1 >= cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->degraded_reason + len, cap - len, fmt, ap);
	va_end(ap);
}

static int clamp_nice(int n)
{
	return n < -20 ? -20 : n > 19 ? 19 : n;
}

/* Sets a policy on the calling thread. Every path sets one explicitly: the
   creator's policy and nice are inherited and may be anything. Returns 0
   or an errno. */
static int set_policy(int policy, int rt_priority)
{
	struct sched_param sp = {.sched_priority = rt_priority};
	return pthread_setschedparam(pthread_self(), policy, &sp);
}

/* Sets the calling thread's nice to `want`, falling back to 0; records the
   value the kernel reports afterwards. */
static void set_nice(ntmm__thread_t *t, int want)
{
	if (setpriority(PRIO_PROCESS, (id_t)t->tid_os, want) != 0) {
		degrade(t, "nice %d: %s", want, strerror(errno));
		if (want != 0 && setpriority(PRIO_PROCESS, (id_t)t->tid_os, 0) != 0)
			degrade(t, "nice 0: %s", strerror(errno));
	}
	errno = 0;
	int got = getpriority(PRIO_PROCESS, (id_t)t->tid_os);
	t->nice = errno == 0 ? got : 0;
}

/* Applies the NT priority → Linux mapping of thread.h to the calling thread. */
static void apply_policy(ntmm__thread_t *t)
{
	int nt = t->nt_priority;
	int r;

	t->rt_priority = 0;
	t->nice = 0;
	if (nt >= 16) {
		r = set_policy(SCHED_FIFO, nt - 15);
		if (r == 0) {
			t->policy = NTMM__SCHED_FIFO;
			t->rt_priority = nt - 15;
			return;
		}
		degrade(t, "SCHED_FIFO/%d: %s", nt - 15, strerror(r));
		t->policy = NTMM__SCHED_OTHER;
		if ((r = set_policy(SCHED_OTHER, 0)) != 0)
			degrade(t, "SCHED_OTHER: %s", strerror(r));
		set_nice(t, clamp_nice(-(nt - 15)));
	} else if (nt >= 1) {
		t->policy = NTMM__SCHED_OTHER;
		if ((r = set_policy(SCHED_OTHER, 0)) != 0)
			degrade(t, "SCHED_OTHER: %s", strerror(r));
		set_nice(t, clamp_nice(8 - nt));
	} else {
		r = set_policy(SCHED_IDLE, 0);
		if (r == 0) {
			t->policy = NTMM__SCHED_IDLE;
			return;
		}
		degrade(t, "SCHED_IDLE: %s", strerror(r));
		t->policy = NTMM__SCHED_OTHER;
		set_nice(t, 19);
	}
}

static void apply_pin(ntmm__thread_t *t, const thread_boot_t *b)
{
	t->cpu = -1;
	if (t->cpu_requested < 0)
		return;
	if (hwloc_set_cpubind(b->topo, b->pu_set, HWLOC_CPUBIND_THREAD) != 0) {
		degrade(t, "pin cpu %d: %s", t->cpu_requested, strerror(errno));
		return;
	}
	t->cpu = t->cpu_requested;
}

static void *trampoline(void *arg)
{
	thread_boot_t *b = arg;
	ntmm__thread_t *t = b->t;

	t->tid_os = current_tid();
	pthread_setname_np(pthread_self(), t->name);
	apply_policy(t);
	apply_pin(t, b);
	/* release (inside gate_open): the obtained fields above are visible to
	   the creator once its gate_wait returns; b is not touched after this */
	ntmm__gate_open(&t->started);
	t->fn(t, t->arg);
	return NULL;
}

/* Loads a topology of this machine unless the caller gave one. */
static int topology_for(const ntmm__thread_attr_t *attr, hwloc_topology_t *topo, bool *owned)
{
	*owned = false;
	if (attr->topology && hwloc_topology_is_thissystem(attr->topology)) {
		*topo = attr->topology;
		return 0;
	}
	if (hwloc_topology_init(topo) != 0)
		return ntmm__error(NTMM_ENOMEM, "hwloc_topology_init: %s", strerror(errno));
	if (hwloc_topology_load(*topo) != 0) {
		int e = errno;
		hwloc_topology_destroy(*topo);
		return ntmm__error(NTMM_ENOMEM, "hwloc_topology_load: %s", strerror(e));
	}
	*owned = true;
	return 0;
}

int ntmm__thread_start(ntmm__thread_t *t, const ntmm__thread_attr_t *attr, ntmm__thread_fn fn,
                       void *arg)
{
	if (!t || !attr || !fn)
		return ntmm__error(NTMM_EINVAL, "thread start: %s is NULL",
		                   !t      ? "thread"
		                   : !attr ? "attr"
		                           : "fn");
	/* relaxed: starting and stopping one thread object are serialized by
	   its owner; the CAS in stop orders the stop side */
	if (atomic_load_explicit(&t->state, memory_order_relaxed) != STATE_UNSTARTED)
		return ntmm__error(NTMM_EINVAL, "thread %.15s: already started", t->name);
	if (attr->nt_priority < 0 || attr->nt_priority > 31)
		return ntmm__error(NTMM_EINVAL, "thread %.15s: NT priority %d outside 0..31",
		                   attr->name ? attr->name : "?", attr->nt_priority);
	if (attr->cpu < -1)
		return ntmm__error(NTMM_EINVAL, "thread %.15s: cpu %d (use -1 for no pinning)",
		                   attr->name ? attr->name : "?", attr->cpu);

	thread_boot_t boot = {.t = t};
	bool owned = false;
	if (attr->cpu >= 0) {
		int err = topology_for(attr, &boot.topo, &owned);
		if (err)
			return err;
		hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(boot.topo, (unsigned)attr->cpu);
		if (!pu || !hwloc_bitmap_isset(hwloc_topology_get_allowed_cpuset(boot.topo),
		                               (unsigned)attr->cpu)) {
			if (owned)
				hwloc_topology_destroy(boot.topo);
			return ntmm__error(
			    NTMM_EINVAL,
			    "thread %.15s: cpu %d is not a CPU this process may run on",
			    attr->name ? attr->name : "?", attr->cpu);
		}
		boot.pu_set = pu->cpuset;
	}

	memset(t->name, 0, sizeof(t->name));
	snprintf(t->name, sizeof(t->name), "%s", attr->name && *attr->name ? attr->name : "ntmm");
	t->nt_priority = attr->nt_priority;
	t->cpu_requested = attr->cpu;
	t->fn = fn;
	t->arg = arg;
	ntmm__event_init(&t->wake);
	t->wake_key = ntmm__event_prepare(&t->wake);
	atomic_store_explicit(&t->stop, 0, memory_order_relaxed);
	atomic_store_explicit(&t->wakeups, 0, memory_order_relaxed);
	ntmm__gate_init(&t->started, false);
	t->tid_os = 0;
	t->policy = 0;
	t->rt_priority = 0;
	t->nice = 0;
	t->cpu = -1;
	t->degraded = false;
	t->degraded_reason[0] = '\0';

	/* pthread_create publishes the fields above to the new thread */
	int r = pthread_create(&t->tid, NULL, trampoline, &boot);
	if (r != 0) {
		if (owned)
			hwloc_topology_destroy(boot.topo);
		return ntmm__error(NTMM_ENOMEM, "thread %.15s: pthread_create: %s", t->name,
		                   strerror(r));
	}
	ntmm__gate_wait(&t->started); /* acquire: pairs with the trampoline's gate_open */
	if (owned)
		hwloc_topology_destroy(boot.topo);
	atomic_store_explicit(&t->state, STATE_RUNNING, memory_order_relaxed);
	return 0;
}

int ntmm__thread_stop(ntmm__thread_t *t)
{
	if (!t)
		return ntmm__error(NTMM_EINVAL, "thread stop: thread is NULL");
	int running = STATE_RUNNING;
	int state = atomic_load_explicit(&t->state, memory_order_relaxed);
	if (state == STATE_RUNNING && pthread_equal(pthread_self(), t->tid))
		return ntmm__error(NTMM_EINVAL, "thread %.15s: cannot stop itself", t->name);
	/* acq_rel: one caller wins the stop; concurrent stops get EINVAL */
	if (!atomic_compare_exchange_strong_explicit(&t->state, &running, STATE_STOPPED,
	                                             memory_order_acq_rel, memory_order_relaxed))
		return ntmm__error(NTMM_EINVAL, "thread %.15s: %s", t->name,
		                   running == STATE_UNSTARTED ? "never started"
		                                              : "already stopped");
	/* release: pairs with the acquire in ntmm__thread_should_stop; the
	   signal below (seq_cst) comes after it, so a body woken by it sees it */
	atomic_store_explicit(&t->stop, 1, memory_order_release);
	ntmm__event_signal(&t->wake);
	pthread_join(t->tid, NULL);
	return 0;
}

void ntmm__thread_wake(ntmm__thread_t *t)
{
	ntmm__event_signal(&t->wake);
}

/* Consumes the pending wake-ups (all signals up to now count as one). */
static void consume(ntmm__thread_t *t, uint32_t seq)
{
	t->wake_key = seq;
	atomic_fetch_add_explicit(&t->wakeups, 1, memory_order_relaxed);
}

bool ntmm__thread_wait(ntmm__thread_t *t, int64_t timeout_ns)
{
	if (ntmm__thread_should_stop(t))
		return false;
	/* Any signal since wake_key was taken (while the body worked) bumped
	   seq: return at once. prepare is an acquire load, pairing with the
	   signaller's increment, so the work it published is visible. */
	uint32_t seq = ntmm__event_prepare(&t->wake);
	if (seq == t->wake_key) {
		if (!ntmm__event_wait(&t->wake, t->wake_key, timeout_ns))
			return !ntmm__thread_should_stop(t); /* timed out */
		seq = ntmm__event_prepare(&t->wake);
	}
	if (ntmm__thread_should_stop(t))
		return false;
	consume(t, seq);
	return true;
}

const char *ntmm__thread_policy_str(const ntmm__thread_t *t, char *buf, size_t n)
{
	switch (t->policy) {
	case NTMM__SCHED_FIFO:
		snprintf(buf, n, "SCHED_FIFO/%d", t->rt_priority);
		break;
	case NTMM__SCHED_OTHER:
		snprintf(buf, n, "SCHED_OTHER/nice%d", t->nice);
		break;
	case NTMM__SCHED_IDLE:
		snprintf(buf, n, "SCHED_IDLE");
		break;
	default:
		snprintf(buf, n, "none");
		break;
	}
	return buf;
}
