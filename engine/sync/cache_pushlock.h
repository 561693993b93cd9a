/*
 * Cache-aware pushlock (NTMM-REFERENCE.md §5, last point): a reader/writer
 * lock for read-mostly data. Reader state is per slot, one slot per CPU,
 * each on its own cache line, so readers on different cores write
 * different lines and scale; a writer takes every slot. Writers pay for it
 * (a scan of the slots and, when a reader is inside, a membarrier(2)) —
 * use it where writes are rare.
 *
 * Windows builds its cache-aware pushlock as an array of pushlocks, one
 * per CPU. A reader then pays two locked instructions (acquire and release
 * of its pushlock), which on this machine's cores is ~9 ns, the same as a
 * pthread rwlock without contention. Here a reader pays one: it claims its
 * CPU's slot with a CAS and leaves it with a plain release store, as in
 * liburcu's memb flavour the writer's membarrier supplies the barrier the
 * reader leaves out (see cache_pushlock.c for the protocol and proof).
 *
 * Parts:
 *   slots[cpu].reader — 0 free, 1 held by one reader that took the fast
 *                       path on that CPU (futex word for a waiting writer).
 *   central           — a pushlock: writers hold it exclusive (one writer
 *                       at a time); a reader whose slot is busy (another
 *                       reader on the same CPU was preempted inside) or who
 *                       met a writer holds it shared instead.
 *   writer            — 1 while a writer holds `central` and takes or
 *                       holds the lock; fast readers that see it step back
 *                       to `central`, which the writer holds, so a writer
 *                       is not starved.
 *
 * Contracts: no owner, no recursion; acquire_shared returns a handle (a
 * slot index, or NTMM__CACHE_PUSHLOCK_CENTRAL) that release_shared takes,
 * wherever the thread runs by then. acquire = acquire ordering, release =
 * release ordering, as for the pushlock.
 */
#ifndef NTMM_SYNC_CACHE_PUSHLOCK_H
#define NTMM_SYNC_CACHE_PUSHLOCK_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "debug.h"
#include "sync/cpu.h"
#include "sync/event.h"
#include "sync/pushlock.h"

/* One slot: its word alone on a cache line, and the next line left empty,
   because adjacent-line prefetchers fetch lines in pairs and would drag a
   neighbour slot's line back and forth. */
#define NTMM__CACHE_PUSHLOCK_STRIDE (2 * NTMM__CACHELINE)
typedef struct ntmm__cache_pushlock_slot {
	_Atomic uint32_t reader; /* 0 free, 1 held by a fast-path reader */
	char pad[NTMM__CACHE_PUSHLOCK_STRIDE - sizeof(uint32_t)];
} __attribute__((aligned(NTMM__CACHE_PUSHLOCK_STRIDE))) ntmm__cache_pushlock_slot_t;

/* The handle of a reader that holds `central` shared. */
#define NTMM__CACHE_PUSHLOCK_CENTRAL UINT_MAX

/*
 * The first line is read by every reader and written only by writers
 * (writer, writer_sleeping) or at init; `central` has a line of its own.
 */
typedef struct ntmm__cache_pushlock {
	ntmm__cache_pushlock_slot_t *slots; /* [nslots], owned; set at init */
	unsigned nslots;                    /* ≥ 1; set at init */
	bool asymmetric;                  /* membarrier usable: readers leave with a plain store */
	_Atomic uint32_t writer;          /* 1: a writer holds `central` (see above) */
	_Atomic uint32_t writer_sleeping; /* a writer sleeps on some slot's word */
	ntmm__pushlock_t central NTMM__ALIGNED_CL; /* writers (excl), overflow readers (shared) */
} ntmm__cache_pushlock_t;

/* nslots: slots to spread readers over; 0 = the CPUs configured on this
   machine. Errors: NTMM_EINVAL (nslots above 4096), NTMM_ENOMEM. */
int ntmm__cache_pushlock_init(ntmm__cache_pushlock_t *cpl, unsigned nslots);
/* The lock must be free. */
void ntmm__cache_pushlock_destroy(ntmm__cache_pushlock_t *cpl);

/* Slow paths (cache_pushlock.c). */
unsigned ntmm__cache_pushlock_acquire_shared_slow(ntmm__cache_pushlock_t *cpl);
void ntmm__cache_pushlock_leave_slot_slow(ntmm__cache_pushlock_t *cpl, unsigned slot);

/* Leaves a slot this thread claimed. */
static inline void ntmm__cache_pushlock_leave_slot(ntmm__cache_pushlock_t *cpl, unsigned slot)
{
	_Atomic uint32_t *r = &cpl->slots[slot].reader;
	ntmm__assert(atomic_load_explicit(r, memory_order_relaxed) == 1 &&
	             "cache pushlock: release of a slot not held");
	if (ntmm__likely(cpl->asymmetric)) {
		/* release: our reads before the writer's writes (it loads the
		   word with acquire ordering). Then only a compiler barrier
		   before we look for a sleeping writer: the writer's membarrier,
		   issued after it set writer_sleeping and before it sleeps,
		   stands in for the fence (cache_pushlock.c, "leaving"). */
		atomic_store_explicit(r, 0, memory_order_release);
		atomic_signal_fence(memory_order_seq_cst);
		if (ntmm__unlikely(
		        atomic_load_explicit(&cpl->writer_sleeping, memory_order_relaxed)))
			ntmm__futex_wake(r, 1);
		return;
	}
	ntmm__cache_pushlock_leave_slot_slow(cpl, slot);
}

/*
 * Takes the lock shared; returns the handle for release_shared. One locked
 * instruction when the current CPU's slot is free and no writer is about.
 * May sleep (behind a writer).
 */
static inline unsigned ntmm__cache_pushlock_acquire_shared(ntmm__cache_pushlock_t *cpl)
{
	unsigned s = ntmm__cpu_current(cpl->nslots);
	uint32_t free_slot = 0;
	/* seq_cst CAS, then seq_cst load of `writer`: one half of a Dekker
	   pair whose other half is the writer's seq_cst store of `writer` and
	   loads of the slots — either we see the writer or it sees us. The
	   load also acquires the last writer's release of `writer`. */
	if (ntmm__likely(atomic_compare_exchange_strong_explicit(&cpl->slots[s].reader, &free_slot,
	                                                         1, memory_order_seq_cst,
	                                                         memory_order_relaxed))) {
		if (ntmm__likely(atomic_load_explicit(&cpl->writer, memory_order_seq_cst) == 0))
			return s;
		ntmm__cache_pushlock_leave_slot(cpl, s); /* a writer: step back */
	}
	return ntmm__cache_pushlock_acquire_shared_slow(cpl);
}

/* As acquire_shared, without waiting: true and *slot set on success. */
bool ntmm__cache_pushlock_try_acquire_shared(ntmm__cache_pushlock_t *cpl, unsigned *slot);

static inline void ntmm__cache_pushlock_release_shared(ntmm__cache_pushlock_t *cpl, unsigned slot)
{
	if (slot == NTMM__CACHE_PUSHLOCK_CENTRAL) {
		ntmm__pushlock_release_shared(&cpl->central);
		return;
	}
	ntmm__assert(slot < cpl->nslots && "cache pushlock: bad slot handle");
	ntmm__cache_pushlock_leave_slot(cpl, slot);
}

/* Takes the lock exclusive: `central`, then waits for every slot to
   empty. May sleep. */
void ntmm__cache_pushlock_acquire_exclusive(ntmm__cache_pushlock_t *cpl);
/* All or nothing, without waiting: false (holding nothing) if any reader
   or writer holds the lock. */
bool ntmm__cache_pushlock_try_acquire_exclusive(ntmm__cache_pushlock_t *cpl);
void ntmm__cache_pushlock_release_exclusive(ntmm__cache_pushlock_t *cpl);

/* Debug builds: asserts that the calling thread holds cpl exclusive (a
   writer holds `central` exclusive, which lockdep records). A shared hold
   is not recorded — a fast-path reader only claims its CPU's slot, and the
   hot path stays as it is — so there is no check for "held shared". */
#define ntmm__assert_cache_pushlock_exclusive(cpl) \
	ntmm__assert_pushlock_held(&(cpl)->central, NTMM__HELD_EXCLUSIVE)

#endif
