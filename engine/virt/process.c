/*
 * Processes: creation (an empty VAD map, a root table, a working set),
 * destruction (every frame, table page and unit of commit given back, one
 * grace period for the lot), process information, and the layer's engine
 * hooks: init/fini, the audit of page tables ↔ PFN database ↔ working sets
 * ↔ commit, the gauges, and the repurpose callback the physical layer calls
 * when it takes one of our Standby pages for someone else.
 */
#include "virt/virt.h"
#include "section/section.h"
#include "engine.h"
#include "virt/frame.h"

#include <stdlib.h>
#include <string.h>

int ntmm__process_check(const ntmm_process_t *p)
{
	if (!p || (uintptr_t)p % _Alignof(ntmm_process_t) || p->magic != NTMM__PROCESS_MAGIC)
		return ntmm__error(NTMM_EINVAL, "not a live process handle");
	return 0;
}

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

int ntmm_process_create(ntmm_engine_t *e, ntmm_process_t **out)
{
	if (!e || !out)
		return ntmm__error(NTMM_EINVAL, "engine or out is NULL");
	*out = NULL;
	/* aligned: the struct holds cache-line aligned members (ws_lock) */
	size_t bytes =
	    (sizeof(ntmm_process_t) + NTMM__CACHELINE - 1) & ~(size_t)(NTMM__CACHELINE - 1);
	ntmm_process_t *p = aligned_alloc(
	    _Alignof(ntmm_process_t) > NTMM__CACHELINE ? _Alignof(ntmm_process_t) : NTMM__CACHELINE,
	    bytes);
	if (p)
		memset(p, 0, bytes);
	if (!p)
		return ntmm__error(NTMM_ENOMEM, "host memory for a process");
	p->e = e;
	ntmm__vad_map_t *empty = calloc(1, sizeof(ntmm__vad_map_t));
	atomic_store_explicit(&p->vads, empty, memory_order_relaxed);
	if (!empty) {
		free(p);
		return ntmm__error(NTMM_ENOMEM, "host memory for a process");
	}
	/* the top-level table is a page-table page the commit limit counts */
	int err = ntmm__commit_charge(p, 0, 1);
	if (err) {
		free(empty);
		free(p);
		return err;
	}
	err = ntmm__page_alloc(e, NTMM__ALLOC_ZERO, NTMM__ALLOC_NODE_ANY, 0, &p->root);
	if (err) {
		ntmm__commit_uncharge(p, 0, 1);
		free(empty);
		free(p);
		return ntmm__error(err, "no frame for the top-level page table");
	}
	ntmm__pfn_entry_t *pe = ntmm__vpfn(e, p->root);
	atomic_store_explicit(&pe->pte, 0, memory_order_relaxed);
	atomic_store_explicit(&pe->original_pte, 0, memory_order_relaxed); /* used entries */
	p->root_host = ntmm__vframe(e, p->root);
	pthread_mutex_init(&p->trim_lock, NULL);
	ntmm__pushlock_init(&p->as_lock);
	p->ncpu = e->ncpus;
	p->cpu = aligned_alloc(NTMM__CACHELINE, sizeof(*p->cpu) * (p->ncpu + 1));
	if (!p->cpu || ntmm__cache_pushlock_init(&p->ws_lock, 0)) {
		free(p->cpu);
		pthread_mutex_destroy(&p->trim_lock);
		ntmm__page_free(e, p->root);
		ntmm__commit_uncharge(p, 0, 1);
		free(empty);
		free(p);
		return ntmm__error(NTMM_ENOMEM, "host memory for a process");
	}
	memset(p->cpu, 0, sizeof(*p->cpu) * (p->ncpu + 1));
	ntmm__wsl_init(&p->wsl, e->cfg.ws_min_pages, e->cfg.ws_max_pages);
	atomic_store_explicit(&p->users, 0, memory_order_relaxed);
	ntmm__wsm_process_init(p);

	pthread_mutex_lock(&e->virt.lock);
	p->id = ++e->virt.next_id;
	cds_list_add_tail(&p->link, &e->virt.processes);
	e->virt.nprocesses++;
	pthread_mutex_unlock(&e->virt.lock);

	/* ASLR (seeded, repeatable): each process starts bottom-up placement
	   at a random granule in its first 64 GiB and top-down placement at a
	   random granule in its last 64 GiB; seed 0 = no randomization */
	p->bias_bottom_up = NTMM__VA_START;
	p->bias_top_down = NTMM__VA_END;
	if (e->cfg.aslr_seed) {
		uint64_t h = splitmix64(e->cfg.aslr_seed ^ splitmix64(p->id));
		p->bias_bottom_up += (h & 0xfffff) * NTMM_ALLOCATION_GRANULARITY;
		p->bias_top_down -= ((h >> 32) & 0xfffff) * NTMM_ALLOCATION_GRANULARITY;
	}
	p->magic = NTMM__PROCESS_MAGIC;
	*out = p;
	return 0;
}

/* Frees everything of p; the caller holds no lock of p. */
static void process_teardown(ntmm_process_t *p)
{
	ntmm_engine_t *e = p->e;
	ntmm__shootdown_t s = {0};
	pthread_mutex_lock(&p->trim_lock);
	ntmm__pushlock_acquire_exclusive(&p->as_lock);
	ntmm__ws_lock_exclusive(p);
	p->magic = 0;
	ntmm__pt_free_all(p, &s);
	ntmm__commit_uncharge(p, atomic_load_explicit(&p->commit_pages, memory_order_relaxed),
	                      atomic_load_explicit(&p->table_commit, memory_order_relaxed));
	ntmm__vad_map_t *m = atomic_load_explicit(&p->vads, memory_order_relaxed); /* as_lock */
	atomic_store_explicit(&p->vads, NULL, memory_order_relaxed);
	ntmm__ws_unlock_exclusive(p);
	ntmm__pushlock_release_exclusive(&p->as_lock);
	ntmm__shootdown_finish(e, &s); /* the grace period also covers the map */
	pthread_mutex_unlock(&p->trim_lock);
	/* the views' references go after the grace period: no fault that
	   read the map is still inside its section */
	for (size_t i = 0; m && i < m->n; i++)
		if (m->vads[i]->view)
			ntmm__view_free(e, m->vads[i]->view);
	for (size_t i = 0; i < p->nclones; i++)
		ntmm__clone_segment_put(p->clones[i]);
	free(p->clones);
	ntmm__vad_map_free_now(m);
	ntmm__wsm_process_fini(p); /* the out-swap's record, if never used */
	ntmm__wsl_fini(&p->wsl);
	pthread_mutex_destroy(&p->trim_lock);
	ntmm__cache_pushlock_destroy(&p->ws_lock);
	free(p->cpu);
	free(p);
}

/* Waits until no engine-wide pass works on p any more (p is unlinked, so
   none can start). */
static void wait_for_users(ntmm_process_t *p)
{
	for (;;) {
		uint32_t key = ntmm__event_prepare(&p->e->virt.users_done);
		/* acquire: pairs with the release decrement of the last user */
		if (atomic_load_explicit(&p->users, memory_order_acquire) == 0)
			return;
		ntmm__event_wait(&p->e->virt.users_done, key, -1);
	}
}

int ntmm_process_destroy(ntmm_process_t *p)
{
	int err = ntmm__process_check(p);
	if (err)
		return err;
	if (urcu_memb_read_ongoing())
		return ntmm__error(NTMM_EBUSY, "process destroy inside an access section");
	ntmm_engine_t *e = p->e;
	pthread_mutex_lock(&e->virt.lock);
	cds_list_del(&p->link);
	e->virt.nprocesses--;
	pthread_mutex_unlock(&e->virt.lock);
	ntmm__wsm_process_destroying(p); /* off the in-swap queue; a running one stops */
	wait_for_users(p);
	process_teardown(p);
	return 0;
}

int ntmm_process_info(ntmm_process_t *p, ntmm_process_info_t *out)
{
	int err = ntmm__process_check(p);
	if (err)
		return err;
	if (!out)
		return ntmm__error(NTMM_EINVAL, "out is NULL");
	uint64_t ws = ntmm__ws_pages(p),
	         peak = atomic_load_explicit(&p->wsl.ws_peak, memory_order_relaxed);
	uint64_t faults = 0, hard = 0;
	for (unsigned c = 0; c <= p->ncpu; c++) { /* with the shared slot */
		faults += atomic_load_explicit(&p->cpu[c].page_faults, memory_order_relaxed);
		hard += atomic_load_explicit(&p->cpu[c].hard_faults, memory_order_relaxed);
	}
	out->ws_pages = ws;
	out->ws_peak_pages = ws > peak ? ws : peak;
	out->commit_pages = atomic_load_explicit(&p->commit_pages, memory_order_relaxed);
	out->page_faults = faults;
	out->hard_faults = hard;
	out->swap_outs = atomic_load_explicit(&p->wsm.swap_outs, memory_order_relaxed);
	out->swap_ins = atomic_load_explicit(&p->wsm.swap_ins, memory_order_relaxed);
	out->swap_in_pages = atomic_load_explicit(&p->wsm.swap_in_pages, memory_order_relaxed);
	return 0;
}

/* ------------------------------------------------------------ the layer */

void ntmm__virt_repurpose(ntmm_engine_t *e, ntmm__pfn_t pfn, uint64_t pte_addr,
                          uint64_t original_pte)
{
	_Atomic uint64_t *pte = (_Atomic uint64_t *)(uintptr_t)pte_addr;
	uint64_t old = atomic_load_explicit(pte, memory_order_acquire);
	/* Only a transition PTE still naming this frame goes back; if the owner
	   has already torn it down the CAS fails and nothing changes. acq_rel:
	   pairs with the owner's exchange in teardown and its acquire loads. */
	if (ntmm__pte_is_transition(old) && ntmm__pte_pfn(old) == pfn &&
	    atomic_compare_exchange_strong_explicit(pte, &old, original_pte, memory_order_acq_rel,
	                                            memory_order_relaxed))
		return;
	/* the PTE is gone: nobody will own the paging-file slot OriginalPte names */
	ntmm__pagefile_pte_release(e, original_pte);
}

int ntmm__virt_init(ntmm_engine_t *e)
{
	ntmm__virt_t *v = &e->virt;
	pthread_mutex_init(&v->lock, NULL);
	CDS_INIT_LIST_HEAD(&v->processes);
	v->nprocesses = 0;
	v->next_id = 0;
	ntmm__event_init(&v->users_done);
	ntmm__section_init(e);
	pthread_mutex_init(&v->reclaim, NULL);
	ntmm__commit_init(e); /* io is set up before virt */
	e->phys.repurpose = ntmm__virt_repurpose;
	ntmm__paging_init(e);
	return 0;
}

void ntmm__virt_fini(ntmm_engine_t *e)
{
	ntmm__virt_t *v = &e->virt;
	for (;;) {
		pthread_mutex_lock(&v->lock);
		ntmm_process_t *p = cds_list_empty(&v->processes)
		                        ? NULL
		                        : cds_list_first_entry(&v->processes, ntmm_process_t, link);
		if (p) {
			cds_list_del(&p->link);
			v->nprocesses--;
		}
		pthread_mutex_unlock(&v->lock);
		if (!p)
			break;
		wait_for_users(p);
		process_teardown(p);
	}
	ntmm__rcu_barrier();   /* retired VAD maps */
	ntmm__section_fini(e); /* every view is gone: the sections left open */
	ntmm__rcu_barrier();   /* frames the sections' flushes let go */
	ntmm__commit_fini(e);
	pthread_mutex_destroy(&v->reclaim);
	e->phys.repurpose = NULL;
	e->phys.original_gone = NULL;
	ntmm__paging_fini(e);
	pthread_mutex_destroy(&v->lock);
}

static int audit_vads(ntmm_process_t *p, uint64_t *committed)
{
	ntmm__assert_pushlock_held(&p->as_lock, NTMM__HELD_EXCLUSIVE);
	int bad = 0;
	ntmm__vad_map_t *m = atomic_load_explicit(&p->vads, memory_order_relaxed); /* as_lock */
	*committed = 0;
	for (size_t i = 0; i < m->n; i++) {
		ntmm__vad_t *v = m->vads[i];
		uint64_t c = 0;
		if (v->start % NTMM_ALLOCATION_GRANULARITY || v->end <= v->start ||
		    (i && m->vads[i - 1]->end > v->start) || v->runs[0].first != 0)
			bad++;
		/* a view's pages are the section's; only a WRITECOPY view is
		   charged to the process (its private copies) */
		bool charged = ntmm__vad_charged(v);
		for (uint32_t r = 0; r < v->nruns; r++) {
			uint64_t end = r + 1 < v->nruns ? v->runs[r + 1].first : v->npages;
			if (end <= v->runs[r].first)
				bad++;
			if (r && v->runs[r].prot == v->runs[r - 1].prot &&
			    v->runs[r].committed == v->runs[r - 1].committed)
				bad++;
			if (v->runs[r].committed)
				c += end - v->runs[r].first;
		}
		if (c != v->ncommitted)
			bad++;
		if (charged)
			*committed += c;
	}
	if (bad)
		fprintf(stderr, "ntmm audit: process %u: %d VAD map problems\n", p->id, bad);
	return bad;
}

int ntmm__virt_audit(ntmm_engine_t *e)
{
	ntmm__virt_t *v = &e->virt;
	int bad = 0;
	uint64_t total = 0;
	pthread_mutex_lock(&v->lock);
	ntmm_process_t *p;
	for (struct cds_list_head *it = v->processes.next; it != &v->processes; it = it->next) {
		p = caa_container_of(it, ntmm_process_t, link);
		ntmm__pushlock_acquire_exclusive(&p->as_lock);
		ntmm__ws_lock_exclusive(p);
		uint64_t committed, valid;
		bad += audit_vads(p, &committed);
		uint64_t charged = atomic_load_explicit(&p->commit_pages, memory_order_relaxed);
		if (committed != charged) {
			fprintf(stderr,
			        "ntmm audit: process %u: %llu pages committed, %llu charged\n",
			        p->id, (unsigned long long)committed, (unsigned long long)charged);
			bad++;
		}
		uint64_t tables = atomic_load_explicit(&p->table_commit, memory_order_relaxed);
		uint64_t need = 1 + ntmm__commit_tables_of(
		                        atomic_load_explicit(&p->vads, memory_order_relaxed));
		if (tables != need) {
			fprintf(stderr,
			        "ntmm audit: process %u: %llu page-table pages charged, the VAD "
			        "map needs %llu\n",
			        p->id, (unsigned long long)tables, (unsigned long long)need);
			bad++;
		}
		total += charged + tables;
		uint64_t present;
		bad += ntmm__pt_audit(p, &valid, &present);
		if (present > tables) {
			fprintf(stderr,
			        "ntmm audit: process %u: %llu page-table pages, %llu charged\n",
			        p->id, (unsigned long long)present, (unsigned long long)tables);
			bad++;
		}
		bad += ntmm__wsl_audit(p);
		uint64_t ws = ntmm__ws_pages(p);
		if (valid != ws) {
			fprintf(stderr, "ntmm audit: process %u: %llu valid PTEs, ws_pages %llu\n",
			        p->id, (unsigned long long)valid, (unsigned long long)ws);
			bad++;
		}
		ntmm__ws_unlock_exclusive(p);
		ntmm__pushlock_release_exclusive(&p->as_lock);
	}
	pthread_mutex_unlock(&v->lock);
	total += atomic_load_explicit(&v->shared_commit, memory_order_relaxed);
	bad += ntmm__section_audit(e);
	uint64_t sys = atomic_load_explicit(&v->commit_pages, memory_order_relaxed);
	if (sys != total) {
		fprintf(stderr, "ntmm audit: system commit %llu != sum over processes %llu\n",
		        (unsigned long long)sys, (unsigned long long)total);
		bad++;
	}
	if (sys > ntmm__commit_limit(e)) {
		fprintf(stderr, "ntmm audit: commit %llu past limit %llu\n",
		        (unsigned long long)sys, (unsigned long long)ntmm__commit_limit(e));
		bad++;
	}
	return bad ? NTMM_EINVAL : 0;
}

void ntmm__virt_fill_gauges(ntmm_engine_t *e, ntmm_stats_t *out)
{
	out->commit_pages = atomic_load_explicit(&e->virt.commit_pages, memory_order_relaxed);
	out->commit_limit_pages = ntmm__commit_limit(e);
	pthread_mutex_lock(&e->virt.lock);
	out->processes = e->virt.nprocesses;
	pthread_mutex_unlock(&e->virt.lock);
}
