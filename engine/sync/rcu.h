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

#define ntmm__rcu_read_lock()    urcu_memb_read_lock()
#define ntmm__rcu_read_unlock()  urcu_memb_read_unlock()
#define ntmm__rcu_synchronize()  urcu_memb_synchronize_rcu()
#define ntmm__rcu_call(head, fn) urcu_memb_call_rcu((head), (fn))
#define ntmm__rcu_barrier()      urcu_memb_barrier()

/* Register the calling thread with liburcu (counted; nests). */
void ntmm__rcu_thread_online(void);
/* Undo one ntmm__rcu_thread_online; unregisters at the last one. */
void ntmm__rcu_thread_offline(void);
/* true if the calling thread is registered. */
int ntmm__rcu_thread_registered(void);

#endif
