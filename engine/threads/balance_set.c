/*
 * The balance set manager (NTMM-REFERENCE.md §6): a timer tick
 * (cfg.balance_tick_ms, 1 s by default) and the low-memory event, which the
 * allocator signals when available frames fall below the working set
 * manager's minimum mark (ntmm__phys_set_lowmem_wake: a hook in the
 * allocator's refill and slow paths, armed once per pass). Each tick and
 * each signal runs one working set manager pass (virt/wsmgr.c); every 4th
 * tick wakes the swapper. The tick keeps its own deadline, so signals in
 * between do not delay it.
 *
 * It blocks in ntmm__thread_wait between passes and never spins: a burst
 * of allocations signals it once, and it re-arms the event an eighth of a
 * tick after its pass (at least 1 ms), so memory that stays short makes at
 * most eight extra passes per tick, not a pass per allocation batch — each
 * pass ages every set, and back-to-back agings would make every page look
 * old.
 */
#include "engine.h"
#include "sync/clock.h"

void ntmm__balance_set_thread(ntmm__thread_t *self, void *arg)
{
	ntmm__balance_thread_t *b = arg;
	ntmm_engine_t *e = b->e;
	ntmm__systhreads_t *st = &e->systhreads;
	uint64_t tick_ns = (uint64_t)e->cfg.balance_tick_ms * 1000000u;
	uint64_t gap_ns = tick_ns / 8 > 1000000u ? tick_ns / 8 : 1000000u;
	uint64_t next = ntmm__now_ns() + tick_ns;
	uint64_t rearm_at = 0; /* 0: armed */
	uint64_t ticks = 0;

	ntmm_thread_register(e);
	for (;;) {
		uint64_t now = ntmm__now_ns();
		if (rearm_at && now >= rearm_at) {
			ntmm__phys_lowmem_rearm(e);
			rearm_at = 0;
		}
		uint64_t until = rearm_at && rearm_at < next ? rearm_at : next;
		int64_t timeout = until > now ? (int64_t)(until - now) : 0;
		uint64_t before = atomic_load_explicit(&self->wakeups, memory_order_relaxed);
		if (!ntmm__thread_wait(self, timeout))
			break;
		bool signalled =
		    atomic_load_explicit(&self->wakeups, memory_order_relaxed) != before;
		now = ntmm__now_ns();
		bool tick = now >= next;
		if (tick) {
			next += tick_ns;
			if (next <= now) /* fell behind (stopped, preempted): no catch-up burst */
				next = now + tick_ns;
			ticks++;
			atomic_store_explicit(&b->ticks, ticks, memory_order_relaxed);
		}
		if (signalled)
			atomic_fetch_add_explicit(&b->lowmem_wakes, 1, memory_order_relaxed);
		if (!tick && !signalled)
			continue;

		ntmm__wsm_result_t r;
		pthread_mutex_lock(&st->quiet);
		ntmm__wsm_run(e, &r);
		pthread_mutex_unlock(&st->quiet);
		rearm_at = ntmm__now_ns() + gap_ns;
		atomic_fetch_add_explicit(&b->wsm_runs, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&b->trimmed, r.trimmed_max + r.trimmed_pressure,
		                          memory_order_relaxed);
		/* acquire: pairs with the release in ntmm__systhreads_start */
		if (tick && ticks % 4 == 0 &&
		    atomic_load_explicit(&st->swapper.started, memory_order_acquire)) {
			/* release: a reader that acquires this count also sees the
			   ticks and wsm_runs stored before it */
			atomic_fetch_add_explicit(&b->swapper_wakes, 1, memory_order_release);
			ntmm__thread_wake(&st->swapper.t);
		}
	}
	ntmm_thread_unregister(e);
}
