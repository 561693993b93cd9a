/*
 * The zero page thread of one NUMA node: moves Free frames to Zeroed
 * through the physical layer's zeroing pass (non-temporal stores, batches
 * of NTMM__ZERO_BATCH under a briefly held list lock) and sleeps on its
 * wake event whenever the pass reports no more work — Free is empty or
 * Zeroed is above its high-water mark. Frees that put frames on the node's
 * Free list while Zeroed is low signal that event. It never spins: with
 * the seed priority 23 it runs SCHED_FIFO where permitted.
 */
#include "engine.h"

/* pages per pass between stop checks: 64 × 4 KiB ≈ tens of µs */
#define ZERO_PASS_PAGES 64

void ntmm__zero_page_thread(ntmm__thread_t *self, void *arg)
{
	ntmm__zero_thread_t *z = arg;
	while (!ntmm__thread_should_stop(self)) {
		bool more = false;
		ntmm__phys_zero_pass(z->e, z->node, ZERO_PASS_PAGES, &more);
		if (more)
			continue;
		/* a wake after the pass found nothing is not lost: the wait
		   returns at once for it */
		if (!ntmm__thread_wait(self, -1))
			break;
	}
}
