/*
 * Demand-paging glue (paging.h): paging-file slot release for PTEs and
 * OriginalPte values, the writer-batch lock the slot audit (pfaudit.c)
 * excludes batches with, the in-page wait buckets for collided faults, the
 * wake-ups of the modified page writer, and the commit limit over frames
 * plus paging-file space actually obtained.
 */
#include "virt/paging.h"
#include "engine.h"

__thread unsigned ntmm__fault_kind __attribute__((tls_model("initial-exec")));
__thread bool ntmm__fault_nowait __attribute__((tls_model("initial-exec")));

unsigned ntmm_last_fault_kind(void)
{
	return ntmm__fault_kind;
}

/* phys callback: a frame whose OriginalPte is `original` was freed. */
static void original_gone(ntmm_engine_t *e, uint64_t original)
{
	ntmm__pagefile_pte_release(e, original);
}

void ntmm__paging_init(ntmm_engine_t *e)
{
	ntmm__paging_t *pg = &e->virt.paging;
	for (unsigned i = 0; i < NTMM__INPAGE_BUCKETS; i++)
		ntmm__event_init(&pg->inpage[i]);
	ntmm__event_init(&pg->avail);
	atomic_store_explicit(&pg->writer, NULL, memory_order_relaxed);
	pthread_mutex_init(&pg->writer_lock, NULL);
	e->phys.original_gone = original_gone;
	/* the writer's wake mark for the Modified list: NTMM-REFERENCE.md §6
	   uses min(available / 16, 16384) pages; scaled to the pool */
	size_t frames = e->cfg.physical_bytes / NTMM_PAGE_SIZE;
	size_t high = frames / 16;
	atomic_store_explicit(&e->phys.modified_high,
	                      high < 16      ? 16
	                      : high > 16384 ? 16384
	                                     : high,
	                      memory_order_relaxed);
}

void ntmm__paging_fini(ntmm_engine_t *e)
{
	pthread_mutex_destroy(&e->virt.paging.writer_lock);
}

void ntmm__paging_writer_batch_begin(ntmm_engine_t *e)
{
	pthread_mutex_lock(&e->virt.paging.writer_lock);
}

void ntmm__paging_writer_batch_end(ntmm_engine_t *e)
{
	pthread_mutex_unlock(&e->virt.paging.writer_lock);
}

bool ntmm__pte_is_pagefile(uint64_t pte)
{
	return ntmm__pte_is_software(pte) && !ntmm__pte_is_demand_zero(pte) &&
	       ntmm__pfloc_valid(ntmm__pfloc_from_pte(pte));
}

void ntmm__pagefile_pte_release(ntmm_engine_t *e, uint64_t pte)
{
	if (ntmm__pte_is_pagefile(pte))
		ntmm__pagefile_free(&e->io, ntmm__pfloc_from_pte(pte), 1);
}

static ntmm__event_t *bucket(ntmm_engine_t *e, ntmm__pfn_t pfn)
{
	return &e->virt.paging.inpage[(pfn * 0x9e3779b1u) >> 26];
}

void ntmm__inpage_wait(ntmm_engine_t *e, ntmm__pfn_t pfn, uint64_t pte_addr, bool write)
{
	ntmm__event_t *ev = bucket(e, pfn);
	/* counted before the check: a read's completion signals only buckets
	   with a waiter (ntmm__inpage_wake_many) */
	uint32_t key = ntmm__event_enter(ev);
	ntmm__pfn_entry_t *pe = ntmm__pfn(e, pfn);
	/* seq_cst: Dekker with the completion's seq_cst state CAS followed by
	   its waiters load (and acquire: pairs with that CAS's release) */
	uint64_t s = atomic_load_explicit(&pe->state, memory_order_seq_cst);
	uint64_t busy = NTMM__PFN_READ_IN_PROGRESS | (write ? NTMM__PFN_WRITE_IN_PROGRESS : 0);
	if (!(s & busy) || atomic_load_explicit(&pe->pte, memory_order_relaxed) != pte_addr) {
		ntmm__event_leave(ev);
		return;
	}
	/* the timeout is a safety net only: completions always signal */
	ntmm__event_wait_entered(ev, key, 50 * 1000 * 1000);
}

void ntmm__inpage_wake_many(ntmm_engine_t *e, const ntmm__pfn_t *pfns, size_t n, bool sc_done)
{
	uint64_t done = 0; /* one signal per bucket */
	for (size_t i = 0; i < n; i++) {
		unsigned b = (unsigned)(bucket(e, pfns[i]) - e->virt.paging.inpage);
		if (!(done & (1ull << b))) {
			done |= 1ull << b;
			if (sc_done)
				ntmm__event_signal_waiters(&e->virt.paging.inpage[b]);
			else
				ntmm__event_signal(&e->virt.paging.inpage[b]);
		}
	}
}

void ntmm__paging_wake_writer(ntmm_engine_t *e)
{
	/* acquire: pairs with the release store in systhreads start/stop; the
	   event outlives the pointer (stop clears it before joining) */
	ntmm__event_t *w = atomic_load_explicit(&e->virt.paging.writer, memory_order_acquire);
	if (w)
		ntmm__event_signal(w);
}

bool ntmm__paging_wait_avail(ntmm_engine_t *e, int64_t timeout_ns)
{
	ntmm__event_t *ev = &e->virt.paging.avail;
	uint32_t key = ntmm__event_prepare(ev);
	ntmm__paging_wake_writer(e);
	return ntmm__event_wait(ev, key, timeout_ns);
}
