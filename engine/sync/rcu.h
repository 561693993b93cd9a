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
 * ntmm keeps one registration state per thread (ntmm__rcu_thread_t) for
 * every engine in the process, and nothing in it points into an engine:
 * an engine destroyed before a thread exits leaves that thread nothing to
 * clean up but its liburcu registration.
 *
 * A thread becomes a reader in two ways: counted brackets
 * (ntmm__rcu_thread_online/offline: ntmm_thread_register and the engine's
 * own calls that need call_rcu or a grace period), and adoption
 * (ntmm__rcu_thread_adopt: the access API's first use on a thread nobody
 * registered), which lasts until ntmm__rcu_thread_exit. Every read-side
 * entry point checks ntmm__rcu_thread_is_reader first, because liburcu
 * does not: an unregistered thread's read_lock protects nothing.
 *
 * Later layers may use rcu_dereference/rcu_assign_pointer, call_rcu and the
 * cds_* structures (link liburcu-cds) through this header.
 */
#ifndef NTMM_SYNC_RCU_H
#define NTMM_SYNC_RCU_H

#include <stdbool.h>
#include <stdint.h>
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
/* ... and a callback's end releases a second token that a barrier (which
   waits for every callback) acquires */
extern char ntmm__rcu_tsan_cb_token;
#define ntmm__rcu_tsan_cb_done()  __tsan_release(&ntmm__rcu_tsan_cb_token)
#define ntmm__rcu_barrier()       (urcu_memb_barrier(), __tsan_acquire(&ntmm__rcu_tsan_cb_token))
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
#define ntmm__rcu_tsan_cb_done()  ((void)0)
#define ntmm__rcu_barrier()       urcu_memb_barrier()
#endif

/*
 * The calling thread's registration (thread-local; only its thread touches it):
 *   online  — nesting of ntmm__rcu_thread_online not yet undone
 *   adopted — made a reader by ntmm__rcu_thread_adopt; stays one until
 *             ntmm__rcu_thread_exit
 *   reader  — in liburcu's registry; reader == (online > 0 || adopted ||
 *             it stayed for a read-side section open at the last offline)
 */
typedef struct ntmm__rcu_thread {
	uint32_t online;
	bool adopted;
	bool reader;
} ntmm__rcu_thread_t;

extern __thread ntmm__rcu_thread_t ntmm__rcu_self __attribute__((tls_model("initial-exec")));

/* true if the calling thread is in liburcu's registry (one thread-local
   load: the read-side entry points' check). */
static inline bool ntmm__rcu_thread_is_reader(void)
{
	return ntmm__rcu_self.reader;
}

/* Registers the calling thread with liburcu (counted; nests). */
void ntmm__rcu_thread_online(void);
/* Undoes one ntmm__rcu_thread_online. At the last one the thread leaves
   liburcu's registry, unless it was adopted or is inside a read-side
   section (leaving then would unprotect that section): it stays a reader
   until ntmm__rcu_thread_exit. */
void ntmm__rcu_thread_offline(void);
/* Makes the calling thread a reader until ntmm__rcu_thread_exit,
   whatever its online count does meanwhile. */
void ntmm__rcu_thread_adopt(void);
/* The thread is exiting: ends every read-side level it still holds (a
   grace period waiting for it is woken), leaves liburcu's registry and
   forgets its counts. Must be called outside the engine (no lock held). */
void ntmm__rcu_thread_exit(void);
/* true if the calling thread is registered (alias of is_reader). */
int ntmm__rcu_thread_registered(void);

#endif
