/*
 * Commit charge: every committed page of every process is charged against
 * the system commit limit, as NT charges committed private memory. The
 * limit is frame_limit (the pool's frames) + pagefile_limit, the paging-
 * file slots actually obtained. A charge that does not fit first picks up
 * space the io layer has obtained since (a file added or grown) and then
 * grows the paging files toward their maximum (as NT expands its paging
 * files when the charge nears the limit); only when no file can grow — all
 * at maximum, or the disk refused — is it refused. The charge is raised by
 * CAS so it never passes the limit even with many committers; a refused
 * charge changes nothing (NTMM_ECOMMIT). Page-table pages are not charged.
 *
 * Lowering the limit (a paging file shrinks or goes) goes through
 * ntmm__commit_set_pagefile_limit, which refuses to go below the charge.
 */
#include "virt/virt.h"
#include "engine.h"

uint64_t ntmm__commit_limit(ntmm_engine_t *e)
{
	return e->virt.frame_limit +
	       atomic_load_explicit(&e->virt.pagefile_limit, memory_order_relaxed);
}

uint64_t ntmm__commit_limit_max(ntmm_engine_t *e)
{
	uint64_t size, max;
	ntmm__pagefile_totals(&e->io, &size, &max);
	return e->virt.frame_limit + max;
}

int ntmm__commit_set_pagefile_limit(ntmm_engine_t *e, uint64_t pages)
{
	ntmm__virt_t *v = &e->virt;
	pthread_mutex_lock(&v->lock); /* setters in order */
	uint64_t old = atomic_load_explicit(&v->pagefile_limit, memory_order_relaxed);
	/* seq_cst store then load, against the charger's seq_cst CAS then load
	   (Dekker): either we see its charge or it sees our lower limit */
	atomic_store_explicit(&v->pagefile_limit, pages, memory_order_seq_cst);
	uint64_t charge = atomic_load_explicit(&v->commit_pages, memory_order_seq_cst);
	int err = 0;
	if (charge > v->frame_limit + pages) {
		atomic_store_explicit(&v->pagefile_limit, old, memory_order_seq_cst);
		err = ntmm__error(
		    NTMM_ECOMMIT, "commit charge %llu pages exceeds the new limit %llu",
		    (unsigned long long)charge, (unsigned long long)(v->frame_limit + pages));
	}
	pthread_mutex_unlock(&v->lock);
	return err;
}

/* Raises pagefile_limit to the space the files hold now, growing them by
   `need` pages toward their maximum first if they do not hold enough.
   true if the limit rose. Called with as_lock held (allocate): growth
   takes only a file's resize_lock. */
static bool obtain(ntmm_engine_t *e, uint64_t need)
{
	ntmm__virt_t *v = &e->virt;
	uint64_t before = atomic_load_explicit(&v->pagefile_limit, memory_order_relaxed);
	uint64_t size, max;
	ntmm__pagefile_totals(&e->io, &size, &max);
	for (unsigned i = 0; i < NTMM__PF_MAX_FILES && size < before + need && size < max; i++) {
		if (!atomic_load_explicit(&e->io.files[i], memory_order_acquire))
			continue;
		/* errors (at maximum, disk full) just leave this file as it is */
		ntmm__pagefile_grow(&e->io, i, before + need - size);
		ntmm__pagefile_totals(&e->io, &size, &max);
	}
	if (size <= before)
		return false;
	return ntmm__commit_set_pagefile_limit(e, size) == 0;
}

uint64_t ntmm__commit_pagefile_need(ntmm_engine_t *e)
{
	/* relaxed: a floor for the shrink; a charge that rises after this
	   load is met by ntmm__commit_sync_pagefile_limit's grow-back */
	uint64_t charge = atomic_load_explicit(&e->virt.commit_pages, memory_order_relaxed);
	return charge > e->virt.frame_limit ? charge - e->virt.frame_limit : 0;
}

void ntmm__commit_sync_pagefile_limit(ntmm_engine_t *e)
{
	uint64_t size, max;
	ntmm__pagefile_totals(&e->io, &size, &max);
	if (ntmm__commit_set_pagefile_limit(e, size) == 0)
		return;
	/* a shrink went below what the charge needs: grow back the deficit
	   (if the disk refuses, the limit stays above the space; the writer
	   then finds no room and pages stay Modified, nothing is lost) */
	uint64_t need = ntmm__commit_pagefile_need(e);
	for (unsigned i = 0; i < NTMM__PF_MAX_FILES && size < need; i++) {
		if (!atomic_load_explicit(&e->io.files[i], memory_order_acquire))
			continue;
		ntmm__pagefile_grow(&e->io, i, need - size);
		ntmm__pagefile_totals(&e->io, &size, &max);
	}
	ntmm__commit_set_pagefile_limit(e, size);
}

int ntmm__commit_charge(ntmm_process_t *p, uint64_t pages)
{
	ntmm_engine_t *e = p->e;
	ntmm__virt_t *v = &e->virt;
	for (;;) {
		uint64_t limit = ntmm__commit_limit(e);
		uint64_t cur = atomic_load_explicit(&v->commit_pages, memory_order_relaxed);
		bool fits;
		do {
			fits = pages <= limit && cur <= limit - pages;
			if (!fits)
				break;
			/* seq_cst: see ntmm__commit_set_pagefile_limit */
		} while (!atomic_compare_exchange_weak_explicit(&v->commit_pages, &cur, cur + pages,
		                                                memory_order_seq_cst,
		                                                memory_order_relaxed));
		if (!fits) {
			if (obtain(e, cur + pages - limit))
				continue;
			return ntmm__error(NTMM_ECOMMIT,
			                   "commit of %llu pages: charge %llu, limit %llu pages "
			                   "(paging files at their maximum)",
			                   (unsigned long long)pages, (unsigned long long)cur,
			                   (unsigned long long)limit);
		}
		limit =
		    v->frame_limit + atomic_load_explicit(&v->pagefile_limit, memory_order_seq_cst);
		if (cur + pages > limit) { /* a paging file went meanwhile */
			atomic_fetch_sub_explicit(&v->commit_pages, pages, memory_order_relaxed);
			return ntmm__error(NTMM_ECOMMIT,
			                   "commit of %llu pages: limit fell to %llu pages",
			                   (unsigned long long)pages, (unsigned long long)limit);
		}
		break;
	}
	atomic_fetch_add_explicit(&p->commit_pages, pages, memory_order_relaxed);
	return 0;
}

void ntmm__commit_uncharge(ntmm_process_t *p, uint64_t pages)
{
	ntmm__virt_t *v = &p->e->virt;
	ntmm__assert(atomic_load_explicit(&p->commit_pages, memory_order_relaxed) >= pages);
	atomic_fetch_sub_explicit(&p->commit_pages, pages, memory_order_relaxed);
	atomic_fetch_sub_explicit(&v->commit_pages, pages, memory_order_relaxed);
}
