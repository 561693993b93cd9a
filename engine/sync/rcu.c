/*
 * The calling thread's liburcu registration (see rcu.h for the flavour
 * choice and the two ways a thread becomes a reader). The state is
 * thread-local because liburcu's registration is: a thread that registers
 * with two engines is one liburcu reader.
 */
#include "sync/rcu.h"

__thread ntmm__rcu_thread_t ntmm__rcu_self __attribute__((tls_model("initial-exec")));

#ifdef NTMM_TSAN
char ntmm__rcu_tsan_token;    /* an address for TSan annotations only; never written */
char ntmm__rcu_tsan_cb_token; /* the same, for callbacks before a barrier */
#endif

static void become_reader(ntmm__rcu_thread_t *s)
{
	if (!s->reader) {
		urcu_memb_register_thread();
		s->reader = true;
	}
}

void ntmm__rcu_thread_online(void)
{
	ntmm__rcu_thread_t *s = &ntmm__rcu_self;
	s->online++;
	become_reader(s);
}

void ntmm__rcu_thread_offline(void)
{
	ntmm__rcu_thread_t *s = &ntmm__rcu_self;
	if (s->online == 0)
		return;
	if (--s->online == 0 && s->reader && !s->adopted && !urcu_memb_read_ongoing()) {
		urcu_memb_unregister_thread();
		s->reader = false;
	}
}

void ntmm__rcu_thread_adopt(void)
{
	ntmm__rcu_thread_t *s = &ntmm__rcu_self;
	s->adopted = true;
	become_reader(s);
}

void ntmm__rcu_thread_exit(void)
{
	ntmm__rcu_thread_t *s = &ntmm__rcu_self;
	/* the last unlock wakes a grace period that waits for this thread */
	while (urcu_memb_read_ongoing())
		ntmm__rcu_read_unlock();
	if (s->reader)
		urcu_memb_unregister_thread();
	s->reader = false;
	s->adopted = false;
	s->online = 0;
}

int ntmm__rcu_thread_registered(void)
{
	return ntmm__rcu_thread_is_reader();
}
