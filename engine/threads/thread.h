/*
 * System-thread framework: a named thread with an NT priority (0–31), an
 * optional CPU pin, a wake event and a stop protocol. The six system
 * threads (threads/systhreads.c) are built on it.
 *
 * NT priority → Linux scheduling (DESIGN.md §5):
 *   16..31 → SCHED_FIFO, rt priority (nt − 15), where permitted;
 *            else SCHED_OTHER with nice −(nt − 15) clamped, else nice 0;
 *   1..15  → SCHED_OTHER with nice (8 − nt) clamped to [−20, 19]
 *            (8 = normal → nice 0; lower NT priorities get positive nice);
 *   0      → SCHED_IDLE.
 * What was actually obtained (policy, rt priority / nice, pinned CPU) and,
 * when degraded, the reason (errno text) are recorded in the thread object.
 * A thread that cannot get its policy still runs.
 *
 * A thread body must block when idle — on ntmm__thread_wait — never spin:
 * on a 2-core machine a spinning SCHED_FIFO thread freezes the machine.
 */
#ifndef NTMM_THREADS_THREAD_H
#define NTMM_THREADS_THREAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sync/event.h"

struct hwloc_topology; /* hwloc_topology_t, see <hwloc.h> */

typedef struct ntmm__thread ntmm__thread_t;
typedef void (*ntmm__thread_fn)(ntmm__thread_t *self, void *arg);

enum ntmm__sched_policy {
	NTMM__SCHED_FIFO = 1,  /* SCHED_FIFO */
	NTMM__SCHED_OTHER = 2, /* SCHED_OTHER (+ nice) */
	NTMM__SCHED_IDLE = 3,  /* SCHED_IDLE */
};

typedef struct ntmm__thread_attr {
	const char *name;                /* ≤ 15 chars shown by the OS (pthread_setname_np) */
	int nt_priority;                 /* 0..31, else NTMM_EINVAL */
	int cpu;                         /* OS CPU index to pin to; -1 = no pinning; a CPU the
			     process may not run on → NTMM_EINVAL */
	struct hwloc_topology *topology; /* optional, borrowed: a loaded hwloc
			     topology of this machine used to validate and bind
			     `cpu`; NULL (or a synthetic one) = start loads its own */
} ntmm__thread_attr_t;

/*
 * Lifecycle: zeroed/unstarted (state 0) → ntmm__thread_start → running
 * (state 1) → ntmm__thread_stop (state 2 as soon as one caller wins the
 * stop; it sets `stop`, signals the wake event and joins) → stopped. A
 * stopped object is not restarted. Start and stop of one object are the
 * owner's to serialize; wake may come from any thread at any time.
 * Fields above `obtained` are written by start before the thread exists
 * (pthread_create publishes them). Fields below `obtained` are written by
 * the new thread before it opens `started` (release), so they are final
 * when start returns, and read-only afterwards.
 */
struct ntmm__thread {
	char name[16];
	int nt_priority;
	int cpu_requested;
	ntmm__thread_fn fn;
	void *arg;
	pthread_t tid;
	ntmm__event_t wake;       /* signalled by ntmm__thread_wake and stop */
	_Atomic int stop;         /* 1 once stop was requested (release/acquire) */
	_Atomic int state;        /* 0 never started, 1 running, 2 stopped */
	ntmm__gate_t started;     /* opened by the thread once `obtained` is filled */
	_Atomic uint64_t wakeups; /* times the body returned from a wait signalled
				     (written by the thread, relaxed; read by anyone) */
	uint32_t wake_key;        /* wake.seq last consumed by ntmm__thread_wait;
				     owned by the thread itself */

	/* obtained */
	pid_t tid_os;             /* kernel thread id (gettid), for sched_getscheduler */
	int policy;               /* enum ntmm__sched_policy */
	int rt_priority;          /* SCHED_FIFO priority, else 0 */
	int nice;                 /* SCHED_OTHER nice, else 0 */
	int cpu;                  /* CPU pinned to, -1 if none */
	bool degraded;            /* policy or pin is not what was asked */
	char degraded_reason[96]; /* why, e.g. "SCHED_FIFO: Operation not permitted" */
};

/* Validates attr, starts the thread running fn(self, arg) and waits until it
   has applied its policy and pin. Errors: NTMM_EINVAL (priority outside
   0..31, CPU not usable by this process, NULL fn, thread already started),
   NTMM_ENOMEM (pthread_create failed, or no hwloc topology could be
   loaded to check a CPU). */
int ntmm__thread_start(ntmm__thread_t *t, const ntmm__thread_attr_t *attr, ntmm__thread_fn fn,
                       void *arg);
/* Requests stop, wakes the thread and joins it. NTMM_EINVAL if the thread
   was never started, is already stopped (or being stopped by another
   caller), or if called from the thread itself. */
int ntmm__thread_stop(ntmm__thread_t *t);
/* Wakes the thread if it is (or is about to be) in ntmm__thread_wait. */
void ntmm__thread_wake(ntmm__thread_t *t);
/* For the body only (the thread itself): blocks until woken, stop is
   requested or timeout_ns passes (< 0: no timeout). Returns false when the
   thread must stop, true when woken or timed out (`wakeups` tells which).
   Wake-ups that came while the body was working are not lost: the next
   wait returns at once; several of them count as one. */
bool ntmm__thread_wait(ntmm__thread_t *t, int64_t timeout_ns);
static inline bool ntmm__thread_should_stop(ntmm__thread_t *t)
{
	/* acquire: pairs with the release store in ntmm__thread_stop */
	return atomic_load_explicit(&t->stop, memory_order_acquire) != 0;
}
/* "SCHED_FIFO/2", "SCHED_OTHER/nice-5", "SCHED_IDLE" into buf. */
const char *ntmm__thread_policy_str(const ntmm__thread_t *t, char *buf, size_t n);

#endif
