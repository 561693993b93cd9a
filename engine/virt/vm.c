/*
 * The NtAllocateVirtualMemory family: ntmm_allocate (reserve / commit /
 * both, fixed or engine-chosen base, 64 KiB granularity, page rounding; a
 * recommit applies the new protection), ntmm_free (decommit pages /
 * release a whole reservation named by its first page), ntmm_protect and
 * ntmm_query, with Windows' rules for arguments (Wine's and ReactOS's
 * tests, re-expressed in test_virt_windows.c). Each change builds a new
 * VAD map under the address-space pushlock and publishes it (RCU); changes
 * that affect resident pages then take the working-set pushlock exclusive
 * to fix the PTEs, and end with one grace period outside both locks
 * before frames are handed back or the call returns.
 */
#include "virt/virt.h"
#include "section/section.h"
#include "engine.h"

#include <stdlib.h>

#define PAGE    ((uint64_t)NTMM_PAGE_SIZE)
#define GRANULE ((uint64_t)NTMM_ALLOCATION_GRANULARITY)

/* Windows' rule for a protection on private memory, as Wine's and ReactOS's
   tests see it: one base kind in the low byte; the copy-on-write kinds
   only for views of sections; at most one modifier of GUARD, NOCACHE and
   WRITECOMBINE, and none with NOACCESS. What Windows refuses is
   NTMM_EINVAL; what it grants and ntmm does not model (execute, cache
   attributes) is NTMM_ENOTSUP. */
static int prot_check(unsigned prot)
{
	const unsigned mods = NTMM_PAGE_GUARD | NTMM_PAGE_NOCACHE | NTMM_PAGE_WRITECOMBINE;
	unsigned base = prot & 0xffu, mod = prot & ~0xffu;
	if (mod & ~mods)
		return ntmm__error(NTMM_EINVAL, "protection %#x: unknown bits %#x", prot,
		                   mod & ~mods);
	if (base == 0 || (base & (base - 1)))
		return ntmm__error(NTMM_EINVAL, "protection %#x: not exactly one kind of access",
		                   prot);
	if (base == NTMM_PAGE_WRITECOPY || base == NTMM_PAGE_EXECUTE_WRITECOPY)
		return ntmm__error(NTMM_EINVAL,
		                   "protection %#x: copy-on-write is for views of sections, "
		                   "not private memory",
		                   prot);
	if (mod & (mod - 1))
		return ntmm__error(NTMM_EINVAL,
		                   "protection %#x: GUARD, NOCACHE and WRITECOMBINE exclude each "
		                   "other",
		                   prot);
	if (mod && base == NTMM_PAGE_NOACCESS)
		return ntmm__error(NTMM_EINVAL, "protection %#x: a modifier with PAGE_NOACCESS",
		                   prot);
	if (base & (NTMM_PAGE_EXECUTE | NTMM_PAGE_EXECUTE_READ | NTMM_PAGE_EXECUTE_READWRITE))
		return ntmm__error(NTMM_ENOTSUP, "protection %#x: ntmm executes nothing", prot);
	if (mod & (NTMM_PAGE_NOCACHE | NTMM_PAGE_WRITECOMBINE))
		return ntmm__error(NTMM_ENOTSUP, "protection %#x: ntmm has no cache attributes",
		                   prot);
	return 0;
}

/* [*start, *end) = pages holding a byte of [base, base + size); false on
   size 0 or a range past the user address space */
static bool page_range(uint64_t base, uint64_t size, uint64_t *start, uint64_t *end)
{
	if (size == 0 || size > NTMM__VA_END || base > NTMM__VA_END - size)
		return false;
	*start = base & ~(PAGE - 1);
	*end = (base + size + PAGE - 1) & ~(PAGE - 1);
	return *start >= NTMM__VA_START;
}

/* Reserves (and with NTMM_MEM_COMMIT commits) a new region; as_lock
   exclusive held. */
static int reserve(ntmm_process_t *p, uint64_t *base, size_t size, unsigned type, unsigned prot)
{
	ntmm__assert_pushlock_held(&p->as_lock, NTMM__HELD_EXCLUSIVE);
	ntmm__vad_map_t *m = atomic_load_explicit(&p->vads, memory_order_relaxed); /* as_lock */
	uint64_t start, end;
	if (*base == 0) {
		if (size == 0 || size > NTMM__VA_END - NTMM__VA_START)
			return ntmm__error(
			    NTMM_EINVAL,
			    "size %zu: larger than the user address space (%llu bytes)", size,
			    (unsigned long long)(NTMM__VA_END - NTMM__VA_START));
		uint64_t bytes = ((uint64_t)size + PAGE - 1) & ~(PAGE - 1);
		start = ntmm__vad_place(p, m, bytes, (type & NTMM_MEM_TOP_DOWN) != 0);
		if (!start)
			return ntmm__error(NTMM_ENOMEM,
			                   "no free range of %llu bytes in the user address space",
			                   (unsigned long long)bytes);
		end = start + bytes;
	} else {
		if (!page_range(*base, size, &start, &end))
			return ntmm__error(NTMM_EINVAL, "range %#llx + %zu",
			                   (unsigned long long)*base, size);
		start &= ~(GRANULE - 1);
		if (start < NTMM__VA_START)
			return ntmm__error(NTMM_EINVAL, "base %#llx below the user address space",
			                   (unsigned long long)*base);
		size_t i = ntmm__vad_lower_bound(m, start);
		if (i < m->n && m->vads[i]->start < end)
			return ntmm__error(NTMM_ECONFLICT, "%#llx..%#llx overlaps a reservation",
			                   (unsigned long long)start, (unsigned long long)end);
	}
	bool commit = (type & NTMM_MEM_COMMIT) != 0;
	uint64_t npages = commit ? (end - start) / PAGE : 0;
	ntmm__vad_t *v = ntmm__vad_new(start, end, prot, commit, prot);
	if (!v)
		return ntmm__error(NTMM_ENOMEM, "host memory for the VAD map");
	/* the pages and the page-table pages they need */
	uint64_t tables = commit ? (uint64_t)ntmm__commit_table_delta(m, NULL, v, start, end) : 0;
	int err;
	if (commit && (err = ntmm__commit_charge(p, npages, tables))) {
		free(v);
		return err;
	}
	ntmm__vad_map_t *nm = ntmm__vad_map_insert(m, v);
	if (!nm) {
		free(v);
		if (commit)
			ntmm__commit_uncharge(p, npages, tables);
		return ntmm__error(NTMM_ENOMEM, "host memory for the VAD map");
	}
	ntmm__vad_publish(p, nm, NULL);
	*base = start;
	return 0;
}

/* Commits pages of one reservation. Pages already committed are not
   charged again but take the new protection: their resident PTEs are
   reprotected (ws_lock exclusive), and *removed says whether a permission
   was taken away, so the caller ends with a grace period once as_lock is
   released. as_lock exclusive held. */
static int commit(ntmm_process_t *p, uint64_t *base, size_t size, unsigned prot, bool *removed)
{
	ntmm__assert_pushlock_held(&p->as_lock, NTMM__HELD_EXCLUSIVE);
	ntmm__vad_map_t *m = atomic_load_explicit(&p->vads, memory_order_relaxed); /* as_lock */
	uint64_t start, end;
	if (!page_range(*base, size, &start, &end))
		return ntmm__error(NTMM_EINVAL, "range %#llx + %zu", (unsigned long long)*base,
		                   size);
	long vi = ntmm__vad_find(m, start);
	if (vi < 0 || m->vads[vi]->end < end)
		return ntmm__error(NTMM_ECONFLICT, "%#llx..%#llx is not inside one reservation",
		                   (unsigned long long)start, (unsigned long long)end);
	ntmm__vad_t *v = m->vads[vi];
	uint64_t first = (start - v->start) / PAGE, count = (end - start) / PAGE;
	if (v->view) {
		/* a view: its pages are the section's, committed in the section
		   (SEC_RESERVE) and charged to it; the VAD stays as it is */
		int r = ntmm__view_commit(p->e, v->view, v->view->first + first, count);
		if (!r)
			*base = start;
		return r;
	}
	uint64_t need = count - ntmm__vad_count_committed(v, first, count);
	bool reprotect = ntmm__vad_count_reprotected(v, first, count, prot) != 0;
	/* a protection change may need a grace period, which the caller's own
	   access section would block (as ntmm_protect) */
	if (reprotect && urcu_memb_read_ongoing())
		return ntmm__error(NTMM_EBUSY,
		                   "recommit with a new protection inside an access section");
	ntmm__vad_t *nv = ntmm__vad_apply(v, first, count, NTMM__VAD_COMMIT, prot);
	if (!nv)
		return ntmm__error(NTMM_ENOMEM, "host memory for the VAD map");
	/* the pages and the page-table pages they need */
	uint64_t tables = (uint64_t)ntmm__commit_table_delta(m, v, nv, start, end);
	int err;
	if ((need || tables) && (err = ntmm__commit_charge(p, need, tables))) {
		free(nv);
		return err;
	}
	ntmm__vad_map_t *nm = ntmm__vad_map_replace(m, (size_t)vi, nv);
	if (!nm) {
		free(nv);
		ntmm__commit_uncharge(p, need, tables);
		return ntmm__error(NTMM_ENOMEM, "host memory for the VAD map");
	}
	ntmm__vad_publish(p, nm, v);
	if (reprotect) { /* the new map is out: faults from now on use prot */
		ntmm__ws_lock_exclusive(p);
		*removed = ntmm__pt_reprotect(p, start, end, prot);
		ntmm__ws_unlock_exclusive(p);
	}
	*base = start;
	return 0;
}

int ntmm_allocate(ntmm_process_t *p, uint64_t *base, size_t size, unsigned type, unsigned prot)
{
	int err = ntmm__process_check(p);
	if (err)
		return err;
	if (!base)
		return ntmm__error(NTMM_EINVAL, "base is NULL");
	if ((type & ~(NTMM_MEM_RESERVE | NTMM_MEM_COMMIT | NTMM_MEM_TOP_DOWN)) ||
	    !(type & (NTMM_MEM_RESERVE | NTMM_MEM_COMMIT)))
		return ntmm__error(NTMM_EINVAL, "allocation type %#x", type);
	if ((err = prot_check(prot)))
		return err;
	if (size == 0)
		return ntmm__error(NTMM_EINVAL, "size 0");
	bool removed = false;
	ntmm__rcu_thread_online(); /* call_rcu needs a registered thread */
	ntmm__pushlock_acquire_exclusive(&p->as_lock);
	/* MEM_COMMIT alone at base 0 reserves too, as VirtualAlloc does */
	if ((type & NTMM_MEM_RESERVE) || *base == 0)
		err = reserve(p, base, size, type, prot);
	else
		err = commit(p, base, size, prot, &removed);
	ntmm__pushlock_release_exclusive(&p->as_lock);
	if (removed) { /* no translated pointer from before survives the call */
		ntmm__rcu_synchronize();
		NTMM__STAT_ADD(&p->e->stats, rcu_shootdowns, 1);
	}
	ntmm__rcu_thread_offline();
	return err;
}

int ntmm_free(ntmm_process_t *p, uint64_t base, size_t size, unsigned type)
{
	int err = ntmm__process_check(p);
	if (err)
		return err;
	if (type != NTMM_MEM_DECOMMIT && type != NTMM_MEM_RELEASE)
		return ntmm__error(NTMM_EINVAL, "free type %#x (DECOMMIT or RELEASE)", type);
	if (type == NTMM_MEM_RELEASE && size != 0)
		return ntmm__error(NTMM_EINVAL, "MEM_RELEASE takes size 0 (the whole reservation)");
	if (base >= NTMM__VA_END ||
	    (size && !page_range(base, size, &(uint64_t){0}, &(uint64_t){0})))
		return ntmm__error(NTMM_EINVAL, "range %#llx + %zu", (unsigned long long)base,
		                   size);
	if (urcu_memb_read_ongoing())
		return ntmm__error(NTMM_EBUSY, "ntmm_free inside an access section");

	ntmm__rcu_thread_online();
	pthread_mutex_lock(&p->trim_lock);
	ntmm__pushlock_acquire_exclusive(&p->as_lock);
	ntmm__vad_map_t *m = atomic_load_explicit(&p->vads, memory_order_relaxed); /* as_lock */
	long vi = ntmm__vad_find(m, base);
	ntmm__vad_t *v = vi >= 0 ? m->vads[vi] : NULL;
	uint64_t start = 0, end = 0;
	ntmm__vad_map_t *nm = NULL;
	if (v && v->view) {
		err = ntmm__error(NTMM_EINVAL, "%#llx is in a view: ntmm_unmap_view unmaps it",
		                  (unsigned long long)base);
		goto out;
	}
	ntmm__vad_t *nv = NULL;
	uint64_t uncharge = 0, tables = 0;
	if (type == NTMM_MEM_RELEASE || size == 0) {
		/* size 0 names the whole reservation by an address in its first
		   page (Windows rounds the address down to its page) */
		if (!v || v->start != (base & ~(PAGE - 1))) {
			err = ntmm__error(NTMM_ECONFLICT,
			                  "%#llx is not in the first page of a reservation",
			                  (unsigned long long)base);
			goto out;
		}
		start = v->start;
		end = v->end;
	} else {
		page_range(base, size, &start, &end);
		if (!v || end > v->end) {
			err = ntmm__error(NTMM_ECONFLICT,
			                  "%#llx..%#llx is not inside one reservation",
			                  (unsigned long long)start, (unsigned long long)end);
			goto out;
		}
	}
	uint64_t first = (start - v->start) / PAGE, count = (end - start) / PAGE;
	uncharge = ntmm__vad_count_committed(v, first, count);
	if (type == NTMM_MEM_RELEASE) {
		nm = ntmm__vad_map_replace(m, (size_t)vi, NULL);
	} else {
		nv = ntmm__vad_apply(v, first, count, NTMM__VAD_DECOMMIT, 0);
		nm = nv ? ntmm__vad_map_replace(m, (size_t)vi, nv) : NULL;
	}
	if (!nm) {
		free(nv);
		err = ntmm__error(NTMM_ENOMEM, "host memory for the VAD map");
		goto out;
	}
	/* the page-table pages no committed page needs any more */
	tables = (uint64_t)-ntmm__commit_table_delta(m, v, nv, start, end);
	ntmm__vad_publish(p, nm, v);
	ntmm__commit_uncharge(p, uncharge, tables);

	/* the new map is published, so no fault can map the range again */
	ntmm__shootdown_t s = {0};
	ntmm__pt_teardown_range(p, start, end, &s);
	ntmm__pushlock_release_exclusive(&p->as_lock);
	ntmm__shootdown_finish(p->e, &s);
	pthread_mutex_unlock(&p->trim_lock);
	ntmm__rcu_thread_offline();
	return 0;
out:
	ntmm__pushlock_release_exclusive(&p->as_lock);
	pthread_mutex_unlock(&p->trim_lock);
	ntmm__rcu_thread_offline();
	return err;
}

/* What ntmm_protect may give the pages of VAD v: private memory anything
   prot_check allows but WRITECOPY; a view at most what its section and
   its own kind allow (READWRITE: a READWRITE view; WRITECOPY: a WRITECOPY
   view). */
static int view_prot_check(const ntmm__vad_t *v, unsigned prot)
{
	unsigned base = prot & 0xffu;
	if (!v->view) {
		if (base == NTMM_PAGE_WRITECOPY)
			return ntmm__error(
			    NTMM_EINVAL,
			    "protection %#x: copy-on-write is for views of sections, "
			    "not private memory",
			    prot);
		return 0;
	}
	if (base == NTMM_PAGE_READWRITE && (v->view->cow || v->view->max_prot != base))
		return ntmm__error(NTMM_EACCESS, "READWRITE in a %s view",
		                   v->view->cow ? "WRITECOPY" : "read-only");
	if (base == NTMM_PAGE_WRITECOPY && !v->view->cow)
		return ntmm__error(NTMM_EACCESS, "WRITECOPY in a view that is not copy-on-write");
	return 0;
}

int ntmm_protect(ntmm_process_t *p, uint64_t base, size_t size, unsigned prot, unsigned *old_prot)
{
	int err = ntmm__process_check(p);
	if (err)
		return err;
	if (!old_prot)
		return ntmm__error(NTMM_EINVAL, "old_prot is NULL");
	/* WRITECOPY is checked against the VAD below (views only) */
	bool writecopy = (prot & 0xffu) == NTMM_PAGE_WRITECOPY;
	if ((err = prot_check(writecopy ? (prot & ~0xffu) | NTMM_PAGE_READWRITE : prot)))
		return err;
	uint64_t start, end;
	if (!page_range(base, size, &start, &end))
		return ntmm__error(NTMM_EINVAL, "range %#llx + %zu", (unsigned long long)base,
		                   size);
	if (urcu_memb_read_ongoing())
		return ntmm__error(NTMM_EBUSY, "ntmm_protect inside an access section");

	ntmm__rcu_thread_online();
	ntmm__pushlock_acquire_exclusive(&p->as_lock);
	ntmm__vad_map_t *m = atomic_load_explicit(&p->vads, memory_order_relaxed); /* as_lock */
	long vi = ntmm__vad_find(m, start);
	ntmm__vad_t *v = vi >= 0 ? m->vads[vi] : NULL;
	uint64_t first = 0, count = 0;
	if (v) {
		first = (start - v->start) / PAGE;
		count = (end - start) / PAGE;
	}
	/* private memory refuses WRITECOPY whatever the range holds */
	if ((err = v           ? view_prot_check(v, prot)
	           : writecopy ? ntmm__error(NTMM_EINVAL,
	                                     "protection %#x: copy-on-write is for views "
	                                     "of sections, not private memory",
	                                     prot)
	                       : 0)) {
		ntmm__pushlock_release_exclusive(&p->as_lock);
		ntmm__rcu_thread_offline();
		return err;
	}
	if (!v || end > v->end || !ntmm__vad_all_committed(v, first, count)) {
		ntmm__pushlock_release_exclusive(&p->as_lock);
		ntmm__rcu_thread_offline();
		return ntmm__error(NTMM_ECONFLICT,
		                   "%#llx..%#llx is not committed in one reservation",
		                   (unsigned long long)start, (unsigned long long)end);
	}
	unsigned old = ntmm__vad_run_of(v, first)->prot;
	ntmm__vad_t *nv = ntmm__vad_apply(v, first, count, NTMM__VAD_PROTECT, prot);
	ntmm__vad_map_t *nm = nv ? ntmm__vad_map_replace(m, (size_t)vi, nv) : NULL;
	if (!nm) {
		free(nv);
		ntmm__pushlock_release_exclusive(&p->as_lock);
		ntmm__rcu_thread_offline();
		return ntmm__error(NTMM_ENOMEM, "host memory for the VAD map");
	}
	ntmm__vad_publish(p, nm, v);
	ntmm__ws_lock_exclusive(p);
	/* a WRITECOPY view's shared pages stay read-only (a write copies
	   them); its private copies get their write access back at their
	   next write, a fault that only sets the bit */
	bool removed = ntmm__pt_reprotect(p, start, end,
	                                  writecopy ? (prot & ~0xffu) | NTMM_PAGE_READONLY : prot);
	ntmm__ws_unlock_exclusive(p);
	ntmm__pushlock_release_exclusive(&p->as_lock);
	if (removed) { /* no translated pointer from before survives the call */
		ntmm__rcu_synchronize();
		NTMM__STAT_ADD(&p->e->stats, rcu_shootdowns, 1);
	}
	ntmm__rcu_thread_offline();
	*old_prot = old;
	return 0;
}

int ntmm_query(ntmm_process_t *p, uint64_t va, ntmm_region_info_t *info)
{
	int err = ntmm__process_check(p);
	if (err)
		return err;
	if (!info)
		return ntmm__error(NTMM_EINVAL, "info is NULL");
	if (va >= NTMM__VA_END)
		return ntmm__error(NTMM_EINVAL, "address %#llx past the user address space",
		                   (unsigned long long)va);
	uint64_t page = va & ~(PAGE - 1);
	ntmm__pushlock_acquire_shared(&p->as_lock);
	ntmm__vad_map_t *m = atomic_load_explicit(&p->vads, memory_order_relaxed); /* as_lock */
	long vi = ntmm__vad_find(m, page);
	*info = (ntmm_region_info_t){0};
	info->base = page;
	if (vi < 0) {
		size_t nx = ntmm__vad_lower_bound(m, page);
		uint64_t limit = nx < m->n ? m->vads[nx]->start : NTMM__VA_END;
		if (page < NTMM__VA_START)
			limit = NTMM__VA_START;
		info->size = limit - page;
		info->state = NTMM_MEM_FREE;
		info->prot = NTMM_PAGE_NOACCESS;
	} else {
		const ntmm__vad_t *v = m->vads[vi];
		uint64_t pg = (page - v->start) / PAGE;
		const ntmm__vad_run_t *r = ntmm__vad_run_of(v, pg);
		uint64_t rend = r + 1 < v->runs + v->nruns ? r[1].first : v->npages;
		info->size = (rend - pg) * PAGE;
		info->allocation_base = v->start;
		info->allocation_prot = v->alloc_prot;
		info->state = r->committed ? NTMM_MEM_COMMIT : NTMM_MEM_RESERVE;
		info->prot = r->committed ? r->prot : 0;
		info->type = v->view ? NTMM_MEM_MAPPED : NTMM_MEM_PRIVATE;
		if (v->view) {
			/* a SEC_RESERVE section's pages are committed in the section */
			bool committed;
			uint64_t n = ntmm__view_run(v->view, v->view->first + pg, info->size / PAGE,
			                            &committed);
			info->size = n * PAGE;
			if (!committed) {
				info->state = NTMM_MEM_RESERVE;
				info->prot = 0;
			}
		}
	}
	ntmm__pushlock_release_shared(&p->as_lock);
	return 0;
}
