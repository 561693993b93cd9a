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
 * TRANSITION), prototype and pagefile (dispatch slots: NTMM_ENOTSUP until
 * sections and paging files exist), zero or demand-zero (a zeroed frame).
 *
 * Concurrency: several threads of one process fault at once under the
 * shared lock; each PTE changes by CAS. Two threads on one demand-zero page
 * both take a frame, one CAS wins, the loser frees its unpublished frame
 * (collided fault, nothing leaked). On a transition page the loser's
 * reclaim fails and it re-reads the PTE until the winner's CAS lands.
 */
#include "virt/virt.h"
#include "engine.h"
#include "sync/backoff.h"
#include "sync/cpu.h"
#include "sync/cpu.h"

#include <stdlib.h>

#define FAULT_RETRY 1 /* internal: state changed under us, dispatch again */

static int guard_fault(ntmm_process_t *p, uint64_t page)
{
	ntmm__pushlock_acquire_exclusive(&p->as_lock);
	ntmm__vad_map_t *m = atomic_load_explicit(&p->vads, memory_order_relaxed); /* as_lock */
	long vi = ntmm__vad_find(m, page);
	int ret = FAULT_RETRY;
	if (vi >= 0) {
		ntmm__vad_t *v = m->vads[vi];
		uint32_t pg = (uint32_t)((page - v->start) >> NTMM__PAGE_SHIFT);
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
static int dispatch(ntmm_process_t *p, uint64_t va, bool write)
{
	ntmm_engine_t *e = p->e;
	uint64_t page = va & ~(uint64_t)(NTMM_PAGE_SIZE - 1);
	unsigned prot = 0;
	bool committed = false, found = false;

	ntmm__rcu_read_lock();
	/* acquire: pairs with the release store in ntmm__vad_publish */
	ntmm__vad_map_t *m = atomic_load_explicit(&p->vads, memory_order_acquire);
	long vi = ntmm__vad_find(m, page);
	if (vi >= 0) {
		const ntmm__vad_t *v = m->vads[vi];
		const ntmm__vad_run_t *r =
		    ntmm__vad_run_of(v, (uint32_t)((page - v->start) >> NTMM__PAGE_SHIFT));
		found = true;
		committed = r->committed;
		prot = r->prot;
	}
	ntmm__rcu_read_unlock();

	if (!found)
		return access_violation(p, page, "no reservation");
	if (!committed)
		return access_violation(p, page, "reserved, not committed");
	if (prot & NTMM_PAGE_GUARD)
		return -1000; /* guard: the caller drops ws_lock first */
	uint64_t bits = ntmm__pte_bits_for(prot);
	if (!(bits & NTMM__PTE_READ))
		return access_violation(p, page, "PAGE_NOACCESS");
	if (write && !(bits & NTMM__PTE_WRITE))
		return access_violation(p, page, "write to a read-only page");
	uint64_t flags = bits | NTMM__PTE_ACCESSED | (write ? NTMM__PTE_DIRTY : 0);

	_Atomic uint64_t *pte;
	int err = ntmm__pt_ensure(p, page, &pte);
	if (err)
		return err;
	uint64_t pte_addr = (uint64_t)(uintptr_t)pte;
	ntmm__backoff_t b = NTMM__BACKOFF_INIT;
	bool collided = false;

	for (;;) {
		/* acquire: pairs with the release CAS of whoever wrote the PTE */
		uint64_t old = atomic_load_explicit(pte, memory_order_acquire);
		if (ntmm__pte_is_valid(old)) {
			uint64_t want = old | flags;
			if (want == old ||
			    atomic_compare_exchange_weak_explicit(
			        pte, &old, want, memory_order_relaxed, memory_order_relaxed)) {
				if (collided)
					NTMM__STAT_ADD(&e->stats, collided_faults, 1);
				return 0;
			}
			continue;
		}
		if (ntmm__pte_is_prototype(old))
			return ntmm__error(NTMM_ENOTSUP, "prototype PTE at %#llx (sections)",
			                   (unsigned long long)page);
		if (ntmm__pte_is_software(old) && !ntmm__pte_is_demand_zero(old))
			return ntmm__error(NTMM_ENOTSUP, "pagefile PTE at %#llx (paging files)",
			                   (unsigned long long)page);

		uint32_t slot;
		if (ntmm__wsl_reserve(p, &slot))
			return ntmm__error(NTMM_ENOMEM, "working set full (%u pages)",
			                   NTMM__WSL_CAPACITY);

		if (ntmm__pte_is_transition(old)) {
			ntmm__pfn_t pfn = ntmm__pte_pfn(old);
			int r = ntmm__page_reclaim(e, pfn, pte_addr, write);
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
			return 0;
		}

		/* zero or demand-zero: a zeroed frame */
		ntmm__pfn_t pfn;
		err = ntmm__page_alloc(e, NTMM__ALLOC_ZERO, NTMM__ALLOC_NODE_ANY,
		                       (uint32_t)(page >> NTMM__PAGE_SHIFT), &pfn);
		if (err) {
			ntmm__wsl_hole(p, slot);
			return ntmm__error(err, "no frame for a demand-zero fault");
		}
		/* the zeroed frame is cold (non-temporal zeroing) and the caller is
		   about to touch it: start that line's fetch now, overlapped with
		   the rest of the fault */
		__builtin_prefetch((char *)ntmm__pfn_host(e, pfn) + (va & (NTMM_PAGE_SIZE - 1)), 1,
		                   3);
		ntmm__pfn_entry_t *pe = ntmm__pfn(e, pfn);
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
			return 0;
		}
		ntmm__page_free(e, pfn); /* lost the race; never published */
		ntmm__wsl_hole(p, slot);
		collided = true;
	}
}

int ntmm__fault(ntmm_process_t *p, uint64_t va, unsigned access)
{
	uint64_t page = va & ~(uint64_t)(NTMM_PAGE_SIZE - 1);
	bool write = access == NTMM_ACCESS_WRITE;
	atomic_fetch_add_explicit(&p->cpu[ntmm__cpu_current(p->ncpu)].page_faults, 1,
	                          memory_order_relaxed);
	NTMM__STAT_ADD(&p->e->stats, page_faults, 1);
	bool compacted = false;
	for (;;) {
		unsigned slot = ntmm__ws_lock_shared(p);
		int r = dispatch(p, va, write);
		ntmm__ws_unlock_shared(p, slot);
		if (r == NTMM_ENOMEM && !compacted) {
			/* a full working-set list may only hold holes: compact once
			   (exclusive, no grace period involved) and retry */
			ntmm__ws_lock_exclusive(p);
			ntmm__wsl_compact(p);
			ntmm__ws_unlock_exclusive(p);
			compacted = true;
			continue;
		}
		if (r != -1000)
			return r;
		r = guard_fault(p, page); /* ws_lock dropped: as_lock comes first */
		if (r != FAULT_RETRY)
			return r;
	}
}
