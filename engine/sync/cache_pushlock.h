/*
 * Cache-aware pushlock (NTMM-REFERENCE.md §5, last point): a reader/writer
 * lock for read-mostly data, built as one pushlock per slot, each slot on
 * its own cache line. A reader takes only the slot of the CPU it runs on,
 * so readers on different cores write different lines and scale; a writer
 * takes every slot, in index order, so it excludes all readers. The price
 * is paid by writers (n atomics, n lines) — use it where writes are rare.
 *
 * The slot index comes from the current CPU (cpu.h). It can be stale the
 * moment it is read (migration): that only costs sharing a line with
 * another CPU's readers, never correctness, because the reader releases
 * the slot it acquired (the handle), wherever it runs by then.
 *
 * Contracts (as for the pushlock): no owner, no recursion; a writer is
 * not starved (each slot's shared acquire waits while a writer waits on
 * that slot); release_shared takes the handle acquire_shared returned.
 * Deadlock-free: readers hold one slot, writers take slots in order.
 */
#ifndef NTMM_SYNC_CACHE_PUSHLOCK_H
#define NTMM_SYNC_CACHE_PUSHLOCK_H

#include <stdbool.h>

#include "debug.h"
#include "sync/cpu.h"
#include "sync/pushlock.h"

/* One slot: a pushlock alone on its cache line, and the next line left
   empty, because adjacent-line prefetchers fetch lines in pairs and would
   otherwise drag a neighbour slot's line back and forth. */
#define NTMM__CACHE_PUSHLOCK_STRIDE (2 * NTMM__CACHELINE)
typedef struct ntmm__cache_pushlock_slot {
	ntmm__pushlock_t lock;
	char pad[NTMM__CACHE_PUSHLOCK_STRIDE - sizeof(ntmm__pushlock_t)];
} __attribute__((aligned(NTMM__CACHE_PUSHLOCK_STRIDE))) ntmm__cache_pushlock_slot_t;

/*
 * slots and nslots are set at init and read-only until destroy; each
 * slot's word is guarded by its own pushlock protocol. The struct itself
 * is only read on the hot path, so it may share a line with other
 * read-mostly data.
 */
typedef struct ntmm__cache_pushlock {
	ntmm__cache_pushlock_slot_t *slots; /* [nslots], stride-aligned, owned */
	unsigned nslots;                    /* ≥ 1 */
} ntmm__cache_pushlock_t;

/* nslots: slots to spread readers over; 0 = the CPUs configured on this
   machine. Errors: NTMM_EINVAL (nslots above 4096), NTMM_ENOMEM. */
int ntmm__cache_pushlock_init(ntmm__cache_pushlock_t *cpl, unsigned nslots);
/* The lock must be free. */
void ntmm__cache_pushlock_destroy(ntmm__cache_pushlock_t *cpl);

/* Takes the lock shared through the current CPU's slot; returns the slot
   handle to pass to release_shared. May sleep. */
static inline unsigned ntmm__cache_pushlock_acquire_shared(ntmm__cache_pushlock_t *cpl)
{
	unsigned slot = ntmm__cpu_current(cpl->nslots);
	ntmm__pushlock_acquire_shared_mostly_free(&cpl->slots[slot].lock);
	return slot;
}

/* As acquire_shared, without waiting: true and *slot set on success. */
static inline bool ntmm__cache_pushlock_try_acquire_shared(ntmm__cache_pushlock_t *cpl,
                                                           unsigned *slot)
{
	unsigned s = ntmm__cpu_current(cpl->nslots);
	if (!ntmm__pushlock_try_acquire_shared(&cpl->slots[s].lock))
		return false;
	*slot = s;
	return true;
}

static inline void ntmm__cache_pushlock_release_shared(ntmm__cache_pushlock_t *cpl, unsigned slot)
{
	ntmm__assert(slot < cpl->nslots && "cache pushlock: bad slot handle");
	ntmm__pushlock_release_shared_mostly_free(&cpl->slots[slot].lock);
}

/* Takes every slot exclusive, in index order. May sleep. */
void ntmm__cache_pushlock_acquire_exclusive(ntmm__cache_pushlock_t *cpl);
/* All slots or none: false (holding nothing) if any slot is held. */
bool ntmm__cache_pushlock_try_acquire_exclusive(ntmm__cache_pushlock_t *cpl);
void ntmm__cache_pushlock_release_exclusive(ntmm__cache_pushlock_t *cpl);

#endif
