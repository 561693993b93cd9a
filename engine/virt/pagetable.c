/*
 * The 4-level software page tables of a process. Table pages are frames
 * from the pool (ACTIVE, share 1), taken zeroed on demand by the fault path
 * and freed when their last entry goes, one grace period after they were
 * unlinked (a lock-free walker may still be reading them).
 *
 * Table-page PFN entries: `pte` holds the host address of the parent entry
 * that maps the table (NT's PteAddress), `original_pte` is reused as the
 * table's used-entry count (NT keeps UsedPageTableEntries per table too):
 * the number of non-zero entries. It is raised by fetch_add when a fault
 * (ws_lock shared) changes an entry 0 → non-zero, and lowered only under
 * ws_lock exclusive, which is also the only mode in which an entry goes
 * back to 0 — so "count == 0" seen under the exclusive lock is stable.
 *
 * Linking a new table: CAS of the parent entry 0 → valid(pfn) with release
 * order, so a walker's acquire load of the entry sees the zeroed table.
 * The loser of a race frees its unpublished table at once.
 */
#include "virt/virt.h"
#include "section/section.h"
#include "engine.h"
#include "virt/frame.h"
#include "sync/backoff.h"

#include <stdlib.h>

static inline _Atomic uint64_t *table_of(ntmm_engine_t *e, ntmm__pfn_t pfn)
{
	return (_Atomic uint64_t *)ntmm__vframe(e, pfn);
}
static inline _Atomic uint64_t *used_of(ntmm_engine_t *e, ntmm__pfn_t pfn)
{
	return &ntmm__vpfn(e, pfn)->original_pte;
}

_Atomic uint64_t *ntmm__pt_lookup(ntmm_process_t *p, uint64_t va)
{
	_Atomic uint64_t *t = p->root_host;
	for (int lvl = NTMM__PT_LEVELS - 1; lvl > 0; lvl--) {
		/* acquire: pairs with the release CAS that linked the table */
		uint64_t ent =
		    atomic_load_explicit(&t[ntmm__pt_index(va, lvl)], memory_order_acquire);
		if (!(ent & NTMM__PTE_VALID))
			return NULL;
		t = table_of(p->e, ntmm__pte_pfn(ent));
	}
	return &t[ntmm__pt_index(va, 0)];
}

int ntmm__pt_ensure(ntmm_process_t *p, uint64_t va, _Atomic uint64_t **out)
{
	ntmm_engine_t *e = p->e;
	_Atomic uint64_t *t = p->root_host;
	ntmm__pfn_t tpfn = p->root;
	for (int lvl = NTMM__PT_LEVELS - 1; lvl > 0; lvl--) {
		_Atomic uint64_t *slot = &t[ntmm__pt_index(va, lvl)];
		/* acquire: see above */
		uint64_t ent = atomic_load_explicit(slot, memory_order_acquire);
		if (!(ent & NTMM__PTE_VALID)) {
			ntmm__pfn_t pfn;
			int err =
			    ntmm__page_alloc(e, NTMM__ALLOC_ZERO, NTMM__ALLOC_NODE_ANY,
			                     (uint32_t)(va >> (NTMM__PAGE_SHIFT + 9 * lvl)), &pfn);
			if (err)
				return ntmm__error(err, "no frame for a page-table page");
			ntmm__pfn_entry_t *pe = ntmm__vpfn(e, pfn);
			atomic_store_explicit(&pe->pte, (uint64_t)(uintptr_t)slot,
			                      memory_order_relaxed);
			atomic_store_explicit(&pe->original_pte, 0, memory_order_relaxed);
			uint64_t want =
			    ntmm__pte_make_valid(pfn, 0, NTMM__PTE_READ | NTMM__PTE_WRITE);
			uint64_t expect = 0;
			/* release: publishes the zeroed table and its PFN fields to
			   walkers (their acquire load above); acquire on failure: we
			   walk into the winner's table */
			if (atomic_compare_exchange_strong_explicit(
			        slot, &expect, want, memory_order_acq_rel, memory_order_acquire)) {
				atomic_fetch_add_explicit(used_of(e, tpfn), 1,
				                          memory_order_relaxed);
				NTMM__STAT_ADD(&e->stats, pagetable_pages, 1);
				ent = want;
			} else {
				ntmm__page_free(e, pfn); /* never reachable: no grace period */
				ent = expect;
				ntmm__assert(ent & NTMM__PTE_VALID);
			}
		}
		tpfn = ntmm__pte_pfn(ent);
		t = table_of(e, tpfn);
	}
	*out = &t[ntmm__pt_index(va, 0)];
	return 0;
}

void ntmm__pt_note_fill(ntmm_process_t *p, _Atomic uint64_t *pte)
{
	ntmm__pfn_t tpfn = ntmm__vframe_pfn(p->e, (const void *)pte);
	atomic_fetch_add_explicit(used_of(p->e, tpfn), 1, memory_order_relaxed);
}

/* ------------------------------------------------------------ shootdowns */

static void grow(ntmm__pfn_t **a, size_t *cap, size_t need)
{
	if (need <= *cap)
		return;
	size_t ncap = *cap ? *cap * 2 : 64;
	ntmm__pfn_t *n = realloc(*a, ncap * sizeof(**a));
	if (!n) { /* host OOM while frames are half torn down: nothing sane to do */
		fprintf(stderr, "ntmm: out of host memory in a shootdown batch\n");
		abort();
	}
	*a = n;
	*cap = ncap;
}

void ntmm__shootdown_add_release(ntmm__shootdown_t *s, ntmm__pfn_t pfn)
{
	grow(&s->release, &s->caprelease, s->nrelease + 1);
	s->release[s->nrelease++] = pfn;
}

void ntmm__shootdown_add_table(ntmm__shootdown_t *s, ntmm__pfn_t pfn)
{
	grow(&s->tables, &s->captables, s->ntables + 1);
	s->tables[s->ntables++] = pfn;
}

void ntmm__shootdown_finish(ntmm_engine_t *e, ntmm__shootdown_t *s)
{
	if (s->nrelease || s->ntables) {
		ntmm__assert(!urcu_memb_read_ongoing());
		ntmm__rcu_synchronize(); /* the TLB shootdown: one per batch */
		NTMM__STAT_ADD(&e->stats, rcu_shootdowns, 1);
		if (s->nrelease) {
			ntmm__page_release_batch(e, s->release, s->nrelease);
			/* faults waiting for frames (fault.c) may go on */
			ntmm__event_signal(&e->virt.paging.avail);
		}
		for (size_t i = 0; i < s->ntables; i++)
			ntmm__page_free(e, s->tables[i]);
	}
	free(s->release);
	free(s->tables);
	*s = (ntmm__shootdown_t){0};
}

/* ------------------------------------------------------------- walking */

typedef struct walk {
	ntmm_process_t *p;
	uint64_t start, end;
	ntmm__pte_visit_fn leaf;
	void *arg;
	ntmm__shootdown_t *s; /* non-NULL: unlink and queue tables left empty */
} walk_t;

static void walk_level(walk_t *w, _Atomic uint64_t *t, ntmm__pfn_t tpfn, int lvl, uint64_t base)
{
	ntmm_engine_t *e = w->p->e;
	unsigned shift = NTMM__PAGE_SHIFT + 9u * (unsigned)lvl;
	uint64_t span = 1ull << shift;
	unsigned lo = w->start > base ? (unsigned)((w->start - base) >> shift) : 0;
	uint64_t last = w->end - 1;
	unsigned hi = last < base + span * NTMM__PT_ENTRIES - 1 ? (unsigned)((last - base) >> shift)
	                                                        : NTMM__PT_ENTRIES - 1;
	for (unsigned i = lo; i <= hi; i++) {
		_Atomic uint64_t *slot = &t[i];
		uint64_t ent = atomic_load_explicit(slot, memory_order_acquire);
		if (!ent)
			continue;
		uint64_t va = base + (uint64_t)i * span;
		if (lvl == 0) {
			w->leaf(w->p, va, slot, w->arg);
			continue;
		}
		ntmm__pfn_t child = ntmm__pte_pfn(ent);
		walk_level(w, table_of(e, child), child, lvl - 1, va);
		if (w->s && atomic_load_explicit(used_of(e, child), memory_order_relaxed) == 0) {
			atomic_store_explicit(slot, 0, memory_order_relaxed);
			atomic_fetch_sub_explicit(used_of(e, tpfn), 1, memory_order_relaxed);
			ntmm__shootdown_add_table(w->s, child);
		}
	}
}

void ntmm__pt_walk(ntmm_process_t *p, uint64_t start, uint64_t end, ntmm__pte_visit_fn fn,
                   void *arg)
{
	if (start >= end)
		return;
	walk_t w = {p, start, end, fn, arg, NULL};
	walk_level(&w, p->root_host, p->root, NTMM__PT_LEVELS - 1, 0);
}

/* Drops the used count of the table holding a leaf PTE just zeroed. */
static void leaf_cleared(ntmm_process_t *p, _Atomic uint64_t *pte)
{
	ntmm__pfn_t tpfn = ntmm__vframe_pfn(p->e, (const void *)pte);
	atomic_fetch_sub_explicit(used_of(p->e, tpfn), 1, memory_order_relaxed);
}

static void teardown_leaf(ntmm_process_t *p, uint64_t va, _Atomic uint64_t *pte, void *arg)
{
	ntmm__shootdown_t *s = arg;
	ntmm_engine_t *e = p->e;
	uint64_t old = atomic_load_explicit(pte, memory_order_acquire);
	if (ntmm__pte_is_valid(old)) {
		/* exchange: a lock-free translate may be setting Accessed/Dirty
		   on this PTE by CAS right now; the exchange sees its bits or
		   makes its CAS fail (acq_rel: orders against that CAS) */
		old = atomic_exchange_explicit(pte, 0, memory_order_acq_rel);
		ntmm__wsl_remove(p, ntmm__pte_wsi(old));
		ntmm__pfn_t pfn = ntmm__pte_pfn(old);
		if (ntmm__frame_is_shared(e, pfn, (uint64_t)(uintptr_t)pte))
			/* a section's page: it stays in memory for the section */
			ntmm__section_unshare(e, pfn, (old & NTMM__PTE_DIRTY) != 0, s);
		else if (ntmm__page_unmap(e, pfn, (old & NTMM__PTE_DIRTY) != 0, true))
			ntmm__shootdown_add_release(s, pfn);
		leaf_cleared(p, pte);
		return;
	}
	if (ntmm__pte_is_transition(old)) {
		ntmm__pfn_t pfn = ntmm__pte_pfn(old);
		if (!ntmm__page_delete_transition(e, pfn, (uint64_t)(uintptr_t)pte)) {
			/* The allocator has taken the frame for someone else and is
			   about to restore our PTE (repurpose callback): let it finish
			   before the PTE (and maybe its table) goes away. Bounded. */
			ntmm__backoff_t b = NTMM__BACKOFF_INIT;
			for (unsigned k = 0;
			     k < 100000 && atomic_load_explicit(pte, memory_order_acquire) == old;
			     k++)
				ntmm__backoff(&b);
		}
	}
	/* exchange: the repurpose callback may CAS this PTE concurrently; a
	   pagefile PTE (also one a repurpose just restored) owns its slot */
	ntmm__pagefile_pte_release(e, atomic_exchange_explicit(pte, 0, memory_order_acq_rel));
	leaf_cleared(p, pte);
}

void ntmm__pt_teardown(ntmm_process_t *p, uint64_t start, uint64_t end, ntmm__shootdown_t *s)
{
	ntmm__assert_ws_exclusive(p);
	if (start >= end)
		return;
	walk_t w = {p, start, end, teardown_leaf, s, s};
	walk_level(&w, p->root_host, p->root, NTMM__PT_LEVELS - 1, 0);
}

void ntmm__pt_teardown_range(ntmm_process_t *p, uint64_t start, uint64_t end, ntmm__shootdown_t *s)
{
	for (uint64_t va = ntmm__pt_next_present(p, start, end); va < end;) {
		uint64_t stop = (va + NTMM__PT_LEAF_SPAN) & ~(NTMM__PT_LEAF_SPAN - 1);
		if (stop > end)
			stop = end;
		ntmm__ws_lock_exclusive(p);
		ntmm__pt_teardown(p, va, stop, s);
		ntmm__ws_unlock_exclusive(p);
		va = ntmm__pt_next_present(p, stop, end);
	}
}

typedef struct reprot {
	uint64_t bits;
	bool removed;
} reprot_t;

static void reprotect_leaf(ntmm_process_t *p, uint64_t va, _Atomic uint64_t *pte, void *arg)
{
	reprot_t *r = arg;
	uint64_t old = atomic_load_explicit(pte, memory_order_relaxed);
	uint64_t want;
	do {
		if (!ntmm__pte_is_valid(old))
			return;
		want = (old & ~(NTMM__PTE_READ | NTMM__PTE_WRITE)) | r->bits;
		/* a shared copy-on-write page stays read-only: a write copies */
		if (old & NTMM__PTE_COW)
			want &= ~(uint64_t)NTMM__PTE_WRITE;
		if (want == old)
			return;
		/* relaxed: the ws_lock release and the caller's grace period order it */
	} while (!atomic_compare_exchange_weak_explicit(pte, &old, want, memory_order_relaxed,
	                                                memory_order_relaxed));
	if (old & ~want & (NTMM__PTE_READ | NTMM__PTE_WRITE))
		r->removed = true;
}

bool ntmm__pt_reprotect(ntmm_process_t *p, uint64_t start, uint64_t end, unsigned prot)
{
	ntmm__assert_ws_exclusive(p);
	reprot_t r = {ntmm__pte_bits_for(prot), false};
	ntmm__pt_walk(p, start, end, reprotect_leaf, &r);
	return r.removed;
}

uint64_t ntmm__pt_next_present(ntmm_process_t *p, uint64_t va, uint64_t end)
{
	ntmm__assert_mutex_held(&p->trim_lock);
	while (va < end) {
		_Atomic uint64_t *t = p->root_host;
		uint64_t next = end;
		int lvl;
		for (lvl = NTMM__PT_LEVELS - 1; lvl > 0; lvl--) {
			unsigned i = ntmm__pt_index(va, lvl);
			/* acquire: pairs with the release CAS that linked the table */
			uint64_t ent = atomic_load_explicit(&t[i], memory_order_acquire);
			if (ent & NTMM__PTE_VALID) {
				t = table_of(p->e, ntmm__pte_pfn(ent));
				continue;
			}
			/* the rest of this table: the next linked entry, or the
			   end of the span the table maps (a table scan, not a
			   restart from the root for every absent entry) */
			unsigned shift = NTMM__PAGE_SHIFT + 9u * (unsigned)lvl;
			while (
			    ++i < NTMM__PT_ENTRIES &&
			    !(atomic_load_explicit(&t[i], memory_order_relaxed) & NTMM__PTE_VALID))
				;
			uint64_t table_base =
			    shift + 9 < 64 ? va & ~((1ull << (shift + 9)) - 1) : 0;
			next = table_base + ((uint64_t)i << shift);
			break;
		}
		if (lvl == 0)
			return va;
		if (next <= va)
			return end;
		va = next;
	}
	return end;
}

void ntmm__pt_free_all(ntmm_process_t *p, ntmm__shootdown_t *s)
{
	ntmm__pt_teardown(p, 0, NTMM__VA_END, s);
	ntmm__assert(atomic_load_explicit(used_of(p->e, p->root), memory_order_relaxed) == 0);
	ntmm__shootdown_add_table(s, p->root);
}

/* ---------------------------------------------------------------- audit */

typedef struct audit {
	int bad;
	uint64_t valid;
	uint64_t tables; /* table pages, the root included */
} audit_t;

#define AUDIT_FAIL(a, ...)                                           \
	do {                                                         \
		if ((a)->bad++ < 20)                                 \
			fprintf(stderr, "ntmm audit: " __VA_ARGS__); \
	} while (0)

static void audit_table(ntmm_process_t *p, audit_t *a, ntmm__pfn_t tpfn, int lvl, uint64_t base)
{
	ntmm_engine_t *e = p->e;
	_Atomic uint64_t *t = table_of(e, tpfn);
	a->tables++;
	uint64_t st = atomic_load_explicit(&ntmm__vpfn(e, tpfn)->state, memory_order_acquire);
	if (ntmm__pfn_loc(st) != NTMM__LOC_ACTIVE)
		AUDIT_FAIL(a, "process %u: table page %u is not ACTIVE (loc %u)\n", p->id, tpfn,
		           ntmm__pfn_loc(st));
	uint64_t used = 0;
	unsigned shift = NTMM__PAGE_SHIFT + 9u * (unsigned)lvl;
	for (unsigned i = 0; i < NTMM__PT_ENTRIES; i++) {
		uint64_t ent = atomic_load_explicit(&t[i], memory_order_acquire);
		if (!ent)
			continue;
		used++;
		uint64_t va = base + ((uint64_t)i << shift);
		if (lvl > 0) {
			if (!ntmm__pte_is_valid(ent)) {
				AUDIT_FAIL(a, "process %u: bad upper entry %llx\n", p->id,
				           (unsigned long long)ent);
				continue;
			}
			audit_table(p, a, ntmm__pte_pfn(ent), lvl - 1, va);
			continue;
		}
		if (ntmm__pte_is_valid(ent)) {
			ntmm__pfn_t pfn = ntmm__pte_pfn(ent);
			ntmm__pfn_entry_t *pe = ntmm__vpfn(e, pfn);
			uint64_t s = atomic_load_explicit(&pe->state, memory_order_acquire);
			a->valid++;
			uint64_t owner = atomic_load_explicit(&pe->pte, memory_order_relaxed);
			/* a section's page names its prototype PTE, which must be
			   valid and name the frame (the section audit counts the
			   shares); a private page names this PTE, with share 1 */
			bool shared = owner != (uint64_t)(uintptr_t)&t[i];
			uint64_t proto =
			    shared && owner
			        ? atomic_load_explicit((_Atomic uint64_t *)(uintptr_t)owner,
			                               memory_order_relaxed)
			        : 0;
			if (ntmm__pfn_loc(s) != NTMM__LOC_ACTIVE ||
			    (shared ? ntmm__pfn_shares(s) < 1 : ntmm__pfn_shares(s) != 1))
				AUDIT_FAIL(a,
				           "process %u va %llx: valid PTE names frame %u in "
				           "location %u with share %u\n",
				           p->id, (unsigned long long)va, pfn, ntmm__pfn_loc(s),
				           ntmm__pfn_shares(s));
			if (shared && (!ntmm__pte_is_valid(proto) || ntmm__pte_pfn(proto) != pfn))
				AUDIT_FAIL(a,
				           "process %u va %llx: frame %u names neither this PTE "
				           "nor a valid prototype PTE of it\n",
				           p->id, (unsigned long long)va, pfn);
			uint32_t wsi = ntmm__pte_wsi(ent);
			if (wsi >= atomic_load_explicit(&p->wsl.next, memory_order_relaxed) ||
			    (atomic_load_explicit(ntmm__wsl_entry(&p->wsl, wsi),
			                          memory_order_relaxed) &
			     ~NTMM__WSLE_AGE_MASK) != va)
				AUDIT_FAIL(a, "process %u va %llx: working-set entry %u wrong\n",
				           p->id, (unsigned long long)va, wsi);
		} else if (ntmm__pte_is_transition(ent)) {
			ntmm__pfn_t pfn = ntmm__pte_pfn(ent);
			ntmm__pfn_entry_t *pe = ntmm__vpfn(e, pfn);
			uint64_t s = atomic_load_explicit(&pe->state, memory_order_acquire);
			unsigned loc = ntmm__pfn_loc(s);
			if (loc != NTMM__LOC_STANDBY && loc != NTMM__LOC_MODIFIED &&
			    loc != NTMM__LOC_MODIFIED_NOWRITE && loc != NTMM__LOC_TRANSITION)
				AUDIT_FAIL(a,
				           "process %u va %llx: transition PTE names frame %u in "
				           "location %u\n",
				           p->id, (unsigned long long)va, pfn, loc);
			else if (atomic_load_explicit(&pe->pte, memory_order_relaxed) !=
			         (uint64_t)(uintptr_t)&t[i])
				AUDIT_FAIL(a,
				           "process %u va %llx: transition frame %u belongs to "
				           "another PTE\n",
				           p->id, (unsigned long long)va, pfn);
		}
	}
	uint64_t counted = atomic_load_explicit(used_of(e, tpfn), memory_order_relaxed);
	if (counted != used)
		AUDIT_FAIL(a, "process %u: table %u counts %llu entries, holds %llu\n", p->id, tpfn,
		           (unsigned long long)counted, (unsigned long long)used);
}

int ntmm__pt_audit(ntmm_process_t *p, uint64_t *valid_out, uint64_t *tables_out)
{
	audit_t a = {0, 0, 0};
	audit_table(p, &a, p->root, NTMM__PT_LEVELS - 1, 0);
	*valid_out = a.valid;
	*tables_out = a.tables;
	return a.bad;
}
