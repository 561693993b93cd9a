/*
 * Commit charge: every committed page of every process is charged against
 * the system commit limit (frames in the pool + paging-file maximum), as
 * NT charges committed private memory. The system charge is raised by CAS
 * so it never passes the limit even with many committers; a refused
 * charge changes nothing (NTMM_ECOMMIT). Page-table pages are not charged.
 */
#include "virt/virt.h"
#include "engine.h"

uint64_t ntmm__commit_limit(ntmm_engine_t *e)
{
	return e->virt.frame_limit +
	       atomic_load_explicit(&e->virt.pagefile_limit, memory_order_relaxed);
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

int ntmm__commit_charge(ntmm_process_t *p, uint64_t pages)
{
	ntmm__virt_t *v = &p->e->virt;
	uint64_t limit = ntmm__commit_limit(p->e);
	uint64_t cur = atomic_load_explicit(&v->commit_pages, memory_order_relaxed);
	do {
		if (pages > limit || cur > limit - pages)
			return ntmm__error(NTMM_ECOMMIT,
			                   "commit of %llu pages: charge %llu, limit %llu pages",
			                   (unsigned long long)pages, (unsigned long long)cur,
			                   (unsigned long long)limit);
		/* seq_cst: see ntmm__commit_set_pagefile_limit */
	} while (!atomic_compare_exchange_weak_explicit(
	    &v->commit_pages, &cur, cur + pages, memory_order_seq_cst, memory_order_relaxed));
	limit = v->frame_limit + atomic_load_explicit(&v->pagefile_limit, memory_order_seq_cst);
	if (cur + pages > limit) { /* a paging file went meanwhile */
		atomic_fetch_sub_explicit(&v->commit_pages, pages, memory_order_relaxed);
		return ntmm__error(NTMM_ECOMMIT, "commit of %llu pages: limit fell to %llu pages",
		                   (unsigned long long)pages, (unsigned long long)limit);
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
