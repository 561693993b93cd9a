/*
 * Cache-aware pushlock: creation, the writer side and the reader slow
 * paths (the reader fast path is inline in cache_pushlock.h).
 *
 * PROTOCOL.  R = a fast-path reader on slot s, X = a writer.
 *   R enter:  CAS slots[s] 0 → 1 (seq_cst); load writer (seq_cst).
 *             writer = 1: leave the slot, take `central` shared (X holds it
 *             exclusive, so R sleeps until X is done).
 *             slot busy: take `central` shared.
 *   R leave:  store slots[s] = 0 (release); compiler barrier;
 *             if writer_sleeping: futex-wake slots[s].
 *   X enter:  take `central` exclusive (other writers and overflow readers
 *             out); store writer = 1 (seq_cst); for each slot, load it
 *             (seq_cst); if held, spin briefly, then (once per acquire)
 *             store writer_sleeping = 1 (seq_cst) and membarrier(PRIVATE_
 *             EXPEDITED), then sleep on the slot's word until it is 0.
 *   X leave:  store writer = 0 (release); release `central`.
 *
 * WHY IT EXCLUDES.  Entering is a Dekker pair: R writes its slot then
 *   reads `writer`; X writes `writer` then reads the slots; all four are
 *   seq_cst, so in their single total order one write precedes the other
 *   side's read: R sees X (and steps back) or X sees R's slot held (and
 *   waits for it). Overflow readers and writers meet in `central`.
 *
 * WHY NO WAKE-UP IS LOST ("leaving").  R's leave is a store then a load
 *   with no fence between (the point of the design: one locked instruction
 *   per read). If R's load of writer_sleeping misses X's store of 1, R's
 *   load ran before the barrier that X's membarrier forced on R's CPU; R's
 *   store precedes its load in program order, so it was drained by that
 *   barrier too, and X — which reads the slot only after membarrier
 *   returns — finds it 0 and does not sleep (or the futex sees 0 and
 *   returns). Otherwise R sees writer_sleeping and wakes X. A thread that
 *   was not running when X called membarrier passes a full barrier when it
 *   is scheduled, which serves the same end. This is liburcu's memb
 *   argument. Without membarrier (old kernel, seccomp) `asymmetric` is
 *   false and R leaves with an exchange (a full fence) instead.
 *
 * WHY IT IS ORDERED (what TSan checks).  X's critical section happens
 *   before a later fast reader's: X's release store of writer = 0 is read
 *   by R's seq_cst (hence acquire) load. R's happens before a later X's:
 *   R's release store of 0 into its slot is read by X's acquire load.
 *   Overflow readers are ordered through `central`.
 *
 * WRITERS ARE NOT STARVED.  Once writer = 1 no reader enters through a
 *   slot (each arriving reader steps back, at most once, to `central`,
 *   which X holds), so X waits only for the readers already inside.
 */
#include "sync/cache_pushlock.h"
#include "engine.h"
#include "sync/backoff.h"

#include <linux/membarrier.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_SLOTS 4096u

static long membarrier_call(int cmd)
{
	return syscall(__NR_membarrier, cmd, 0, 0);
}

/* Registers the process for private expedited membarrier (idempotent,
   process-wide kernel state; liburcu registers too). */
static bool membarrier_ready(void)
{
	long cmds = membarrier_call(MEMBARRIER_CMD_QUERY);
	if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) ||
	    !(cmds & MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED))
		return false;
	return membarrier_call(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
}

int ntmm__cache_pushlock_init(ntmm__cache_pushlock_t *cpl, unsigned nslots)
{
	memset(cpl, 0, sizeof(*cpl));
	if (nslots == 0) {
		long n = sysconf(_SC_NPROCESSORS_CONF);
		nslots = n > 0 ? (unsigned)(n < (long)MAX_SLOTS ? n : (long)MAX_SLOTS) : 1u;
	}
	if (nslots > MAX_SLOTS)
		return ntmm__error(NTMM_EINVAL, "cache pushlock: %u slots (at most %u)", nslots,
		                   MAX_SLOTS);
	ntmm__cache_pushlock_slot_t *s =
	    aligned_alloc(NTMM__CACHE_PUSHLOCK_STRIDE, sizeof(*s) * nslots);
	if (s == NULL)
		return ntmm__error(NTMM_ENOMEM, "cache pushlock: %u slots", nslots);
	memset(s, 0, sizeof(*s) * nslots);
	for (unsigned i = 0; i < nslots; i++)
		atomic_init(&s[i].reader, 0);
	atomic_init(&cpl->writer, 0);
	atomic_init(&cpl->writer_sleeping, 0);
	ntmm__pushlock_init(&cpl->central);
	cpl->asymmetric = membarrier_ready();
	cpl->slots = s;
	cpl->nslots = nslots;
	return 0;
}

void ntmm__cache_pushlock_destroy(ntmm__cache_pushlock_t *cpl)
{
	for (unsigned i = 0; i < cpl->nslots; i++)
		ntmm__assert(atomic_load_explicit(&cpl->slots[i].reader, memory_order_relaxed) ==
		                 0 &&
		             "cache pushlock destroyed while a reader holds it");
	ntmm__assert(!ntmm__pushlock_is_locked(&cpl->central) &&
	             "cache pushlock destroyed while held");
	free(cpl->slots);
	cpl->slots = NULL;
	cpl->nslots = 0;
}

/* ---- readers */

void ntmm__cache_pushlock_leave_slot_slow(ntmm__cache_pushlock_t *cpl, unsigned slot)
{
	/* No membarrier: a full fence on our side instead. seq_cst exchange
	   and load pair with the writer's seq_cst store of writer_sleeping
	   and load of the slot (Dekker); release part as in the fast path. */
	_Atomic uint32_t *r = &cpl->slots[slot].reader;
	atomic_exchange_explicit(r, 0, memory_order_seq_cst);
	if (atomic_load_explicit(&cpl->writer_sleeping, memory_order_seq_cst))
		ntmm__futex_wake(r, 1);
}

unsigned ntmm__cache_pushlock_acquire_shared_slow(ntmm__cache_pushlock_t *cpl)
{
	/* Our slot is busy, or a writer is about: read under `central`
	   (a pushlock: behind a writer, a reader waits). */
	ntmm__pushlock_acquire_shared(&cpl->central);
	return NTMM__CACHE_PUSHLOCK_CENTRAL;
}

bool ntmm__cache_pushlock_try_acquire_shared(ntmm__cache_pushlock_t *cpl, unsigned *slot)
{
	unsigned s = ntmm__cpu_current(cpl->nslots);
	uint32_t free_slot = 0;
	/* seq_cst: as in ntmm__cache_pushlock_acquire_shared */
	if (atomic_compare_exchange_strong_explicit(&cpl->slots[s].reader, &free_slot, 1,
	                                            memory_order_seq_cst, memory_order_relaxed)) {
		if (atomic_load_explicit(&cpl->writer, memory_order_seq_cst) == 0) {
			*slot = s;
			return true;
		}
		ntmm__cache_pushlock_leave_slot(cpl, s);
		return false; /* a writer holds it or is taking it */
	}
	if (!ntmm__pushlock_try_acquire_shared(&cpl->central))
		return false;
	*slot = NTMM__CACHE_PUSHLOCK_CENTRAL;
	return true;
}

/* ---- writers */

static void wait_for_readers(ntmm__cache_pushlock_t *cpl)
{
	bool announced = false, fenced = true;
	for (unsigned i = 0; i < cpl->nslots; i++) {
		_Atomic uint32_t *r = &cpl->slots[i].reader;
		/* seq_cst: the writer's half of the Dekker pair (see top) */
		if (atomic_load_explicit(r, memory_order_seq_cst) == 0)
			continue;
		/* A reader is inside (or stepping back): its section is
		   short, so spin a little before paying for sleep. acquire:
		   pairs with its release store of 0. */
		ntmm__backoff_t b = NTMM__BACKOFF_INIT;
		while (atomic_load_explicit(r, memory_order_acquire) != 0 &&
		       ntmm__backoff_spin_bounded(&b))
			;
		if (atomic_load_explicit(r, memory_order_acquire) == 0)
			continue;
		if (!announced) {
			/* seq_cst store, then membarrier: every reader leaving
			   after this sees writer_sleeping; every reader that left
			   before it has its 0 visible below ("leaving", top). */
			atomic_store_explicit(&cpl->writer_sleeping, 1, memory_order_seq_cst);
			if (cpl->asymmetric)
				fenced = membarrier_call(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0;
			announced = true;
		}
		/* Should membarrier ever fail, a reader's wake may be missed:
		   then look again every millisecond instead of trusting it. */
		while (atomic_load_explicit(r, memory_order_acquire) != 0)
			ntmm__futex_wait(r, 1, fenced ? -1 : 1000000);
	}
	if (announced)
		atomic_store_explicit(&cpl->writer_sleeping, 0, memory_order_relaxed);
}

void ntmm__cache_pushlock_acquire_exclusive(ntmm__cache_pushlock_t *cpl)
{
	ntmm__pushlock_acquire_exclusive(&cpl->central);
	/* seq_cst: the writer's half of the Dekker pair (see top) */
	atomic_store_explicit(&cpl->writer, 1, memory_order_seq_cst);
	wait_for_readers(cpl);
}

bool ntmm__cache_pushlock_try_acquire_exclusive(ntmm__cache_pushlock_t *cpl)
{
	if (!ntmm__pushlock_try_acquire_exclusive(&cpl->central))
		return false;
	atomic_store_explicit(&cpl->writer, 1, memory_order_seq_cst);
	for (unsigned i = 0; i < cpl->nslots; i++) {
		/* seq_cst: as in wait_for_readers */
		if (atomic_load_explicit(&cpl->slots[i].reader, memory_order_seq_cst) != 0) {
			/* release: nothing written; keeps the flag's protocol */
			atomic_store_explicit(&cpl->writer, 0, memory_order_release);
			ntmm__pushlock_release_exclusive(&cpl->central);
			return false;
		}
	}
	return true;
}

void ntmm__cache_pushlock_release_exclusive(ntmm__cache_pushlock_t *cpl)
{
	ntmm__assert(atomic_load_explicit(&cpl->writer, memory_order_relaxed) == 1 &&
	             "cache pushlock: release_exclusive without acquire");
	/* release: our writes before the next fast reader's reads (it loads
	   `writer` with seq_cst, which acquires) */
	atomic_store_explicit(&cpl->writer, 0, memory_order_release);
	ntmm__pushlock_release_exclusive(&cpl->central);
}
