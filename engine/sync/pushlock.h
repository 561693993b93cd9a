/*
 * Pushlock (NTMM-REFERENCE.md §5): a reader/writer lock in one pointer-sized
 * word, with waiters' wait blocks on their own stacks. Used for the
 * address-space and working-set locks and anywhere a short reader/writer
 * lock is needed. No owner, no recursion, no priority inheritance.
 *
 * Word layout:
 *   bit 0 LOCKED, bit 1 WAITING, bit 2 WAKING, bit 3 MULTIPLE_SHARED;
 *   WAITING clear: bits 4.. count sharers (units of 16);
 *   WAITING set:   bits 4.. point at the newest wait block (16-byte aligned).
 *
 * Contracts:
 *   - acquire_exclusive/shared return with the lock held (they may sleep);
 *     release_* must be called by a holder of that mode (debug builds
 *     assert on a release without an acquire).
 *   - A shared acquire waits whenever anyone waits: writers are not starved.
 *   - acquire = acquire ordering, release = release ordering on the word.
 */
#ifndef NTMM_SYNC_PUSHLOCK_H
#define NTMM_SYNC_PUSHLOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct ntmm__pushlock {
	_Atomic uintptr_t value;
} ntmm__pushlock_t;

#define NTMM__PUSHLOCK_INIT {0}

static inline void ntmm__pushlock_init(ntmm__pushlock_t *pl)
{
	atomic_store_explicit(&pl->value, 0, memory_order_relaxed);
}

void ntmm__pushlock_acquire_exclusive(ntmm__pushlock_t *pl);
void ntmm__pushlock_acquire_shared(ntmm__pushlock_t *pl);
bool ntmm__pushlock_try_acquire_exclusive(ntmm__pushlock_t *pl);
bool ntmm__pushlock_try_acquire_shared(ntmm__pushlock_t *pl);
void ntmm__pushlock_release_exclusive(ntmm__pushlock_t *pl);
void ntmm__pushlock_release_shared(ntmm__pushlock_t *pl);
/* Exclusive → shared without releasing (always succeeds; waiting readers
   that can now enter are woken). */
void ntmm__pushlock_downgrade(ntmm__pushlock_t *pl);
/* Shared → exclusive if the caller is the only sharer and nobody waits;
   returns false (still holding shared) otherwise. */
bool ntmm__pushlock_try_convert_to_exclusive(ntmm__pushlock_t *pl);
/* true if held in any mode (for assertions). */
static inline bool ntmm__pushlock_is_locked(const ntmm__pushlock_t *pl)
{
	return (atomic_load_explicit(&((ntmm__pushlock_t *)pl)->value, memory_order_relaxed) & 1u) != 0;
}

#endif
