/*
 * The modified page writer (MiModifiedPageWriter): writes Modified pages
 * to the paging files in clusters and moves them to the tail of their
 * Standby priority, so that the allocator finds clean pages to repurpose.
 *
 * Triggers (NTMM-REFERENCE.md §6, scaled to the pool): the Modified list
 * of a node reaching phys.modified_high (min(frames/16, 16384), at least
 * 16: the phys layer signals the event when a push makes it that long), an
 * allocation running short (the allocator signals when it falls back to
 * Standby or fails), a fault that found no frame, and a 1 s timer that
 * checks the marks (free + zeroed below frames/32 counts as low). A wake
 * from a short allocator writes until Modified is empty; a timer tick
 * writes while a mark is passed.
 *
 * A batch is the virtual layer's ntmm__paging_write_batch (virt/paging.c,
 * shared with the inline reclaim of faults that find no frame): take up to
 * NTMM__MPW_BATCH pages (TRANSITION, WRITE_IN_PROGRESS; a read fault may
 * still map them, a write fault waits), free the paging-file copy a
 * re-dirtied page still names, allocate contiguous runs, write every run in
 * one submission, and finish: written pages get OriginalPte = their
 * pagefile PTE and go to the Standby tail unless re-dirtied meanwhile;
 * pages whose write failed or found no space stay Modified — nothing is
 * lost. This thread never blocks in fallocate: when every file is full the
 * segment dereference thread is asked to grow one.
 *
 * It never spins (it is SCHED_FIFO on machines with few cores): a batch
 * that placed no page at all blocks the thread until the io layer says a
 * slot was freed or a file grew (wait_for_space: wake-ups from allocators
 * short of frames meanwhile find no slot and sleep again without a batch);
 * a failed write sleeps with a growing timeout (1 ms … 256 ms). Shutdown:
 * stop is checked between batches; a batch in flight completes first.
 */
#include "engine.h"
#include "threads/writers.h"

#include <string.h>

static size_t list_sum(ntmm_engine_t *e, bool modified)
{
	size_t sum = 0;
	for (unsigned i = 0; i < e->phys.nnodes; i++) {
		ntmm__node_t *n = &e->phys.nodes[i];
		if (modified) {
			sum += atomic_load_explicit(&n->modified_pub, memory_order_relaxed);
		} else {
			sum += atomic_load_explicit(&n->free_pub, memory_order_relaxed) +
			       atomic_load_explicit(&n->zeroed_pub, memory_order_relaxed);
		}
	}
	return sum;
}

bool ntmm__mpw_wanted(ntmm_engine_t *e, bool urgent)
{
	size_t modified = list_sum(e, true);
	if (modified == 0)
		return false;
	if (urgent ||
	    modified >= atomic_load_explicit(&e->phys.modified_high, memory_order_relaxed))
		return true;
	size_t frames = e->cfg.physical_bytes / NTMM_PAGE_SIZE;
	return list_sum(e, false) < frames / 32;
}

size_t ntmm__mpw_write_batch(ntmm_engine_t *e, size_t max, int *err)
{
	/* With the system threads running, growth is the segment dereference
	   thread's (as in NT, where the modified page writer asks it to extend
	   a paging file): the real-time writer never blocks in fallocate.
	   Without them (tests, benchmarks) a batch grows the file itself. */
	bool by_request = ntmm__segderef_running(e);
	size_t unplaced = 0;
	size_t written = ntmm__paging_write_batch(e, max, !by_request, err, &unplaced);
	if (unplaced && by_request) {
		/* every file full: the segment dereference thread grows one and
		   wakes us; meanwhile these pages stay Modified */
		int idx = ntmm__pagefile_growable(&e->io);
		if (idx >= 0)
			ntmm__segderef_request_grow(e, (unsigned)idx, unplaced);
	}
	return written;
}

#define TICK_NS        (1000ll * 1000 * 1000)
#define BACKOFF_MIN_NS (1000ll * 1000)
#define BACKOFF_MAX_NS (256ll * 1000 * 1000)

/* No page could be placed: sleep until a slot is freed or a file grows
   (the io layer signals our wake event once per arm, paging-file frees and
   growth both do) or the thread must stop. Other wake-ups (an allocator
   short of frames, a fault) find no slot and sleep again without trying a
   batch: nothing has changed for us. false if the thread must stop. */
static bool wait_for_space(ntmm__thread_t *self, ntmm__mpw_t *w)
{
	ntmm_engine_t *e = w->e;
	atomic_fetch_add_explicit(&w->space_waits, 1, memory_order_relaxed);
	while (ntmm__pagefile_space_arm(&e->io))
		if (!ntmm__thread_wait(self, TICK_NS))
			return false;
	return true;
}

void ntmm__modified_writer_thread(ntmm__thread_t *self, void *arg)
{
	ntmm__mpw_t *w = arg;
	ntmm_engine_t *e = w->e;
	ntmm__rcu_thread_online(); /* paging-file allocation walks the RCU file list */
	ntmm__pagefile_set_space_wake(&e->io, &self->wake);
	int64_t backoff = 0; /* after a failed write (NTMM_EIO) */
	bool urgent = false;
	while (!ntmm__thread_should_stop(self)) {
		if (ntmm__mpw_wanted(e, urgent)) {
			int err;
			size_t k = ntmm__mpw_write_batch(e, NTMM__MPW_BATCH, &err);
			if (k) {
				atomic_fetch_add_explicit(&w->batches, 1, memory_order_relaxed);
				atomic_fetch_add_explicit(&w->pages, k, memory_order_relaxed);
			}
			if (!err) {
				backoff = 0;
				continue;
			}
			atomic_fetch_add_explicit(&w->failures, 1, memory_order_relaxed);
			if (err == NTMM_ECOMMIT) {
				/* out of space: block until some is freed (k pages were
				   placed; the rest found none) */
				if (k == 0 && !wait_for_space(self, w))
					break;
				urgent = true;
				continue;
			}
			/* a write failed (the pages stay Modified): retry after a
			   growing pause, sleeping */
			backoff = backoff ? backoff * 2 : BACKOFF_MIN_NS;
			if (backoff > BACKOFF_MAX_NS)
				backoff = BACKOFF_MAX_NS;
			if (!ntmm__thread_wait(self, backoff))
				break;
			urgent = true;
			continue;
		}
		/* nothing to do: sleep (a wake that came while working is not
		   lost: the wait returns at once) */
		uint64_t before = atomic_load_explicit(&self->wakeups, memory_order_relaxed);
		if (!ntmm__thread_wait(self, TICK_NS))
			break;
		bool signalled =
		    atomic_load_explicit(&self->wakeups, memory_order_relaxed) != before;
		urgent = signalled;
		if (signalled && ntmm__mpw_wanted(e, true))
			atomic_fetch_add_explicit(&w->trigger_wakes, 1, memory_order_relaxed);
	}
	ntmm__pagefile_set_space_wake(&e->io, NULL);
	ntmm__rcu_thread_offline();
}
