/* Virtual memory API semantics (NtAllocateVirtualMemory family): reserve,
   commit, decommit, release, protect, query, placement, commit charge, and
   every bad input the issue lists, each its own test. */
#include "virt_testutil.h"
#include "fixture.h"
#include "iotest.h"

#include "engine.h"

static ntmm_engine_t *E;
static ntmm_process_t *P;

static int setup(void **state)
{
	E = virt_engine(16 * MiB, 0);
	P = virt_process(E);
	return 0;
}
/* Everything is destroyed before anything is asserted: an assert failing
   here longjmps out too, and must not leave the engine behind. */
static int teardown(void **state)
{
	fixture_close_sections(E); /* a failed body may have left one open */
	int destroyed = ntmm_process_destroy(P);
	int audit = ntmm_audit(E);
	fixture_engine_release(E);
	E = NULL;
	P = NULL;
	assert_int_equal(destroyed, 0);
	assert_int_equal(audit, 0);
	return 0;
}

static void query(uint64_t va, ntmm_region_info_t *i)
{
	assert_int_equal(ntmm_query(P, va, i), 0);
}

/* ---------------------------------------------------------- semantics */

static void reserve_rounds_base_to_64k_and_end_to_pages(void **s)
{
	uint64_t base = 0x12345678;
	assert_int_equal(ntmm_allocate(P, &base, 100, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE), 0);
	assert_int_equal(base, 0x12340000);
	ntmm_region_info_t i;
	query(0x12340000, &i);
	assert_int_equal(i.base, 0x12340000);
	assert_int_equal(i.allocation_base, 0x12340000);
	assert_int_equal(i.size,
	                 0x12346000 - 0x12340000); /* up to the page holding the last byte */
	assert_int_equal(i.state, NTMM_MEM_RESERVE);
	assert_int_equal(i.type, NTMM_MEM_PRIVATE);
	assert_int_equal(i.allocation_prot, NTMM_PAGE_READWRITE);
	assert_int_equal(ntmm_free(P, base, 0, NTMM_MEM_RELEASE), 0);
}

static void one_page_reservation_keeps_the_rest_of_its_granule(void **s)
{
	uint64_t a = 0x20000000;
	assert_int_equal(ntmm_allocate(P, &a, PG, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE), 0);
	ntmm_region_info_t i;
	query(a, &i);
	assert_int_equal(i.size, PG);
	query(a + PG, &i); /* the rest of the granule is free but unusable */
	assert_int_equal(i.state, NTMM_MEM_FREE);
	uint64_t b = a + PG; /* rounds down to a: overlaps */
	assert_int_equal(ntmm_allocate(P, &b, PG, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE),
	                 NTMM_ECONFLICT);
	b = a + GRAN;
	assert_int_equal(ntmm_allocate(P, &b, PG, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE), 0);
	assert_int_equal(b, a + GRAN);
	assert_int_equal(ntmm_free(P, a, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_free(P, b, 0, NTMM_MEM_RELEASE), 0);
}

static void engine_places_bottom_up_on_granules(void **s)
{
	uint64_t a = 0, b = 0;
	assert_int_equal(ntmm_allocate(P, &a, PG, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE), 0);
	assert_int_equal(ntmm_allocate(P, &b, 3 * GRAN, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE), 0);
	assert_int_equal(a, 0x10000); /* seed 0: no randomization */
	assert_int_equal(b, 0x20000);
	assert_int_equal(a % GRAN, 0);
	assert_int_equal(ntmm_free(P, a, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_free(P, b, 0, NTMM_MEM_RELEASE), 0);
}

static void top_down_places_at_the_top(void **s)
{
	uint64_t a = 0, b = 0;
	assert_int_equal(
	    ntmm_allocate(P, &a, GRAN, NTMM_MEM_RESERVE | NTMM_MEM_TOP_DOWN, NTMM_PAGE_READWRITE),
	    0);
	assert_int_equal(
	    ntmm_allocate(P, &b, 2 * PG, NTMM_MEM_RESERVE | NTMM_MEM_TOP_DOWN, NTMM_PAGE_READWRITE),
	    0);
	assert_int_equal(a, 0x7fffffff0000ull - GRAN);
	assert_int_equal(b, a - GRAN);
	assert_int_equal(ntmm_free(P, a, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_free(P, b, 0, NTMM_MEM_RELEASE), 0);
}

static void aslr_is_repeatable_per_seed(void **s)
{
	uint64_t got[3][2];
	uint64_t seeds[3] = {42, 42, 43};
	for (int k = 0; k < 3; k++) {
		ntmm_engine_t *e = virt_engine(4 * MiB, seeds[k]);
		ntmm_process_t *p = virt_process(e);
		got[k][0] = got[k][1] = 0;
		assert_int_equal(
		    ntmm_allocate(p, &got[k][0], GRAN, NTMM_MEM_RESERVE, NTMM_PAGE_READONLY), 0);
		assert_int_equal(ntmm_allocate(p, &got[k][1], GRAN,
		                               NTMM_MEM_RESERVE | NTMM_MEM_TOP_DOWN,
		                               NTMM_PAGE_READONLY),
		                 0);
		assert_int_equal(got[k][0] % GRAN, 0);
		assert_int_equal(got[k][1] % GRAN, 0);
		assert_int_equal(ntmm_process_destroy(p), 0);
		virt_engine_done(e);
	}
	assert_int_equal(got[0][0], got[1][0]);
	assert_int_equal(got[0][1], got[1][1]);
	assert_true(got[0][0] != got[2][0] || got[0][1] != got[2][1]);
	assert_true(got[0][0] != 0x10000); /* randomized */
}

static void commit_rounds_to_pages_inside_the_reservation(void **s)
{
	uint64_t r = 0;
	assert_int_equal(ntmm_allocate(P, &r, 1 * MiB, NTMM_MEM_RESERVE, NTMM_PAGE_NOACCESS), 0);
	uint64_t c = r + 0x1800;
	assert_int_equal(ntmm_allocate(P, &c, 0x1000, NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE), 0);
	assert_int_equal(c, r + 0x1000); /* pages 1 and 2 hold [0x1800, 0x2800) */
	ntmm_region_info_t i;
	query(r, &i);
	assert_int_equal(i.state, NTMM_MEM_RESERVE);
	assert_int_equal(i.size, PG);
	query(r + 0x1234, &i);
	assert_int_equal(i.base, r + 0x1000);
	assert_int_equal(i.state, NTMM_MEM_COMMIT);
	assert_int_equal(i.prot, NTMM_PAGE_READWRITE);
	assert_int_equal(i.size, 2 * PG);
	assert_int_equal(i.allocation_base, r);
	query(r + 0x3000, &i);
	assert_int_equal(i.state, NTMM_MEM_RESERVE);
	assert_int_equal(i.size, 1 * MiB - 0x3000);
	ntmm_process_info_t pi;
	assert_int_equal(ntmm_process_info(P, &pi), 0);
	assert_int_equal(pi.commit_pages, 2);
	assert_int_equal(ntmm_free(P, r, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_process_info(P, &pi), 0);
	assert_int_equal(pi.commit_pages, 0);
}

static void recommit_keeps_charge_exact(void **s)
{
	uint64_t r = 0;
	assert_int_equal(
	    ntmm_allocate(P, &r, 16 * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE),
	    0);
	uint64_t c = r + 4 * PG;
	assert_int_equal(ntmm_allocate(P, &c, 4 * PG, NTMM_MEM_COMMIT, NTMM_PAGE_READONLY), 0);
	ntmm_process_info_t pi;
	assert_int_equal(ntmm_process_info(P, &pi), 0);
	assert_int_equal(pi.commit_pages, 16); /* already committed: not charged twice */
	ntmm_region_info_t i;
	query(c, &i);
	assert_int_equal(i.prot, NTMM_PAGE_READONLY); /* and takes the new protection */
	assert_int_equal(ntmm_free(P, r + 2 * PG, 3 * PG, NTMM_MEM_DECOMMIT), 0);
	assert_int_equal(ntmm_process_info(P, &pi), 0);
	assert_int_equal(pi.commit_pages, 13);
	query(r + 2 * PG, &i);
	assert_int_equal(i.state, NTMM_MEM_RESERVE);
	assert_int_equal(i.size, 3 * PG);
	assert_int_equal(ntmm_free(P, r + 2 * PG, 3 * PG, NTMM_MEM_DECOMMIT), 0); /* again: fine */
	assert_int_equal(ntmm_process_info(P, &pi), 0);
	assert_int_equal(pi.commit_pages, 13);
	assert_int_equal(ntmm_free(P, r, 0, NTMM_MEM_DECOMMIT), 0); /* size 0 at base: all */
	assert_int_equal(ntmm_process_info(P, &pi), 0);
	assert_int_equal(pi.commit_pages, 0);
	assert_int_equal(ntmm_free(P, r, 0, NTMM_MEM_RELEASE), 0);
}

static void recommit_with_a_new_protection_inside_an_access_section_is_ebusy(void **s)
{
	uint64_t r = 0;
	assert_int_equal(
	    ntmm_allocate(P, &r, 4 * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE),
	    0);
	uint64_t c = r;
	ntmm_access_begin(E);
	/* a protection change may need a grace period this section would block */
	assert_int_equal(ntmm_allocate(P, &c, 2 * PG, NTMM_MEM_COMMIT, NTMM_PAGE_READONLY),
	                 NTMM_EBUSY);
	/* the same protection changes nothing: fine */
	assert_int_equal(ntmm_allocate(P, &c, 2 * PG, NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE), 0);
	/* and so is committing new memory */
	uint64_t b = 0;
	assert_int_equal(
	    ntmm_allocate(P, &b, PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READONLY), 0);
	ntmm_access_end(E);
	ntmm_region_info_t i;
	query(r, &i);
	assert_int_equal(i.prot, NTMM_PAGE_READWRITE); /* nothing changed */
	assert_int_equal(i.size, 4 * PG);
	assert_int_equal(ntmm_allocate(P, &c, 2 * PG, NTMM_MEM_COMMIT, NTMM_PAGE_READONLY), 0);
	query(r, &i);
	assert_int_equal(i.prot, NTMM_PAGE_READONLY);
	assert_int_equal(ntmm_free(P, b, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_free(P, r, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_audit(E), 0);
}

static void protect_returns_old_protection_and_query_shows_runs(void **s)
{
	uint64_t r = 0;
	assert_int_equal(
	    ntmm_allocate(P, &r, 8 * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE),
	    0);
	unsigned old = 0;
	assert_int_equal(ntmm_protect(P, r + 2 * PG + 5, PG, NTMM_PAGE_READONLY, &old), 0);
	assert_int_equal(old, NTMM_PAGE_READWRITE);
	ntmm_region_info_t i;
	query(r, &i);
	assert_int_equal(i.size, 2 * PG);
	query(r + 2 * PG, &i);
	assert_int_equal(i.prot, NTMM_PAGE_READONLY);
	assert_int_equal(i.size, 2 * PG); /* +5 spills into the next page */
	query(r + 4 * PG, &i);
	assert_int_equal(i.prot, NTMM_PAGE_READWRITE);
	assert_int_equal(i.size, 4 * PG);
	assert_int_equal(ntmm_protect(P, r + 2 * PG, 2 * PG, NTMM_PAGE_READWRITE, &old), 0);
	assert_int_equal(old, NTMM_PAGE_READONLY);
	query(r, &i); /* runs merged again */
	assert_int_equal(i.size, 8 * PG);
	assert_int_equal(ntmm_free(P, r, 0, NTMM_MEM_RELEASE), 0);
}

static void query_of_free_space_reports_the_gap(void **s)
{
	uint64_t r = 0x40000000;
	assert_int_equal(ntmm_allocate(P, &r, GRAN, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE), 0);
	ntmm_region_info_t i;
	query(0x3fff0000, &i);
	assert_int_equal(i.state, NTMM_MEM_FREE);
	assert_int_equal(i.base, 0x3fff0000);
	assert_int_equal(i.size, GRAN);
	assert_int_equal(ntmm_free(P, r, 0, NTMM_MEM_RELEASE), 0);
}

static void released_range_can_be_reserved_again(void **s)
{
	uint64_t r = 0x50000000;
	assert_int_equal(
	    ntmm_allocate(P, &r, GRAN, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE), 0);
	assert_int_equal(ntmm_free(P, r, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_allocate(P, &r, GRAN, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE), 0);
	assert_int_equal(ntmm_free(P, r, 0, NTMM_MEM_RELEASE), 0);
}

static void guard_page_reports_once_then_clears(void **s)
{
	uint64_t r = 0;
	assert_int_equal(ntmm_allocate(P, &r, 2 * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT,
	                               NTMM_PAGE_READWRITE | NTMM_PAGE_GUARD),
	                 0);
	void *h;
	ntmm_access_begin(E);
	assert_int_equal(ntmm_translate(P, r, NTMM_ACCESS_READ, &h), NTMM_EGUARD);
	assert_int_equal(ntmm_translate(P, r, NTMM_ACCESS_WRITE, &h), 0);
	ntmm_access_end(E);
	ntmm_region_info_t i;
	query(r, &i);
	assert_int_equal(i.prot, NTMM_PAGE_READWRITE);
	query(r + PG, &i);
	assert_int_equal(i.prot, NTMM_PAGE_READWRITE | NTMM_PAGE_GUARD);
	assert_true(STAT(E, guard_faults) >= 1);
	assert_int_equal(ntmm_free(P, r, 0, NTMM_MEM_RELEASE), 0);
}

/* ---------------------------------------------------------- bad input */

static void null_handle_is_einval(void **s)
{
	uint64_t b = 0;
	ntmm_region_info_t i;
	unsigned old;
	void *h;
	char buf[8];
	ntmm_pin_t *pin;
	ntmm_process_info_t pi;
	assert_int_equal(ntmm_process_create(NULL, &P), NTMM_EINVAL);
	assert_int_equal(ntmm_process_destroy(NULL), NTMM_EINVAL);
	assert_int_equal(ntmm_allocate(NULL, &b, PG, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE),
	                 NTMM_EINVAL);
	assert_int_equal(ntmm_free(NULL, 0x10000, 0, NTMM_MEM_RELEASE), NTMM_EINVAL);
	assert_int_equal(ntmm_protect(NULL, 0x10000, PG, NTMM_PAGE_READWRITE, &old), NTMM_EINVAL);
	assert_int_equal(ntmm_query(NULL, 0x10000, &i), NTMM_EINVAL);
	assert_int_equal(ntmm_translate(NULL, 0x10000, NTMM_ACCESS_READ, &h), NTMM_EINVAL);
	assert_int_equal(ntmm_read(NULL, 0x10000, buf, 8), NTMM_EINVAL);
	assert_int_equal(ntmm_write(NULL, 0x10000, buf, 8), NTMM_EINVAL);
	assert_int_equal(ntmm_pin(NULL, 0x10000, 8, NTMM_ACCESS_READ, &pin), NTMM_EINVAL);
	assert_int_equal(ntmm_ws_set_limits(NULL, 10, 20), NTMM_EINVAL);
	assert_int_equal(ntmm_ws_empty(NULL), NTMM_EINVAL);
	assert_int_equal(ntmm_process_info(NULL, &pi), NTMM_EINVAL);
	assert_int_equal(ntmm_audit(E), 0);
}

static void foreign_handle_is_einval(void **s)
{
	/* something that is not a process: zeroed memory the size of a handle
	   table entry, and a pointer to an engine */
	static _Alignas(64) uint64_t fake[512];
	ntmm_process_t *f = (ntmm_process_t *)fake;
	ntmm_process_t *g = (ntmm_process_t *)&fake[1]; /* not even aligned like one */
	uint64_t b = 0;
	ntmm_region_info_t i;
	void *h;
	assert_int_equal(ntmm_allocate(f, &b, PG, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE),
	                 NTMM_EINVAL);
	assert_int_equal(ntmm_query(f, 0x10000, &i), NTMM_EINVAL);
	assert_int_equal(ntmm_translate(f, 0x10000, NTMM_ACCESS_READ, &h), NTMM_EINVAL);
	assert_int_equal(ntmm_process_destroy(f), NTMM_EINVAL);
	assert_int_equal(ntmm_translate(g, 0x10000, NTMM_ACCESS_READ, &h), NTMM_EINVAL);
	assert_int_equal(ntmm_process_destroy(g), NTMM_EINVAL);
	assert_int_equal(ntmm_audit(E), 0);
}

static void size_zero_is_einval(void **s)
{
	uint64_t b = 0;
	assert_int_equal(ntmm_allocate(P, &b, 0, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE),
	                 NTMM_EINVAL);
	b = 0x60000000;
	assert_int_equal(
	    ntmm_allocate(P, &b, 0, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE),
	    NTMM_EINVAL);
	unsigned old;
	assert_int_equal(ntmm_protect(P, 0x60000000, 0, NTMM_PAGE_READONLY, &old), NTMM_EINVAL);
	assert_int_equal(ntmm_audit(E), 0);
}

static void size_past_the_address_space_is_einval(void **s)
{
	uint64_t b = 0;
	assert_int_equal(ntmm_allocate(P, &b, SIZE_MAX, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE),
	                 NTMM_EINVAL);
	b = 0x7fff00000000ull;
	assert_int_equal(ntmm_allocate(P, &b, 1ull << 40, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE),
	                 NTMM_EINVAL);
	b = UINT64_MAX - PG;
	assert_int_equal(ntmm_allocate(P, &b, 2 * PG, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE),
	                 NTMM_EINVAL);
	assert_int_equal(ntmm_free(P, 0x10000, SIZE_MAX, NTMM_MEM_DECOMMIT), NTMM_EINVAL);
	assert_int_equal(ntmm_audit(E), 0);
}

static void release_names_the_reservation_by_its_first_page(void **s)
{
	uint64_t r = 0;
	assert_int_equal(ntmm_allocate(P, &r, GRAN, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE), 0);
	assert_int_equal(ntmm_free(P, r + PG, 0, NTMM_MEM_RELEASE), NTMM_ECONFLICT);
	ntmm_region_info_t i;
	query(r, &i);
	assert_int_equal(i.state, NTMM_MEM_RESERVE);                   /* nothing changed */
	assert_int_equal(ntmm_free(P, r + 1, 0, NTMM_MEM_RELEASE), 0); /* rounds down */
	query(r, &i);
	assert_int_equal(i.state, NTMM_MEM_FREE);
	assert_int_equal(ntmm_audit(E), 0);
}

static void release_of_a_sub_range_is_einval(void **s)
{
	uint64_t r = 0;
	assert_int_equal(ntmm_allocate(P, &r, 4 * GRAN, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE), 0);
	assert_int_equal(ntmm_free(P, r, GRAN, NTMM_MEM_RELEASE), NTMM_EINVAL);
	assert_int_equal(ntmm_free(P, r + GRAN, 0, NTMM_MEM_RELEASE),
	                 NTMM_ECONFLICT); /* not a base */
	ntmm_region_info_t i;
	query(r, &i);
	assert_int_equal(i.size, 4 * GRAN);
	assert_int_equal(ntmm_free(P, r, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_free(P, r, 0, NTMM_MEM_RELEASE), NTMM_ECONFLICT); /* twice */
	assert_int_equal(ntmm_audit(E), 0);
}

static void decommit_of_unreserved_memory_is_econflict(void **s)
{
	assert_int_equal(ntmm_free(P, 0x70000000, PG, NTMM_MEM_DECOMMIT), NTMM_ECONFLICT);
	uint64_t r = 0;
	assert_int_equal(
	    ntmm_allocate(P, &r, 2 * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE),
	    0);
	/* runs past the end of the reservation */
	assert_int_equal(ntmm_free(P, r, 3 * PG, NTMM_MEM_DECOMMIT), NTMM_ECONFLICT);
	ntmm_process_info_t pi;
	assert_int_equal(ntmm_process_info(P, &pi), 0);
	assert_int_equal(pi.commit_pages, 2);
	assert_int_equal(ntmm_free(P, r, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_audit(E), 0);
}

static void commit_outside_a_reservation_is_econflict(void **s)
{
	uint64_t b = 0x71000000;
	assert_int_equal(ntmm_allocate(P, &b, PG, NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE),
	                 NTMM_ECONFLICT);
	uint64_t r = 0;
	assert_int_equal(ntmm_allocate(P, &r, 2 * PG, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE), 0);
	b = r + PG;
	assert_int_equal(ntmm_allocate(P, &b, 2 * PG, NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE),
	                 NTMM_ECONFLICT);
	b = 0; /* no base: a new reservation, as VirtualAlloc makes */
	assert_int_equal(ntmm_allocate(P, &b, PG, NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE), 0);
	assert_int_equal(ntmm_free(P, b, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_free(P, r, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_audit(E), 0);
}

static void unknown_protection_bits_are_einval(void **s)
{
	uint64_t b = 0;
	unsigned bad[] = {0,
	                  0x3,
	                  0x200,
	                  NTMM_PAGE_READWRITE | 0x800,
	                  NTMM_PAGE_READWRITE | 0x1000,
	                  NTMM_PAGE_NOACCESS | NTMM_PAGE_GUARD,
	                  NTMM_PAGE_GUARD};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		assert_int_equal(ntmm_allocate(P, &b, PG, NTMM_MEM_RESERVE, bad[k]), NTMM_EINVAL);
	uint64_t r = 0;
	assert_int_equal(
	    ntmm_allocate(P, &r, PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE), 0);
	unsigned old = 77;
	assert_int_equal(ntmm_protect(P, r, PG, 0x3, &old), NTMM_EINVAL);
	assert_int_equal(old, 77);
	assert_int_equal(ntmm_free(P, r, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_audit(E), 0);
}

static void unknown_type_bits_are_einval(void **s)
{
	uint64_t b = 0;
	assert_int_equal(ntmm_allocate(P, &b, PG, 0, NTMM_PAGE_READWRITE), NTMM_EINVAL);
	assert_int_equal(ntmm_allocate(P, &b, PG, NTMM_MEM_RESERVE | 0x1, NTMM_PAGE_READWRITE),
	                 NTMM_EINVAL);
	assert_int_equal(
	    ntmm_allocate(P, &b, PG, NTMM_MEM_RESERVE | NTMM_MEM_RELEASE, NTMM_PAGE_READWRITE),
	    NTMM_EINVAL);
	assert_int_equal(ntmm_allocate(P, &b, PG, NTMM_MEM_TOP_DOWN, NTMM_PAGE_READWRITE),
	                 NTMM_EINVAL);
	assert_int_equal(ntmm_free(P, 0x10000, 0, 0), NTMM_EINVAL);
	assert_int_equal(ntmm_free(P, 0x10000, 0, NTMM_MEM_RELEASE | NTMM_MEM_DECOMMIT),
	                 NTMM_EINVAL);
	void *h;
	assert_int_equal(ntmm_translate(P, 0x10000, 7, &h), NTMM_EINVAL);
	assert_int_equal(ntmm_audit(E), 0);
}

static void access_to_reserved_memory_is_eaccess(void **s)
{
	uint64_t r = 0;
	assert_int_equal(ntmm_allocate(P, &r, 4 * PG, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE), 0);
	void *h;
	char c = 1;
	ntmm_access_begin(E);
	assert_int_equal(ntmm_translate(P, r, NTMM_ACCESS_READ, &h), NTMM_EACCESS);
	ntmm_access_end(E);
	assert_int_equal(ntmm_write(P, r + 5, &c, 1), NTMM_EACCESS);
	assert_int_equal(ntmm_read(P, r + 5, &c, 1), NTMM_EACCESS);
	assert_true(STAT(E, access_violations) >= 3);
	assert_int_equal(ntmm_free(P, r, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_audit(E), 0);
}

static void access_to_freed_memory_is_eaccess(void **s)
{
	uint64_t r = 0;
	assert_int_equal(
	    ntmm_allocate(P, &r, 4 * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE),
	    0);
	char c = 7;
	assert_int_equal(ntmm_write(P, r + PG, &c, 1), 0);
	assert_int_equal(ntmm_free(P, r + PG, PG, NTMM_MEM_DECOMMIT), 0);
	assert_int_equal(ntmm_read(P, r + PG, &c, 1), NTMM_EACCESS); /* decommitted */
	assert_int_equal(ntmm_free(P, r, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_read(P, r, &c, 1), NTMM_EACCESS);      /* released */
	assert_int_equal(ntmm_read(P, 0x1000, &c, 1), NTMM_EACCESS); /* below user space */
	assert_int_equal(ntmm_audit(E), 0);
}

static void write_to_readonly_is_eaccess(void **s)
{
	uint64_t r = 0;
	assert_int_equal(
	    ntmm_allocate(P, &r, 2 * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READONLY),
	    0);
	char c = 0;
	assert_int_equal(ntmm_read(P, r, &c, 1), 0);
	assert_int_equal(c, 0);
	assert_int_equal(ntmm_write(P, r, &c, 1), NTMM_EACCESS);
	/* a resident read-write page made read-only refuses writes too */
	unsigned old;
	assert_int_equal(ntmm_protect(P, r, 2 * PG, NTMM_PAGE_READWRITE, &old), 0);
	c = 9;
	assert_int_equal(ntmm_write(P, r + PG, &c, 1), 0);
	assert_int_equal(ntmm_protect(P, r, 2 * PG, NTMM_PAGE_READONLY, &old), 0);
	assert_int_equal(ntmm_write(P, r + PG, &c, 1), NTMM_EACCESS);
	c = 0;
	assert_int_equal(ntmm_read(P, r + PG, &c, 1), 0);
	assert_int_equal(c, 9);
	assert_int_equal(ntmm_protect(P, r, PG, NTMM_PAGE_NOACCESS, &old), 0);
	assert_int_equal(ntmm_read(P, r, &c, 1), NTMM_EACCESS);
	assert_int_equal(ntmm_free(P, r, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_audit(E), 0);
}

static void commit_past_the_limit_is_ecommit_and_changes_nothing(void **s)
{
	ntmm_stats_t st;
	assert_int_equal(ntmm_stats_get(E, &st), 0);
	uint64_t limit = st.commit_limit_pages;
	/* no paging file: the pool's frames less the resident reserve */
	assert_int_equal(limit, 16 * MiB / PG - ntmm__commit_reserve(E));
	/* all but 26 pages, less what the region's page tables take */
	uint64_t a = 0;
	assert_int_equal(ntmm_allocate(P, &a, (limit - st.commit_pages - 26) * PG,
	                               NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE),
	                 0);
	char c = 5;
	assert_int_equal(ntmm_write(P, a, &c, 1), 0);
	assert_int_equal(ntmm_stats_get(E, &st), 0);
	uint64_t room = limit - st.commit_pages, charge = st.commit_pages;
	assert_true(room >= 10 && room <= 26);
	uint64_t b = 0;
	assert_int_equal(ntmm_allocate(P, &b, (room + 1) * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT,
	                               NTMM_PAGE_READWRITE),
	                 NTMM_ECOMMIT);
	assert_int_equal(ntmm_allocate(P, &b, 64 * PG, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE), 0);
	uint64_t c2 = b;
	assert_int_equal(
	    ntmm_allocate(P, &c2, (room + 1) * PG, NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE),
	    NTMM_ECOMMIT);
	ntmm_region_info_t i;
	query(b, &i);
	assert_int_equal(i.state, NTMM_MEM_RESERVE);
	assert_int_equal(i.size, 64 * PG);
	assert_int_equal(ntmm_stats_get(E, &st), 0);
	assert_int_equal(st.commit_pages, charge);
	c = 0;
	assert_int_equal(ntmm_read(P, a, &c, 1), 0);
	assert_int_equal(c, 5); /* what was committed is intact */
	c2 = b;                 /* at most 3 page-table pages for a new region */
	assert_int_equal(
	    ntmm_allocate(P, &c2, (room - 3) * PG, NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE), 0);
	assert_int_equal(ntmm_audit(E), 0);
	assert_int_equal(ntmm_free(P, a, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_free(P, b, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_stats_get(E, &st), 0);
	assert_int_equal(st.commit_pages, 1); /* the process's top-level table */
}

static void pagefile_part_of_the_limit_moves_and_never_below_the_charge(void **s)
{
	char *dir = io_tmpdir(), *path = io_path(dir, "pf.sys");
	uint64_t limit0 = STAT(E, commit_limit_pages);
	uint64_t a = 0;
	assert_int_equal(ntmm_allocate(P, &a, (limit0 - STAT(E, commit_pages) - 16) * PG,
	                               NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE),
	                 0);
	uint64_t b = 0;
	assert_int_equal(
	    ntmm_allocate(P, &b, 100 * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE),
	    NTMM_ECOMMIT);
	/* a paging file came: the limit reads the space the io layer obtained */
	assert_int_equal(ntmm_pagefile_add(E, path, 1001 * PG, 1001 * PG), 0);
	assert_int_equal(STAT(E, commit_limit_pages), limit0 + 1000);
	assert_int_equal(
	    ntmm_allocate(P, &b, 100 * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE),
	    0);
	/* it cannot go while its space is committed */
	assert_int_equal(ntmm_pagefile_remove(E, path), NTMM_EBUSY);
	assert_int_equal(STAT(E, commit_limit_pages), limit0 + 1000);
	assert_int_equal(ntmm_free(P, b, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_pagefile_remove(E, path), 0);
	assert_int_equal(STAT(E, commit_limit_pages), limit0);
	assert_int_equal(ntmm_free(P, a, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_audit(E), 0);
	free(path);
	io_rmtree(dir);
}

static void bad_limits_and_null_outputs_are_einval(void **s)
{
	assert_int_equal(ntmm_ws_set_limits(P, 0, 10), NTMM_EINVAL);
	assert_int_equal(ntmm_ws_set_limits(P, 20, 10), NTMM_EINVAL);
	assert_int_equal(ntmm_ws_set_limits(P, 10, 20), 0);
	assert_int_equal(ntmm_query(P, 0x10000, NULL), NTMM_EINVAL);
	assert_int_equal(ntmm_process_info(P, NULL), NTMM_EINVAL);
	assert_int_equal(ntmm_allocate(P, NULL, PG, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE),
	                 NTMM_EINVAL);
	assert_int_equal(ntmm_protect(P, 0x10000, PG, NTMM_PAGE_READWRITE, NULL), NTMM_EINVAL);
	assert_int_equal(ntmm_translate(P, 0x10000, NTMM_ACCESS_READ, NULL), NTMM_EINVAL);
	ntmm_pin_t *pin;
	assert_int_equal(ntmm_pin(P, 0x10000, 0, NTMM_ACCESS_READ, &pin), NTMM_EINVAL);
	assert_null(ntmm_pin_page(NULL, 0));
	ntmm_unpin(NULL);
	assert_int_equal(ntmm_audit(E), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(reserve_rounds_base_to_64k_and_end_to_pages, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(one_page_reservation_keeps_the_rest_of_its_granule,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(engine_places_bottom_up_on_granules, setup, teardown),
	    cmocka_unit_test_setup_teardown(top_down_places_at_the_top, setup, teardown),
	    cmocka_unit_test(aslr_is_repeatable_per_seed),
	    cmocka_unit_test_setup_teardown(commit_rounds_to_pages_inside_the_reservation, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(recommit_keeps_charge_exact, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        recommit_with_a_new_protection_inside_an_access_section_is_ebusy, setup, teardown),
	    cmocka_unit_test_setup_teardown(protect_returns_old_protection_and_query_shows_runs,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(query_of_free_space_reports_the_gap, setup, teardown),
	    cmocka_unit_test_setup_teardown(released_range_can_be_reserved_again, setup, teardown),
	    cmocka_unit_test_setup_teardown(guard_page_reports_once_then_clears, setup, teardown),
	    cmocka_unit_test_setup_teardown(null_handle_is_einval, setup, teardown),
	    cmocka_unit_test_setup_teardown(foreign_handle_is_einval, setup, teardown),
	    cmocka_unit_test_setup_teardown(size_zero_is_einval, setup, teardown),
	    cmocka_unit_test_setup_teardown(size_past_the_address_space_is_einval, setup, teardown),
	    cmocka_unit_test_setup_teardown(release_names_the_reservation_by_its_first_page, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(release_of_a_sub_range_is_einval, setup, teardown),
	    cmocka_unit_test_setup_teardown(decommit_of_unreserved_memory_is_econflict, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(commit_outside_a_reservation_is_econflict, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(unknown_protection_bits_are_einval, setup, teardown),
	    cmocka_unit_test_setup_teardown(unknown_type_bits_are_einval, setup, teardown),
	    cmocka_unit_test_setup_teardown(access_to_reserved_memory_is_eaccess, setup, teardown),
	    cmocka_unit_test_setup_teardown(access_to_freed_memory_is_eaccess, setup, teardown),
	    cmocka_unit_test_setup_teardown(write_to_readonly_is_eaccess, setup, teardown),
	    cmocka_unit_test_setup_teardown(commit_past_the_limit_is_ecommit_and_changes_nothing,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(bad_limits_and_null_outputs_are_einval, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        pagefile_part_of_the_limit_moves_and_never_below_the_charge, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
