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
 *
 * The uncontended paths are inline here, one atomic each (none while the
 * process has a single thread, as glibc does for its mutex); everything that
 * involves waiters is in pushlock.c, whose header comment gives the whole
 * algorithm and its invariants.
 */
#ifndef NTMM_SYNC_PUSHLOCK_H
#define NTMM_SYNC_PUSHLOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "debug.h"
#include "sync/lockdep.h"

#if defined(__has_include)
#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>
#define NTMM__HAVE_SINGLE_THREADED 1
#endif
#endif

typedef struct ntmm__pushlock {
	_Atomic uintptr_t value; /* see the word layout above */
} ntmm__pushlock_t;

#define NTMM__PUSHLOCK_INIT \
	{                   \
		0           \
	}

/* The bits of the word (exposed for the inline paths and white-box tests). */
#define NTMM__PL_LOCKED   ((uintptr_t)1)
#define NTMM__PL_WAITING  ((uintptr_t)2)
#define NTMM__PL_WAKING   ((uintptr_t)4)
#define NTMM__PL_MULTIPLE ((uintptr_t)8)
#define NTMM__PL_FLAGS    ((uintptr_t)15)
#define NTMM__PL_SHARE    ((uintptr_t)16) /* one sharer, while WAITING is clear */

static inline void ntmm__pushlock_init(ntmm__pushlock_t *pl)
{
	atomic_store_explicit(&pl->value, 0, memory_order_relaxed);
}

/*
 * true while the process has never had a second thread (glibc >= 2.32 keeps
 * this flag: it goes false at the first pthread_create and stays false).
 * No other thread can then see the word, so the fast paths use plain loads
 * and stores — as glibc's own mutexes do in that case. Creating a thread is
 * a full barrier, so a lock taken that way is seen held by the new thread,
 * and from then on every path is atomic. With the engine's system threads
 * running this is always false and costs one load of a global.
 */
static inline bool ntmm__pushlock_single_threaded(void)
{
#ifdef NTMM__HAVE_SINGLE_THREADED
	return __libc_single_threaded != 0;
#else
	return false;
#endif
}

/* Slow paths (pushlock.c); call only through the functions below. */
void ntmm__pushlock_acquire_exclusive_slow(ntmm__pushlock_t *pl);
void ntmm__pushlock_acquire_shared_slow(ntmm__pushlock_t *pl);
void ntmm__pushlock_release_shared_slow(ntmm__pushlock_t *pl);
void ntmm__pushlock_try_wake(ntmm__pushlock_t *pl);
void ntmm__pushlock_downgrade_slow(ntmm__pushlock_t *pl);

/* Takes the lock exclusively; sleeps while it is held in any mode. */
static inline void ntmm__pushlock_word_acquire_exclusive(ntmm__pushlock_t *pl)
{
	if (ntmm__pushlock_single_threaded()) {
		uintptr_t v = atomic_load_explicit(&pl->value, memory_order_relaxed);
		if (ntmm__likely(!(v & NTMM__PL_LOCKED))) {
			atomic_store_explicit(&pl->value, v | NTMM__PL_LOCKED,
			                      memory_order_relaxed);
			return;
		}
	}
	/* One bit-test-and-set. acquire: pairs with the release of whoever
	   released the lock last (every release path is a release RMW). */
	uintptr_t old = atomic_fetch_or_explicit(&pl->value, NTMM__PL_LOCKED, memory_order_acquire);
	if (ntmm__unlikely(old & NTMM__PL_LOCKED))
		ntmm__pushlock_acquire_exclusive_slow(pl);
}

/* Takes the lock exclusively if it is free (even when others wait: a free
   lock is up for grabs, as after a wake). Never sleeps. */
static inline bool ntmm__pushlock_word_try_acquire_exclusive(ntmm__pushlock_t *pl)
{
	/* acquire: as in ntmm__pushlock_acquire_exclusive */
	uintptr_t old = atomic_fetch_or_explicit(&pl->value, NTMM__PL_LOCKED, memory_order_acquire);
	return !(old & NTMM__PL_LOCKED);
}

/* true if a shared acquire may enter at word value v: free, or held shared
   with nobody waiting. */
static inline bool ntmm__pushlock_shared_can_enter(uintptr_t v)
{
	return !(v & NTMM__PL_WAITING) && v != NTMM__PL_LOCKED;
}

/* The word after one more sharer enters at v (free or held shared). */
static inline uintptr_t ntmm__pushlock_one_sharer_more(uintptr_t v)
{
	return (v | NTMM__PL_LOCKED) + NTMM__PL_SHARE;
}

/* The word after one sharer leaves at v (held shared, nobody waiting). */
static inline uintptr_t ntmm__pushlock_one_sharer_less(uintptr_t v)
{
	ntmm__assert((v & NTMM__PL_LOCKED) && "release_shared of an unlocked pushlock");
	ntmm__assert(v != NTMM__PL_LOCKED && "release_shared of a pushlock held exclusive");
	return v == NTMM__PL_LOCKED + NTMM__PL_SHARE ? 0 : v - NTMM__PL_SHARE;
}

/* Takes the lock shared; sleeps while it is held exclusive or anyone waits. */
static inline void ntmm__pushlock_word_acquire_shared(ntmm__pushlock_t *pl)
{
	uintptr_t old;
	if (ntmm__pushlock_single_threaded()) {
		old = atomic_load_explicit(&pl->value, memory_order_relaxed);
		if (ntmm__likely(ntmm__pushlock_shared_can_enter(old))) {
			atomic_store_explicit(&pl->value, ntmm__pushlock_one_sharer_more(old),
			                      memory_order_relaxed);
			return;
		}
	}
	/* The first CAS guesses "free" instead of loading first: under
	   contention a load then a CAS moves the line twice (shared, then
	   exclusive), a CAS once. A wrong guess returns the value, and the
	   retries find the line already here. acquire: pairs with the release
	   of the last exclusive holder. */
	old = 0;
	if (ntmm__likely(atomic_compare_exchange_strong_explicit(
	        &pl->value, &old, NTMM__PL_LOCKED + NTMM__PL_SHARE, memory_order_acquire,
	        memory_order_relaxed)))
		return;
	while (ntmm__pushlock_shared_can_enter(old)) {
		if (atomic_compare_exchange_weak_explicit(
		        &pl->value, &old, ntmm__pushlock_one_sharer_more(old), memory_order_acquire,
		        memory_order_relaxed))
			return;
	}
	ntmm__pushlock_acquire_shared_slow(pl);
}

/* Takes the lock shared if that needs no wait. Never sleeps. */
static inline bool ntmm__pushlock_word_try_acquire_shared(ntmm__pushlock_t *pl)
{
	uintptr_t old = atomic_load_explicit(&pl->value, memory_order_relaxed);
	while (ntmm__pushlock_shared_can_enter(old)) {
		/* acquire: as in ntmm__pushlock_acquire_shared */
		if (atomic_compare_exchange_weak_explicit(
		        &pl->value, &old, ntmm__pushlock_one_sharer_more(old), memory_order_acquire,
		        memory_order_relaxed))
			return true;
	}
	return false;
}

static inline void ntmm__pushlock_word_release_exclusive(ntmm__pushlock_t *pl)
{
#if NTMM_DEBUG >= 1
	{
		uintptr_t v = atomic_load_explicit(&pl->value, memory_order_relaxed);
		/* held, and not by sharers (without waiters the share count must
		   be 0; with waiters MULTIPLE_SHARED means several sharers) */
		ntmm__assert((v & NTMM__PL_LOCKED) && "release_exclusive of an unlocked pushlock");
		ntmm__assert(
		    ((v & NTMM__PL_WAITING) ? !(v & NTMM__PL_MULTIPLE) : v == NTMM__PL_LOCKED) &&
		    "release_exclusive of a pushlock held shared");
	}
#endif
	if (ntmm__pushlock_single_threaded() &&
	    ntmm__likely(atomic_load_explicit(&pl->value, memory_order_relaxed) ==
	                 NTMM__PL_LOCKED)) {
		atomic_store_explicit(&pl->value, 0, memory_order_relaxed);
		return;
	}
	/* One atomic. release: publishes the critical section to the next
	   acquirer (pairs with the acquire of every acquire path). */
	uintptr_t old =
	    atomic_fetch_sub_explicit(&pl->value, NTMM__PL_LOCKED, memory_order_release);
	/* waiters and nobody waking them yet: try to become the waker */
	if (ntmm__unlikely((old & (NTMM__PL_WAITING | NTMM__PL_WAKING)) == NTMM__PL_WAITING))
		ntmm__pushlock_try_wake(pl);
}

static inline void ntmm__pushlock_word_release_shared(ntmm__pushlock_t *pl)
{
	uintptr_t old;
	if (ntmm__pushlock_single_threaded()) {
		old = atomic_load_explicit(&pl->value, memory_order_relaxed);
		if (ntmm__likely(!(old & NTMM__PL_WAITING))) {
			atomic_store_explicit(&pl->value, ntmm__pushlock_one_sharer_less(old),
			                      memory_order_relaxed);
			return;
		}
	}
	/* Guess "the only sharer" (→ 0) first, as in acquire_shared, then
	   one sharer less while nobody waits. release: pairs with the next
	   exclusive acquirer's acquire, so our reads happen before its
	   writes. */
	old = NTMM__PL_LOCKED + NTMM__PL_SHARE;
	if (ntmm__likely(atomic_compare_exchange_strong_explicit(
	        &pl->value, &old, 0, memory_order_release, memory_order_relaxed)))
		return;
	while (!(old & NTMM__PL_WAITING)) {
		if (atomic_compare_exchange_weak_explicit(
		        &pl->value, &old, ntmm__pushlock_one_sharer_less(old), memory_order_release,
		        memory_order_relaxed))
			return;
	}
	ntmm__pushlock_release_shared_slow(pl);
}

/* Exclusive → shared without releasing (always succeeds; waiting readers
   that can now enter are woken). */
static inline void ntmm__pushlock_word_downgrade(ntmm__pushlock_t *pl)
{
	uintptr_t old = NTMM__PL_LOCKED;
	/* release: our writes are visible to the readers that join us */
	if (ntmm__likely(atomic_compare_exchange_strong_explicit(
	        &pl->value, &old, NTMM__PL_LOCKED + NTMM__PL_SHARE, memory_order_release,
	        memory_order_relaxed)))
		return;
	ntmm__pushlock_downgrade_slow(pl);
}

/* Shared → exclusive if the caller is the only sharer and nobody waits;
   returns false (still holding shared) otherwise. */
static inline bool ntmm__pushlock_word_try_convert_to_exclusive(ntmm__pushlock_t *pl)
{
	uintptr_t old = NTMM__PL_LOCKED + NTMM__PL_SHARE;
	/* acquire: orders our coming writes after the other sharers' reads,
	   which they released into the word when they left */
	if (atomic_compare_exchange_strong_explicit(&pl->value, &old, NTMM__PL_LOCKED,
	                                            memory_order_acquire, memory_order_relaxed))
		return true;
	ntmm__assert((old & NTMM__PL_LOCKED) && "convert of an unlocked pushlock");
	ntmm__assert(old != NTMM__PL_LOCKED && "convert of a pushlock held exclusive");
	return false;
}

/* true if held in any mode (for assertions). */
static inline bool ntmm__pushlock_is_locked(const ntmm__pushlock_t *pl)
{
	return (atomic_load_explicit(&((ntmm__pushlock_t *)pl)->value, memory_order_relaxed) &
	        NTMM__PL_LOCKED) != 0;
}

/* true if some thread waits (for assertions and white-box tests). */
static inline bool ntmm__pushlock_has_waiters(const ntmm__pushlock_t *pl)
{
	return (atomic_load_explicit(&((ntmm__pushlock_t *)pl)->value, memory_order_relaxed) &
	        NTMM__PL_WAITING) != 0;
}

/*
 * The lock operations. In debug builds each also records the calling
 * thread's holding for ntmm__assert_pushlock_held (sync/lockdep.h); the
 * ntmm__pushlock_word_* functions above are the bare word protocol.
 */
static inline void ntmm__pushlock_acquire_exclusive(ntmm__pushlock_t *pl)
{
	ntmm__pushlock_word_acquire_exclusive(pl);
	ntmm__lockdep_acquired(pl, NTMM__HELD_EXCLUSIVE);
}
static inline bool ntmm__pushlock_try_acquire_exclusive(ntmm__pushlock_t *pl)
{
	if (!ntmm__pushlock_word_try_acquire_exclusive(pl))
		return false;
	ntmm__lockdep_acquired(pl, NTMM__HELD_EXCLUSIVE);
	return true;
}
static inline void ntmm__pushlock_acquire_shared(ntmm__pushlock_t *pl)
{
	ntmm__pushlock_word_acquire_shared(pl);
	ntmm__lockdep_acquired(pl, NTMM__HELD_SHARED);
}
static inline bool ntmm__pushlock_try_acquire_shared(ntmm__pushlock_t *pl)
{
	if (!ntmm__pushlock_word_try_acquire_shared(pl))
		return false;
	ntmm__lockdep_acquired(pl, NTMM__HELD_SHARED);
	return true;
}
static inline void ntmm__pushlock_release_exclusive(ntmm__pushlock_t *pl)
{
	ntmm__lockdep_released(pl);
	ntmm__pushlock_word_release_exclusive(pl);
}
static inline void ntmm__pushlock_release_shared(ntmm__pushlock_t *pl)
{
	ntmm__lockdep_released(pl);
	ntmm__pushlock_word_release_shared(pl);
}
static inline void ntmm__pushlock_downgrade(ntmm__pushlock_t *pl)
{
	ntmm__pushlock_word_downgrade(pl);
	ntmm__lockdep_set_mode(pl, NTMM__HELD_SHARED);
}
static inline bool ntmm__pushlock_try_convert_to_exclusive(ntmm__pushlock_t *pl)
{
	if (!ntmm__pushlock_word_try_convert_to_exclusive(pl))
		return false;
	ntmm__lockdep_set_mode(pl, NTMM__HELD_EXCLUSIVE);
	return true;
}

#endif
