/*
 * The fault handler (MmAccessFault → MiDispatchFault, NTMM-REFERENCE.md §4),
 * entered by translate/read/write/pin when the lock-free fast path finds no
 * valid PTE with the access it needs.
 *
 * Order: take ws_lock SHARED; look the page up in the VAD map (RCU) — no
 * VAD, reserved, NOACCESS or a write to read-only is an access violation,
 * GUARD clears the guard and reports NTMM_EGUARD; create missing tables;
 * then by PTE: valid (another thread resolved it, or its access bits need
 * to follow the VAD), transition (soft fault: reclaim from Standby/Modified/
 * TRANSITION), prototype (dispatch slot: NTMM_ENOTSUP until sections
 * exist), pagefile (hard fault, below), zero or demand-zero (a zeroed frame).
 *
 * Hard fault (NTMM-REFERENCE.md §4.7): under ws_lock shared, take a frame,
 * make it READ_IN_PROGRESS and publish a transition PTE naming it; do the
 * same for up to NTMM__HARD_CLUSTER-1 neighbouring pages of the VAD and the
 * leaf table whose PTEs are pagefile PTEs in the neighbouring slots of the
 * same file, following pages first, then preceding ones (prefetch, only
 * from free frames: never repurposing Standby for a guess). Then drop
 * ws_lock, read the whole run with one vectored request, retake ws_lock
 * shared and finish: the faulting page becomes valid, the prefetched ones
 * go to Standby as transition pages, and the in-page waiters are woken. A
 * teardown meanwhile marks the frames DELETED (read_done frees them; their
 * slots go with OriginalPte). A failed read puts each pagefile PTE back,
 * frees the frames and returns NTMM_EIO; the slot still holds the data, so
 * a retry can succeed. The fault stays inside the caller's read-side
 * section during the read (page tables cannot be freed under it).
 * Slot policy: a read for a write frees the slot at once (the page is
 * dirty); a read for a read keeps it in OriginalPte while the page stays
 * clean (paging.h).
 *
 * Concurrency: several threads of one process fault at once under the
 * shared lock; each PTE changes by CAS. Two threads on one demand-zero page
 * both take a frame, one CAS wins, the loser frees its unpublished frame
 * (collided fault, nothing leaked). On a transition page the loser's
 * reclaim fails and it re-reads the PTE until the winner's CAS lands.
 */
#include "virt/virt.h"
#include "engine.h"
#include "virt/frame.h"
#include "virt/tlb.h"
#include "sync/backoff.h"
#include "section/section.h"
#include "sync/clock.h"

#include <stdlib.h>
#include <string.h>

#define FAULT_RETRY 1 /* internal: state changed under us, dispatch again */
/* internal dispatch results (negative, outside the NTMM_E* range) */
#define FAULT_GUARD   (-1000) /* guard page: the caller drops ws_lock first */
#define FAULT_WAIT    (-1001) /* page in I/O: wait on it without ws_lock, retry */
#define FAULT_NOFRAME (-1002) /* no frame: wait for the writer without ws_lock */
#define FAULT_HARD    (-1003) /* hard fault started: read without ws_lock */
#define FAULT_SECIO   (-1004) /* a prototype's read started: read without ws_lock */

/* What dispatch hands to the caller for FAULT_WAIT and FAULT_HARD. */
typedef struct fault_ctx {
	ntmm__pfn_t wait_pfn; /* FAULT_WAIT */
	uint64_t wait_pte;
	unsigned n;        /* FAULT_HARD: the run being read, in address order */
	unsigned self;     /* ... the faulting page's index in it */
	ntmm__pfloc_t loc; /* ... and its first slot */
	uint64_t flags;
	unsigned prot;              /* the VAD protection the flags were made from */
	const ntmm__vad_map_t *map; /* ... and the VAD map it was read from */
	uint64_t page;
	ntmm__pfn_t pfn[NTMM__HARD_CLUSTER];
	_Atomic uint64_t *pte[NTMM__HARD_CLUSTER];
	uint64_t orig[NTMM__HARD_CLUSTER]; /* the pagefile PTEs */
	ntmm__sfault_t sec;                /* FAULT_SECIO: the section's read */
} fault_ctx_t;

/* Starts the read of one page: fresh frame, READ_IN_PROGRESS, transition
   PTE published over the pagefile PTE `old`. false (nothing changed) if
   the PTE changed meanwhile. */
static bool inpage_start(ntmm_engine_t *e, ntmm__pfn_t pfn, _Atomic uint64_t *pte, uint64_t old)
{
	uint64_t pte_addr = (uint64_t)(uintptr_t)pte;
	ntmm__page_read_begin(e, pfn, pte_addr, old);
	uint64_t want = ntmm__pte_make_transition(pfn, ntmm__pte_prot(old));
	/* release: the frame's state (READ_IN_PROGRESS) and owner are visible
	   to whoever reads the transition PTE with acquire */
	if (atomic_compare_exchange_strong_explicit(pte, &old, want, memory_order_release,
	                                            memory_order_relaxed))
		return true;
	/* never published: undo (the frame is ours alone) */
	ntmm__pfn_entry_t *pe = ntmm__pfn(e, pfn);
	atomic_store_explicit(&pe->original_pte, 0, memory_order_relaxed);
	int r = ntmm__page_read_done(e, pfn, true);
	ntmm__assert(r == 0);
	(void)r;
	ntmm__page_free(e, pfn);
	return false;
}

/* Takes a frame for the cluster page at va and starts its read, if its PTE
   *q is a pagefile PTE naming slot `want`. false: the cluster ends here. */
static bool cluster_page(ntmm_engine_t *e, uint64_t va, _Atomic uint64_t *q, ntmm__pfloc_t want,
                         ntmm__pfn_t *pfn, uint64_t *orig)
{
	/* acquire: as the fault's own PTE load */
	uint64_t o = atomic_load_explicit(q, memory_order_acquire);
	if (!ntmm__pte_is_pagefile(o) || ntmm__pfloc_from_pte(o) != want)
		return false;
	/* only from free frames: never repurposing Standby for a guess */
	if (ntmm__page_alloc(e, NTMM__ALLOC_NO_STANDBY, NTMM__ALLOC_NODE_ANY,
	                     (uint32_t)(va >> NTMM__PAGE_SHIFT), pfn))
		return false;
	if (!inpage_start(e, *pfn, q, o))
		return false;
	*orig = o;
	return true;
}

/* Hard fault, first half (ws_lock shared): the faulting page and its
   cluster become in-page transition pages. The cluster grows forward
   first, then backward with what is left of NTMM__HARD_CLUSTER: in a
   forward scan the pages behind are resident and the backward look stops
   at once, in a backward scan (a stack, a reverse walk) the other way
   round. It never leaves the VAD [vad_start, vad_end) or the leaf table
   (where neighbouring PTEs are neighbouring words, no walk). The arrays
   of c are in address order; c->self is the faulting page's index.
   FAULT_HARD, FAULT_RETRY or FAULT_NOFRAME. */
static int hard_begin(ntmm_process_t *p, uint64_t page, uint64_t vad_start, uint64_t vad_end,
                      _Atomic uint64_t *pte, uint64_t old, uint64_t flags, unsigned prot,
                      const ntmm__vad_map_t *map, fault_ctx_t *c)
{
	ntmm_engine_t *e = p->e;
	ntmm__pfn_t pfn;
	/* no colour preference: the most recently freed frame (top of the
	   per-CPU cache) is the likeliest to be in cache for the read's copy */
	if (ntmm__page_alloc(e, 0, NTMM__ALLOC_NODE_ANY, NTMM__COLOUR_ANY, &pfn))
		return FAULT_NOFRAME;
	if (!inpage_start(e, pfn, pte, old))
		return FAULT_RETRY;
	ntmm__pfloc_t loc = ntmm__pfloc_from_pte(old);
	c->n = 1;
	c->self = 0;
	c->loc = loc;
	c->flags = flags;
	c->prot = prot;
	c->map = map;
	c->page = page;
	c->pfn[0] = pfn;
	c->pte[0] = pte;
	c->orig[0] = old;
	for (unsigned i = 1; c->n < NTMM__HARD_CLUSTER; i++) {
		uint64_t va = page + ((uint64_t)i << NTMM__PAGE_SHIFT);
		if (va >= vad_end || !(va & (NTMM__PT_LEAF_SPAN - 1)))
			break;
		if (!cluster_page(e, va, pte + i, ntmm__pfloc_add(loc, i), &c->pfn[c->n],
		                  &c->orig[c->n]))
			break;
		c->pte[c->n] = pte + i;
		c->n++;
	}
	/* backward, nearest page first, then moved in front of the forward
	   run */
	ntmm__pfn_t bpfn[NTMM__HARD_CLUSTER];
	_Atomic uint64_t *bpte[NTMM__HARD_CLUSTER];
	uint64_t borig[NTMM__HARD_CLUSTER];
	unsigned back = 0;
	uint64_t slot = ntmm__pfloc_slot(loc);
	for (unsigned j = 1; c->n + back < NTMM__HARD_CLUSTER && j < slot; j++) {
		uint64_t above = page - ((uint64_t)(j - 1) << NTMM__PAGE_SHIFT);
		if (!(above & (NTMM__PT_LEAF_SPAN - 1)) || above - NTMM_PAGE_SIZE < vad_start)
			break;
		ntmm__pfloc_t want = ntmm__pfloc_make(ntmm__pfloc_file(loc), slot - j);
		if (!cluster_page(e, above - NTMM_PAGE_SIZE, pte - j, want, &bpfn[back],
		                  &borig[back]))
			break;
		bpte[back] = pte - j;
		back++;
	}
	if (back) {
		memmove(&c->pfn[back], &c->pfn[0], c->n * sizeof(c->pfn[0]));
		memmove(&c->pte[back], &c->pte[0], c->n * sizeof(c->pte[0]));
		memmove(&c->orig[back], &c->orig[0], c->n * sizeof(c->orig[0]));
		for (unsigned k = 0; k < back; k++) {
			c->pfn[k] = bpfn[back - 1 - k];
			c->pte[k] = bpte[back - 1 - k];
			c->orig[k] = borig[back - 1 - k];
		}
		c->self = back;
		c->n += back;
		c->loc = ntmm__pfloc_from_pte(c->orig[0]);
	}
	return FAULT_HARD;
}

/* The protection of the committed page at `page` now, or 0 if it is not
   committed (any more). */
static unsigned vad_prot_now(ntmm_process_t *p, uint64_t page)
{
	unsigned prot = 0;
	ntmm__rcu_read_lock();
	/* acquire: pairs with the release store in ntmm__vad_publish */
	ntmm__vad_map_t *m = atomic_load_explicit(&p->vads, memory_order_acquire);
	long vi = m ? ntmm__vad_find(m, page) : -1;
	if (vi >= 0) {
		const ntmm__vad_t *v = m->vads[vi];
		const ntmm__vad_run_t *r =
		    ntmm__vad_run_of(v, (page - v->start) >> NTMM__PAGE_SHIFT);
		prot = r->committed ? r->prot : 0;
	}
	ntmm__rcu_read_unlock();
	return prot;
}

/* Hard fault, second half (ws_lock shared again): ok = the read
   succeeded. Returns 0 (the faulting page is valid), FAULT_RETRY (torn
   down meanwhile: dispatch again), NTMM_EIO, or NTMM_ENOMEM (working-set
   list full: the page went to Standby; compact and retry). */
static int hard_finish(ntmm_process_t *p, fault_ctx_t *c, bool ok)
{
	ntmm_engine_t *e = p->e;
	int ret = 0;
	/* the protection may have changed while ws_lock was dropped (protect
	   only rewrites valid PTEs): then the page goes to Standby like a
	   prefetched one and the fault is dispatched again */
	/* the map is copy-on-update and cannot be freed while this fault is
	   inside its read-side section: the same map means the same prot */
	bool same_prot = atomic_load_explicit(&p->vads, memory_order_acquire) == c->map ||
	                 vad_prot_now(p, c->page) == c->prot;
	/* a read for a read keeps the slot while the page stays clean — unless
	   the paging files' free space is short: then the slot goes back at
	   once and the page is dirty, so the writer has room for the dirty
	   pages that fill the frames (paging.h) */
	bool give_back = ok && !(c->flags & NTMM__PTE_DIRTY) && ntmm__paging_slots_short(e);
	for (unsigned i = 0; i < c->n; i++) {
		ntmm__pfn_t pfn = c->pfn[i];
		_Atomic uint64_t *pte = c->pte[i];
		uint64_t tr = ntmm__pte_make_transition(pfn, ntmm__pte_prot(c->orig[i]));
		ntmm__pfn_entry_t *pe = ntmm__pfn(e, pfn);
		if (!ok) {
			uint64_t exp = tr;
			/* acq_rel: the PTE owns the slot again; pairs with teardown's
			   exchange (if teardown won, the frame's OriginalPte still
			   names the slot and its free releases it) */
			if (atomic_compare_exchange_strong_explicit(
			        pte, &exp, c->orig[i], memory_order_acq_rel, memory_order_relaxed))
				atomic_store_explicit(&pe->original_pte, 0, memory_order_relaxed);
			ntmm__page_read_done(e, pfn, false);
			continue;
		}
		uint32_t slot = 0;
		bool mine = i == c->self && same_prot && ntmm__wsl_reserve(p, &slot) == 0;
		if (i == c->self && !mine)
			ret = same_prot ? NTMM_ENOMEM : FAULT_RETRY;
		if (ntmm__page_read_done(e, pfn, true)) {
			/* torn down during the read: the frame and its slot are gone */
			if (mine)
				ntmm__wsl_hole(p, slot);
			if (i == c->self)
				ret = FAULT_RETRY;
			continue;
		}
		if (!mine) {
			/* prefetched (or no working-set room): to Standby; nobody
			   ever mapped it, so no grace period is needed */
			if (ntmm__page_unmap(e, pfn, false, false))
				ntmm__page_release_batch(e, &pfn, 1);
			continue;
		}
		if ((c->flags & NTMM__PTE_DIRTY) || give_back) {
			/* written at once (the paging-file copy is stale), or the
			   slot is given back: the frame holds the only copy */
			ntmm__pagefile_pte_release(e, c->orig[i]);
			atomic_store_explicit(
			    &pe->original_pte,
			    ntmm__pte_make_demand_zero(ntmm__pte_prot(c->orig[i])),
			    memory_order_relaxed);
			if (!(c->flags & NTMM__PTE_DIRTY)) {
				ntmm__page_set_modified(e, pfn);
				NTMM__STAT_ADD(&e->stats, slots_released, 1);
			}
		}
		uint64_t want = ntmm__pte_make_valid(pfn, slot, c->flags);
		/* release: the frame's contents (the read) are visible to whoever
		   loads the valid PTE with acquire; nobody else writes a
		   transition PTE whose frame we hold ACTIVE (teardown waits for
		   ws_lock exclusive) */
		bool won = atomic_compare_exchange_strong_explicit(
		    pte, &tr, want, memory_order_release, memory_order_relaxed);
		ntmm__assert(won);
		(void)won;
		ntmm__wsl_fill(p, slot, c->page);
	}
	ntmm__inpage_wake_many(e, c->pfn, c->n, true);
	if (!ok)
		return ntmm__error(NTMM_EIO, "in-page error at %#llx (paging-file read failed)",
		                   (unsigned long long)c->page);
	if (ret == 0) {
		NTMM__STAT_ADD(&e->stats, hard_faults, 1);
		ntmm__percpu_add(&p->cpu[0].hard_faults, sizeof(p->cpu[0]), p->ncpu, 1);
		ntmm__fault_kind = NTMM_FAULT_HARD;
	}
	return ret;
}

static int guard_fault(ntmm_process_t *p, uint64_t page)
{
	ntmm__pushlock_acquire_exclusive(&p->as_lock);
	ntmm__vad_map_t *m = atomic_load_explicit(&p->vads, memory_order_relaxed); /* as_lock */
	long vi = ntmm__vad_find(m, page);
	int ret = FAULT_RETRY;
	if (vi >= 0) {
		ntmm__vad_t *v = m->vads[vi];
		uint64_t pg = (page - v->start) >> NTMM__PAGE_SHIFT;
		const ntmm__vad_run_t *r = ntmm__vad_run_of(v, pg);
		if (r->committed && (r->prot & NTMM_PAGE_GUARD)) {
			ntmm__vad_t *nv = ntmm__vad_apply(v, pg, 1, NTMM__VAD_CLEAR_GUARD, 0);
			ntmm__vad_map_t *nm = nv ? ntmm__vad_map_replace(m, (size_t)vi, nv) : NULL;
			if (!nm) {
				free(nv);
				ret = ntmm__error(NTMM_ENOMEM, "host memory for the VAD map");
			} else {
				ntmm__vad_publish(p, nm, v);
				ret = ntmm__error(NTMM_EGUARD, "guard page at %#llx (now cleared)",
				                  (unsigned long long)page);
				NTMM__STAT_ADD(&p->e->stats, guard_faults, 1);
			}
		}
	}
	ntmm__pushlock_release_exclusive(&p->as_lock);
	return ret;
}

static int access_violation(ntmm_process_t *p, uint64_t va, const char *why)
{
	NTMM__STAT_ADD(&p->e->stats, access_violations, 1);
	return ntmm__error(NTMM_EACCESS, "access violation at %#llx: %s", (unsigned long long)va,
	                   why);
}

/* One dispatch under ws_lock shared. */
static int dispatch(ntmm_process_t *p, uint64_t va, bool write, fault_ctx_t *c)
{
	ntmm_engine_t *e = p->e;
	uint64_t page = va & ~(uint64_t)(NTMM_PAGE_SIZE - 1);
	unsigned prot = 0;
	bool committed = false, found = false;
	uint64_t vad_start = 0, vad_end = 0;
	const ntmm__vad_t *vad = NULL;

	/* the map is read inside the caller's read-side section (every
	   caller of ntmm__fault holds one; it lasts the whole dispatch), so
	   no section of our own: the two liburcu calls cost a fault 2-3 ns */
	ntmm__assert(urcu_memb_read_ongoing());
	/* acquire: pairs with the release store in ntmm__vad_publish */
	ntmm__vad_map_t *m = atomic_load_explicit(&p->vads, memory_order_acquire);
	long vi = ntmm__vad_find(m, page);
	if (vi >= 0) {
		const ntmm__vad_t *v = m->vads[vi];
		const ntmm__vad_run_t *r =
		    ntmm__vad_run_of(v, (page - v->start) >> NTMM__PAGE_SHIFT);
		found = true;
		vad = v;
		vad_start = v->start;
		vad_end = v->end;
		committed = r->committed;
		prot = r->prot;
	}

	if (!found)
		return access_violation(p, page, "no reservation");
	if (!committed)
		return access_violation(p, page, "reserved, not committed");
	if (prot & NTMM_PAGE_GUARD)
		return FAULT_GUARD;
	uint64_t bits = ntmm__pte_bits_for(prot);
	if (!(bits & NTMM__PTE_READ))
		return access_violation(p, page, "PAGE_NOACCESS");
	if (write && !(bits & NTMM__PTE_WRITE))
		return access_violation(p, page, "write to a read-only page");
	uint64_t flags = bits | NTMM__PTE_ACCESSED | (write ? NTMM__PTE_DIRTY : 0);

	_Atomic uint64_t *pte;
	int err = ntmm__pt_ensure(p, page, &pte);
	if (err)
		return err == NTMM_ENOMEM ? FAULT_NOFRAME : err; /* no frame for a table */
	uint64_t pte_addr = (uint64_t)(uintptr_t)pte;
	ntmm__backoff_t b = NTMM__BACKOFF_INIT;
	bool collided = false;

	for (;;) {
		/* acquire: pairs with the release CAS of whoever wrote the PTE */
		uint64_t old = atomic_load_explicit(pte, memory_order_acquire);
		if (vad->view) {
			/* a view: its pages are the prototypes' unless the PTE holds
			   a private copy (a WRITECOPY view's written page, whose frame
			   names this PTE) */
			bool shared_valid = ntmm__pte_is_valid(old) &&
			                    ntmm__frame_is_shared(e, ntmm__pte_pfn(old), pte_addr);
			/* a prototype PTE naming another segment's prototype: a
			   clone's copy of a page the parent had copied */
			uint64_t pa = ntmm__pte_is_prototype(old) ? ntmm__pte_proto_addr(old) : 0;
			bool cloned = pa && ntmm__proto_segment(pa, NULL) != vad->view->seg;
			if (old == 0 || ntmm__pte_is_prototype(old) ||
			    (shared_valid && write && vad->view->cow)) {
				int r = cloned ? ntmm__clone_fault(p, page, pte, old, write, flags,
				                                   &c->sec)
				               : ntmm__section_fault(p, vad, page, pte, old, write,
				                                     flags, &c->sec);
				if (r == NTMM__SFAULT_RETRY) {
					collided = true;
					ntmm__backoff(&b);
					continue;
				}
				if (r == NTMM__SFAULT_IO)
					return FAULT_SECIO;
				if (r == NTMM__SFAULT_WAIT) {
					c->wait_pfn = c->sec.pfn[0];
					c->wait_pte = c->sec.first;
					return FAULT_WAIT;
				}
				if (r == NTMM__SFAULT_NOFRAME)
					return FAULT_NOFRAME;
				if (r == 0 && collided)
					NTMM__STAT_ADD(&e->stats, collided_faults, 1);
				return r;
			}
			if (shared_valid && vad->view->cow) /* read-only until copied */
				flags &= ~(uint64_t)(NTMM__PTE_WRITE | NTMM__PTE_DIRTY);
		} else if (ntmm__pte_is_prototype(old) ||
		           (ntmm__pte_is_valid(old) && (old & NTMM__PTE_COW))) {
			/* private memory shared with a clone: a prototype PTE, or a
			   shared copy-on-write page (read-only until a write copies) */
			if (ntmm__pte_is_prototype(old) || write) {
				int r = ntmm__clone_fault(p, page, pte, old, write, flags, &c->sec);
				if (r == NTMM__SFAULT_RETRY) {
					collided = true;
					ntmm__backoff(&b);
					continue;
				}
				if (r == NTMM__SFAULT_IO)
					return FAULT_SECIO;
				if (r == NTMM__SFAULT_WAIT) {
					c->wait_pfn = c->sec.pfn[0];
					c->wait_pte = c->sec.first;
					return FAULT_WAIT;
				}
				if (r == NTMM__SFAULT_NOFRAME)
					return FAULT_NOFRAME;
				if (r == 0 && collided)
					NTMM__STAT_ADD(&e->stats, collided_faults, 1);
				return r;
			}
			flags &= ~(uint64_t)(NTMM__PTE_WRITE | NTMM__PTE_DIRTY);
		}
		if (ntmm__pte_is_valid(old)) {
			uint64_t want = old | flags;
			if (want == old ||
			    atomic_compare_exchange_weak_explicit(
			        pte, &old, want, memory_order_relaxed, memory_order_relaxed)) {
				if (collided)
					NTMM__STAT_ADD(&e->stats, collided_faults, 1);
				ntmm__fault_kind = collided ? NTMM_FAULT_COLLIDED : NTMM_FAULT_NONE;
				return 0;
			}
			continue;
		}
		if (ntmm__pte_is_software(old) && !ntmm__pte_is_demand_zero(old)) {
			if (!ntmm__pte_is_pagefile(old))
				return ntmm__error(NTMM_EINVAL, "bad software PTE %#llx at %#llx",
				                   (unsigned long long)old,
				                   (unsigned long long)page);
			int r =
			    hard_begin(p, page, vad_start, vad_end, pte, old, flags, prot, m, c);
			if (r == FAULT_RETRY)
				continue;
			return r;
		}

		uint32_t slot;
		if (ntmm__wsl_reserve(p, &slot))
			return ntmm__error(NTMM_ENOMEM, "working set full (%u pages)",
			                   NTMM__WSL_CAPACITY);

		if (ntmm__pte_is_transition(old)) {
			ntmm__pfn_t pfn = ntmm__pte_pfn(old);
			int r = ntmm__page_reclaim(e, pfn, pte_addr, write);
			if (r == NTMM_EBUSY) {
				/* in I/O (a hard fault's read, or the writer's write
				   for a write access): sleep on it without ws_lock */
				ntmm__wsl_hole(p, slot);
				c->wait_pfn = pfn;
				c->wait_pte = pte_addr;
				return FAULT_WAIT;
			}
			if (r) {
				/* another thread won this page, it is in I/O, or the
				   allocator is repurposing it and restoring the PTE:
				   wait for the PTE to change */
				ntmm__wsl_hole(p, slot);
				collided = true;
				ntmm__backoff(&b);
				continue;
			}
			uint64_t want = ntmm__pte_make_valid(pfn, slot, flags);
			/* release: pairs with translate's acquire load; nobody else
			   writes a transition PTE whose frame we hold ACTIVE */
			bool ok = atomic_compare_exchange_strong_explicit(
			    pte, &old, want, memory_order_release, memory_order_relaxed);
			ntmm__assert(ok);
			(void)ok;
			ntmm__wsl_fill(p, slot, page);
			NTMM__STAT_ADD(&e->stats, soft_faults, 1);
			if (collided)
				NTMM__STAT_ADD(&e->stats, collided_faults, 1);
			ntmm__fault_kind = NTMM_FAULT_SOFT;
			return 0;
		}

		/* zero or demand-zero: a zeroed frame */
		ntmm__pfn_t pfn;
		err = ntmm__page_alloc(e, NTMM__ALLOC_ZERO, NTMM__ALLOC_NODE_ANY,
		                       (uint32_t)(page >> NTMM__PAGE_SHIFT), &pfn);
		if (err) {
			ntmm__wsl_hole(p, slot);
			return err == NTMM_ENOMEM
			           ? FAULT_NOFRAME
			           : ntmm__error(err, "no frame for a demand-zero fault");
		}
		/* the zeroed frame is cold (non-temporal zeroing) and the caller is
		   about to touch it: start that line's fetch now, overlapped with
		   the rest of the fault */
		__builtin_prefetch((char *)ntmm__vframe(e, pfn) + (va & (NTMM_PAGE_SIZE - 1)), 1,
		                   3);
		ntmm__pfn_entry_t *pe = ntmm__vpfn(e, pfn);
		atomic_store_explicit(&pe->pte, pte_addr, memory_order_relaxed);
		atomic_store_explicit(&pe->original_pte,
		                      ntmm__pte_make_demand_zero(ntmm__mmprot_from_page(prot)),
		                      memory_order_relaxed);
		uint64_t want = ntmm__pte_make_valid(pfn, slot, flags);
		/* release: the zeroed frame and its PFN fields are visible to
		   whoever loads the valid PTE with acquire */
		if (atomic_compare_exchange_strong_explicit(pte, &old, want, memory_order_release,
		                                            memory_order_relaxed)) {
			if (old == 0)
				ntmm__pt_note_fill(p, pte);
			ntmm__wsl_fill(p, slot, page);
			NTMM__STAT_ADD(&e->stats, demand_zero_faults, 1);
			if (collided)
				NTMM__STAT_ADD(&e->stats, collided_faults, 1);
			ntmm__fault_kind = NTMM_FAULT_DEMAND_ZERO;
			return 0;
		}
		ntmm__page_free(e, pfn); /* lost the race; never published */
		ntmm__wsl_hole(p, slot);
		collided = true;
	}
}

/* A fault that finds no frame makes frames come back and retries: it
   reclaims inline (ntmm__wsm_reclaim: writes Modified pages, trims the
   working sets, the same code the writer and the working set manager
   run) — with the system threads running it first gives them one round of
   NOFRAME_WAIT_NS (the writer is woken; a batch written or a trim released
   wakes the fault), then alternates. A committed page always has backing
   (the commit limit counts only frames and slots committed pages can
   really use, commit.c), so it gives up with NTMM_ENOMEM only when
   NOFRAME_IDLE_ROUNDS rounds in a row bring nothing back: every frame is
   pinned or in a page table, or the only way to free one is a grace
   period the caller itself blocks (it holds a translated pointer inside
   its section, so the fault cannot leave it). NOFRAME_MAX_NS bounds the
   whole wait as a safety net (frames keep coming back but other faults
   keep taking them first, or the host cannot back the pool). */
#define NOFRAME_WAIT_NS     (10 * 1000 * 1000)
#define NOFRAME_IDLE_ROUNDS 4u
#define NOFRAME_MAX_NS      (10ull * 1000 * 1000 * 1000)

/*
 * Waiting for frames outside the read side. Frames come back from working
 * sets only after a grace period (the trim's shootdown), and a grace
 * period waits for every read-side section — including the one this fault
 * runs in (the caller's ntmm_access_begin plus the translate/copy/pin
 * nesting). Waiting inside it deadlocks against the trimmer when every
 * faulting thread is in a section: nothing reaches Standby until the waits
 * time out. So the fault leaves the read side for its wait when that is
 * sound: the caller's section holds no pointer from translate yet (tlb.h
 * `held`), and the nesting is exactly ours (tlb depth + the one level the
 * entry point took) — a read-side section of the embedding program's own
 * is never broken. The fault holds no ws_lock and no RCU-found object
 * across the wait (dispatch re-reads the VAD map). The TLB generation is
 * bumped on re-entry, as for a new section.
 */
static unsigned section_leave(void)
{
	ntmm__tlb_t *t = &ntmm__tlb;
	if (t->depth && t->held == t->gen)
		return 0; /* the caller holds a pointer: the wait stays inside */
	unsigned n = t->depth + 1;
	for (unsigned i = 0; i < n; i++)
		ntmm__rcu_read_unlock();
	if (urcu_memb_read_ongoing()) {
		/* someone else's section around ours: put everything back */
		for (unsigned i = 0; i < n; i++)
			ntmm__rcu_read_lock();
		return 0;
	}
	return n;
}

static void section_reenter(unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		ntmm__rcu_read_lock();
	if (n && ntmm__tlb.depth)
		ntmm__tlb.gen++; /* nothing filled before the wait is used after it */
}

static void fault_ctx_end(fault_ctx_t *c)
{
	ntmm__section_fault_end(&c->sec);
}

int ntmm__fault(ntmm_process_t *p, uint64_t va, unsigned access)
{
	ntmm_engine_t *e = p->e;
	uint64_t page = va & ~(uint64_t)(NTMM_PAGE_SIZE - 1);
	bool write = access == NTMM_ACCESS_WRITE;
	ntmm__percpu_add(&p->cpu[0].page_faults, sizeof(p->cpu[0]), p->ncpu, 1);
	NTMM__STAT_ADD(&e->stats, page_faults, 1);
	/* wsmgr.c; not for the swapper's own prefetching faults, which must not
	   stand in for the process's next access */
	if (atomic_load_explicit(&p->wsm.swapped_out, memory_order_relaxed) && !ntmm__fault_nowait)
		ntmm__wsm_swap_in(p);
	bool compacted = false, waited = false, section_hard = false;
	uint64_t noframe_since = 0;
	unsigned noframe_rounds = 0, idle_rounds = 0;
	/* the arrays are filled by hard_begin before use; the cleanup drops a
	   section page read for this fault that no dispatch mapped (an early
	   return of any kind: the compiler runs it on every exit) */
	fault_ctx_t c __attribute__((cleanup(fault_ctx_end)));
	c.sec.ready = NTMM__PFN_NONE;
	c.wait_pfn = 0;
	c.wait_pte = 0;
	c.n = 0;
	c.loc = 0;
	c.flags = 0;
	c.prot = 0;
	c.map = NULL;
	c.page = page;
	for (;;) {
		unsigned slot = ntmm__ws_lock_shared(p);
		int r = dispatch(p, va, write, &c);
		ntmm__ws_unlock_shared(p, slot);
		if (r == FAULT_HARD) {
			void *pages[NTMM__HARD_CLUSTER];
			for (unsigned i = 0; i < c.n; i++)
				pages[i] = ntmm__pfn_host(e, c.pfn[i]);
			bool ok = ntmm__pagefile_read(&e->io, c.loc, pages, c.n) == 0;
			slot = ntmm__ws_lock_shared(p);
			r = hard_finish(p, &c, ok);
			ntmm__ws_unlock_shared(p, slot);
			if (r == FAULT_RETRY)
				continue;
		}
		if (r == FAULT_SECIO) {
			/* the prototypes' read, without ws_lock; the pages go to
			   Standby and the retried dispatch maps the faulting one */
			int rr = ntmm__section_fault_read(e, &c.sec);
			ntmm__section_fault_io_done(e, &c.sec, rr == 0);
			if (rr)
				return rr;
			NTMM__STAT_ADD(&e->stats, hard_faults, 1);
			NTMM__STAT_ADD(&e->stats, section_reads, c.sec.n);
			ntmm__percpu_add(&p->cpu[0].hard_faults, sizeof(p->cpu[0]), p->ncpu, 1);
			section_hard = true;
			continue;
		}
		if (r == FAULT_WAIT) {
			ntmm__inpage_wait(e, c.wait_pfn, c.wait_pte, write);
			waited = true;
			continue;
		}
		if (r == FAULT_NOFRAME && ntmm__fault_nowait)
			return ntmm__error(NTMM_ENOMEM,
			                   "no frame for %#llx (a prefetch: not waiting)",
			                   (unsigned long long)page);
		if (r == FAULT_NOFRAME) {
			uint64_t now = ntmm__now_ns();
			if (!noframe_since)
				noframe_since = now;
			if (now - noframe_since >= NOFRAME_MAX_NS)
				return ntmm__error(
				    NTMM_ENOMEM,
				    "no frame for a fault at %#llx: frames came back "
				    "for %llu s but other faults took them",
				    (unsigned long long)page, NOFRAME_MAX_NS / 1000000000ull);
			unsigned left = section_leave();
			bool threads =
			    atomic_load_explicit(&e->virt.paging.writer, memory_order_relaxed);
			bool progress;
			if (threads && noframe_rounds++ % 2 == 0)
				progress = ntmm__paging_wait_avail(e, NOFRAME_WAIT_NS);
			else
				progress = ntmm__wsm_reclaim(e, left != 0) > 0;
			section_reenter(left);
			idle_rounds = progress ? 0 : idle_rounds + 1;
			if (idle_rounds < NOFRAME_IDLE_ROUNDS)
				continue;
			return ntmm__error(NTMM_ENOMEM,
			                   "no frame for a fault at %#llx: nothing reclaimable "
			                   "(frames pinned or in page tables%s)",
			                   (unsigned long long)page,
			                   left ? ""
			                        : "; the caller holds a translated pointer, "
			                          "so no trim could finish");
		}
		if (r == NTMM_ENOMEM && !compacted) {
			/* a full working-set list may only hold holes: compact once
			   (exclusive, no grace period involved) and retry */
			ntmm__ws_lock_exclusive(p);
			ntmm__wsl_compact(p);
			ntmm__ws_unlock_exclusive(p);
			compacted = true;
			continue;
		}
		if (r == 0 && section_hard && ntmm__fault_kind != NTMM_FAULT_COPY_ON_WRITE)
			ntmm__fault_kind = NTMM_FAULT_HARD;
		else if (r == 0 && waited) {
			ntmm__fault_kind = NTMM_FAULT_COLLIDED;
			NTMM__STAT_ADD(&e->stats, collided_faults, 1);
		}
		if (r != FAULT_GUARD)
			return r;
		if (ntmm__fault_nowait) /* a prefetch leaves the guard for the program */
			return ntmm__error(NTMM_EGUARD, "guard page at %#llx (prefetch)",
			                   (unsigned long long)page);
		r = guard_fault(p, page); /* ws_lock dropped: as_lock comes first */
		if (r != FAULT_RETRY)
			return r;
	}
}
