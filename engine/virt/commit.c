/*
 * Commit charge and commit limit (NT: MmTotalCommittedPages against
 * MmTotalCommitLimit). The limit is a promise: every page charged against
 * it can be made resident and written, read and paged out again, at any
 * time, whatever the other committed pages do. So it counts only what
 * committed pages can really use:
 *
 *   commit limit = commit_frames + paging-file slots obtained
 *   commit_frames = frames in the pool - the resident reserve
 *
 * - Paging-file slots obtained: the space the paging files hold now (slot 0
 *   of each excluded). The io layer owns that count (io->size_pages_total);
 *   the limit reads it, nothing mirrors it. It rises when a file is added or
 *   grows; it falls only through a shrink or a removal, which lower it
 *   first and then read the charge (the commit floor this file registers
 *   with io, ntmm__commit_pagefile_need) and give back what the charge
 *   needs — so the limit never falls below the charge.
 * - The resident reserve (ntmm__commit_reserve): frames committed pages
 *   never count on, because reclaim needs them to turn over. Say C pages
 *   are charged, F frames and S slots are counted, and C ≤ F + S − r. At a
 *   moment when no frame is free, none is on Standby and no resident page
 *   is clean (trimmable to Standby), every frame holds a dirty page and
 *   every slot in use holds a page that is not resident, so at least r
 *   slots are free: a dirty page can always be written, and then its frame
 *   repurposed. The reserve is that r — a few frames for the runs the
 *   writer and the hard fault move at once, and for frames in flight
 *   (a collided fault's spare frame, a hard fault's cluster, the zero page
 *   thread's batch: each comes back by itself, the allocation waits for
 *   it) — kept below the working set manager's minimum mark, so a pool
 *   without a paging file can still come under pressure. Frames in the
 *   per-CPU caches need no reserve: they are free frames the allocator's
 *   last resort flushes and takes, and the available count includes them.
 * - Page-table pages are charged, like committed pages, when a commit needs
 *   them and given back when the decommit that leaves them empty happens
 *   (ntmm__commit_table_delta): one page per 2 MiB span holding a committed
 *   page, one per 1 GiB span, one per 512 GiB span, and each process's
 *   top-level table from its creation. They are not pageable here, so a
 *   commit that did not pay for them would take frames the limit promised
 *   to others (sparse commits: up to one table page per committed page).
 *   The charge is a pure function of the VAD map, which the audit checks.
 *
 * A charge that does not fit first picks up space the paging files obtained
 * since and then grows them toward their maximum (as NT expands its paging
 * files when the charge nears the limit); only when no file can grow — all
 * at maximum, or the disk refused — is it refused with NTMM_ECOMMIT. The
 * charge is raised by CAS so it never passes the limit with many committers;
 * a refused charge changes nothing.
 */
#include "virt/virt.h"
#include "engine.h"

#define PAGE ((uint64_t)NTMM_PAGE_SIZE)

/* The resident reserve (see above): RESERVE_MIN frames and 1/1024 of the
   pool beyond (256 MiB: 96 frames), never more than an eighth of it. */
#define RESERVE_MIN 32u

uint64_t ntmm__commit_reserve(const ntmm_engine_t *e)
{
	uint64_t frames = e->phys.nframes;
	uint64_t r = RESERVE_MIN + frames / 1024;
	return r < frames / 8 ? r : frames / 8;
}

/* seq_cst: the charge's read for the floor (io.h: Dekker with the
   shrinker's or remover's seq_cst lowering of the total). */
static uint64_t pagefile_need(const ntmm__virt_t *v)
{
	uint64_t charge = atomic_load_explicit(&v->commit_pages, memory_order_seq_cst);
	return charge > v->commit_frames ? charge - v->commit_frames : 0;
}

static uint64_t floor_cb(void *arg)
{
	return pagefile_need(arg);
}

void ntmm__commit_init(ntmm_engine_t *e)
{
	ntmm__virt_t *v = &e->virt;
	atomic_store_explicit(&v->commit_pages, 0, memory_order_relaxed);
	v->commit_frames = e->phys.nframes - ntmm__commit_reserve(e);
	ntmm__pagefile_set_commit_floor(&e->io, floor_cb, v);
}

void ntmm__commit_fini(ntmm_engine_t *e)
{
	ntmm__pagefile_set_commit_floor(&e->io, NULL, NULL);
}

uint64_t ntmm__commit_limit(ntmm_engine_t *e)
{
	uint64_t size, max;
	ntmm__pagefile_totals(&e->io, &size, &max);
	return e->virt.commit_frames + size;
}

uint64_t ntmm__commit_limit_max(ntmm_engine_t *e)
{
	uint64_t size, max;
	ntmm__pagefile_totals(&e->io, &size, &max);
	return e->virt.commit_frames + max;
}

uint64_t ntmm__commit_pagefile_need(ntmm_engine_t *e)
{
	return pagefile_need(&e->virt);
}

/* Grows the paging files by `need` slots toward their maximum. true if a
   file grew or the space obtained rose (a shrink may take it back before
   the caller's retry: it tries again, a bounded number of times). Called
   by ntmm__commit_charge, so with the process's as_lock held exclusive
   (or before the process is published): growth takes only io->lock and a
   file's resize_lock. */
static bool obtain(ntmm_engine_t *e, uint64_t need, uint64_t before)
{
	uint64_t size, max;
	bool grew = false;
	ntmm__pagefile_totals(&e->io, &size, &max);
	for (unsigned i = 0; i < NTMM__PF_MAX_FILES && size < before + need && size < max; i++) {
		if (!atomic_load_explicit(&e->io.files[i], memory_order_acquire))
			continue;
		/* errors (at maximum, disk full) just leave this file as it is */
		grew |= ntmm__pagefile_grow(&e->io, i, before + need - size) == 0;
		ntmm__pagefile_totals(&e->io, &size, &max);
	}
	return grew || size > before;
}

/* Charge attempts that may follow a growth (a concurrent shrink can take
   the space back between the growth and the charge). */
#define CHARGE_TRIES 16

/* as_lock exclusive, unless p is not published yet (create) or any more
   (teardown, which holds it anyway) */
static void assert_charge_locked(ntmm_process_t *p)
{
	if (p->magic == NTMM__PROCESS_MAGIC)
		ntmm__assert_pushlock_held(&p->as_lock, NTMM__HELD_EXCLUSIVE);
}

/* The system charge alone (the process's share is the caller's). */
static int charge_system(ntmm_engine_t *e, uint64_t pages, uint64_t tables)
{
	ntmm__virt_t *v = &e->virt;
	uint64_t want = pages + tables;
	for (unsigned tries = 0;; tries++) {
		uint64_t size, max;
		ntmm__pagefile_totals(&e->io, &size, &max);
		uint64_t limit = v->commit_frames + size;
		uint64_t cur = atomic_load_explicit(&v->commit_pages, memory_order_relaxed);
		bool fits;
		do {
			fits = want <= limit && cur <= limit - want;
			if (!fits)
				break;
			/* seq_cst: then the total is read (below) — Dekker with a
			   shrink or remove, which lowers the total, then reads the
			   charge (io.h) */
		} while (!atomic_compare_exchange_weak_explicit(&v->commit_pages, &cur, cur + want,
		                                                memory_order_seq_cst,
		                                                memory_order_relaxed));
		if (!fits) {
			if (tries < CHARGE_TRIES && obtain(e, cur + want - limit, size))
				continue;
			return ntmm__error(NTMM_ECOMMIT,
			                   "commit of %llu pages (+%llu page-table pages): charge "
			                   "%llu, limit %llu pages (%llu frames of the pool, the "
			                   "paging files at their maximum)",
			                   (unsigned long long)pages, (unsigned long long)tables,
			                   (unsigned long long)cur, (unsigned long long)limit,
			                   (unsigned long long)v->commit_frames);
		}
		limit = v->commit_frames + ntmm__pagefile_obtained_sc(&e->io);
		if (cur + want > limit) { /* a paging file shrank or went meanwhile */
			atomic_fetch_sub_explicit(&v->commit_pages, want, memory_order_relaxed);
			if (tries < CHARGE_TRIES)
				continue;
			return ntmm__error(NTMM_ECOMMIT,
			                   "commit of %llu pages: limit fell to %llu pages",
			                   (unsigned long long)pages, (unsigned long long)limit);
		}
		break;
	}
	return 0;
}

int ntmm__commit_charge(ntmm_process_t *p, uint64_t pages, uint64_t tables)
{
	assert_charge_locked(p);
	int err = charge_system(p->e, pages, tables);
	if (err)
		return err;
	atomic_fetch_add_explicit(&p->commit_pages, pages, memory_order_relaxed);
	atomic_fetch_add_explicit(&p->table_commit, tables, memory_order_relaxed);
	return 0;
}

void ntmm__commit_uncharge(ntmm_process_t *p, uint64_t pages, uint64_t tables)
{
	assert_charge_locked(p);
	ntmm__virt_t *v = &p->e->virt;
	ntmm__assert(atomic_load_explicit(&p->commit_pages, memory_order_relaxed) >= pages);
	ntmm__assert(atomic_load_explicit(&p->table_commit, memory_order_relaxed) >= tables);
	atomic_fetch_sub_explicit(&p->commit_pages, pages, memory_order_relaxed);
	atomic_fetch_sub_explicit(&p->table_commit, tables, memory_order_relaxed);
	atomic_fetch_sub_explicit(&v->commit_pages, pages + tables, memory_order_relaxed);
}

int ntmm__commit_charge_shared(ntmm_engine_t *e, uint64_t pages)
{
	int err = charge_system(e, pages, 0);
	if (!err)
		atomic_fetch_add_explicit(&e->virt.shared_commit, pages, memory_order_relaxed);
	return err;
}

void ntmm__commit_uncharge_shared(ntmm_engine_t *e, uint64_t pages)
{
	ntmm__assert(atomic_load_explicit(&e->virt.shared_commit, memory_order_relaxed) >= pages);
	atomic_fetch_sub_explicit(&e->virt.shared_commit, pages, memory_order_relaxed);
	atomic_fetch_sub_explicit(&e->virt.commit_pages, pages, memory_order_relaxed);
}

/* ------------------------------------------------------ page-table pages */

/* The table levels below the root a committed page needs, by the span one
   table page of that level maps: 2 MiB (leaf tables), 1 GiB, 512 GiB. */
static const unsigned table_shift[NTMM__PT_LEVELS - 1] = {21, 30, 39};

static uint64_t run_end(const ntmm__vad_t *x, uint32_t i)
{
	return i + 1 < x->nruns ? x->runs[i + 1].first : x->npages;
}

/* Whether x (NULL: nothing) has a committed page in [lo, hi). */
static bool committed_in(const ntmm__vad_t *x, uint64_t lo, uint64_t hi)
{
	if (!x)
		return false;
	if (lo < x->start)
		lo = x->start;
	if (hi > x->end)
		hi = x->end;
	return lo < hi &&
	       ntmm__vad_count_committed(x, (lo - x->start) / PAGE, (hi - lo) / PAGE) > 0;
}

/* The spans of 2^shift bytes that hold a committed page of x within
   [lo, hi), counted once each; *last (UINT64_MAX: none yet) is the last
   span counted, carried across calls in address order. */
static uint64_t spans_with(const ntmm__vad_t *x, uint64_t lo, uint64_t hi, unsigned shift,
                           uint64_t *last)
{
	uint64_t n = 0;
	for (uint32_t i = 0; x && i < x->nruns; i++) {
		if (!x->runs[i].committed)
			continue;
		uint64_t rs = x->start + x->runs[i].first * PAGE;
		uint64_t re = x->start + run_end(x, i) * PAGE;
		if (rs < lo)
			rs = lo;
		if (re > hi)
			re = hi;
		if (rs >= re)
			continue;
		uint64_t a = rs >> shift, b = (re - 1) >> shift;
		if (*last != UINT64_MAX && a <= *last)
			a = *last + 1;
		if (a <= b) {
			n += b - a + 1;
			*last = b;
		}
	}
	return n;
}

/* Whether a VAD of m other than `skip` has a committed page in [lo, hi). */
static bool others_in(const ntmm__vad_map_t *m, const ntmm__vad_t *skip, uint64_t lo, uint64_t hi)
{
	for (size_t i = ntmm__vad_lower_bound(m, lo); i < m->n && m->vads[i]->start < hi; i++)
		if (m->vads[i] != skip && committed_in(m->vads[i], lo, hi))
			return true;
	return false;
}

int64_t ntmm__commit_table_delta(const ntmm__vad_map_t *m, const ntmm__vad_t *old,
                                 const ntmm__vad_t *new_, uint64_t start, uint64_t end)
{
	const ntmm__vad_t *ref = old ? old : new_;
	int64_t d = 0;
	if (!ref || start >= end)
		return 0;
	for (unsigned l = 0; l < NTMM__PT_LEVELS - 1; l++) {
		unsigned shift = table_shift[l];
		uint64_t a = start >> shift, b = (end - 1) >> shift;
		/* the two edge spans may hold other reservations' pages */
		for (uint64_t s = a;; s = b) {
			uint64_t lo = s << shift, hi = lo + (1ull << shift);
			bool was = committed_in(old, lo, hi), is = committed_in(new_, lo, hi);
			bool alone = lo >= ref->start && hi <= ref->end;
			if (was != is && (alone || !others_in(m, old, lo, hi)))
				d += is ? 1 : -1;
			if (s == b)
				break;
		}
		/* the spans between lie inside [start, end), in this reservation */
		if (b > a + 1) {
			uint64_t lo = (a + 1) << shift, hi = b << shift, l1 = UINT64_MAX,
			         l2 = UINT64_MAX;
			d += (int64_t)spans_with(new_, lo, hi, shift, &l1) -
			     (int64_t)spans_with(old, lo, hi, shift, &l2);
		}
	}
	return d;
}

uint64_t ntmm__commit_tables_of(const ntmm__vad_map_t *m)
{
	uint64_t n = 0;
	for (unsigned l = 0; l < NTMM__PT_LEVELS - 1; l++) {
		uint64_t last = UINT64_MAX;
		for (size_t i = 0; i < m->n; i++)
			n += spans_with(m->vads[i], 0, UINT64_MAX, table_shift[l], &last);
	}
	return n;
}
