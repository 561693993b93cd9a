/*
 * Demand-paging glue (paging.h): paging-file slot release for PTEs and
 * OriginalPte values, the writer-batch lock the slot audit (pfaudit.c)
 * excludes batches with, the in-page wait buckets for collided faults, the
 * wake-ups of the modified page writer, and the modified page writer's
 * batch itself (Modified pages → paging file → Standby), which the writer
 * thread (threads/modified_writer.c) and the inline reclaim of faults that
 * find no frame (wsmgr.c) both run, with the test of whether the paging
 * files' free space is short.
 */
#include "virt/paging.h"
#include "engine.h"

#include <string.h>

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

/* ------------------------------------------------------ the write batch */

/* The modified page writer's batch (paging.h). The list order is trim
   order; the batch writes in PTE order (virtual order within a page
   table), so neighbours in the address space land in neighbouring slots
   and hard faults read them back as one cluster. */
typedef struct keyed {
	uint64_t key;
	ntmm__pfn_t pfn;
} keyed_t;

static void sort_by_pte(ntmm_engine_t *e, ntmm__pfn_t *pfns, size_t n)
{
	/* bottom-up merge sort: the list order is trim order, which the
	   working-set compaction scrambles, so the input is far from sorted
	   and a quadratic sort would not do */
	keyed_t a[NTMM__WRITE_BATCH], b[NTMM__WRITE_BATCH];
	bool sorted = true;
	for (size_t i = 0; i < n; i++) {
		/* relaxed: pte is fixed while we hold the I/O reference */
		a[i].key = atomic_load_explicit(&ntmm__pfn(e, pfns[i])->pte, memory_order_relaxed);
		a[i].pfn = pfns[i];
		sorted = sorted && (i == 0 || a[i - 1].key <= a[i].key);
	}
	if (sorted)
		return;
	keyed_t *src = a, *dst = b;
	for (size_t w = 1; w < n; w *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * w) {
			size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
			size_t i = lo, j = mid, k = lo;
			while (i < mid && j < hi)
				dst[k++] = src[j].key < src[i].key ? src[j++] : src[i++];
			while (i < mid)
				dst[k++] = src[i++];
			while (j < hi)
				dst[k++] = src[j++];
		}
		keyed_t *t = src;
		src = dst;
		dst = t;
	}
	for (size_t i = 0; i < n; i++)
		pfns[i] = src[i].pfn;
}

static size_t write_batch(ntmm_engine_t *e, size_t max, bool grow, int *err, size_t *unplaced)
{
	ntmm__pfn_t pfns[NTMM__WRITE_BATCH];
	uint64_t orig[NTMM__WRITE_BATCH];
	void *pages[NTMM__WRITE_BATCH];
	ntmm__pfio_t ios[NTMM__WRITE_BATCH];
	int first_err = 0;
	if (max > NTMM__WRITE_BATCH)
		max = NTMM__WRITE_BATCH;
	size_t n = ntmm__page_writer_take(e, NTMM__ALLOC_NODE_ANY, pfns, max);
	if (err)
		*err = 0;
	if (unplaced)
		*unplaced = 0;
	if (n == 0)
		return 0;
	/* PTE order = virtual order within a page table: neighbours in the
	   address space land in neighbouring slots, so hard faults can read
	   them back as one cluster (the list order is trim order) */
	sort_by_pte(e, pfns, n);

	ntmm__pfloc_t stale = NTMM__PFLOC_NONE; /* a run of stale slots to free */
	size_t nstale = 0;
	for (size_t i = 0; i < n; i++) {
		ntmm__pfn_entry_t *pe = ntmm__pfn(e, pfns[i]);
		/* relaxed: while WRITE_IN_PROGRESS with our I/O reference only we
		   write OriginalPte (take's lock release ordered earlier writes) */
		uint64_t o = atomic_load_explicit(&pe->original_pte, memory_order_relaxed);
		if (ntmm__pte_is_pagefile(o)) {
			/* re-dirtied since its last write: that copy is stale (freed in
			   runs: pages written together come back together) */
			ntmm__pfloc_t loc = ntmm__pfloc_from_pte(o);
			if (nstale && loc == ntmm__pfloc_add(stale, nstale) &&
			    nstale < UINT32_MAX) {
				nstale++;
			} else {
				if (nstale)
					ntmm__pagefile_free(&e->io, stale, nstale);
				stale = loc;
				nstale = 1;
			}
			o &= NTMM__PTE_PROT_MASK;
			atomic_store_explicit(&pe->original_pte, o, memory_order_relaxed);
		}
		orig[i] = o & NTMM__PTE_PROT_MASK;
		pages[i] = ntmm__pfn_host(e, pfns[i]);
	}
	if (nstale)
		ntmm__pagefile_free(&e->io, stale, nstale);

	/* runs of contiguous slots; pages that find no space stay Modified
	   (growth is the caller's choice: see paging.h) */
	size_t placed = 0;
	unsigned nio = 0;
	while (placed < n) {
		ntmm__pfloc_t loc;
		size_t got;
		int r = grow ? ntmm__pagefile_alloc(&e->io, n - placed, 1, &loc, &got)
		             : ntmm__pagefile_alloc_nogrow(&e->io, n - placed, 1, &loc, &got);
		if (r) {
			first_err = NTMM_ECOMMIT;
			break;
		}
		for (size_t j = 0; j < got; j++)
			orig[placed + j] |= ntmm__pfloc_to_pte(ntmm__pfloc_add(loc, j));
		ios[nio].loc = loc;
		ios[nio].pages = &pages[placed];
		ios[nio].npages = (unsigned)got;
		ios[nio].result = 0;
		nio++;
		placed += got;
	}
	if (unplaced)
		*unplaced = n - placed;
	if (placed < n)
		ntmm__page_writer_done(e, pfns + placed, NULL, n - placed, false);

	size_t written = 0;
	if (nio) {
		ntmm__pagefile_io(&e->io, true, ios, nio);
		size_t off = 0;
		for (unsigned k = 0; k < nio; k++) {
			size_t cnt = ios[k].npages;
			if (ios[k].result == 0) {
				ntmm__page_writer_done(e, pfns + off, orig + off, cnt, true);
				written += cnt;
			} else {
				ntmm__pagefile_free(&e->io, ios[k].loc, cnt);
				ntmm__page_writer_done(e, pfns + off, NULL, cnt, false);
				if (!first_err)
					first_err = NTMM_EIO;
			}
			off += cnt;
		}
	}
	/* write faults waiting for these pages may go on, and faults waiting
	   for frames if any went to Standby */
	ntmm__inpage_wake_many(e, pfns, n, false);
	if (written)
		ntmm__event_signal(&e->virt.paging.avail);
	if (err)
		*err = first_err;
	return written;
}

size_t ntmm__paging_write_batch(ntmm_engine_t *e, size_t max, bool grow, int *err, size_t *unplaced)
{
	/* the slot audit must not see a batch half done (paging.h) */
	ntmm__paging_writer_batch_begin(e);
	size_t written = write_batch(e, max, grow, err, unplaced);
	ntmm__paging_writer_batch_end(e);
	return written;
}

bool ntmm__paging_slots_short(ntmm_engine_t *e)
{
	uint64_t room, size, max;
	ntmm__pagefile_free_slots(&e->io, &room);
	ntmm__pagefile_totals(&e->io, &size, &max);
	uint64_t mark = max / 32 < NTMM__WRITE_BATCH ? max / 32 : NTMM__WRITE_BATCH;
	return room < (mark ? mark : 1);
}
