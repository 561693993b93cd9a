/*
 * Working sets: the list of a process's resident pages with their ages,
 * the limits, aging, and the trim primitive the working set manager drives
 * (and ntmm_ws_empty uses). See virt.h for the list's layout and locking.
 *
 * Trim = the engine's TLB shootdown, batched: under ws_lock exclusive each
 * chosen PTE goes valid → transition and its frame is unmapped (share 0 →
 * TRANSITION "awaiting shootdown"); after the lock is dropped one
 * synchronize_rcu covers the whole batch, then release_batch sends the
 * frames to Standby or Modified. A thread that faults the page back before
 * that reclaims it from TRANSITION (a soft fault). Pinned frames (ref > 0)
 * are never trimmed.
 */
#include "virt/virt.h"
#include "section/section.h"
#include "engine.h"
#include "virt/frame.h"

#include <stdlib.h>

int ntmm__wsl_init(ntmm__wsl_t *w, size_t min_pages, size_t max_pages)
{
	for (unsigned i = 0; i < NTMM__WSL_NCHUNKS; i++)
		atomic_store_explicit(&w->chunk[i], NULL, memory_order_relaxed);
	atomic_store_explicit(&w->next, 0, memory_order_relaxed);
	atomic_store_explicit(&w->ws_peak, 0, memory_order_relaxed);
	w->min_pages = min_pages;
	w->max_pages = max_pages;
	w->hand = 0;
	return 0;
}

void ntmm__wsl_fini(ntmm__wsl_t *w)
{
	for (unsigned i = 0; i < NTMM__WSL_NCHUNKS; i++)
		free((void *)atomic_load_explicit(&w->chunk[i], memory_order_relaxed));
}

static int ensure_chunk(ntmm__wsl_t *w, uint32_t slot)
{
	unsigned c = slot / NTMM__WSL_CHUNK;
	if (atomic_load_explicit(&w->chunk[c], memory_order_acquire))
		return 0;
	_Atomic uint64_t *n = calloc(NTMM__WSL_CHUNK, sizeof(*n));
	_Atomic uint64_t *expect = NULL;
	if (!n)
		return NTMM_ENOMEM;
	/* release: the zeroed chunk is visible to whoever loads it (acquire in
	   ntmm__wsl_entry) */
	if (!atomic_compare_exchange_strong_explicit(&w->chunk[c], &expect, n, memory_order_acq_rel,
	                                             memory_order_acquire))
		free(n);
	return 0;
}

/* Installs a fresh batch from `next` in the batch word `cache`, which held
   the used-up batch v, and takes its first slot: 0 and *slot set; 1 if
   another thread installed one first (our batch stays holes: retry);
   NTMM_ENOMEM when the list is full. */
static int wsl_refill(ntmm__wsl_t *w, _Atomic uint64_t *cache, uint64_t v, uint32_t *slot)
{
	uint32_t i = atomic_load_explicit(&w->next, memory_order_relaxed), n;
	do {
		if (i >= NTMM__WSL_CAPACITY)
			return NTMM_ENOMEM;
		n = NTMM__WSL_CAPACITY - i < NTMM__WSL_BATCH ? NTMM__WSL_CAPACITY - i
		                                             : NTMM__WSL_BATCH;
	} while (!atomic_compare_exchange_weak_explicit(&w->next, &i, i + n, memory_order_relaxed,
	                                                memory_order_relaxed));
	if (ensure_chunk(w, i) || ensure_chunk(w, i + n - 1))
		return NTMM_ENOMEM; /* the batch stays holes */
	uint64_t want = (uint64_t)(i + 1) | ((uint64_t)(i + n) << 32);
	/* expects the used-up batch v, so it never lands between a
	   restartable take's load and store (those only store over an unused
	   batch: sync/percpu.h) */
	if (!atomic_compare_exchange_strong_explicit(cache, &v, want, memory_order_relaxed,
	                                             memory_order_relaxed))
		return 1;
	*slot = i;
	return 0;
}

/* A slot from the current CPU's batch, taken with a restartable sequence
   (no locked instruction); without one, from the shared batch (the slot
   after the per-CPU ones) by CAS. The slot number is all we take: its
   entry is written by us alone and read under ws_lock exclusive later. */
int ntmm__wsl_reserve(ntmm_process_t *p, uint32_t *slot)
{
	ntmm__wsl_t *w = &p->wsl;
	for (;;) {
		uint32_t nx;
		unsigned c;
		if (ntmm__percpu_take_batch(&p->cpu[0].wsl_cache, sizeof(p->cpu[0]), p->ncpu, &nx,
		                            &c)) {
			*slot = nx;
			return 0;
		}
		_Atomic uint64_t *cache = &p->cpu[c].wsl_cache;
		uint64_t v = atomic_load_explicit(cache, memory_order_relaxed);
		uint32_t end = (uint32_t)(v >> 32);
		nx = (uint32_t)v;
		if (nx < end) {
			if (c < p->ncpu)
				continue; /* refilled meanwhile: take by the sequence */
			/* the shared batch: relaxed, as above */
			if (atomic_compare_exchange_weak_explicit(
			        cache, &v, v + 1, memory_order_relaxed, memory_order_relaxed)) {
				*slot = nx;
				return 0;
			}
			continue;
		}
		int r = wsl_refill(w, cache, v, slot);
		if (r != 1)
			return r;
	}
}

void ntmm__wsl_fill(ntmm_process_t *p, uint32_t slot, uint64_t va)
{
	ntmm__wsl_t *w = &p->wsl;
	atomic_store_explicit(ntmm__wsl_entry(w, slot), va, memory_order_relaxed);
	ntmm__percpu_add(&p->cpu[0].ws_delta, sizeof(p->cpu[0]), p->ncpu, 1);
}

void ntmm__wsl_hole(ntmm_process_t *p, uint32_t slot)
{
	atomic_store_explicit(ntmm__wsl_entry(&p->wsl, slot), 0, memory_order_relaxed);
}

/* Points the valid PTE of va at working-set slot `slot` (ws_lock exclusive;
   a translate may set Accessed/Dirty at the same time, hence CAS). */
static void pte_set_wsi(ntmm_process_t *p, uint64_t va, uint32_t slot)
{
	_Atomic uint64_t *pte = ntmm__pt_lookup(p, va);
	ntmm__assert(pte);
	uint64_t old = atomic_load_explicit(pte, memory_order_relaxed), want;
	do {
		ntmm__assert(ntmm__pte_is_valid(old));
		want = (old & ~NTMM__PTE_WSI_MASK) | ((uint64_t)slot << NTMM__PTE_WSI_SHIFT);
	} while (!atomic_compare_exchange_weak_explicit(pte, &old, want, memory_order_relaxed,
	                                                memory_order_relaxed));
}

static uint32_t trim_tail(ntmm__wsl_t *w, uint32_t n)
{
	while (n > 0 && atomic_load_explicit(ntmm__wsl_entry(w, n - 1), memory_order_relaxed) == 0)
		n--;
	return n;
}

void ntmm__wsl_remove(ntmm_process_t *p, uint32_t slot)
{
	ntmm__assert_ws_exclusive(p);
	ntmm__wsl_t *w = &p->wsl;
	ntmm__assert(slot < atomic_load_explicit(&w->next, memory_order_relaxed));
	atomic_store_explicit(ntmm__wsl_entry(w, slot), 0, memory_order_relaxed);
	/* the shared slot: a locked add never lands on a per-CPU one */
	atomic_fetch_sub_explicit(&p->cpu[p->ncpu].ws_delta, 1, memory_order_relaxed);
	uint32_t n = trim_tail(w, atomic_load_explicit(&w->next, memory_order_relaxed));
	if (slot < n) { /* move the last entry into the hole */
		uint64_t ent =
		    atomic_load_explicit(ntmm__wsl_entry(w, n - 1), memory_order_relaxed);
		atomic_store_explicit(ntmm__wsl_entry(w, slot), ent, memory_order_relaxed);
		atomic_store_explicit(ntmm__wsl_entry(w, n - 1), 0, memory_order_relaxed);
		pte_set_wsi(p, ent & ~NTMM__WSLE_AGE_MASK, slot);
		n = trim_tail(w, n - 1);
	}
	atomic_store_explicit(&w->next, n, memory_order_relaxed);
}

void ntmm__wsl_compact(ntmm_process_t *p)
{
	ntmm__assert_ws_exclusive(p);
	ntmm__wsl_t *w = &p->wsl;
	uint32_t n = trim_tail(w, atomic_load_explicit(&w->next, memory_order_relaxed));
	for (uint32_t i = 0; i < n; i++) {
		if (atomic_load_explicit(ntmm__wsl_entry(w, i), memory_order_relaxed))
			continue;
		uint64_t ent =
		    atomic_load_explicit(ntmm__wsl_entry(w, n - 1), memory_order_relaxed);
		atomic_store_explicit(ntmm__wsl_entry(w, i), ent, memory_order_relaxed);
		atomic_store_explicit(ntmm__wsl_entry(w, n - 1), 0, memory_order_relaxed);
		pte_set_wsi(p, ent & ~NTMM__WSLE_AGE_MASK, i);
		n = trim_tail(w, n - 1);
	}
	atomic_store_explicit(&w->next, n, memory_order_relaxed);
}

#define NTMM__TRIM_HOLD 2048u /* WSL entries looked at per exclusive hold */

size_t ntmm__ws_trim(ntmm_process_t *p, size_t max_trim, unsigned min_age)
{
	ntmm__shootdown_t s = {0};
	pthread_mutex_lock(&p->trim_lock);
	size_t trimmed = ntmm__ws_trim_into(p, max_trim, min_age, &s);
	ntmm__shootdown_finish(p->e, &s);
	pthread_mutex_unlock(&p->trim_lock);
	return trimmed;
}

size_t ntmm__ws_trim_into(ntmm_process_t *p, size_t max_trim, unsigned min_age,
                          ntmm__shootdown_t *s)
{
	ntmm__assert_mutex_held(&p->trim_lock);
	ntmm_engine_t *e = p->e;
	ntmm__wsl_t *w = &p->wsl;
	size_t trimmed = 0;

	ntmm__ws_lock_exclusive(p);
	uint32_t i = 0, held = 0;
	while (trimmed < max_trim && i < atomic_load_explicit(&w->next, memory_order_relaxed)) {
		if (++held == NTMM__TRIM_HOLD) {
			/* let waiting faults in now and then; the batch stays open and
			   its grace period comes once, at the end */
			ntmm__ws_unlock_exclusive(p);
			ntmm__ws_lock_exclusive(p);
			held = 0;
			continue;
		}
		uint64_t ent = atomic_load_explicit(ntmm__wsl_entry(w, i), memory_order_relaxed);
		if (!ent || (ent & NTMM__WSLE_AGE_MASK) < min_age) {
			i++;
			continue;
		}
		uint64_t va = ent & ~NTMM__WSLE_AGE_MASK;
		_Atomic uint64_t *pte = ntmm__pt_lookup(p, va);
		ntmm__assert(pte);
		uint64_t old = atomic_load_explicit(pte, memory_order_relaxed);
		ntmm__assert(ntmm__pte_is_valid(old) && ntmm__pte_wsi(old) == i);
		ntmm__pfn_t pfn = ntmm__pte_pfn(old);
		uint64_t st =
		    atomic_load_explicit(&ntmm__vpfn(e, pfn)->state, memory_order_acquire);
		if (ntmm__pfn_refs(st) > 0) { /* pinned: stays */
			i++;
			continue;
		}
		/* a shared section page: the PTE goes back to the prototype,
		   the frame loses this share */
		bool shared = ntmm__frame_is_shared(e, pfn, (uint64_t)(uintptr_t)pte);
		uint64_t want;
		do {
			want = shared ? ntmm__pte_make_prototype(
			                    atomic_load_explicit(&ntmm__vpfn(e, pfn)->pte,
			                                         memory_order_relaxed),
			                    ntmm__mmprot_from_bits(old))
			              : ntmm__pte_make_transition(pfn, ntmm__mmprot_from_bits(old));
			/* acq_rel: orders against a translate's Accessed/Dirty CAS, so
			   the Dirty bit we read is the final one */
		} while (!atomic_compare_exchange_weak_explicit(
		    pte, &old, want, memory_order_acq_rel, memory_order_relaxed));
		ntmm__wsl_remove(p, i); /* may move another entry into slot i */
		/* relaxed: any recent value of the process default will do */
		ntmm__page_set_priority(
		    e, pfn, atomic_load_explicit(&p->wsm.page_priority, memory_order_relaxed));
		if (shared)
			ntmm__section_unshare(e, pfn, (old & NTMM__PTE_DIRTY) != 0, s);
		else if (ntmm__page_unmap(e, pfn, (old & NTMM__PTE_DIRTY) != 0, false))
			ntmm__shootdown_add_release(s, pfn);
		trimmed++;
	}
	ntmm__ws_unlock_exclusive(p);
	if (trimmed)
		NTMM__STAT_ADD(&e->stats, pages_trimmed, trimmed);
	return trimmed;
}

size_t ntmm__ws_age_hist(ntmm_process_t *p, size_t hist[8])
{
	ntmm__wsl_t *w = &p->wsl;
	size_t accessed = 0;
	if (hist)
		for (unsigned a = 0; a < 8; a++)
			hist[a] = 0;
	ntmm__ws_lock_exclusive(p);
	uint32_t n = atomic_load_explicit(&w->next, memory_order_relaxed);
	for (uint32_t i = 0; i < n; i++) {
		_Atomic uint64_t *slot = ntmm__wsl_entry(w, i);
		uint64_t ent = atomic_load_explicit(slot, memory_order_relaxed);
		if (!ent)
			continue;
		_Atomic uint64_t *pte = ntmm__pt_lookup(p, ent & ~NTMM__WSLE_AGE_MASK);
		/* clear Accessed; a translate sets it again by CAS */
		uint64_t old =
		    atomic_fetch_and_explicit(pte, ~NTMM__PTE_ACCESSED, memory_order_relaxed);
		uint64_t age = ent & NTMM__WSLE_AGE_MASK;
		if (old & NTMM__PTE_ACCESSED)
			age = 0, accessed++;
		else if (age < NTMM__WSLE_AGE_MASK)
			age++;
		if (hist)
			hist[age]++;
		atomic_store_explicit(slot, (ent & ~NTMM__WSLE_AGE_MASK) | age,
		                      memory_order_relaxed);
	}
	ntmm__ws_unlock_exclusive(p);
	return accessed;
}

void ntmm__ws_age_peek(ntmm_process_t *p, size_t hist[8])
{
	ntmm__wsl_t *w = &p->wsl;
	for (unsigned a = 0; a < 8; a++)
		hist[a] = 0;
	ntmm__ws_lock_exclusive(p); /* no entry moves while we read them */
	uint32_t n = atomic_load_explicit(&w->next, memory_order_relaxed);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t ent = atomic_load_explicit(ntmm__wsl_entry(w, i), memory_order_relaxed);
		if (ent)
			hist[ent & NTMM__WSLE_AGE_MASK]++;
	}
	ntmm__ws_unlock_exclusive(p);
}

uint64_t ntmm__ws_pages(ntmm_process_t *p)
{
	/* mod 2^64 (a slot's share may be negative), with the shared slot */
	uint64_t sum = 0;
	for (unsigned c = 0; c <= p->ncpu; c++)
		sum += atomic_load_explicit(&p->cpu[c].ws_delta, memory_order_relaxed);
	return (int64_t)sum > 0 ? sum : 0;
}

void ntmm__ws_lock_exclusive(ntmm_process_t *p)
{
	ntmm__cache_pushlock_acquire_exclusive(&p->ws_lock);
	ntmm__wsl_t *w = &p->wsl;
	/* no fault runs now: unused batch slots become holes */
	for (unsigned c = 0; c <= p->ncpu; c++) /* with the shared batch */
		atomic_store_explicit(&p->cpu[c].wsl_cache, 0, memory_order_relaxed);
	atomic_store_explicit(&w->next,
	                      trim_tail(w, atomic_load_explicit(&w->next, memory_order_relaxed)),
	                      memory_order_relaxed);
	uint64_t ws = ntmm__ws_pages(p);
	if (ws > atomic_load_explicit(&w->ws_peak, memory_order_relaxed))
		atomic_store_explicit(&w->ws_peak, ws, memory_order_relaxed);
}

void ntmm__ws_unlock_exclusive(ntmm_process_t *p)
{
	ntmm__wsl_t *w = &p->wsl;
	uint32_t next = atomic_load_explicit(&w->next, memory_order_relaxed);
	if (next - ntmm__ws_pages(p) > 4 * NTMM__WSL_BATCH * p->ncpu)
		ntmm__wsl_compact(p);
	ntmm__cache_pushlock_release_exclusive(&p->ws_lock);
}

int ntmm__wsl_audit(ntmm_process_t *p)
{
	ntmm__wsl_t *w = &p->wsl;
	uint32_t n = atomic_load_explicit(&w->next, memory_order_relaxed);
	uint64_t live = 0;
	for (uint32_t i = 0; i < n; i++)
		if (atomic_load_explicit(ntmm__wsl_entry(w, i), memory_order_relaxed))
			live++;
	uint64_t ws = ntmm__ws_pages(p);
	if (live != ws) {
		fprintf(stderr, "ntmm audit: process %u: %llu working-set entries, ws_pages %llu\n",
		        p->id, (unsigned long long)live, (unsigned long long)ws);
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------ public API */

int ntmm_ws_set_limits(ntmm_process_t *p, size_t min_pages, size_t max_pages)
{
	int err = ntmm__process_check(p);
	if (err)
		return err;
	if (min_pages == 0 || min_pages > max_pages || max_pages > NTMM__WSL_CAPACITY)
		return ntmm__error(NTMM_EINVAL, "working-set limits %zu..%zu (1..%u, min <= max)",
		                   min_pages, max_pages, NTMM__WSL_CAPACITY);
	ntmm__pushlock_acquire_exclusive(&p->as_lock);
	p->wsl.min_pages = min_pages;
	p->wsl.max_pages = max_pages;
	ntmm__pushlock_release_exclusive(&p->as_lock);
	return 0;
}

int ntmm_ws_empty(ntmm_process_t *p)
{
	int err = ntmm__process_check(p);
	if (err)
		return err;
	if (urcu_memb_read_ongoing())
		return ntmm__error(NTMM_EBUSY, "ntmm_ws_empty inside an access section");
	ntmm__ws_trim(p, SIZE_MAX, 0);
	return 0;
}
