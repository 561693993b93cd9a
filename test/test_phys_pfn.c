/* The PFN state machine: every legal transition of NTMM-REFERENCE.md §1 is
   accepted, everything else is refused, and the checked transition never
   changes a word it refuses. */
#include "phys_testutil.h"

#include <sys/mman.h>
#include "fixture.h"

/* The engine of each test that needs one comes from its setup; the
   teardown destroys it even after a failed assert. */
static struct {
	ntmm_engine_t *e;
} fx;

static int setup_4mib(void **state)
{
	fx.e = phys_engine(4, NULL, NTMM_BACKING_AUTO, 0);
	*state = fx.e;
	return 0;
}
static int setup_16mib(void **state)
{
	fx.e = phys_engine(16, NULL, NTMM_BACKING_AUTO, 0);
	*state = fx.e;
	return 0;
}
static int teardown(void **state)
{
	fixture_engine_destroy(fx.e);
	fx.e = NULL;
	return 0;
}

#define L(x) NTMM__LOC_##x
#define NLOC 9

/* a canonical word for a location: counts that satisfy its invariants */
static uint64_t word(unsigned loc, uint64_t gen)
{
	uint64_t s = loc | (gen << NTMM__PFN_GEN_SHIFT);
	if (loc == L(ACTIVE))
		s += NTMM__PFN_SHARE_ONE;
	if (loc == L(TRANSITION))
		s += NTMM__PFN_REF_ONE;
	return s;
}

static const bool legal[NLOC][NLOC] = {
    /* to: Z  F  S  M  MNW B  A  T  OFF */
    [L(ZEROED)] = {0, 0, 0, 0, 0, 1, 1, 0, 1},
    [L(FREE)] = {1, 0, 0, 0, 0, 1, 1, 0, 1},
    [L(STANDBY)] = {0, 1, 0, 0, 0, 0, 1, 0, 0},
    [L(MODIFIED)] = {0, 1, 0, 0, 1, 0, 1, 1, 0},
    [L(MODIFIED_NOWRITE)] = {0, 1, 0, 1, 0, 0, 1, 0, 0},
    [L(BAD)] = {0, 0, 0, 0, 0, 0, 0, 0, 0},
    [L(ACTIVE)] = {0, 1, 0, 0, 0, 0, 1, 1, 0},
    [L(TRANSITION)] = {0, 1, 1, 1, 1, 0, 1, 1, 0},
    [L(OFFLINE)] = {1, 0, 0, 0, 0, 0, 0, 0, 0},
};

static void every_location_pair_follows_the_table(void **state)
{
	for (unsigned a = 0; a < NLOC; a++)
		for (unsigned b = 0; b < NLOC; b++) {
			uint64_t from = word(a, 7), to = word(b, a == b ? 7 : 8);
			bool ok = ntmm__pfn_legal(from, to);
			if (ok != legal[a][b])
				fprintf(stderr, "%u -> %u: %d, expected %d\n", a, b, ok,
				        legal[a][b]);
			assert_int_equal(ok, legal[a][b]);
		}
}

static void a_location_change_must_bump_the_generation(void **state)
{
	assert_true(ntmm__pfn_legal(word(L(FREE), 3), word(L(ACTIVE), 4)));
	assert_false(ntmm__pfn_legal(word(L(FREE), 3), word(L(ACTIVE), 3)));
	assert_false(ntmm__pfn_legal(word(L(FREE), 3), word(L(ACTIVE), 5)));
	/* count changes keep the generation */
	assert_true(ntmm__pfn_legal(word(L(ACTIVE), 3), word(L(ACTIVE), 3) + NTMM__PFN_SHARE_ONE));
	assert_false(ntmm__pfn_legal(word(L(ACTIVE), 3), word(L(ACTIVE), 4) + NTMM__PFN_SHARE_ONE));
	/* the generation wraps */
	uint64_t top = (1ull << (64 - NTMM__PFN_GEN_SHIFT)) - 1;
	assert_true(ntmm__pfn_legal(word(L(FREE), top), word(L(ACTIVE), 0)));
}

static void count_invariants_are_enforced(void **state)
{
	uint64_t f = word(L(FREE), 1);
	/* list locations hold no counts and (Free/Zeroed) no flags */
	assert_false(
	    ntmm__pfn_legal(word(L(TRANSITION), 0), word(L(STANDBY), 1) + NTMM__PFN_REF_ONE));
	assert_false(ntmm__pfn_legal(word(L(ACTIVE), 0), f | NTMM__PFN_MODIFIED));
	/* ACTIVE needs a share or a reference */
	assert_false(ntmm__pfn_legal(word(L(ACTIVE), 0), word(L(ACTIVE), 0) - NTMM__PFN_SHARE_ONE));
	assert_true(ntmm__pfn_legal(word(L(ACTIVE), 0),
	                            word(L(ACTIVE), 0) - NTMM__PFN_SHARE_ONE + NTMM__PFN_REF_ONE));
	/* TRANSITION: no shares, at least one reference */
	assert_false(
	    ntmm__pfn_legal(word(L(ACTIVE), 0), word(L(TRANSITION), 1) - NTMM__PFN_REF_ONE));
	assert_false(
	    ntmm__pfn_legal(word(L(ACTIVE), 0), word(L(TRANSITION), 1) + NTMM__PFN_SHARE_ONE));
	/* Standby frames are clean; Modified frames may say so */
	assert_false(
	    ntmm__pfn_legal(word(L(TRANSITION), 0), (word(L(STANDBY), 1)) | NTMM__PFN_MODIFIED));
	assert_true(
	    ntmm__pfn_legal(word(L(TRANSITION), 0), (word(L(MODIFIED), 1)) | NTMM__PFN_MODIFIED));
	/* no location beyond OFFLINE */
	assert_false(ntmm__pfn_legal(word(L(FREE), 0), 9 | (1ull << NTMM__PFN_GEN_SHIFT)));
}

static void checked_transition_refuses_without_changing(void **state)
{
	ntmm_engine_t *e = *state;
	ntmm__pfn_t pfn = must_alloc(e, NTMM__ALLOC_ZERO);
	uint64_t s = st(e, pfn), exp = s;
	/* ACTIVE → STANDBY skips TRANSITION: illegal */
	assert_int_equal(ntmm__pfn_transition(e, pfn, &exp, word(L(STANDBY), 0)), NTMM_EINVAL);
	assert_int_equal(st(e, pfn), s);
	/* ACTIVE → ZEROED: illegal */
	assert_int_equal(ntmm__pfn_transition(e, pfn, &exp, word(L(ZEROED), 0)), NTMM_EINVAL);
	assert_int_equal(st(e, pfn), s);
	/* legal: share 1 → 2 (generation unchanged) and back */
	assert_int_equal(ntmm__pfn_transition(e, pfn, &exp, s + NTMM__PFN_SHARE_ONE), 0);
	assert_int_equal(ntmm__pfn_shares(st(e, pfn)), 2);
	/* a stale expectation is EBUSY and reloads */
	uint64_t stale = s;
	assert_int_equal(ntmm__pfn_transition(e, pfn, &stale, s), NTMM_EBUSY);
	assert_int_equal(stale, s + NTMM__PFN_SHARE_ONE);
	assert_int_equal(ntmm__pfn_transition(e, pfn, &stale, s), 0);
	/* legal location change: ACTIVE → TRANSITION bumps the generation */
	exp = s;
	uint64_t t =
	    (s & ~(NTMM__PFN_LOC_MASK | NTMM__PFN_SHARE_MASK)) | L(TRANSITION) | NTMM__PFN_REF_ONE;
	assert_int_equal(ntmm__pfn_transition(e, pfn, &exp, t), 0);
	assert_int_equal(loc(e, pfn), L(TRANSITION));
	assert_int_equal(st(e, pfn) >> NTMM__PFN_GEN_SHIFT, (s >> NTMM__PFN_GEN_SHIFT) + 1);
	/* and back, so the frame can be freed normally */
	exp = st(e, pfn);
	assert_int_equal(ntmm__pfn_transition(e, pfn, &exp, s), 0);
	ntmm__page_free(e, pfn);
	assert_int_equal(ntmm_audit(e), 0);
	assert_int_equal(ntmm__pfn_transition(e, (ntmm__pfn_t)e->phys.nframes, &exp, s),
	                 NTMM_EINVAL);
}

/* Host pages of [p, p + bytes) that are resident (mincore). */
static size_t resident_pages(const void *p, size_t bytes)
{
	size_t n = bytes / 4096, r = 0;
	unsigned char *v = malloc(n);
	assert_int_equal(mincore((void *)p, bytes, v), 0);
	for (size_t i = 0; i < n; i++)
		r += v[i] & 1;
	free(v);
	return r;
}

/* The PFN database costs memory only for the chunks the pool has used,
   and at most 32 bytes per frame of them (DESIGN.md §3): counted in the
   host pages that back it, not in sizeof. */
static void pfn_database_costs_at_most_32_bytes_a_frame_of_used_chunks(void **state)
{
	ntmm_engine_t *e = *state;
	ntmm__phys_t *ph = &e->phys;
	size_t chunk_db = NTMM__CHUNK_FRAMES * 32; /* the most a chunk may cost */
	assert_true(ph->nchunks >= 8);
	ntmm__pfn_t held[NTMM__CHUNK_FRAMES + 1];
	for (size_t i = 0; i < NTMM__CHUNK_FRAMES + 1; i++) /* two chunks' worth */
		held[i] = must_alloc(e, 0);
	/* the reservation: at most 32 bytes a frame of the whole pool */
	size_t span = ph->db_bytes / ph->nchunks;
	assert_true(span <= chunk_db && span % 4096 == 0);
	uint32_t used = 0;
	for (uint32_t c = 0; c < ph->nchunks; c++) {
		if (ntmm__pfn_populated(ph, (ntmm__pfn_t)c * NTMM__CHUNK_FRAMES))
			used++;
		else /* an unused chunk's entries cost nothing */
			assert_int_equal(resident_pages((uint8_t *)ph->pfndb + c * span, span), 0);
	}
	assert_true(used >= 2 && used < ph->nchunks);
	size_t resident = resident_pages(ph->pfndb, ph->db_bytes) * 4096;
	assert_true(resident > 0);
	assert_true(resident <= used * chunk_db);
	for (size_t i = 0; i < NTMM__CHUNK_FRAMES + 1; i++)
		ntmm__page_free(e, held[i]);
	assert_int_equal(ntmm_audit(e), 0);
}

static void host_and_pfn_translate_both_ways(void **state)
{
	ntmm_engine_t *e = *state;
	ntmm__pfn_t pfn = must_alloc(e, 0);
	uint8_t *h = ntmm__pfn_host(e, pfn);
	assert_int_equal(ntmm__host_pfn(e, h), pfn);
	assert_int_equal(ntmm__host_pfn(e, h + 4095), pfn);
	assert_int_equal(ntmm__host_pfn(e, &pfn), NTMM__PFN_NONE);
	ntmm__page_free(e, pfn);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(every_location_pair_follows_the_table),
	    cmocka_unit_test(a_location_change_must_bump_the_generation),
	    cmocka_unit_test(count_invariants_are_enforced),
	    cmocka_unit_test_setup_teardown(checked_transition_refuses_without_changing, setup_4mib,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        pfn_database_costs_at_most_32_bytes_a_frame_of_used_chunks, setup_16mib, teardown),
	    cmocka_unit_test_setup_teardown(host_and_pfn_translate_both_ways, setup_4mib, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
