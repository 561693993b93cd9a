/*
 * Futex-backed event counts and gates (see event.h). Sleeping is always in
 * the kernel futex, never a spin: the system threads may run SCHED_FIFO and
 * a spinning FIFO thread on a 2-core machine starves everything else.
 */
#include "sync/event.h"
#include "sync/backoff.h"
#include "sync/clock.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int ntmm__futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns)
{
	struct timespec ts, *tsp = NULL;
	if (timeout_ns >= 0) {
		ts.tv_sec = timeout_ns / 1000000000;
		ts.tv_nsec = timeout_ns % 1000000000;
		tsp = &ts;
	}
	long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, tsp, NULL, 0);
	return r == 0 ? 0 : -errno;
}

int ntmm__futex_wake(_Atomic uint32_t *word, int count)
{
	return (int)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
}

void ntmm__event_init(ntmm__event_t *ev)
{
	atomic_store_explicit(&ev->seq, 0, memory_order_relaxed);
	atomic_store_explicit(&ev->waiters, 0, memory_order_relaxed);
}

uint32_t ntmm__event_prepare(ntmm__event_t *ev)
{
	/* acquire: pairs with the release increment in signal, so state the
	   signaller published before signalling is seen by the caller's check */
	return atomic_load_explicit(&ev->seq, memory_order_acquire);
}

bool ntmm__event_wait(ntmm__event_t *ev, uint32_t key, int64_t timeout_ns)
{
	/* seq_cst on the waiter count and the seq re-check: Dekker pairing with
	   signal's seq increment followed by its waiters load. */
	atomic_fetch_add_explicit(&ev->waiters, 1, memory_order_seq_cst);
	return ntmm__event_wait_entered(ev, key, timeout_ns);
}

uint32_t ntmm__event_enter(ntmm__event_t *ev)
{
	/* seq_cst: the count is visible before the caller's check of its
	   condition (Dekker with the signaller's change, then waiters load) */
	atomic_fetch_add_explicit(&ev->waiters, 1, memory_order_seq_cst);
	return atomic_load_explicit(&ev->seq, memory_order_seq_cst);
}

void ntmm__event_leave(ntmm__event_t *ev)
{
	atomic_fetch_sub_explicit(&ev->waiters, 1, memory_order_relaxed);
}

bool ntmm__event_wait_entered(ntmm__event_t *ev, uint32_t key, int64_t timeout_ns)
{
	int64_t deadline = timeout_ns >= 0 ? (int64_t)ntmm__now_ns() + timeout_ns : -1;
	bool signalled = true;
	while (atomic_load_explicit(&ev->seq, memory_order_seq_cst) == key) {
		int64_t left = -1;
		if (deadline >= 0) {
			left = deadline - (int64_t)ntmm__now_ns();
			if (left <= 0) {
				signalled = false;
				break;
			}
		}
		ntmm__futex_wait(&ev->seq, key, left);
	}
	atomic_fetch_sub_explicit(&ev->waiters, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_acquire); /* pairs with signal's release */
	return signalled;
}

void ntmm__event_signal(ntmm__event_t *ev)
{
	atomic_fetch_add_explicit(&ev->seq, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&ev->waiters, memory_order_seq_cst) != 0)
		ntmm__futex_wake(&ev->seq, INT_MAX);
}

#define GATE_SLEEPERS 2u

void ntmm__gate_open(ntmm__gate_t *g)
{
	/* release: what the opener wrote is visible to those who see it open */
	uint32_t old = atomic_exchange_explicit(&g->state, NTMM__GATE_OPEN, memory_order_acq_rel);
	if (old == GATE_SLEEPERS)
		ntmm__futex_wake(&g->state, INT_MAX);
}

void ntmm__gate_close(ntmm__gate_t *g)
{
	uint32_t open = NTMM__GATE_OPEN;
	atomic_compare_exchange_strong_explicit(&g->state, &open, NTMM__GATE_CLOSED,
	                                        memory_order_relaxed, memory_order_relaxed);
}

void ntmm__gate_wait(ntmm__gate_t *g)
{
	ntmm__backoff_t b = NTMM__BACKOFF_INIT;
	while (!ntmm__gate_is_open(g)) {
		if (!ntmm__backoff_spin_bounded(&b)) {
			uint32_t s = atomic_load_explicit(&g->state, memory_order_acquire);
			if (s == NTMM__GATE_OPEN)
				break;
			if (s == NTMM__GATE_CLOSED &&
			    !atomic_compare_exchange_strong_explicit(&g->state, &s, GATE_SLEEPERS,
			                                             memory_order_acquire,
			                                             memory_order_acquire))
				continue;
			ntmm__futex_wait(&g->state, GATE_SLEEPERS, -1);
		}
	}
}
