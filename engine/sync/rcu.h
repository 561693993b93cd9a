/*
 * The engine's RCU: liburcu's memb flavour (urcu-memb).
 *
 * Why memb: ntmm_access_begin/end are read-side sections taken on every
 * translate, so the read side must cost almost nothing (memb: a TLS counter
 * update and a compiler barrier; the writer pays with membarrier(2)), and,
 * unlike QSBR, user threads need not report quiescent states periodically.
 * The signal flavour would steal a signal from the embedding program; the
 * bulletproof flavour makes every reader pay a full barrier.
 *
 * liburcu is process-wide: registration is per thread, not per engine, so
 * ntmm counts registrations per thread and registers with liburcu once.
 * Later layers may use rcu_dereference/rcu_assign_pointer, call_rcu and the
 * cds_* structures (link liburcu-cds) through this header.
 */
#ifndef NTMM_SYNC_RCU_H
#define NTMM_SYNC_RCU_H

#include <urcu/urcu-memb.h>
#include <urcu/rculist.h>
#include <urcu/rculfhash.h>
#include <urcu/lfstack.h>

#define ntmm__rcu_read_lock() urcu_memb_read_lock()
#ifdef NTMM_TSAN
/* liburcu is not instrumented, so TSan cannot see that a grace period
   orders every earlier read-side section before what follows it. Tell it:
   each read-side unlock (and each call_rcu) releases a token; the end of a
   grace period (and each call_rcu callback, via ntmm__rcu_tsan_after_gp)
   acquires it. */
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
extern char ntmm__rcu_tsan_token;
#define ntmm__rcu_read_unlock()   (__tsan_release(&ntmm__rcu_tsan_token), urcu_memb_read_unlock())
#define ntmm__rcu_synchronize()   (urcu_memb_synchronize_rcu(), __tsan_acquire(&ntmm__rcu_tsan_token))
#define ntmm__rcu_tsan_after_gp() __tsan_acquire(&ntmm__rcu_tsan_token)
#define ntmm__rcu_call(head, fn) \
	(__tsan_release(&ntmm__rcu_tsan_token), urcu_memb_call_rcu((head), (fn)))
#else
#define ntmm__rcu_call(head, fn)  urcu_memb_call_rcu((head), (fn))
#define ntmm__rcu_read_unlock()   urcu_memb_read_unlock()
#define ntmm__rcu_synchronize()   urcu_memb_synchronize_rcu()
#define ntmm__rcu_tsan_after_gp() ((void)0)
#endif
#define ntmm__rcu_barrier() urcu_memb_barrier()

/* Register the calling thread with liburcu (counted; nests). */
void ntmm__rcu_thread_online(void);
/* Undo one ntmm__rcu_thread_online; unregisters at the last one. */
void ntmm__rcu_thread_offline(void);
/* true if the calling thread is registered. */
int ntmm__rcu_thread_registered(void);

#endif
