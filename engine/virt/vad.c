/*
 * VADs and the VAD map: the address space's reservations, their per-page
 * commit state and protection (as runs), and engine-chosen placement.
 * Everything here is a pure function over immutable objects: a change
 * builds new VADs and a new map, which vm.c publishes under the
 * address-space pushlock (ntmm__vad_publish); readers on the fault path
 * use whatever map they loaded inside their read-side section.
 */
#include "virt/virt.h"
#include "engine.h"

#include <limits.h>

#include <stdlib.h>
#include <string.h>

long ntmm__vad_find(const ntmm__vad_map_t *m, uint64_t va)
{
	size_t i = ntmm__vad_lower_bound(m, va);
	if (i < m->n && m->vads[i]->start <= va)
		return (long)i;
	return -1;
}

size_t ntmm__vad_lower_bound(const ntmm__vad_map_t *m, uint64_t va)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->vads[mid]->end <= va)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const ntmm__vad_run_t *ntmm__vad_run_of(const ntmm__vad_t *v, uint64_t pg)
{
	uint32_t lo = 0, hi = v->nruns;
	while (hi - lo > 1) { /* last run with first <= pg */
		uint32_t mid = lo + (hi - lo) / 2;
		if (v->runs[mid].first <= pg)
			lo = mid;
		else
			hi = mid;
	}
	return &v->runs[lo];
}

static ntmm__vad_t *vad_alloc(uint32_t nruns)
{
	return malloc(sizeof(ntmm__vad_t) + (size_t)nruns * sizeof(ntmm__vad_run_t));
}

ntmm__vad_t *ntmm__vad_new(uint64_t start, uint64_t end, unsigned alloc_prot, bool commit,
                           unsigned prot)
{
	ntmm__vad_t *v = vad_alloc(1);
	if (!v)
		return NULL;
	v->start = start;
	v->end = end;
	v->alloc_prot = alloc_prot;
	v->view = NULL;
	v->npages = (end - start) >> NTMM__PAGE_SHIFT;
	v->ncommitted = commit ? v->npages : 0;
	v->nruns = 1;
	v->runs[0] = (ntmm__vad_run_t){.first = 0, .committed = commit, .prot = commit ? prot : 0};
	return v;
}

static uint64_t run_end(const ntmm__vad_t *v, uint32_t i)
{
	return i + 1 < v->nruns ? v->runs[i + 1].first : v->npages;
}

static ntmm__vad_run_t transform(ntmm__vad_run_t r, enum ntmm__vad_op op, unsigned prot)
{
	switch (op) {
	case NTMM__VAD_COMMIT: /* committed pages take the new protection too */
		r.committed = 1, r.prot = prot & 0xffffu;
		break;
	case NTMM__VAD_DECOMMIT:
		r.committed = 0, r.prot = 0;
		break;
	case NTMM__VAD_PROTECT:
		if (r.committed)
			r.prot = prot & 0xffffu;
		break;
	case NTMM__VAD_CLEAR_GUARD:
		if (r.committed)
			r.prot &= ~NTMM_PAGE_GUARD & 0xffffu;
		break;
	}
	return r;
}

/* appends [first, end) with the state of r, merging with an equal neighbour */
static void push_run(ntmm__vad_t *n, ntmm__vad_run_t r, uint64_t first, uint64_t end)
{
	if (first >= end)
		return;
	if (r.committed)
		n->ncommitted += end - first;
	if (n->nruns && n->runs[n->nruns - 1].prot == r.prot &&
	    n->runs[n->nruns - 1].committed == r.committed)
		return;
	r.first = first;
	n->runs[n->nruns++] = r;
}

ntmm__vad_t *ntmm__vad_apply(const ntmm__vad_t *v, uint64_t first, uint64_t count,
                             enum ntmm__vad_op op, unsigned prot)
{
	ntmm__vad_t *n = vad_alloc(v->nruns + 2);
	if (!n)
		return NULL;
	uint64_t last = first + count;
	n->start = v->start;
	n->end = v->end;
	n->alloc_prot = v->alloc_prot;
	n->view = v->view;
	n->npages = v->npages;
	n->ncommitted = 0;
	n->nruns = 0;
	for (uint32_t i = 0; i < v->nruns; i++) {
		uint64_t rs = v->runs[i].first, re = run_end(v, i);
		uint64_t ms = rs > first ? rs : first, me = re < last ? re : last;
		push_run(n, v->runs[i], rs, ms < re ? ms : re);
		if (ms < me)
			push_run(n, transform(v->runs[i], op, prot), ms, me);
		push_run(n, v->runs[i], me > rs ? me : rs, re);
	}
	return n;
}

/* Committed pages of [first, first + count) whose protection is not
   `other_than` (NO_PROT: every committed page). Starts at the run holding
   `first` (binary search) and stops past the range, so a query on a few
   pages of a VAD with many runs costs the runs it overlaps. */
#define NO_PROT UINT_MAX
static uint64_t count_committed_runs(const ntmm__vad_t *v, uint64_t first, uint64_t count,
                                     unsigned other_than)
{
	uint64_t last = first + count, sum = 0;
	if (count == 0 || first >= v->npages)
		return 0;
	for (uint32_t i = (uint32_t)(ntmm__vad_run_of(v, first) - v->runs);
	     i < v->nruns && v->runs[i].first < last; i++) {
		if (!v->runs[i].committed || v->runs[i].prot == other_than)
			continue;
		uint64_t rs = v->runs[i].first, re = run_end(v, i);
		uint64_t ms = rs > first ? rs : first, me = re < last ? re : last;
		if (ms < me)
			sum += me - ms;
	}
	return sum;
}

uint64_t ntmm__vad_count_committed(const ntmm__vad_t *v, uint64_t first, uint64_t count)
{
	return count_committed_runs(v, first, count, NO_PROT);
}

bool ntmm__vad_all_committed(const ntmm__vad_t *v, uint64_t first, uint64_t count)
{
	return ntmm__vad_count_committed(v, first, count) == count;
}

uint64_t ntmm__vad_count_reprotected(const ntmm__vad_t *v, uint64_t first, uint64_t count,
                                     unsigned prot)
{
	return count_committed_runs(v, first, count, prot);
}

static ntmm__vad_map_t *map_alloc(size_t n)
{
	ntmm__vad_map_t *m = malloc(sizeof(*m) + n * sizeof(m->vads[0]));
	if (m) {
		m->retired = NULL;
		m->n = n;
	}
	return m;
}

ntmm__vad_map_t *ntmm__vad_map_insert(const ntmm__vad_map_t *m, ntmm__vad_t *v)
{
	ntmm__vad_map_t *n = map_alloc(m->n + 1);
	if (!n)
		return NULL;
	size_t i = ntmm__vad_lower_bound(m, v->start);
	memcpy(n->vads, m->vads, i * sizeof(m->vads[0]));
	n->vads[i] = v;
	memcpy(n->vads + i + 1, m->vads + i, (m->n - i) * sizeof(m->vads[0]));
	return n;
}

ntmm__vad_map_t *ntmm__vad_map_replace(const ntmm__vad_map_t *m, size_t i, ntmm__vad_t *v)
{
	ntmm__vad_map_t *n = map_alloc(v ? m->n : m->n - 1);
	if (!n)
		return NULL;
	memcpy(n->vads, m->vads, i * sizeof(m->vads[0]));
	if (v) {
		n->vads[i] = v;
		memcpy(n->vads + i + 1, m->vads + i + 1, (m->n - i - 1) * sizeof(m->vads[0]));
	} else {
		memcpy(n->vads + i, m->vads + i + 1, (m->n - i - 1) * sizeof(m->vads[0]));
	}
	return n;
}

static void map_free_rcu(struct rcu_head *h)
{
	ntmm__vad_map_t *m = caa_container_of(h, ntmm__vad_map_t, rcu);
	ntmm__rcu_tsan_after_gp();
	free(m->retired);
	free(m);
}

void ntmm__vad_publish(ntmm_process_t *p, ntmm__vad_map_t *next, ntmm__vad_t *gone)
{
	ntmm__assert_pushlock_held(&p->as_lock, NTMM__HELD_EXCLUSIVE);
	/* relaxed: as_lock exclusive, we are the only writer */
	ntmm__vad_map_t *old = atomic_load_explicit(&p->vads, memory_order_relaxed);
	/* release: pairs with the acquire load in fault.c, so readers see the
	   new map's contents initialised */
	atomic_store_explicit(&p->vads, next, memory_order_release);
	old->retired = gone;
	ntmm__rcu_call(&old->rcu, map_free_rcu);
}

void ntmm__vad_map_free_now(ntmm__vad_map_t *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		free(m->vads[i]);
	free(m->retired);
	free(m);
}

#define GRANULE ((uint64_t)NTMM_ALLOCATION_GRANULARITY)
static uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

uint64_t ntmm__vad_place(const ntmm_process_t *p, const ntmm__vad_map_t *m, uint64_t bytes,
                         bool top_down)
{
	if (bytes == 0 || bytes > NTMM__VA_END - NTMM__VA_START)
		return 0;
	if (!top_down) {
		for (int pass = 0; pass < 2; pass++) {
			uint64_t floor = pass == 0 ? p->bias_bottom_up : NTMM__VA_START;
			for (size_t i = 0; i <= m->n; i++) {
				uint64_t lo =
				    i ? align_up(m->vads[i - 1]->end, GRANULE) : NTMM__VA_START;
				uint64_t hi = i < m->n ? m->vads[i]->start : NTMM__VA_END;
				if (lo < floor)
					lo = floor;
				if (lo < hi && hi - lo >= bytes)
					return lo;
			}
			if (floor == NTMM__VA_START)
				break;
		}
		return 0;
	}
	for (int pass = 0; pass < 2; pass++) {
		uint64_t ceil = pass == 0 ? p->bias_top_down : NTMM__VA_END;
		for (size_t i = m->n + 1; i-- > 0;) {
			uint64_t lo = i ? align_up(m->vads[i - 1]->end, GRANULE) : NTMM__VA_START;
			uint64_t hi = i < m->n ? m->vads[i]->start : NTMM__VA_END;
			if (hi > ceil)
				hi = ceil;
			if (lo < hi && hi - lo >= bytes) {
				uint64_t base = (hi - bytes) & ~(GRANULE - 1);
				if (base >= lo)
					return base;
			}
		}
		if (ceil == NTMM__VA_END)
			break;
	}
	return 0;
}
