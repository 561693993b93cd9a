/*
 * Faults through prototype PTEs (NTMM-REFERENCE.md §9 "Resolving"), called
 * by the fault handler (virt/fault.c) for a view page whose process PTE is
 * 0 or a prototype PTE, and for a write to a shared page of a WRITECOPY
 * view. Runs with ws_lock shared, inside the caller's read-side section.
 *
 * Under the prototype's stripe lock, by prototype state:
 *   valid       share +1 (a soft fault: the page is in another working set)
 *   transition  reclaim from Standby/Modified (soft fault); in I/O: the
 *               caller waits on the frame without ws_lock and retries
 *   demand-zero a zeroed frame becomes the prototype's page
 *   pagefile    a frame, READ_IN_PROGRESS, published as a transition
 *               prototype; the caller reads the slot without ws_lock
 *   0 (file)    the same for the file: the faulting page and up to 15 of
 *               the following pages of the view whose prototypes are 0 too
 *               (one chunk of prototypes, one vectored read), the tail past
 *               the end of the file zero-filled
 * After a read the pages go to Standby (ntmm__section_fault_io_done) and
 * the fault is dispatched again, which finds the faulting page there (a
 * soft fault, counted as the hard fault it was).
 * Then the process PTE: valid, naming the shared frame, with the view's
 * access (read-only on a WRITECOPY view) — or, for a write to a WRITECOPY
 * view, a copy: a new frame with the page's bytes becomes a private page
 * of the process (its PFN names the process PTE, OriginalPte demand-zero,
 * so it pages to the paging files) and the share on the shared frame is
 * dropped.
 */
#include "engine.h"
#include "section/section.h"
#include "virt/frame.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#define PAGE         NTMM_PAGE_SIZE
#define FAULT_AROUND 15u /* following pages a soft fault maps with it */

/* Share +1 on an ACTIVE frame whose prototype is valid (stripe lock held:
   the share cannot reach 0 meanwhile). */
static uint64_t add_share_next(uint64_t s, void *arg)
{
	(void)arg;
	ntmm__assert(ntmm__pfn_loc(s) == NTMM__LOC_ACTIVE && ntmm__pfn_shares(s) > 0);
	return s + NTMM__PFN_SHARE_ONE;
}

static void add_share(ntmm_engine_t *e, ntmm__pfn_t pfn)
{
	ntmm__pfn_update(ntmm__vpfn(e, pfn), add_share_next, NULL);
}

/* Starts the read of prototype `proto` (value old) into a new frame; false
   if no frame. Stripe lock held. */
static bool read_start(ntmm_engine_t *e, _Atomic uint64_t *proto, uint64_t old, unsigned flags,
                       ntmm__pfn_t *out)
{
	ntmm__pfn_t pfn;
	if (ntmm__page_alloc(e, flags, NTMM__ALLOC_NODE_ANY, NTMM__COLOUR_ANY, &pfn))
		return false;
	ntmm__page_read_begin(e, pfn, (uint64_t)(uintptr_t)proto, old);
	/* release: the frame's READ_IN_PROGRESS state is visible to whoever
	   reads the transition prototype with acquire */
	atomic_store_explicit(proto, ntmm__pte_make_transition(pfn, ntmm__pte_prot(old)),
	                      memory_order_release);
	*out = pfn;
	return true;
}

/* Where a fault's prototype is and how it may be used. */
typedef struct where {
	ntmm__segment_t *seg;
	uint64_t idx;
	_Atomic uint64_t *proto;
	bool cow;             /* writes copy (a WRITECOPY view, a clone) */
	unsigned mmprot;      /* protection code for a new page's OriginalPte */
	uint64_t cluster_end; /* segment pages a file read may cluster up to */
	unsigned around;      /* following pages a soft fault may map too */
} where_t;

/* Fault-around: after a fault through a prototype, the following pages of
   the same view, protection run, leaf table and prototype chunk whose
   prototypes are valid (resident in another working set) are mapped too,
   read-only unless the view writes, without Accessed (they were not used).
   The kernel maps page-cache neighbours of a file fault the same way; it
   turns the first pass over a shared resident range into one fault per 16
   pages. One stripe lock covers 16 aligned prototypes. */
static void fault_around(ntmm_process_t *p, const where_t *w, uint64_t page, _Atomic uint64_t *pte,
                         uint64_t bits)
{
	ntmm_engine_t *e = p->e;
	pthread_mutex_t *held = NULL;
	bits &= ~(uint64_t)(NTMM__PTE_ACCESSED | NTMM__PTE_DIRTY);
	for (unsigned i = 1; i <= w->around; i++) {
		uint64_t j = w->idx + i;
		if (j % NTMM__PROTO_PER_CHUNK == 0)
			break; /* the next chunk's prototypes are elsewhere */
		_Atomic uint64_t *q = pte + i;
		uint64_t o = atomic_load_explicit(q, memory_order_acquire);
		if (o != 0 && !ntmm__pte_is_prototype(o))
			continue;
		pthread_mutex_t *lk = ntmm__proto_stripe(w->seg, j);
		if (lk != held) {
			if (held)
				pthread_mutex_unlock(held);
			pthread_mutex_lock(lk);
			held = lk;
		}
		uint64_t v = atomic_load_explicit(w->proto + i, memory_order_acquire);
		if (!ntmm__pte_is_valid(v))
			continue;
		ntmm__pfn_t pfn = ntmm__pte_pfn(v);
		uint32_t slot;
		if (ntmm__wsl_reserve(p, &slot))
			break;
		add_share(e, pfn);
		/* release: pairs with translate's acquire load */
		if (atomic_compare_exchange_strong_explicit(
		        q, &o, ntmm__pte_make_valid(pfn, slot, bits), memory_order_release,
		        memory_order_relaxed)) {
			if (o == 0)
				ntmm__pt_note_fill(p, q);
			ntmm__wsl_fill(p, slot, page + (uint64_t)i * NTMM_PAGE_SIZE);
			continue;
		}
		/* a fault of another thread got there first: our share goes (the
		   prototype is valid, so it is not the last) */
		ntmm__wsl_hole(p, slot);
		bool last = ntmm__page_unmap(e, pfn, false, false);
		ntmm__assert(!last);
		(void)last;
	}
	if (held)
		pthread_mutex_unlock(held);
}

/* The prototype resolved to a frame with one share for the caller: 0
   (*pfn), or a code for the caller. */
static int resolve(ntmm_process_t *p, const where_t *w, uint64_t page, bool write,
                   ntmm__sfault_t *c, ntmm__pfn_t *pfnp, bool *soft)
{
	ntmm_engine_t *e = p->e;
	ntmm__segment_t *seg = w->seg;
	uint64_t idx = w->idx;
	_Atomic uint64_t *proto = w->proto;
	uint64_t proto_addr = (uint64_t)(uintptr_t)proto;
	if (c->ready != NTMM__PFN_NONE) {
		/* the read this fault did: its share is ours if the prototype
		   still names it (it does unless the view went meanwhile) */
		uint64_t v = atomic_load_explicit(proto, memory_order_acquire);
		if (ntmm__pte_is_valid(v) && ntmm__pte_pfn(v) == c->ready) {
			*pfnp = c->ready;
			c->ready = NTMM__PFN_NONE;
			*soft = false;
			return 0;
		}
	}
	pthread_mutex_t *lk = ntmm__proto_stripe(seg, idx);
	pthread_mutex_lock(lk);
	uint64_t old = atomic_load_explicit(proto, memory_order_acquire);
	if (ntmm__pte_is_valid(old)) {
		ntmm__pfn_t pfn = ntmm__pte_pfn(old);
		add_share(e, pfn);
		pthread_mutex_unlock(lk);
		*pfnp = pfn;
		*soft = true;
		return 0;
	}
	if (ntmm__pte_is_transition(old)) {
		ntmm__pfn_t pfn = ntmm__pte_pfn(old);
		/* a write to a copy-on-write view only reads the shared page */
		int r = ntmm__page_reclaim(e, pfn, proto_addr, write && !w->cow);
		if (r == 0) {
			atomic_store_explicit(proto, ntmm__pte_make_valid(pfn, 0, 0),
			                      memory_order_release);
			pthread_mutex_unlock(lk);
			*pfnp = pfn;
			*soft = true;
			return 0;
		}
		pthread_mutex_unlock(lk);
		if (r == NTMM_EBUSY) {
			c->pfn[0] = pfn;
			c->first = proto_addr; /* the wait's PTE address */
			return NTMM__SFAULT_WAIT;
		}
		return NTMM__SFAULT_RETRY; /* repurposed meanwhile: read the prototype again */
	}
	unsigned mmprot = w->mmprot;
	bool zero = seg->fd < 0 && (ntmm__pte_is_demand_zero(old) || (!old && seg->commit_all));
	if (seg->fd < 0 && !old && !seg->commit_all) {
		pthread_mutex_unlock(lk);
		NTMM__STAT_ADD(&e->stats, access_violations, 1);
		return ntmm__error(NTMM_EACCESS,
		                   "access violation at %#llx: section page not committed "
		                   "(SEC_RESERVE)",
		                   (unsigned long long)page);
	}
	if (zero) {
		ntmm__pfn_t pfn;
		int err = ntmm__page_alloc(e, NTMM__ALLOC_ZERO, NTMM__ALLOC_NODE_ANY, (uint32_t)idx,
		                           &pfn);
		if (err) {
			pthread_mutex_unlock(lk);
			return err == NTMM_ENOMEM ? NTMM__SFAULT_NOFRAME : err;
		}
		ntmm__pfn_entry_t *pe = ntmm__vpfn(e, pfn);
		atomic_store_explicit(&pe->pte, proto_addr, memory_order_relaxed);
		atomic_store_explicit(&pe->original_pte,
		                      old ? old : ntmm__pte_make_demand_zero(mmprot),
		                      memory_order_relaxed);
		/* release: the zeroed frame and its PFN fields before the PTE */
		atomic_store_explicit(proto, ntmm__pte_make_valid(pfn, 0, 0), memory_order_release);
		pthread_mutex_unlock(lk);
		NTMM__STAT_ADD(&e->stats, demand_zero_faults, 1);
		ntmm__fault_kind = NTMM_FAULT_DEMAND_ZERO;
		*pfnp = pfn;
		*soft = false;
		return 0;
	}
	/* a read: paging-file slot, or the file */
	c->seg = seg;
	c->first = idx;
	c->self = 0;
	c->n = 0;
	if (seg->fd < 0) {
		if (!ntmm__pte_is_pagefile(old)) {
			pthread_mutex_unlock(lk);
			return ntmm__error(NTMM_EINVAL, "bad prototype PTE %#llx",
			                   (unsigned long long)old);
		}
		if (!read_start(e, proto, old, 0, &c->pfn[0])) {
			pthread_mutex_unlock(lk);
			return NTMM__SFAULT_NOFRAME; /* no frame */
		}
		c->pf_pte = old;
		c->n = 1;
		pthread_mutex_unlock(lk);
		return NTMM__SFAULT_IO;
	}
	if (!read_start(e, proto, 0, 0, &c->pfn[0])) {
		pthread_mutex_unlock(lk);
		return NTMM__SFAULT_NOFRAME;
	}
	c->n = 1;
	pthread_mutex_unlock(lk);
	/* the cluster: following pages of the view and of this prototype
	   chunk (neighbouring words) that are in the file too, from free
	   frames only (never repurposing Standby for a guess) */
	uint64_t seg_end = atomic_load_explicit(&seg->npages, memory_order_relaxed);
	for (unsigned i = 1; i < 16; i++) {
		uint64_t j = idx + i;
		if (j >= w->cluster_end || j >= seg_end || j % NTMM__PROTO_PER_CHUNK == 0)
			break;
		_Atomic uint64_t *q = proto + i;
		pthread_mutex_t *lj = ntmm__proto_stripe(seg, j);
		pthread_mutex_lock(lj);
		bool ok = atomic_load_explicit(q, memory_order_acquire) == 0 &&
		          read_start(e, q, 0, NTMM__ALLOC_NO_STANDBY, &c->pfn[i]);
		pthread_mutex_unlock(lj);
		if (!ok)
			break;
		c->n++;
	}
	return NTMM__SFAULT_IO;
}

void ntmm__section_fault_end(ntmm__sfault_t *c)
{
	if (c->ready == NTMM__PFN_NONE)
		return;
	/* never mapped by a PTE: no grace period needed */
	ntmm__section_unshare(c->e, c->ready, false, NULL);
	c->ready = NTMM__PFN_NONE;
}

int ntmm__section_fault_read(ntmm_engine_t *e, ntmm__sfault_t *c)
{
	void *pages[16];
	for (unsigned i = 0; i < c->n; i++)
		pages[i] = ntmm__pfn_host(e, c->pfn[i]);
	if (c->seg->fd < 0)
		return ntmm__pagefile_read(&e->io, ntmm__pfloc_from_pte(c->pf_pte), pages, c->n)
		           ? NTMM_EIO
		           : 0;
	int r = ntmm__segment_pread(c->seg, pages, c->n, c->first);
	if (r)
		return ntmm__error(NTMM_EIO, "in-page error: reading the mapped file at %#llx: %s",
		                   (unsigned long long)(c->first * PAGE), strerror(-r));
	return 0;
}

void ntmm__section_fault_io_done(ntmm_engine_t *e, ntmm__sfault_t *c, bool ok)
{
	ntmm__segment_t *seg = c->seg;
	for (unsigned i = 0; i < c->n; i++) {
		ntmm__pfn_t pfn = c->pfn[i];
		uint64_t idx = c->first + i;
		_Atomic uint64_t *proto = ntmm__proto(seg, idx, false);
		pthread_mutex_t *lk = ntmm__proto_stripe(seg, idx);
		uint64_t orig =
		    atomic_load_explicit(&ntmm__vpfn(e, pfn)->original_pte, memory_order_relaxed);
		if (!ok) {
			pthread_mutex_lock(lk);
			uint64_t tr = atomic_load_explicit(proto, memory_order_relaxed);
			if (ntmm__pte_is_transition(tr) && ntmm__pte_pfn(tr) == pfn)
				atomic_store_explicit(proto, orig, memory_order_release);
			/* the slot (paging-file sections) belongs to the prototype again */
			atomic_store_explicit(&ntmm__vpfn(e, pfn)->original_pte, 0,
			                      memory_order_relaxed);
			pthread_mutex_unlock(lk);
			ntmm__page_read_done(e, pfn, false);
			continue;
		}
		if (ntmm__page_read_done(e, pfn, true))
			continue; /* deleted during the read (the segment went) */
		if (seg->fd >= 0)
			ntmm__page_set_mapped(e, pfn);
		if (i == c->self) {
			/* the faulting page keeps the share read_done gave, for the
			   retried dispatch to map without a trip through Standby */
			pthread_mutex_lock(lk);
			atomic_store_explicit(proto, ntmm__pte_make_valid(pfn, 0, 0),
			                      memory_order_release);
			pthread_mutex_unlock(lk);
			c->ready = pfn;
			c->e = e;
			continue;
		}
		/* to Standby: nobody mapped it yet, so no grace period is needed;
		   the retried fault reclaims the faulting page from there */
		if (ntmm__page_unmap(e, pfn, false, false))
			ntmm__page_release_batch(e, &pfn, 1);
	}
	ntmm__inpage_wake_many(e, c->pfn, c->n, true);
}

static int proto_fault(ntmm_process_t *p, const where_t *w, uint64_t page, _Atomic uint64_t *pte,
                       uint64_t old, bool write, uint64_t flags, ntmm__sfault_t *c)
{
	ntmm_engine_t *e = p->e;
	uint64_t pte_addr = (uint64_t)(uintptr_t)pte;
	ntmm__pfn_t shared = NTMM__PFN_NONE;
	bool soft = false, had_share = ntmm__pte_is_valid(old);
	if (had_share) {
		/* a write to a shared page of a WRITECOPY view: the share this
		   PTE holds is the one the copy drops */
		shared = ntmm__pte_pfn(old);
	} else {
		int r = resolve(p, w, page, write, c, &shared, &soft);
		if (r)
			return r;
	}
	uint32_t slot = had_share ? ntmm__pte_wsi(old) : 0;
	if (!had_share && ntmm__wsl_reserve(p, &slot)) {
		ntmm__section_unshare(e, shared, false, NULL);
		return ntmm__error(NTMM_ENOMEM, "working set full (%u pages)", NTMM__WSL_CAPACITY);
	}
	if (write && w->cow) {
		ntmm__pfn_t copy;
		if (ntmm__page_alloc(e, 0, NTMM__ALLOC_NODE_ANY,
		                     (uint32_t)(page >> NTMM__PAGE_SHIFT), &copy)) {
			if (!had_share) {
				ntmm__wsl_hole(p, slot);
				ntmm__section_unshare(e, shared, false, NULL);
			}
			return NTMM__SFAULT_NOFRAME; /* no frame */
		}
		memcpy(ntmm__vframe(e, copy), ntmm__vframe(e, shared), PAGE);
		ntmm__pfn_entry_t *pe = ntmm__vpfn(e, copy);
		atomic_store_explicit(&pe->pte, pte_addr, memory_order_relaxed);
		atomic_store_explicit(&pe->original_pte,
		                      ntmm__pte_make_demand_zero(NTMM__MM_READWRITE),
		                      memory_order_relaxed);
		uint64_t want = ntmm__pte_make_valid(copy, slot,
		                                     NTMM__PTE_READ | NTMM__PTE_WRITE |
		                                         NTMM__PTE_ACCESSED | NTMM__PTE_DIRTY);
		/* release: the copy's bytes before the PTE that maps it */
		if (!atomic_compare_exchange_strong_explicit(pte, &old, want, memory_order_release,
		                                             memory_order_relaxed)) {
			ntmm__page_free(e, copy); /* never published */
			if (!had_share) {
				ntmm__wsl_hole(p, slot);
				ntmm__section_unshare(e, shared, false, NULL);
			}
			return NTMM__SFAULT_RETRY;
		}
		if (old == 0)
			ntmm__pt_note_fill(p, pte);
		if (!had_share)
			ntmm__wsl_fill(p, slot, page);
		/* the shared frame loses this PTE's share; a reader that
		   translated through the old PTE may still read it, so a frame
		   left unshared waits for a grace period (deferred) */
		ntmm__section_unshare_deferred(e, shared);
		NTMM__STAT_ADD(&e->stats, cow_faults, 1);
		ntmm__fault_kind = NTMM_FAULT_COPY_ON_WRITE;
		return 0;
	}
	uint64_t bits = flags;
	if (w->cow) /* read-only until a write copies it */
		bits = (bits & ~(uint64_t)(NTMM__PTE_WRITE | NTMM__PTE_DIRTY)) | NTMM__PTE_COW;
	uint64_t want = ntmm__pte_make_valid(shared, slot, bits);
	/* release: pairs with translate's acquire load */
	if (!atomic_compare_exchange_strong_explicit(pte, &old, want, memory_order_release,
	                                             memory_order_relaxed)) {
		ntmm__wsl_hole(p, slot);
		ntmm__section_unshare(e, shared, false, NULL);
		return NTMM__SFAULT_RETRY;
	}
	if (old == 0)
		ntmm__pt_note_fill(p, pte);
	ntmm__wsl_fill(p, slot, page);
	if (w->around)
		fault_around(p, w, page, pte, bits);
	if (soft) {
		NTMM__STAT_ADD(&e->stats, soft_faults, 1);
		ntmm__fault_kind = NTMM_FAULT_SOFT;
	}
	return 0;
}

int ntmm__section_fault(ntmm_process_t *p, const ntmm__vad_t *v, uint64_t page,
                        _Atomic uint64_t *pte, uint64_t old, bool write, uint64_t flags,
                        ntmm__sfault_t *c)
{
	const ntmm__view_t *view = v->view;
	where_t w = {.seg = view->seg,
	             .idx = view->first + (page - v->start) / PAGE,
	             .cow = view->cow,
	             .mmprot = ntmm__mmprot_from_page(view->max_prot == NTMM_PAGE_READWRITE
	                                                  ? NTMM_PAGE_READWRITE
	                                                  : NTMM_PAGE_READONLY),
	             .cluster_end = view->first + view->npages};
	/* fault-around stays in the page's protection run and leaf table */
	uint64_t pg = (page - v->start) / PAGE;
	const ntmm__vad_run_t *r = ntmm__vad_run_of(v, pg);
	uint64_t run_end = r + 1 < v->runs + v->nruns ? r[1].first : v->npages;
	uint64_t leaf_left = (NTMM__PT_LEAF_SPAN - (page & (NTMM__PT_LEAF_SPAN - 1))) / PAGE - 1;
	uint64_t around = run_end - pg - 1;
	if (around > leaf_left)
		around = leaf_left;
	w.around = around < FAULT_AROUND ? (unsigned)around : FAULT_AROUND;
	w.proto = ntmm__proto(w.seg, w.idx, true);
	if (!w.proto)
		return ntmm__error(NTMM_ENOMEM, "host memory for prototype PTEs");
	return proto_fault(p, &w, page, pte, old, write, flags, c);
}

int ntmm__clone_fault(ntmm_process_t *p, uint64_t page, _Atomic uint64_t *pte, uint64_t old,
                      bool write, uint64_t flags, ntmm__sfault_t *c)
{
	/* the prototype's address: in the prototype PTE, or (a valid PTE of
	   a shared clone page) in the frame */
	uint64_t addr = ntmm__pte_is_valid(old)
	                    ? atomic_load_explicit(&ntmm__vpfn(p->e, ntmm__pte_pfn(old))->pte,
	                                           memory_order_relaxed)
	                    : ntmm__pte_proto_addr(old);
	if (!addr)
		return ntmm__error(NTMM_EINVAL, "prototype PTE %#llx at %#llx names no prototype",
		                   (unsigned long long)old, (unsigned long long)page);
	where_t w = {.proto = (_Atomic uint64_t *)(uintptr_t)addr,
	             .cow = true,
	             .mmprot = NTMM__MM_READWRITE};
	w.seg = ntmm__proto_segment(addr, &w.idx);
	w.cluster_end = w.idx + 1;
	return proto_fault(p, &w, page, pte, old, write, flags, c);
}
