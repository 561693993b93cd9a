/* The fault path end to end: demand-zero, trim to transition and soft
   faults back, pins, decommit/release/destroy giving frames back, the
   PTE/PFN invariants (audit), and isolation between processes. */
#include "virt_testutil.h"
#include "iotest.h"

#include "engine.h"
#include "fixture.h"

/* Each engine test gets a fresh engine (no system threads) from its
   setup; the teardown destroys it even after a failed assert. */
static struct {
	ntmm_engine_t *e;
} fx;

static int setup_engine(void **s, size_t bytes)
{
	fx.e = virt_engine(bytes, 0);
	*s = fx.e;
	return 0;
}
static int setup_8mib(void **s)
{
	return setup_engine(s, 8 * MiB);
}
static int setup_4mib(void **s)
{
	return setup_engine(s, 4 * MiB);
}
static int teardown(void **s)
{
	fixture_engine_release(fx.e);
	fx.e = NULL;
	return 0;
}

static uint64_t commit_region(ntmm_process_t *p, size_t pages, unsigned prot)
{
	uint64_t a = 0;
	assert_int_equal(ntmm_allocate(p, &a, pages * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, prot),
	                 0);
	return a;
}

static void fill(ntmm_process_t *p, uint64_t a, size_t pages, uint32_t seed)
{
	for (size_t i = 0; i < pages; i++) {
		uint32_t buf[PG / 4];
		for (size_t k = 0; k < PG / 4; k++)
			buf[k] = seed ^ (uint32_t)(i * 2654435761u) ^ (uint32_t)k;
		assert_int_equal(ntmm_write(p, a + i * PG, buf, PG), 0);
	}
}

static void check(ntmm_process_t *p, uint64_t a, size_t pages, uint32_t seed)
{
	for (size_t i = 0; i < pages; i++) {
		uint32_t buf[PG / 4];
		assert_int_equal(ntmm_read(p, a + i * PG, buf, PG), 0);
		for (size_t k = 0; k < PG / 4; k++)
			if (buf[k] != (seed ^ (uint32_t)(i * 2654435761u) ^ (uint32_t)k))
				fail_msg("page %zu word %zu: %#x", i, k, buf[k]);
	}
}

static void demand_zero_pages_read_zero_and_keep_writes(void **s)
{
	ntmm_engine_t *e = *s;
	ntmm_process_t *p = virt_process(e);
	uint64_t a = commit_region(p, 64, NTMM_PAGE_READWRITE);
	ntmm_access_begin(e);
	for (int i = 0; i < 64; i++) {
		unsigned char *h;
		assert_int_equal(ntmm_translate(p, a + i * PG + 17, NTMM_ACCESS_READ, (void **)&h),
		                 0);
		for (int k = 0; k < 100; k++)
			assert_int_equal(h[k], 0);
	}
	ntmm_access_end(e);
	fill(p, a, 64, 0xabc);
	check(p, a, 64, 0xabc);
	ntmm_process_info_t pi;
	assert_int_equal(ntmm_process_info(p, &pi), 0);
	assert_int_equal(pi.ws_pages, 64);
	assert_int_equal(pi.commit_pages, 64);
	assert_true(pi.page_faults >= 64);
	assert_true(STAT(e, demand_zero_faults) >= 64);
	assert_true(STAT(e, pagetable_pages) >= 3);
	assert_int_equal(ntmm_audit(e), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(ntmm_audit(e), 0);
}

static void read_and_write_cross_page_boundaries(void **s)
{
	ntmm_engine_t *e = *s;
	ntmm_process_t *p = virt_process(e);
	uint64_t a = commit_region(p, 4, NTMM_PAGE_READWRITE);
	char msg[6000], back[6000];
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (char)(i * 7 + 3);
	assert_int_equal(ntmm_write(p, a + PG - 100, msg, sizeof(msg)), 0);
	assert_int_equal(ntmm_read(p, a + PG - 100, back, sizeof(back)), 0);
	assert_memory_equal(msg, back, sizeof(msg));
	/* a copy running into uncommitted space stops with EACCESS */
	assert_int_equal(ntmm_write(p, a + 4 * PG - 10, msg, 20), NTMM_EACCESS);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(ntmm_audit(e), 0);
}

static void translate_sets_accessed_and_dirty(void **s)
{
	ntmm_engine_t *e = *s;
	ntmm_process_t *p = virt_process(e);
	uint64_t a = commit_region(p, 2, NTMM_PAGE_READWRITE);
	void *h;
	ntmm_access_begin(e);
	assert_int_equal(ntmm_translate(p, a, NTMM_ACCESS_READ, &h), 0);
	uint64_t v = atomic_load(ntmm__pt_lookup(p, a));
	assert_true(v & NTMM__PTE_VALID);
	assert_true(v & NTMM__PTE_ACCESSED);
	assert_false(v & NTMM__PTE_DIRTY);
	assert_int_equal(ntmm_translate(p, a, NTMM_ACCESS_WRITE, &h), 0);
	v = atomic_load(ntmm__pt_lookup(p, a));
	assert_true(v & NTMM__PTE_DIRTY);
	ntmm_access_end(e);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(ntmm_audit(e), 0);
}

static void ws_empty_then_soft_faults_bring_data_back(void **s)
{
	ntmm_engine_t *e = *s;
	ntmm_process_t *p = virt_process(e);
	uint64_t a = commit_region(p, 200, NTMM_PAGE_READWRITE);
	fill(p, a, 200, 0x5151);
	uint64_t shoot = STAT(e, rcu_shootdowns);
	assert_int_equal(ntmm_ws_empty(p), 0);
	assert_int_equal(STAT(e, rcu_shootdowns), shoot + 1); /* one grace period per batch */
	assert_true(STAT(e, pages_trimmed) >= 200);
	ntmm_process_info_t pi;
	assert_int_equal(ntmm_process_info(p, &pi), 0);
	assert_int_equal(pi.ws_pages, 0);
	assert_int_equal(pi.ws_peak_pages, 200);
	/* every PTE is a transition PTE now */
	for (int i = 0; i < 200; i++)
		assert_true(ntmm__pte_is_transition(atomic_load(ntmm__pt_lookup(p, a + i * PG))));
	assert_int_equal(ntmm_audit(e), 0);
	uint64_t soft = STAT(e, soft_faults);
	check(p, a, 200, 0x5151);
	assert_int_equal(STAT(e, soft_faults), soft + 200);
	assert_int_equal(ntmm_process_info(p, &pi), 0);
	assert_int_equal(pi.ws_pages, 200);
	assert_int_equal(ntmm_audit(e), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(ntmm_audit(e), 0);
}

static void pinned_pages_are_not_trimmed(void **s)
{
	ntmm_engine_t *e = *s;
	ntmm_process_t *p = virt_process(e);
	uint64_t a = commit_region(p, 16, NTMM_PAGE_READWRITE);
	ntmm_pin_t *pin;
	assert_int_equal(ntmm_pin(p, a + 100, 3 * PG, NTMM_ACCESS_WRITE, &pin), 0); /* 4 pages */
	assert_non_null(ntmm_pin_page(pin, 3));
	assert_null(ntmm_pin_page(pin, 4));
	memset(ntmm_pin_page(pin, 1), 0x77, PG);
	fill(p, a + 8 * PG, 8, 1);
	assert_int_equal(ntmm_ws_empty(p), 0);
	ntmm_process_info_t pi;
	assert_int_equal(ntmm_process_info(p, &pi), 0);
	assert_int_equal(pi.ws_pages, 4);
	assert_int_equal(ntmm_audit(e), 0);
	unsigned char c;
	assert_int_equal(ntmm_read(p, a + PG + 5, &c, 1), 0);
	assert_int_equal(c, 0x77);
	ntmm_unpin(pin);
	assert_int_equal(ntmm_ws_empty(p), 0);
	assert_int_equal(ntmm_process_info(p, &pi), 0);
	assert_int_equal(pi.ws_pages, 0);
	assert_int_equal(ntmm_read(p, a + PG + 5, &c, 1), 0);
	assert_int_equal(c, 0x77); /* the write through the pin was kept (Dirty) */
	check(p, a + 8 * PG, 8, 1);
	assert_int_equal(ntmm_audit(e), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(ntmm_audit(e), 0);
}

static void pin_of_uncommitted_memory_fails_and_holds_nothing(void **s)
{
	ntmm_engine_t *e = *s;
	ntmm_process_t *p = virt_process(e);
	uint64_t a = 0;
	assert_int_equal(ntmm_allocate(p, &a, 4 * PG, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE), 0);
	uint64_t c = a;
	assert_int_equal(ntmm_allocate(p, &c, 2 * PG, NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE), 0);
	ntmm_pin_t *pin = (ntmm_pin_t *)1;
	assert_int_equal(ntmm_pin(p, a, 4 * PG, NTMM_ACCESS_READ, &pin), NTMM_EACCESS);
	assert_null(pin);
	assert_int_equal(ntmm_ws_empty(p), 0);
	ntmm_process_info_t pi;
	assert_int_equal(ntmm_process_info(p, &pi), 0);
	assert_int_equal(pi.ws_pages, 0); /* the two pages it pinned were let go */
	assert_int_equal(ntmm_audit(e), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(ntmm_audit(e), 0);
}

static void decommit_and_release_free_frames_and_tables(void **s)
{
	ntmm_engine_t *e = *s;
	ntmm_process_t *p = virt_process(e);
	uint64_t a = commit_region(p, 600, NTMM_PAGE_READWRITE); /* spans two leaf tables */
	fill(p, a, 600, 9);
	assert_int_equal(ntmm_ws_empty(p), 0);
	check(p, a, 300, 9); /* half resident, half transition */
	assert_int_equal(ntmm_free(p, a, 300 * PG, NTMM_MEM_DECOMMIT), 0);
	ntmm_process_info_t pi;
	assert_int_equal(ntmm_process_info(p, &pi), 0);
	assert_int_equal(pi.ws_pages, 0);
	assert_int_equal(pi.commit_pages, 300);
	assert_int_equal(ntmm_audit(e), 0);
	/* recommitted pages are demand-zero again */
	uint64_t c = a;
	assert_int_equal(ntmm_allocate(p, &c, PG, NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE), 0);
	uint32_t w = 1;
	assert_int_equal(ntmm_read(p, a, &w, 4), 0);
	assert_int_equal(w, 0);
	assert_int_equal(ntmm_free(p, a, 0, NTMM_MEM_RELEASE), 0);
	/* only the root table is left */
	for (unsigned i = 0; i < 512; i++)
		assert_int_equal(atomic_load(&p->root_host[i]), 0);
	assert_int_equal(ntmm_audit(e), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(ntmm_audit(e), 0);
}

static void destroy_gives_back_frames_and_commit(void **s)
{
	ntmm_engine_t *e = *s;
	ntmm_stats_t st0, st1;
	assert_int_equal(ntmm_stats_get(e, &st0), 0);
	for (int round = 0; round < 3; round++) {
		ntmm_process_t *p = virt_process(e);
		uint64_t a = commit_region(p, 1000, NTMM_PAGE_READWRITE);
		fill(p, a, 1000, (uint32_t)round);
		assert_int_equal(ntmm_ws_set_limits(p, 10, 100), 0);
		assert_int_equal(ntmm_ws_empty(p), 0);
		check(p, a, 500, (uint32_t)round);
		assert_int_equal(ntmm_process_destroy(p), 0);
		assert_int_equal(ntmm_audit(e), 0);
	}
	assert_int_equal(ntmm_stats_get(e, &st1), 0);
	assert_int_equal(st1.commit_pages, 0);
	assert_int_equal(st1.processes, 0);
	assert_int_equal(st1.active_pages, st0.active_pages);
	assert_int_equal(ntmm_audit(e), 0);
}

/* A frame another process gave up reaches the next owner zeroed: freed
   frames via release, clean Standby frames via repurposing. */
static void frames_reach_a_new_owner_zeroed(void **s)
{
	ntmm_engine_t *e = *s;
	size_t frames = 4 * MiB / PG;
	/* a paging file, so that A's and B's commits together may pass the
	   frames (the commit limit counts the frames less a reserve and the
	   page tables); nothing is written to it here */
	char *dir = io_tmpdir(), *path = io_path(dir, "pf.sys");
	assert_int_equal(ntmm_pagefile_add(e, path, 1 * MiB, 1 * MiB), 0);
	ntmm_process_t *a = virt_process(e), *b = virt_process(e);
	/* A: secret bytes written through read-only pins (so the pages stay
	   clean: they go to Standby when trimmed, and can be repurposed) */
	size_t na = frames * 6 / 10, nb = frames * 4 / 10 - 2;
	uint64_t ra = commit_region(a, na, NTMM_PAGE_READWRITE);
	for (size_t i = 0; i < na; i++) {
		ntmm_pin_t *pin;
		assert_int_equal(ntmm_pin(a, ra + i * PG, PG, NTMM_ACCESS_READ, &pin), 0);
		memset(ntmm_pin_page(pin, 0), 0xA5, PG);
		ntmm_unpin(pin);
	}
	assert_int_equal(ntmm_ws_empty(a), 0);
	/* B touches more than what is free: it must get A's standby frames */
	uint64_t rb = commit_region(b, nb, NTMM_PAGE_READWRITE);
	size_t got = 0;
	for (size_t i = 0; i < nb; i++) {
		ntmm_access_begin(e);
		unsigned char *h;
		int r = ntmm_translate(b, rb + i * PG, NTMM_ACCESS_READ, (void **)&h);
		if (r == 0) {
			got++;
			for (size_t k = 0; k < PG; k++)
				if (h[k] != 0)
					fail_msg("B page %zu byte %zu is %#x", i, k, h[k]);
		} else {
			assert_int_equal(r, NTMM_ENOMEM);
		}
		ntmm_access_end(e);
	}
	assert_int_equal(got, nb);
	size_t repurposed = 0; /* A's PTEs restored from transition to demand-zero */
	for (size_t i = 0; i < na; i++)
		repurposed +=
		    ntmm__pte_is_demand_zero(atomic_load(ntmm__pt_lookup(a, ra + i * PG)));
	assert_true(repurposed > 0);
	assert_int_equal(ntmm_audit(e), 0);
	/* A's repurposed pages refault as demand-zero (their OriginalPte);
	   the others soft-fault back with A's bytes */
	assert_int_equal(ntmm_free(b, rb, 0, NTMM_MEM_RELEASE), 0);
	for (size_t i = 0; i < na; i++) {
		uint64_t v = atomic_load(ntmm__pt_lookup(a, ra + i * PG));
		unsigned char c = 1;
		assert_int_equal(ntmm_read(a, ra + i * PG + 7, &c, 1), 0);
		if (ntmm__pte_is_demand_zero(v))
			assert_int_equal(c, 0);
		else
			assert_int_equal(c, 0xA5);
	}
	assert_int_equal(ntmm_audit(e), 0);
	/* freed frames: A writes, releases; B's new pages are zero */
	uint64_t r2 = commit_region(a, 64, NTMM_PAGE_READWRITE);
	fill(a, r2, 64, 0xfeed);
	assert_int_equal(ntmm_free(a, r2, 0, NTMM_MEM_RELEASE), 0);
	uint64_t r3 = commit_region(b, 64, NTMM_PAGE_READWRITE);
	for (size_t i = 0; i < 64; i++) {
		uint64_t buf[PG / 8];
		assert_int_equal(ntmm_read(b, r3 + i * PG, buf, PG), 0);
		for (size_t k = 0; k < PG / 8; k++)
			assert_int_equal(buf[k], 0);
	}
	assert_int_equal(ntmm_process_destroy(a), 0);
	assert_int_equal(ntmm_process_destroy(b), 0);
	assert_int_equal(ntmm_audit(e), 0);
	free(path);
	io_rmtree(dir);
}

static void processes_never_see_each_others_pages(void **s)
{
	ntmm_engine_t *e = *s;
	ntmm_process_t *a = virt_process(e), *b = virt_process(e);
	uint64_t x = 0x10000000, y = 0x10000000; /* the same VA in both */
	assert_int_equal(
	    ntmm_allocate(a, &x, 32 * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE),
	    0);
	assert_int_equal(
	    ntmm_allocate(b, &y, 32 * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE),
	    0);
	fill(a, x, 32, 0xaaaa);
	fill(b, y, 32, 0xbbbb);
	assert_int_equal(ntmm_ws_empty(a), 0);
	check(b, y, 32, 0xbbbb);
	check(a, x, 32, 0xaaaa);
	void *ha, *hb;
	ntmm_access_begin(e);
	assert_int_equal(ntmm_translate(a, x, NTMM_ACCESS_READ, &ha), 0);
	assert_int_equal(ntmm_translate(b, y, NTMM_ACCESS_READ, &hb), 0);
	assert_ptr_not_equal(ha, hb);
	ntmm_access_end(e);
	assert_int_equal(ntmm_process_destroy(a), 0);
	check(b, y, 32, 0xbbbb);
	assert_int_equal(ntmm_process_destroy(b), 0);
	assert_int_equal(ntmm_audit(e), 0);
}

static void calls_that_need_a_grace_period_refuse_inside_an_access_section(void **s)
{
	ntmm_engine_t *e = *s;
	ntmm_process_t *p = virt_process(e);
	uint64_t a = commit_region(p, 2, NTMM_PAGE_READWRITE);
	ntmm_access_begin(e);
	assert_int_equal(ntmm_ws_empty(p), NTMM_EBUSY);
	assert_int_equal(ntmm_free(p, a, 0, NTMM_MEM_RELEASE), NTMM_EBUSY);
	assert_int_equal(ntmm_process_destroy(p), NTMM_EBUSY);
	ntmm_access_end(e);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(ntmm_audit(e), 0);
}

static void pte_formats_round_trip(void **s)
{
	uint64_t v = ntmm__pte_make_valid(123456, 777, NTMM__PTE_READ | NTMM__PTE_WRITE);
	assert_true(ntmm__pte_is_valid(v));
	assert_int_equal(ntmm__pte_pfn(v), 123456);
	assert_int_equal(ntmm__pte_wsi(v), 777);
	uint64_t t = ntmm__pte_make_transition(0xfffffffe, NTMM__MM_READWRITE);
	assert_true(ntmm__pte_is_transition(t));
	assert_false(ntmm__pte_is_valid(t) || ntmm__pte_is_prototype(t) ||
	             ntmm__pte_is_software(t));
	assert_int_equal(ntmm__pte_pfn(t), 0xfffffffe);
	assert_int_equal(ntmm__pte_prot(t), NTMM__MM_READWRITE);
	uint64_t d = ntmm__pte_make_demand_zero(NTMM__MM_READONLY);
	assert_true(ntmm__pte_is_demand_zero(d));
	uint64_t f = ntmm__pte_make_pagefile(3, 0x12345, NTMM__MM_WRITECOPY);
	assert_true(ntmm__pte_is_software(f));
	assert_false(ntmm__pte_is_demand_zero(f));
	assert_int_equal(ntmm__pte_pf_index(f), 3);
	assert_int_equal(ntmm__pte_pf_offset(f), 0x12345);
	assert_int_equal(ntmm__pte_prot(f), NTMM__MM_WRITECOPY);
	static uint64_t proto;
	uint64_t pr = ntmm__pte_make_prototype((uint64_t)(uintptr_t)&proto, NTMM__MM_READONLY);
	assert_true(ntmm__pte_is_prototype(pr));
	assert_int_equal(ntmm__pte_proto_addr(pr), (uint64_t)(uintptr_t)&proto);
	assert_int_equal(ntmm__pte_proto_addr(ntmm__pte_make_prototype(0, 1)), 0);
	assert_int_equal(ntmm__mmprot_from_page(NTMM_PAGE_READWRITE | NTMM_PAGE_GUARD),
	                 NTMM__MM_READWRITE | NTMM__MM_GUARD);
	assert_int_equal(ntmm__mmprot_from_page(NTMM_PAGE_NOACCESS), NTMM__MM_NOACCESS);
}

static void pagefile_locations_round_trip_through_pte_bits(void **s)
{
	for (unsigned file = 0; file < NTMM__PF_MAX_FILES; file++) {
		uint64_t slots[] = {1, 2, 63, 64, 65, 12345, 0xffffffffull};
		for (unsigned i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
			ntmm__pfloc_t loc = ntmm__pfloc_make(file, slots[i]);
			uint64_t pte = ntmm__pfloc_to_pte(loc);
			/* only the PageFileLow/High fields are used: Valid, Protection,
			   Prototype and Transition stay 0 */
			assert_int_equal(pte & ~NTMM__PTE_PF_MASK, 0);
			assert_int_equal(pte & 0xfe1ull, 0);
			assert_int_equal((pte >> 1) & 0xf, file);
			assert_int_equal(pte >> 32, slots[i]);
			assert_int_equal(ntmm__pte_pf_index(pte), file);
			assert_int_equal(ntmm__pte_pf_offset(pte), slots[i]);
			/* other PTE bits do not disturb the decode */
			assert_int_equal(ntmm__pfloc_from_pte(pte | 0x3e0 | 0x800), loc);
			/* the same bits as the pagefile PTE constructor's */
			assert_int_equal(
			    pte | ntmm__pte_make_demand_zero(NTMM__MM_READWRITE),
			    ntmm__pte_make_pagefile(file, (uint32_t)slots[i], NTMM__MM_READWRITE));
		}
	}
	/* demand zero (offset 0) holds no location */
	assert_false(ntmm__pfloc_valid(ntmm__pfloc_from_pte(0x80)));
}

/* A prototype PTE in private memory names a clone's prototype; one that
   names none (never written by the engine) is refused with NTMM_EINVAL,
   not followed. */
static void a_prototype_pte_naming_no_prototype_is_einval(void **s)
{
	ntmm_engine_t *e = *s;
	ntmm_process_t *p = virt_process(e);
	uint64_t a = commit_region(p, 4, NTMM_PAGE_READWRITE);
	char c = 0;
	assert_int_equal(ntmm_write(p, a, &c, 1), 0); /* tables exist now */
	_Atomic uint64_t *pte = ntmm__pt_lookup(p, a + PG);
	atomic_store(pte, ntmm__pte_make_prototype(0, NTMM__MM_READWRITE));
	ntmm__pt_note_fill(p, pte);
	assert_int_equal(ntmm_read(p, a + PG, &c, 1), NTMM_EINVAL);
	/* pagefile PTEs are hard faults now: test/test_paging_*.c */
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(ntmm_audit(e), 0);
}

/* The software TLB keeps the grace-period rule: its entries do not outlive
   the access section that filled them, and a read fill does not allow a
   write that has not set Dirty. */
static void tlb_entries_die_with_their_access_section(void **s)
{
	ntmm_engine_t *e = *s;
	ntmm_process_t *p = virt_process(e);
	uint64_t a = commit_region(p, 4, NTMM_PAGE_READWRITE);
	void *h1, *h2;
	ntmm_access_begin(e);
	assert_int_equal(ntmm_translate(p, a + 8, NTMM_ACCESS_READ, &h1), 0);
	assert_int_equal(ntmm_translate(p, a + 8, NTMM_ACCESS_READ, &h2), 0); /* hit */
	assert_ptr_equal(h1, h2);
	assert_false(atomic_load(ntmm__pt_lookup(p, a)) & NTMM__PTE_DIRTY);
	assert_int_equal(ntmm_translate(p, a + 8, NTMM_ACCESS_WRITE, &h2), 0);
	assert_true(atomic_load(ntmm__pt_lookup(p, a)) & NTMM__PTE_DIRTY); /* not a TLB hit */
	*(char *)h2 = 5;
	ntmm_access_end(e);
	assert_int_equal(ntmm_ws_empty(p), 0);
	uint64_t soft = STAT(e, soft_faults);
	ntmm_access_begin(e);
	assert_int_equal(ntmm_translate(p, a + 8, NTMM_ACCESS_READ, &h1), 0);
	assert_int_equal(STAT(e, soft_faults), soft + 1); /* the old entry was not used */
	assert_int_equal(*(char *)h1, 5);
	ntmm_access_end(e);
	/* a nested section shares its outer section's entries */
	ntmm_access_begin(e);
	assert_int_equal(ntmm_translate(p, a + PG, NTMM_ACCESS_WRITE, &h1), 0);
	ntmm_access_begin(e);
	uint64_t faults = STAT(e, page_faults);
	assert_int_equal(ntmm_translate(p, a + PG, NTMM_ACCESS_WRITE, &h2), 0);
	assert_int_equal(STAT(e, page_faults), faults);
	assert_ptr_equal(h1, h2);
	ntmm_access_end(e);
	ntmm_access_end(e);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(ntmm_audit(e), 0);
}

/* The engine's working set manager (ntmm__wsm_run, what the balance set
   manager runs) with memory plentiful: a set above its maximum is trimmed
   to it, a set at its maximum is left alone. Then "pressure" on this one
   process through the same manager's primitives (age, then trim oldest
   first, only pages unused since the last aging): down to the minimum,
   and the recently used pages stay. */
static void working_set_manager_pass_trims_to_the_limits(void **s)
{
	ntmm_engine_t *e = *s;
	ntmm_process_t *p = virt_process(e);
	uint64_t a = commit_region(p, 100, NTMM_PAGE_READWRITE);
	fill(p, a, 100, 3);
	assert_int_equal(ntmm_ws_set_limits(p, 10, 50), 0);
	ntmm_process_info_t pi;
	ntmm__wsm_marks_t m;
	ntmm__wsm_marks(e, &m);
	ntmm__wsm_result_t r;
	ntmm__wsm_run(e, &r);
	assert_true(r.available >= m.minimum); /* the premise: no pressure */
	assert_int_equal(r.trimmed_max, 50);   /* above the maximum: down to it */
	assert_int_equal(r.trimmed_pressure, 0);
	assert_int_equal(ntmm_process_info(p, &pi), 0);
	assert_int_equal(pi.ws_pages, 50);
	ntmm__wsm_run(e, &r); /* at the maximum, no pressure */
	assert_true(r.available >= m.minimum);
	assert_int_equal(r.trimmed_max, 0);
	assert_int_equal(r.trimmed_pressure, 0);
	assert_int_equal(ntmm_process_info(p, &pi), 0);
	assert_int_equal(pi.ws_pages, 50);
	/* touch 5 pages; under pressure the 45 unused ones go, down to 10 at most */
	uint64_t touched[5];
	size_t nt = 0;
	for (size_t i = 0; i < 100 && nt < 5; i++) {
		_Atomic uint64_t *pte = ntmm__pt_lookup(p, a + i * PG);
		if (ntmm__pte_is_valid(atomic_load(pte)))
			touched[nt++] = a + i * PG;
	}
	assert_int_equal(nt, 5);
	ntmm__wsm_age(p, NULL); /* clears Accessed everywhere */
	for (size_t k = 0; k < nt; k++) {
		char c;
		assert_int_equal(ntmm_read(p, touched[k], &c, 1), 0);
	}
	size_t hist[8];
	assert_int_equal(ntmm__wsm_age(p, hist), nt);
	assert_int_equal(hist[0], nt);
	/* to the minimum: pi.ws_pages (50) - 10 */
	assert_int_equal(ntmm__wsm_trim_oldest(p, hist, pi.ws_pages - 10, 1, NULL), 40);
	assert_int_equal(ntmm_process_info(p, &pi), 0);
	assert_int_equal(pi.ws_pages, 10);
	for (size_t k = 0; k < nt; k++) /* the recently used pages stayed */
		assert_true(ntmm__pte_is_valid(atomic_load(ntmm__pt_lookup(p, touched[k]))));
	check(p, a, 100, 3);
	assert_int_equal(ntmm_audit(e), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(ntmm_audit(e), 0);
}

static void engine_destroy_frees_live_processes(void **s)
{
	ntmm_engine_t *e = *s;
	ntmm_process_t *p = virt_process(e), *q = virt_process(e);
	uint64_t a = commit_region(p, 64, NTMM_PAGE_READWRITE);
	fill(p, a, 64, 1);
	assert_int_equal(ntmm_ws_empty(p), 0);
	uint64_t b = commit_region(q, 64, NTMM_PAGE_READWRITE);
	fill(q, b, 32, 2);
	assert_int_equal(ntmm_audit(e), 0);
	fx.e = NULL; /* destroyed here, p and q live: ASan's leak check is the assertion */
	fixture_engine_release(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(pte_formats_round_trip),
	    cmocka_unit_test(pagefile_locations_round_trip_through_pte_bits),
	    cmocka_unit_test_setup_teardown(demand_zero_pages_read_zero_and_keep_writes, setup_8mib,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(read_and_write_cross_page_boundaries, setup_8mib,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(translate_sets_accessed_and_dirty, setup_8mib,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(ws_empty_then_soft_faults_bring_data_back, setup_8mib,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(pinned_pages_are_not_trimmed, setup_8mib, teardown),
	    cmocka_unit_test_setup_teardown(pin_of_uncommitted_memory_fails_and_holds_nothing,
	                                    setup_8mib, teardown),
	    cmocka_unit_test_setup_teardown(decommit_and_release_free_frames_and_tables, setup_8mib,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(destroy_gives_back_frames_and_commit, setup_8mib,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(frames_reach_a_new_owner_zeroed, setup_4mib, teardown),
	    cmocka_unit_test_setup_teardown(processes_never_see_each_others_pages, setup_8mib,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        calls_that_need_a_grace_period_refuse_inside_an_access_section, setup_8mib,
	        teardown),
	    cmocka_unit_test_setup_teardown(a_prototype_pte_naming_no_prototype_is_einval,
	                                    setup_8mib, teardown),
	    cmocka_unit_test_setup_teardown(tlb_entries_die_with_their_access_section, setup_8mib,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(working_set_manager_pass_trims_to_the_limits,
	                                    setup_8mib, teardown),
	    cmocka_unit_test_setup_teardown(engine_destroy_frees_live_processes, setup_8mib,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
