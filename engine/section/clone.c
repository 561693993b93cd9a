/*
 * ntmm_process_clone (POSIX fork; NTMM-REFERENCE.md §9 "Clone").
 *
 * The parent's private pages that hold data (valid, transition or in a
 * paging-file slot) move into a clone segment: a paging-file-backed
 * segment of their own whose prototype PTEs play NT's clone blocks. Each
 * such page gets one prototype; the frame (or slot) becomes the
 * prototype's, and both processes' PTEs reference it copy-on-write — the
 * parent's stays valid but read-only with CopyOnWrite set (no fault for
 * its reads), the child's is a prototype PTE naming the prototype, so the
 * child's first access is a soft fault (or a hard one from the slot). The
 * first write on either side copies the page into a private frame and
 * drops that side's share (virt/fault.c → ntmm__clone_fault). Pages never
 * touched (demand-zero) stay demand-zero on both sides.
 *
 * Views are mapped again in the child at the same addresses with the same
 * protection: shared views share the section's pages; in a WRITECOPY view
 * the pages the parent had copied are cloned like private memory (the
 * child sees the parent's copy, and either side's write copies again), the
 * others stay the section's. Reservations, protections and guard pages are copied
 * with the VAD map. The child is charged the parent's commit up front.
 *
 * The clone segment lives while either process does (each holds a
 * reference, dropped at its teardown); its pages leave memory like any
 * section's once no working set holds them.
 *
 * Locks: the parent's trim_lock, as_lock and ws_lock exclusive for the
 * conversion (no fault or trim of the parent meanwhile), then one grace
 * period after releasing them (the parent's translated pointers from
 * before may have had write access).
 */
#include "engine.h"
#include "section/section.h"
#include "virt/frame.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

#define PAGE NTMM_PAGE_SIZE

typedef struct conv {
	ntmm_process_t *parent, *child;
	ntmm__segment_t *seg;
	/* walking a WRITECOPY view: its section's segment (its pages are
	   the section's and the child faults them from there), else NULL */
	ntmm__segment_t *view_seg;
	uint64_t next; /* next free index of the clone segment */
	int err;
	ntmm__shootdown_t *s; /* frames a conversion left unshared */
} conv_t;

/* The child's PTE at va becomes `val` (a prototype PTE), its tables made. */
static int child_pte(conv_t *c, uint64_t va, uint64_t val)
{
	_Atomic uint64_t *q;
	unsigned slot = ntmm__ws_lock_shared(c->child);
	int err = ntmm__pt_ensure(c->child, va, &q);
	if (!err) {
		atomic_store_explicit(q, val, memory_order_release);
		ntmm__pt_note_fill(c->child, q);
	}
	ntmm__ws_unlock_shared(c->child, slot);
	return err;
}

/* One leaf PTE of the parent's private memory. */
static void convert_leaf(ntmm_process_t *p, uint64_t va, _Atomic uint64_t *pte, void *arg)
{
	conv_t *c = arg;
	if (c->err)
		return;
	ntmm_engine_t *e = p->e;
	uint64_t pte_addr = (uint64_t)(uintptr_t)pte;
	for (unsigned tries = 0;; tries++) {
		uint64_t old = atomic_load_explicit(pte, memory_order_acquire);
		if (ntmm__pte_is_prototype(old)) {
			/* already a clone page (an earlier clone): the child
			   references the same prototype */
			uint64_t addr = ntmm__pte_proto_addr(old);
			ntmm__segment_t *seg = addr ? ntmm__proto_segment(addr, NULL) : NULL;
			if (!seg || seg == c->view_seg)
				return; /* the view's own page: the child faults it */
			if (seg != c->seg)
				c->err = ntmm__clone_link(c->child, seg);
			if (!c->err)
				c->err = child_pte(c, va, old);
			return;
		}
		bool valid = ntmm__pte_is_valid(old);
		if (valid && ntmm__frame_is_shared(e, ntmm__pte_pfn(old), pte_addr)) {
			/* shared with an earlier clone: reference its prototype too */
			uint64_t addr = atomic_load_explicit(
			    &ntmm__vpfn(e, ntmm__pte_pfn(old))->pte, memory_order_relaxed);
			ntmm__segment_t *seg = ntmm__proto_segment(addr, NULL);
			if (seg == c->view_seg)
				return; /* the view's own page: the child faults it */
			if (seg != c->seg)
				c->err = ntmm__clone_link(c->child, seg);
			if (!c->err)
				c->err = child_pte(
				    c, va,
				    ntmm__pte_make_prototype(addr, ntmm__mmprot_from_bits(old)));
			return;
		}
		if (!valid && !ntmm__pte_is_transition(old) && !ntmm__pte_is_pagefile(old))
			return; /* demand-zero or nothing: stays so on both sides */
		uint64_t idx = c->next;
		_Atomic uint64_t *proto = ntmm__proto(c->seg, idx, true);
		if (!proto) {
			c->err = ntmm__error(NTMM_ENOMEM, "host memory for clone prototypes");
			return;
		}
		uint64_t proto_addr = (uint64_t)(uintptr_t)proto;
		unsigned mmprot = valid ? ntmm__mmprot_from_bits(old) : ntmm__pte_prot(old);
		uint64_t ref = ntmm__pte_make_prototype(proto_addr, mmprot);
		if (ntmm__pte_is_pagefile(old)) {
			/* the slot becomes the prototype's */
			atomic_store_explicit(proto, old, memory_order_release);
			atomic_store_explicit(pte, ref, memory_order_release);
		} else if (ntmm__pte_is_transition(old)) {
			/* on Standby/Modified (or in a write): bring it back to
			   ACTIVE for the move, then let it go again as the
			   prototype's */
			ntmm__pfn_t pfn = ntmm__pte_pfn(old);
			int r = ntmm__page_reclaim(e, pfn, pte_addr, false);
			if (r == NTMM_EBUSY) { /* in a read or write: wait for it */
				sched_yield();
				continue;
			}
			if (r) /* repurposed: the PTE is a pagefile PTE now */
				continue;
			atomic_store_explicit(&ntmm__vpfn(e, pfn)->pte, proto_addr,
			                      memory_order_relaxed);
			atomic_store_explicit(proto, ntmm__pte_make_valid(pfn, 0, 0),
			                      memory_order_release);
			atomic_store_explicit(pte, ref, memory_order_release);
			/* the share reclaim gave: gone at once, the page was not
			   mapped by any PTE (no grace period needed) */
			ntmm__section_unshare(e, pfn, (old & NTMM__PTE_DIRTY) != 0, NULL);
		} else {
			/* valid: the parent keeps it mapped, read-only and
			   copy-on-write; the frame becomes the prototype's */
			ntmm__pfn_t pfn = ntmm__pte_pfn(old);
			/* a CAS loop: a translate may set Accessed/Dirty meanwhile */
			while (!atomic_compare_exchange_weak_explicit(
			    pte, &old, (old & ~(uint64_t)NTMM__PTE_WRITE) | NTMM__PTE_COW,
			    memory_order_acq_rel, memory_order_relaxed))
				;
			if (old & NTMM__PTE_DIRTY)
				ntmm__page_set_modified(e, pfn);
			atomic_store_explicit(&ntmm__vpfn(e, pfn)->pte, proto_addr,
			                      memory_order_relaxed);
			atomic_store_explicit(proto, ntmm__pte_make_valid(pfn, 0, 0),
			                      memory_order_release);
		}
		c->next++;
		c->err = child_pte(c, va, ref);
		return;
	}
}

int ntmm__clone_link(ntmm_process_t *p, ntmm__segment_t *seg)
{
	for (size_t i = 0; i < p->nclones; i++)
		if (p->clones[i] == seg)
			return 0;
	ntmm__segment_t **n = realloc(p->clones, (p->nclones + 1) * sizeof(*n));
	if (!n)
		return ntmm__error(NTMM_ENOMEM, "host memory for the clone list");
	p->clones = n;
	p->clones[p->nclones++] = seg;
	pthread_mutex_lock(&p->e->section.lock);
	seg->refs++;
	pthread_mutex_unlock(&p->e->section.lock);
	return 0;
}

/* A copy of v (its view, if any, a new one for the child). */
static ntmm__vad_t *vad_copy(ntmm_engine_t *e, const ntmm__vad_t *v)
{
	size_t bytes = sizeof(*v) + (size_t)v->nruns * sizeof(v->runs[0]);
	ntmm__vad_t *n = malloc(bytes);
	if (!n)
		return NULL;
	memcpy(n, v, bytes);
	if (v->view) {
		ntmm__view_t *view = malloc(sizeof(*view));
		if (!view) {
			free(n);
			return NULL;
		}
		*view = *v->view;
		pthread_mutex_lock(&e->section.lock);
		view->seg->refs++;
		pthread_mutex_unlock(&e->section.lock);
		n->view = view;
	}
	return n;
}

int ntmm_process_clone(ntmm_process_t *p, ntmm_process_t **child)
{
	if (child)
		*child = NULL;
	int err = ntmm__process_check(p);
	if (err)
		return err;
	if (!child)
		return ntmm__error(NTMM_EINVAL, "child is NULL");
	if (urcu_memb_read_ongoing())
		return ntmm__error(NTMM_EBUSY, "ntmm_process_clone inside an access section");
	ntmm_engine_t *e = p->e;
	ntmm_process_t *c;
	if ((err = ntmm_process_create(e, &c)))
		return err;
	ntmm__rcu_thread_online();
	pthread_mutex_lock(&p->trim_lock);
	ntmm__pushlock_acquire_exclusive(&p->as_lock);
	ntmm__vad_map_t *m = atomic_load_explicit(&p->vads, memory_order_relaxed); /* as_lock */

	/* the child's map: every VAD copied */
	ntmm__vad_map_t *cm = calloc(1, sizeof(*cm) + m->n * sizeof(cm->vads[0]));
	if (!cm) {
		err = ntmm__error(NTMM_ENOMEM, "host memory for the child's VAD map");
		goto fail_locked;
	}
	for (size_t i = 0; i < m->n; i++) {
		if (!(cm->vads[i] = vad_copy(e, m->vads[i]))) {
			cm->n = i;
			err = ntmm__error(NTMM_ENOMEM, "host memory for the child's VADs");
			goto fail_map;
		}
	}
	cm->n = m->n;
	/* commit up front: the parent's charge (private pages and WRITECOPY
	   views) and the page-table pages the map needs */
	uint64_t pages = atomic_load_explicit(&p->commit_pages, memory_order_relaxed);
	uint64_t tables = ntmm__commit_tables_of(cm);
	ntmm__pushlock_acquire_exclusive(&c->as_lock);
	if ((err = ntmm__commit_charge(c, pages, tables))) {
		ntmm__pushlock_release_exclusive(&c->as_lock);
		goto fail_map;
	}
	ntmm__vad_map_t *old_cm = atomic_load_explicit(&c->vads, memory_order_relaxed);
	atomic_store_explicit(&c->vads, cm, memory_order_release);
	ntmm__pushlock_release_exclusive(&c->as_lock);
	free(old_cm); /* the empty map; never published to a fault */
	atomic_store_explicit(&c->wsm.page_priority,
	                      atomic_load_explicit(&p->wsm.page_priority, memory_order_relaxed),
	                      memory_order_relaxed);

	/* the clone segment, sized for every page of private memory */
	uint64_t npages = 0;
	for (size_t i = 0; i < m->n; i++)
		if (!m->vads[i]->view || m->vads[i]->view->cow)
			npages += m->vads[i]->npages;
	conv_t cv = {.parent = p, .child = c};
	if (npages) {
		cv.seg = ntmm__clone_segment_new(e, npages);
		if (!cv.seg) {
			err = ntmm__error(NTMM_ENOMEM, "host memory for the clone segment");
			goto fail_child;
		}
		/* each process's reference; then the creation's goes */
		err = ntmm__clone_link(p, cv.seg);
		if (!err)
			err = ntmm__clone_link(c, cv.seg);
		ntmm__clone_segment_put(cv.seg);
		if (err)
			goto fail_child;
		ntmm__ws_lock_exclusive(p);
		for (size_t i = 0; i < m->n && !cv.err; i++) {
			const ntmm__vad_t *v = m->vads[i];
			/* private memory, and the private copies of WRITECOPY views */
			if (v->view && !v->view->cow)
				continue;
			cv.view_seg = v->view ? v->view->seg : NULL;
			for (uint64_t va = ntmm__pt_next_present(p, v->start, v->end);
			     va < v->end && !cv.err;) {
				uint64_t stop =
				    (va + NTMM__PT_LEAF_SPAN) & ~(NTMM__PT_LEAF_SPAN - 1);
				if (stop > v->end)
					stop = v->end;
				ntmm__pt_walk(p, va, stop, convert_leaf, &cv);
				va = ntmm__pt_next_present(p, stop, v->end);
			}
		}
		ntmm__ws_unlock_exclusive(p);
		err = cv.err;
	}
	ntmm__pushlock_release_exclusive(&p->as_lock);
	/* write access went from the parent's PTEs: no translated pointer
	   from before survives the call */
	ntmm__rcu_synchronize();
	NTMM__STAT_ADD(&e->stats, rcu_shootdowns, 1);
	pthread_mutex_unlock(&p->trim_lock);
	ntmm__rcu_thread_offline();
	if (err) {
		/* the parent is consistent (its pages are clone pages now);
		   the half-built child goes */
		ntmm_process_destroy(c);
		return err;
	}
	*child = c;
	return 0;

fail_map:
	for (size_t i = 0; i < cm->n; i++) {
		if (cm->vads[i]->view)
			ntmm__view_free(e, cm->vads[i]->view);
		free(cm->vads[i]);
	}
	free(cm);
fail_locked:
	ntmm__pushlock_release_exclusive(&p->as_lock);
	pthread_mutex_unlock(&p->trim_lock);
	ntmm__rcu_thread_offline();
	ntmm_process_destroy(c);
	return err;
fail_child:
	ntmm__pushlock_release_exclusive(&p->as_lock);
	pthread_mutex_unlock(&p->trim_lock);
	ntmm__rcu_thread_offline();
	ntmm_process_destroy(c);
	return err;
}
