/*
 * Futex-based waiting for the engine: an event count for waking system
 * threads without lost wake-ups, and a gate (a one-word notification event)
 * for collided-fault waiters and in-flight pages.
 *
 * Why our own: liburcu offers no blocking primitive with timeouts, and a
 * pthread condvar needs a mutex on the signalling side — the signallers here
 * are fault paths and page writers that must not take a lock to wake a
 * thread. Both objects are one or two 32-bit words, usable in shared memory.
 */
#ifndef NTMM_SYNC_EVENT_H
#define NTMM_SYNC_EVENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Event count. Protocol (no lost wake-up):
 *     uint32_t key = ntmm__event_prepare(&ev);
 *     if (work_is_available()) ... else ntmm__event_wait(&ev, key, timeout);
 * A signal between prepare and wait changes seq, so the wait returns at once.
 *   seq     — bumped by every signal (release; pairs with prepare's acquire)
 *   waiters — threads inside ntmm__event_wait; signal skips the syscall at 0
 */
typedef struct ntmm__event {
	_Atomic uint32_t seq;
	_Atomic uint32_t waiters;
} ntmm__event_t;

void ntmm__event_init(ntmm__event_t *ev);
uint32_t ntmm__event_prepare(ntmm__event_t *ev);
/* Sleeps until a signal after `key` was taken, or timeout_ns passes
   (timeout_ns < 0: no timeout). Returns true if signalled, false on timeout. */
bool ntmm__event_wait(ntmm__event_t *ev, uint32_t key, int64_t timeout_ns);
/* Wakes every waiter (and makes the next wait of a prepared key return). */
void ntmm__event_signal(ntmm__event_t *ev);

/*
 * Counted waiting, for signallers that skip an event nobody waits on (the
 * signal's seq increment is a locked add on a line every signaller shares):
 *     uint32_t key = ntmm__event_enter(&ev);   counted as a waiter first
 *     if (done()) ntmm__event_leave(&ev);
 *     else ntmm__event_wait_entered(&ev, key, timeout);
 * and the signaller: make done() true with a seq_cst atomic, then
 * ntmm__event_signal_waiters(&ev). Dekker pairing: either the signaller
 * sees the waiter counted, or the waiter sees done().
 */
uint32_t ntmm__event_enter(ntmm__event_t *ev);
void ntmm__event_leave(ntmm__event_t *ev);
/* As ntmm__event_wait, after ntmm__event_enter (and leaves). */
bool ntmm__event_wait_entered(ntmm__event_t *ev, uint32_t key, int64_t timeout_ns);
static inline void ntmm__event_signal_waiters(ntmm__event_t *ev)
{
	if (atomic_load_explicit(&ev->waiters, memory_order_seq_cst) != 0)
		ntmm__event_signal(ev);
}

/*
 * Gate: open or closed. Waiters on a closed gate sleep until it opens.
 *   state — 0 closed, 1 open, 2 closed with sleepers (signal must futex-wake)
 */
typedef struct ntmm__gate {
	_Atomic uint32_t state;
} ntmm__gate_t;

#define NTMM__GATE_CLOSED 0u
#define NTMM__GATE_OPEN   1u

static inline void ntmm__gate_init(ntmm__gate_t *g, bool open)
{
	atomic_store_explicit(&g->state, open ? NTMM__GATE_OPEN : NTMM__GATE_CLOSED,
	                      memory_order_relaxed);
}
static inline bool ntmm__gate_is_open(ntmm__gate_t *g)
{
	/* acquire: pairs with the release in ntmm__gate_open */
	return atomic_load_explicit(&g->state, memory_order_acquire) == NTMM__GATE_OPEN;
}
/* Opens the gate and wakes all waiters; what the opener wrote before is
   visible to every thread that sees it open. */
void ntmm__gate_open(ntmm__gate_t *g);
/* Closes an open gate (no effect on a closed one). */
void ntmm__gate_close(ntmm__gate_t *g);
/* Spins briefly, then sleeps until the gate is open. */
void ntmm__gate_wait(ntmm__gate_t *g);

/* Raw futex helpers (private futexes), for the pushlock's wait blocks. */
int ntmm__futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns);
int ntmm__futex_wake(_Atomic uint32_t *word, int count);

#endif
