/*
 * Commit charge: every committed page of every process is charged against
 * the system commit limit, as NT charges committed private memory. The
 * limit is the frames of the pool plus the paging-file slots actually
 * obtained (paging.h: ntmm__commit_limit); a charge that does not fit first
 * grows the paging files toward their maximum (as NT expands its paging
 * files when the charge nears the limit), and only when no file can grow —
 * all at maximum, or the disk refused — is it refused. The system charge
 * is raised by CAS so it never passes the limit even with many committers;
 * a refused charge changes nothing (NTMM_ECOMMIT). Page-table pages are not
 * charged.
 *
 * A paging file that shrinks (segment dereference thread) must keep
 * frames + size >= charge; the audit checks the charge against the limit
 * at maximum, which a shrink never lowers.
 */
#include "virt/virt.h"
#include "engine.h"

/* Grows paging files until the limit has room for `need` more pages.
   true if some file grew. Called with as_lock held (allocate): growth
   takes only the file's resize_lock. */
static bool grow_for(ntmm_engine_t *e, uint64_t need)
{
	bool grew = false;
	for (unsigned i = 0; i < NTMM__PF_MAX_FILES && need; i++) {
		uint64_t before = ntmm__commit_limit(e);
		if (ntmm__pagefile_grow(&e->io, i, need) == 0) {
			uint64_t after = ntmm__commit_limit(e);
			grew = grew || after > before;
			need = after - before >= need ? 0 : need - (after - before);
		}
	}
	return grew;
}

int ntmm__commit_charge(ntmm_process_t *p, uint64_t pages)
{
	ntmm_engine_t *e = p->e;
	ntmm__virt_t *v = &e->virt;
	uint64_t cur = atomic_load_explicit(&v->commit_pages, memory_order_relaxed);
	for (;;) {
		uint64_t limit = ntmm__commit_limit(e);
		if (pages > limit || cur > limit - pages) {
			uint64_t need = cur + pages - limit;
			if (pages <= ntmm__commit_limit_max(e) && grow_for(e, need)) {
				cur = atomic_load_explicit(&v->commit_pages, memory_order_relaxed);
				continue;
			}
			return ntmm__error(NTMM_ECOMMIT,
			                   "commit of %llu pages: charge %llu, limit %llu pages "
			                   "(paging files at maximum)",
			                   (unsigned long long)pages, (unsigned long long)cur,
			                   (unsigned long long)limit);
		}
		/* relaxed: the charge is a counter; nothing is published through it */
		if (atomic_compare_exchange_weak_explicit(&v->commit_pages, &cur, cur + pages,
		                                          memory_order_relaxed,
		                                          memory_order_relaxed))
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
