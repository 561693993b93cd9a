/*
 * The process swapper (NTMM-REFERENCE.md §6). Two kinds of work, one
 * thread, which blocks in ntmm__thread_wait between them:
 *
 * Out-swap: woken by the balance set manager every 4th tick, it scans for
 * processes idle longer than cfg.swap_idle_ms (0 turns swapping off) and
 * out-swaps each (virt/wsmgr.c: ntmm__wsm_swap_out records the working
 * set's pages, then trims it whole; the pages go to Standby/Modified like
 * any trim, and on to the paging file with the modified page writer).
 *
 * In-swap: the out-swapped process's next fault queues it and wakes us
 * (ntmm__wsm_swap_in: cheap, no I/O on the fault path). We claim each
 * queued process (a `users` reference, so its destroy waits for us, and
 * stops us at the next page) and bring its recorded pages back through
 * the fault path — transition pages become valid again, paging-file pages
 * are read back in clusters — in steps of up to NTMM__HARD_CLUSTER pages
 * with at most one read each. The rest is dropped when available memory
 * falls below the working set manager's minimum mark or the process goes
 * away or is out-swapped again; stopping the engine stops us between
 * steps. Queued in-swaps run before a pending idle scan.
 *
 * `quiet` (which ntmm_audit takes) is held around each idle scan and each
 * in-swap step, never across a whole in-swap: an audit waits for one step
 * (one paging-file read at most), not for a process's whole working set.
 * The step is entered holding quiet and outside any read-side section (it
 * opens its own), so the balance set manager, which waits for grace
 * periods holding quiet, never waits for us while we wait for it. Our
 * faults are prefetches (ntmm__fault_nowait): one that finds no frame fails
 * at once with NTMM_ENOMEM, which ends the in-swap, instead of waiting for
 * frames with quiet held; the pressure check before every page keeps even
 * that rare.
 *
 * Idle tracking costs the fault path nothing new: a process is active when
 * its fault count (the per-CPU counters the fault path already keeps)
 * changed since the last scan, or when aging finds an Accessed bit (accesses
 * through valid PTEs take no fault; the balance set manager's aging and
 * ours both record them in wsm.active_ns). A process whose faults did not
 * change is aged here once its idle time would be up, so a process that
 * keeps touching resident pages is never out-swapped. The in-swap's own
 * faults count as the process's (it was just active).
 */
#include "engine.h"
#include "sync/clock.h"

typedef struct visit {
	ntmm__swapper_thread_t *s;
	uint64_t idle_ns;
} visit_t;

static void visit(ntmm_process_t *p, void *arg)
{
	visit_t *v = arg;
	if (atomic_load_explicit(&p->wsm.swapped_out, memory_order_relaxed))
		return;
	uint64_t now = ntmm__now_ns();
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

/* Works every queued in-swap (the queue may grow meanwhile). */
static void inswap_all(ntmm__swapper_thread_t *s, ntmm__thread_t *self)
{
	ntmm_engine_t *e = s->e;
	ntmm__wsm_inswap_job_t job;
	while (!ntmm__thread_should_stop(self) && ntmm__wsm_inswap_claim(e, &job)) {
		for (bool more = true; more;) {
			if (ntmm__thread_should_stop(self)) {
				job.end = NTMM__INSWAP_STOPPING;
				break;
			}
			pthread_mutex_lock(&e->systhreads.quiet);
			more = ntmm__wsm_inswap_step(&job, NTMM__HARD_CLUSTER);
			pthread_mutex_unlock(&e->systhreads.quiet);
		}
		atomic_fetch_add_explicit(&s->inswap_pages, job.pages, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->inswap_hard, job.hard, memory_order_relaxed);
		if (job.end != NTMM__INSWAP_DONE)
			atomic_fetch_add_explicit(&s->inswap_cut, 1, memory_order_relaxed);
		if (job.end == NTMM__INSWAP_PRESSURE)
			atomic_fetch_add_explicit(&s->inswap_pressure, 1, memory_order_relaxed);
		ntmm__wsm_inswap_end(e, &job);
		/* release: whoever acquires this count sees the in-swap's pages
		   valid and its counters (tests wait on it) */
		atomic_fetch_add_explicit(&s->inswaps, 1, memory_order_release);
	}
}

void ntmm__swapper_thread(ntmm__thread_t *self, void *arg)
{
	ntmm__swapper_thread_t *s = arg;
	ntmm__balance_thread_t *b = &s->e->systhreads.balance;
	ntmm_thread_register(s->e);
	/* the balance set manager's count of its wakes says whether an idle
	   scan is due (the other wakes are in-swaps); acquire: pairs with its
	   release increment */
	uint64_t scans = atomic_load_explicit(&b->swapper_wakes, memory_order_acquire);
	while (ntmm__thread_wait(self, -1)) {
		inswap_all(s, self);
		uint64_t asked = atomic_load_explicit(&b->swapper_wakes, memory_order_acquire);
		if (asked == scans || ntmm__thread_should_stop(self))
			continue;
		scans = asked;
		swap_pass(s);
		atomic_fetch_add_explicit(&s->passes, 1, memory_order_relaxed);
	}
	ntmm_thread_unregister(s->e);
}
