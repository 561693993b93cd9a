/*
 * Commit charge: every committed page of every process is charged against
 * the system commit limit (frames in the pool + paging-file maximum), as
 * NT charges committed private memory. The system charge is raised by CAS
 * so it never passes the limit even with many committers; a refused
 * charge changes nothing (NTMM_ECOMMIT). Page-table pages are not charged.
 */
#include "virt/virt.h"
#include "engine.h"

int ntmm__commit_charge(ntmm_process_t *p, uint64_t pages)
{
	ntmm__virt_t *v = &p->e->virt;
	uint64_t cur = atomic_load_explicit(&v->commit_pages, memory_order_relaxed);
	do {
		if (pages > v->commit_limit || cur > v->commit_limit - pages)
			return ntmm__error(NTMM_ECOMMIT,
			                   "commit of %llu pages: charge %llu, limit %llu pages",
			                   (unsigned long long)pages, (unsigned long long)cur,
			                   (unsigned long long)v->commit_limit);
		/* relaxed: the charge is a counter; nothing is published through it */
	} while (!atomic_compare_exchange_weak_explicit(
	    &v->commit_pages, &cur, cur + pages, memory_order_relaxed, memory_order_relaxed));
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
