/*
 * Lock-held checks for debug builds (the role Linux's lockdep_assert_held
 * plays): a "caller holds X" contract is written as ntmm__assert_held(...)
 * and checked whenever NTMM_DEBUG >= 1; release builds compile it away.
 *
 * Pushlocks have no owner field (one word, NTMM-REFERENCE.md §5), so each
 * thread keeps, in debug builds only, a small stack of the pushlocks it
 * holds and in which mode; pushlock.h's acquire/release paths maintain it.
 * A pushlock may legally be released by a thread other than the one that
 * took it; such a release is not found in the releasing thread's stack and
 * is ignored (the acquirer's entry then stays until its stack is reset by
 * thread exit), so the check can miss, never fire falsely, in that case.
 *
 * Mutexes are glibc's: glibc records the owner's thread id in every mutex
 * it locks (all types), and the check reads it.
 *
 * A cache-aware pushlock is checked for exclusive holds only, through its
 * central pushlock (ntmm__assert_cache_pushlock_exclusive); its fast-path
 * shared holds leave no record.
 */
#ifndef NTMM_SYNC_LOCKDEP_H
#define NTMM_SYNC_LOCKDEP_H

#include <pthread.h>
#include <stdbool.h>

#include "debug.h"

enum ntmm__held_mode {
	NTMM__HELD_SHARED = 1,
	NTMM__HELD_EXCLUSIVE = 2,
	NTMM__HELD_ANY = 3,
};

#if NTMM_DEBUG >= 1
#define NTMM__LOCKDEP 1
/* The calling thread took / released / changed the mode of lock. */
void ntmm__lockdep_acquired(const void *lock, enum ntmm__held_mode mode);
void ntmm__lockdep_released(const void *lock);
void ntmm__lockdep_set_mode(const void *lock, enum ntmm__held_mode mode);
/* true if the calling thread holds lock in one of the modes of `mode`
   (also true when the thread's stack overflowed: the check gives up). */
bool ntmm__lockdep_holds(const void *lock, enum ntmm__held_mode mode);
/* true if the calling thread is glibc's recorded owner of m. */
bool ntmm__lockdep_mutex_owned(pthread_mutex_t *m);

#define ntmm__assert_pushlock_held(pl, mode) ntmm__assert(ntmm__lockdep_holds((pl), (mode)))
#define ntmm__assert_pushlock_not_held(pl) \
	ntmm__assert(!ntmm__lockdep_holds((pl), NTMM__HELD_ANY) || ntmm__lockdep_overflowed())
#define ntmm__assert_mutex_held(m)     ntmm__assert(ntmm__lockdep_mutex_owned(m))
#define ntmm__assert_mutex_not_held(m) ntmm__assert(!ntmm__lockdep_mutex_owned(m))
bool ntmm__lockdep_overflowed(void);
#else
#define ntmm__lockdep_acquired(lock, mode)   ((void)0)
#define ntmm__lockdep_released(lock)         ((void)0)
#define ntmm__lockdep_set_mode(lock, mode)   ((void)0)
#define ntmm__assert_pushlock_held(pl, mode) ((void)0)
#define ntmm__assert_pushlock_not_held(pl)   ((void)0)
#define ntmm__assert_mutex_held(m)           ((void)0)
#define ntmm__assert_mutex_not_held(m)       ((void)0)
#endif

#endif
