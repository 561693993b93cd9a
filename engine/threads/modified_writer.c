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
 * A batch: take up to NTMM__MPW_BATCH pages (TRANSITION, WRITE_IN_PROGRESS;
 * a read fault may still map them, a write fault waits), free the paging-
 * file copy a re-dirtied page still names (paging.h: ownership), allocate
 * contiguous runs (when every file is full, the segment dereference
 * thread is asked to grow one and wakes this thread when it has), write
 * every run in one submission, and finish: written pages
 * get OriginalPte = their pagefile PTE and go to the Standby tail unless
 * re-dirtied meanwhile; pages whose write failed or found no space stay
 * Modified with their slots freed — nothing is lost — and the thread backs
 * off by sleeping on its event with a growing timeout (1 ms … 256 ms), so
 * it never spins. Shutdown: stop is checked between batches; a batch in
 * flight completes first. A batch holds the paging layer's writer_lock:
 * its slots have no owner the slot audit could see until the batch ends.
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

typedef struct keyed {
	uint64_t key;
	ntmm__pfn_t pfn;
} keyed_t;

static void sort_by_pte(ntmm_engine_t *e, ntmm__pfn_t *pfns, size_t n)
{
	/* bottom-up merge sort: the list order is trim order, which the
	   working-set compaction scrambles (insertion sort went quadratic) */
	keyed_t a[NTMM__MPW_BATCH], b[NTMM__MPW_BATCH];
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

static size_t write_batch(ntmm_engine_t *e, size_t max, int *err)
{
	ntmm__pfn_t pfns[NTMM__MPW_BATCH];
	uint64_t orig[NTMM__MPW_BATCH];
	void *pages[NTMM__MPW_BATCH];
	ntmm__pfio_t ios[NTMM__MPW_BATCH];
	int first_err = 0;
	if (max > NTMM__MPW_BATCH)
		max = NTMM__MPW_BATCH;
	size_t n = ntmm__page_writer_take(e, NTMM__ALLOC_NODE_ANY, pfns, max);
	if (err)
		*err = 0;
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

	/* runs of contiguous slots; pages that find no space stay Modified.
	   With the system threads running, growth is the segment dereference
	   thread's (as in NT, where the modified page writer asks it to extend
	   a paging file): this real-time thread never blocks in fallocate.
	   Without them (tests, benchmarks) a batch grows the file itself. */
	bool grow_by_request = ntmm__segderef_running(e);
	size_t placed = 0;
	unsigned nio = 0;
	while (placed < n) {
		ntmm__pfloc_t loc;
		size_t got;
		int r = grow_by_request
		            ? ntmm__pagefile_alloc_nogrow(&e->io, n - placed, 1, &loc, &got)
		            : ntmm__pagefile_alloc(&e->io, n - placed, 1, &loc, &got);
		if (r) {
			/* every file full: the segment dereference thread grows one
			   (and wakes us); meanwhile these pages stay Modified */
			int idx = grow_by_request ? ntmm__pagefile_growable(&e->io) : -1;
			if (idx >= 0)
				ntmm__segderef_request_grow(e, (unsigned)idx, n - placed);
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
	/* write faults waiting for these pages may go on */
	ntmm__inpage_wake_many(e, pfns, n, false);
	ntmm__event_signal(&e->virt.paging.avail);
	if (err)
		*err = first_err;
	return written;
}

size_t ntmm__mpw_write_batch(ntmm_engine_t *e, size_t max, int *err)
{
	/* the slot audit must not see a batch half done (virt/paging.h) */
	ntmm__paging_writer_batch_begin(e);
	size_t written = write_batch(e, max, err);
	ntmm__paging_writer_batch_end(e);
	return written;
}

#define TICK_NS        (1000ll * 1000 * 1000)
#define BACKOFF_MIN_NS (1000ll * 1000)
#define BACKOFF_MAX_NS (256ll * 1000 * 1000)

void ntmm__modified_writer_thread(ntmm__thread_t *self, void *arg)
{
	ntmm__mpw_t *w = arg;
	ntmm_engine_t *e = w->e;
	ntmm__rcu_thread_online(); /* paging-file allocation walks the RCU file list */
	int64_t backoff = 0;
	bool urgent = false;
	while (!ntmm__thread_should_stop(self)) {
		if (backoff == 0 && ntmm__mpw_wanted(e, urgent)) {
			int err;
			size_t k = ntmm__mpw_write_batch(e, NTMM__MPW_BATCH, &err);
			if (k) {
				atomic_fetch_add_explicit(&w->batches, 1, memory_order_relaxed);
				atomic_fetch_add_explicit(&w->pages, k, memory_order_relaxed);
			}
			if (err) {
				atomic_fetch_add_explicit(&w->failures, 1, memory_order_relaxed);
				backoff = BACKOFF_MIN_NS;
			}
			continue;
		}
		/* nothing to do, or backing off after a failure: sleep (a wake that
		   came while working is not lost: the wait returns at once) */
		uint64_t before = atomic_load_explicit(&self->wakeups, memory_order_relaxed);
		if (!ntmm__thread_wait(self, backoff ? backoff : TICK_NS))
			break;
		bool signalled =
		    atomic_load_explicit(&self->wakeups, memory_order_relaxed) != before;
		if (backoff) {
			/* retry after the timeout; keep growing it while failing */
			int64_t next = backoff * 2;
			if (ntmm__mpw_wanted(e, true)) {
				int err;
				size_t k = ntmm__mpw_write_batch(e, NTMM__MPW_BATCH, &err);
				if (k)
					atomic_fetch_add_explicit(&w->pages, k,
					                          memory_order_relaxed);
				if (!err) {
					backoff = 0;
					continue;
				}
				atomic_fetch_add_explicit(&w->failures, 1, memory_order_relaxed);
			}
			backoff = next > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : next;
			if (!ntmm__mpw_wanted(e, true))
				backoff = 0;
			continue;
		}
		urgent = signalled;
		if (signalled && ntmm__mpw_wanted(e, true))
			atomic_fetch_add_explicit(&w->trigger_wakes, 1, memory_order_relaxed);
	}
	ntmm__rcu_thread_offline();
}
