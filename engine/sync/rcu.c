/*
 * Counted liburcu thread registration (see rcu.h for the flavour choice).
 * The count is thread-local because liburcu's registration is: a thread that
 * registers with two engines is one liburcu reader.
 */
#include "sync/rcu.h"

static _Thread_local unsigned rcu_registrations;

#ifdef NTMM_TSAN
char ntmm__rcu_tsan_token; /* an address for TSan annotations only; never written */
#endif

void ntmm__rcu_thread_online(void)
{
	if (rcu_registrations++ == 0)
		urcu_memb_register_thread();
}

void ntmm__rcu_thread_offline(void)
{
	if (rcu_registrations == 0)
		return;
	if (--rcu_registrations == 0)
		urcu_memb_unregister_thread();
}

int ntmm__rcu_thread_registered(void)
{
	return rcu_registrations != 0;
}
