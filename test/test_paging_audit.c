/*
 * The paging-file slot audit (virt/pfaudit.c, part of ntmm_audit): every
 * slot in use has exactly one owner — a pagefile PTE or the OriginalPte of
 * a frame in memory — and no owner names a free slot.
 *
 * It holds through real paging: overcommit with pages written to the
 * paging file, hard-faulted back, re-dirtied, written again, decommitted
 * and released, with the owners it counts equal to the slots in use at
 * every step; and it stays exact while the modified page writer drains
 * Modified pages on its own thread. It fails on each kind of corruption
 * made through the internal APIs — a slot allocated with no owner, a PTE
 * naming a freed slot, two PTEs / a PTE and an OriginalPte / two
 * OriginalPtes naming one slot, a free frame still naming a slot, a PTE
 * naming no paging file — and passes again once the state is put back, so
 * each engine is destroyed cleanly.
 */
#include "paging_testutil.h"
#include "fixture.h"

/* The engine (and paging file) of each test that needs one comes from
   its setup; the teardown destroys it even after a failed assert. */
static paging_env_t fx;

static int setup_8_32_64(void **state)
{
	fx = paging_env(8, 32, 64, false, false);
	*state = &fx;
	return 0;
}
static int setup_16_16_64_threads(void **state)
{
	fx = paging_env(16, 16, 64, true, false);
	*state = &fx;
	return 0;
}
static int teardown(void **state)
{
	if (fx.e) {
		fixture_close_sections(fx.e);
		paging_env_done(&fx);
	}
	fx = (paging_env_t){0};
	return 0;
}

/* ntmm_audit passes, and the owners the slot audit counts are exactly the
   slots in use. */
static ntmm__pfaudit_t audit_clean(ntmm_engine_t *e)
{
	assert_int_equal(ntmm_audit(e), 0);
	ntmm__pfaudit_t r;
	assert_int_equal(ntmm__pfaudit(e, &r), 0);
	assert_int_equal(r.pte_refs + r.frame_refs, PSTAT(e, pagefile_pages));
	return r;
}

/* ntmm_audit fails; the slot audit's counts for the caller to check. */
static ntmm__pfaudit_t audit_broken(ntmm_engine_t *e)
{
	assert_int_equal(ntmm_audit(e), NTMM_EINVAL);
	ntmm__pfaudit_t r;
	assert_int_equal(ntmm__pfaudit(e, &r), NTMM_EINVAL);
	return r;
}

static void fill(ntmm_process_t *p, uint64_t va, uint64_t tag, uint64_t ver)
{
	static _Alignas(4096) char buf[4096];
	page_fill(buf, tag, ver);
	assert_int_equal(ntmm_write(p, va, buf, PG), 0);
}

static void check(ntmm_process_t *p, uint64_t va, uint64_t tag, uint64_t ver)
{
	static _Alignas(4096) char buf[4096];
	assert_int_equal(ntmm_read(p, va, buf, PG), 0);
	assert_true(page_check(buf, tag, ver));
}

/* The leaf PTE of va (its table stays: no thread frees tables here). */
static _Atomic uint64_t *pte_of(ntmm_engine_t *e, ntmm_process_t *p, uint64_t va)
{
	ntmm_access_begin(e);
	_Atomic uint64_t *pte = ntmm__pt_lookup(p, va);
	ntmm_access_end(e);
	assert_non_null(pte);
	return pte;
}

/* ---------------------------------------------------------- real paging */

/* Trims the working set and writes every Modified page (every 64 pages of
   a pass, so the allocator always finds Standby pages to repurpose). */
static void make_room(ntmm_engine_t *e, ntmm_process_t *p)
{
	assert_int_equal(ntmm_ws_empty(p), 0);
	write_all_modified(e);
}

static void audit_counts_every_owner_through_overcommitted_paging(void **s)
{
	paging_env_t v = *(paging_env_t *)*s; /* the fixture's handles */
	ntmm_process_t *p;
	assert_int_equal(ntmm_process_create(v.e, &p), 0);
	size_t n = 3 * v.e->phys.nframes; /* 3x the frames */
	uint64_t a = commit_pages(p, n);
	audit_clean(v.e);

	/* out: every page written, most Standby pages repurposed */
	for (size_t i = 0; i < n; i++) {
		fill(p, a + i * PG, i, 1);
		if (i % 64 == 63)
			make_room(v.e, p);
	}
	make_room(v.e, p);
	assert_true(PSTAT(v.e, pages_written) >= n);
	assert_int_equal(PSTAT(v.e, pagefile_pages), n);
	ntmm__pfaudit_t r = audit_clean(v.e);
	assert_true(r.pte_refs > 0);   /* repurposed: the PTE owns the slot */
	assert_true(r.frame_refs > 0); /* still on Standby: OriginalPte owns it */

	/* back in by hard faults (clean: each keeps its slot); each page with a
	   pagefile PTE now is read by some hard fault of at most a cluster */
	uint64_t hard0 = PSTAT(v.e, hard_faults);
	for (size_t i = 0; i < n; i++) {
		check(p, a + i * PG, i, 1);
		if (i % 64 == 63)
			make_room(v.e, p);
	}
	assert_true(PSTAT(v.e, hard_faults) - hard0 >= r.pte_refs / NTMM__HARD_CLUSTER);
	assert_int_equal(PSTAT(v.e, pagefile_pages), n);
	audit_clean(v.e);

	/* every other page re-dirtied: hard faults for a write free their slot,
	   soft-faulted ones keep a stale copy in OriginalPte until the writer
	   takes them; audited before the writer runs, then after */
	for (size_t i = 0; i < n; i += 2) {
		fill(p, a + i * PG, i, 2);
		if (i % 128 == 0)
			make_room(v.e, p);
	}
	assert_int_equal(ntmm_ws_empty(p), 0);
	assert_true(PSTAT(v.e, modified_pages) > 0);
	audit_clean(v.e);
	write_all_modified(v.e);
	audit_clean(v.e);
	for (size_t i = 0; i < n; i++) {
		check(p, a + i * PG, i, 1 + (i % 2 == 0));
		if (i % 64 == 63)
			make_room(v.e, p);
	}
	audit_clean(v.e);

	/* released: decommit half, then the rest */
	uint64_t used = PSTAT(v.e, pagefile_pages);
	assert_int_equal(ntmm_free(p, a, n / 2 * PG, NTMM_MEM_DECOMMIT), 0);
	assert_true(PSTAT(v.e, pagefile_pages) < used);
	audit_clean(v.e);
	assert_int_equal(ntmm_free(p, a, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(PSTAT(v.e, pagefile_pages), 0);
	r = audit_clean(v.e);
	assert_int_equal(r.pte_refs + r.frame_refs, 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
}

/* With the system threads running, the modified page writer drains the
   Modified list while ntmm_audit runs again and again: the audit pauses it
   between batches, so it never sees a batch's slots half owned. */
static void audit_stays_exact_while_the_writer_drains(void **s)
{
	paging_env_t v = *(paging_env_t *)*s; /* the fixture's handles */
	ntmm__mpw_t *mpw = &v.e->systhreads.mpw;
	size_t high = atomic_load(&v.e->phys.modified_high);
	size_t n = 4 * high;
	ntmm_process_t *p;
	assert_int_equal(ntmm_process_create(v.e, &p), 0);
	uint64_t a = commit_pages(p, n);
	int rounds = (int)scaled(12);
	long audits = 0;
	for (int r = 0; r < rounds; r++) {
		for (size_t i = 0; i < n; i++)
			fill(p, a + i * PG, i, (uint64_t)r);
		uint64_t pages0 = atomic_load(&mpw->pages);
		/* Modified passes the writer's mark: it wakes and writes */
		assert_int_equal(ntmm_ws_empty(p), 0);
		uint64_t end = test_now_ns() + 60ull * 1000 * 1000 * 1000;
		do {
			audit_clean(v.e);
			audits++;
		} while (
		    (atomic_load(&mpw->pages) == pages0 || PSTAT(v.e, modified_pages) >= high) &&
		    test_now_ns() < end);
		assert_true(atomic_load(&mpw->pages) > pages0);
	}
	fprintf(stderr, "%ld audits over %d rounds; writer wrote %llu pages\n", audits, rounds,
	        (unsigned long long)atomic_load(&mpw->pages));
	for (size_t i = 0; i < n; i++)
		check(p, a + i * PG, i, (uint64_t)rounds - 1);
	audit_clean(v.e);
	assert_int_equal(ntmm_process_destroy(p), 0);
	/* a batch in flight frees its slots when it completes */
	assert_true(WAIT_UNTIL(PSTAT(v.e, pagefile_pages) == 0, 60));
	audit_clean(v.e);
}

/* ----------------------------------------------------------- corruption */

#define NPAGES 32 /* more than one cluster: a fault leaves pages paged out */

/* A process of NPAGES pages, all paged out (pagefile PTEs), audit clean. */
typedef struct paged {
	paging_env_t v;
	ntmm_process_t *p;
	uint64_t a;
} paged_t;

static paged_t paged_out(void)
{
	paged_t f;
	f.v = paging_env(8, 4, 16, false, false);
	assert_int_equal(ntmm_process_create(f.v.e, &f.p), 0);
	f.a = commit_pages(f.p, NPAGES);
	for (size_t i = 0; i < NPAGES; i++)
		fill(f.p, f.a + i * PG, i, 1);
	assert_int_equal(ntmm_ws_empty(f.p), 0);
	write_all_modified(f.v.e);
	repurpose_all(f.v.e);
	for (size_t i = 0; i < NPAGES; i++)
		assert_true(ntmm__pte_is_pagefile(atomic_load(pte_of(f.v.e, f.p, f.a + i * PG))));
	ntmm__pfaudit_t r = audit_clean(f.v.e);
	assert_int_equal(r.pte_refs, NPAGES);
	assert_int_equal(r.frame_refs, 0);
	return f;
}

static void paged_done(paged_t *f)
{
	audit_clean(f->v.e);
	assert_int_equal(ntmm_process_destroy(f->p), 0);
	assert_int_equal(PSTAT(f->v.e, pagefile_pages), 0);
	paging_env_done(&f->v);
}

/* Reads page i back (hard fault): a resident clean frame whose OriginalPte
   names the page's slot. Returns its PFN entry. */
static ntmm__pfn_entry_t *resident(paged_t *f, size_t i)
{
	check(f->p, f->a + i * PG, i, 1);
	uint64_t pte = atomic_load(pte_of(f->v.e, f->p, f->a + i * PG));
	assert_true(ntmm__pte_is_valid(pte));
	ntmm__pfn_entry_t *pe = ntmm__pfn(f->v.e, ntmm__pte_pfn(pte));
	assert_true(ntmm__pte_is_pagefile(atomic_load(&pe->original_pte)));
	return pe;
}

static void only(const ntmm__pfaudit_t *r, uint64_t shared, uint64_t free_refs, uint64_t bad_refs,
                 uint64_t stray, uint64_t leaks)
{
	assert_int_equal(r->shared, shared);
	assert_int_equal(r->free_refs, free_refs);
	assert_int_equal(r->bad_refs, bad_refs);
	assert_int_equal(r->stray, stray);
	assert_int_equal(r->leaks, leaks);
	assert_int_equal(r->bitmap, 0);
}

static void slot_allocated_without_an_owner_is_a_leak(void **s)
{
	paged_t f = paged_out();
	ntmm__pfloc_t loc;
	size_t got;
	assert_int_equal(ntmm__pagefile_alloc(&f.v.e->io, 1, 1, &loc, &got), 0);
	assert_int_equal(got, 1);
	ntmm__pfaudit_t r = audit_broken(f.v.e);
	only(&r, 0, 0, 0, 0, 1);
	assert_int_equal(r.pte_refs, NPAGES);
	ntmm__pagefile_free(&f.v.e->io, loc, 1);
	paged_done(&f);
}

static void pte_naming_a_freed_slot_fails(void **s)
{
	paged_t f = paged_out();
	_Atomic uint64_t *pte = pte_of(f.v.e, f.p, f.a + 3 * PG);
	uint64_t old = atomic_load(pte);
	ntmm__pagefile_free(&f.v.e->io, ntmm__pfloc_from_pte(old), 1);
	ntmm__pfaudit_t r = audit_broken(f.v.e);
	only(&r, 0, 1, 0, 0, 0);
	/* put right: the page loses its copy and becomes demand-zero */
	atomic_store(pte, ntmm__pte_make_demand_zero(ntmm__pte_prot(old)));
	static char zero[4096], buf[4096];
	assert_int_equal(ntmm_read(f.p, f.a + 3 * PG, buf, PG), 0);
	assert_memory_equal(buf, zero, PG);
	paged_done(&f);
}

static void two_ptes_naming_one_slot_fail(void **s)
{
	paged_t f = paged_out();
	_Atomic uint64_t *p1 = pte_of(f.v.e, f.p, f.a + 1 * PG);
	_Atomic uint64_t *p5 = pte_of(f.v.e, f.p, f.a + 5 * PG);
	uint64_t saved = atomic_load(p5);
	atomic_store(p5, atomic_load(p1));
	/* slot of page 1 named twice; that of page 5 named by nobody */
	ntmm__pfaudit_t r = audit_broken(f.v.e);
	only(&r, 1, 0, 0, 0, 1);
	atomic_store(p5, saved);
	check(f.p, f.a + 5 * PG, 5, 1);
	check(f.p, f.a + 1 * PG, 1, 1);
	paged_done(&f);
}

static void pte_and_original_pte_naming_one_slot_fail(void **s)
{
	paged_t f = paged_out();
	ntmm__pfn_entry_t *pe = resident(&f, 8);
	uint64_t saved = atomic_load(&pe->original_pte);
	uint64_t other = atomic_load(pte_of(f.v.e, f.p, f.a + 0 * PG));
	assert_true(ntmm__pte_is_pagefile(other));
	atomic_store(&pe->original_pte, other);
	ntmm__pfaudit_t r = audit_broken(f.v.e);
	only(&r, 1, 0, 0, 0, 1);
	atomic_store(&pe->original_pte, saved);
	paged_done(&f);
}

static void two_original_ptes_naming_one_slot_fail(void **s)
{
	paged_t f = paged_out();
	ntmm__pfn_entry_t *a = resident(&f, 2);
	ntmm__pfn_entry_t *b = resident(&f, 12);
	uint64_t saved = atomic_load(&b->original_pte);
	atomic_store(&b->original_pte, atomic_load(&a->original_pte));
	ntmm__pfaudit_t r = audit_broken(f.v.e);
	only(&r, 1, 0, 0, 0, 1);
	assert_true(r.frame_refs >= 2);
	atomic_store(&b->original_pte, saved);
	paged_done(&f);
}

static void free_frame_naming_a_slot_fails(void **s)
{
	paged_t f = paged_out();
	ntmm__pfn_entry_t *free_pe = NULL;
	for (size_t pfn = 0; pfn < f.v.e->phys.nframes && !free_pe; pfn++) {
		ntmm__pfn_entry_t *pe = ntmm__pfn(f.v.e, (ntmm__pfn_t)pfn);
		unsigned loc = ntmm__pfn_loc(atomic_load(&pe->state));
		if (loc == NTMM__LOC_FREE || loc == NTMM__LOC_ZEROED)
			free_pe = pe;
	}
	assert_non_null(free_pe);
	assert_int_equal(atomic_load(&free_pe->original_pte), 0);
	atomic_store(&free_pe->original_pte, atomic_load(pte_of(f.v.e, f.p, f.a)));
	/* not an owner (the slot keeps its one owner, the PTE): an error */
	ntmm__pfaudit_t r = audit_broken(f.v.e);
	only(&r, 0, 0, 0, 1, 0);
	atomic_store(&free_pe->original_pte, 0);
	paged_done(&f);
}

static void pte_naming_no_paging_file_fails(void **s)
{
	paged_t f = paged_out();
	_Atomic uint64_t *pte = pte_of(f.v.e, f.p, f.a + 7 * PG);
	uint64_t saved = atomic_load(pte);
	ntmm__pfloc_t loc = ntmm__pfloc_from_pte(saved);
	assert_int_equal(ntmm__pfloc_file(loc), 0);
	/* file 9 does not exist; page 7's own slot is left with no owner */
	atomic_store(pte, ntmm__pte_make_pagefile(9, (uint32_t)ntmm__pfloc_slot(loc),
	                                          ntmm__pte_prot(saved)));
	ntmm__pfaudit_t r = audit_broken(f.v.e);
	only(&r, 0, 0, 1, 0, 1);
	atomic_store(pte, saved);
	check(f.p, f.a + 7 * PG, 7, 1);
	paged_done(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(audit_counts_every_owner_through_overcommitted_paging,
	                                    setup_8_32_64, teardown),
	    cmocka_unit_test_setup_teardown(audit_stays_exact_while_the_writer_drains,
	                                    setup_16_16_64_threads, teardown),
	    cmocka_unit_test(slot_allocated_without_an_owner_is_a_leak),
	    cmocka_unit_test(pte_naming_a_freed_slot_fails),
	    cmocka_unit_test(two_ptes_naming_one_slot_fail),
	    cmocka_unit_test(pte_and_original_pte_naming_one_slot_fail),
	    cmocka_unit_test(two_original_ptes_naming_one_slot_fail),
	    cmocka_unit_test(free_frame_naming_a_slot_fails),
	    cmocka_unit_test(pte_naming_no_paging_file_fails),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
