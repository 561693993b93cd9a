/*
 * The process swapper: woken by the balance set manager every 4th tick, it
 * out-swaps the whole working set of every process idle longer than
 * cfg.swap_idle_ms (0 turns swapping off). The process is marked
 * out-swapped; its pages go to Standby/Modified like any trim (and on to
 * the paging file with the modified page writer), and its next fault marks
 * it in-swapped (virt/wsmgr.c: ntmm__wsm_swap_in), its pages coming back
 * by soft or hard faults as they are touched.
 *
 * Idle tracking costs the fault path nothing new: a process is active when
 * its fault count (the per-CPU counters the fault path already keeps)
 * changed since the last scan, or when aging finds an Accessed bit (accesses
 * through valid PTEs take no fault; the balance set manager's aging and
 * ours both record them in wsm.active_ns). A process whose faults did not
 * change is aged here once its idle time would be up, so a process that
 * keeps touching resident pages is never out-swapped.
 */
#include "engine.h"

typedef struct visit {
	ntmm__swapper_thread_t *s;
	uint64_t idle_ns;
} visit_t;

static void visit(ntmm_process_t *p, void *arg)
{
	visit_t *v = arg;
	if (atomic_load_explicit(&p->wsm.swapped_out, memory_order_relaxed))
		return;
	uint64_t now = ntmm__wsm_now_ns();
	uint64_t faults = ntmm__wsm_faults(p);
	if (faults != p->wsm.seen_faults) {
		p->wsm.seen_faults = faults;
		atomic_store_explicit(&p->wsm.active_ns, now, memory_order_relaxed);
		return;
	}
	uint64_t active = atomic_load_explicit(&p->wsm.active_ns, memory_order_relaxed);
	if (now - active < v->idle_ns || ntmm__ws_pages(p) == 0)
		return;
	if (ntmm__wsm_age(p, NULL))
		return; /* touched without faulting */
	ntmm__wsm_swap_out(p);
	/* the trim itself is no activity of the process */
	p->wsm.seen_faults = ntmm__wsm_faults(p);
	atomic_fetch_add_explicit(&v->s->swap_outs, 1, memory_order_relaxed);
}

static void swap_pass(ntmm__swapper_thread_t *s)
{
	ntmm_engine_t *e = s->e;
	visit_t v = {s, (uint64_t)e->cfg.swap_idle_ms * 1000000u};
	if (!v.idle_ns)
		return;
	pthread_mutex_lock(&e->systhreads.quiet);
	ntmm__wsm_for_each(e, visit, &v);
	pthread_mutex_unlock(&e->systhreads.quiet);
}

void ntmm__swapper_thread(ntmm__thread_t *self, void *arg)
{
	ntmm__swapper_thread_t *s = arg;
	ntmm_thread_register(s->e);
	while (ntmm__thread_wait(self, -1)) {
		swap_pass(s);
		atomic_fetch_add_explicit(&s->passes, 1, memory_order_relaxed);
	}
	ntmm_thread_unregister(s->e);
}
