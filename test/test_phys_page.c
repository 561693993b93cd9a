/* The page API the virtual layer drives (page.h): unmap into TRANSITION,
   release after the grace period, soft-fault reclaim, teardown, pins, the
   modified page writer, repurposing and Bad frames. Each test ends with the
   audit. */
#include "phys_testutil.h"
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
static int setup_2mib(void **state)
{
	fx.e = phys_engine(2, NULL, NTMM_BACKING_AUTO, 0);
	*state = fx.e;
	return 0;
}
static int teardown(void **state)
{
	fixture_engine_destroy(fx.e);
	fx.e = NULL;
	return 0;
}

#define PTE_A 0x1000u
#define PTE_B 0x2000u

static ntmm__pfn_t owned(ntmm_engine_t *e, uint64_t pte, uint64_t orig)
{
	ntmm__pfn_t pfn = must_alloc(e, NTMM__ALLOC_ZERO);
	atomic_store(&ntmm__pfn(e, pfn)->pte, pte);
	atomic_store(&ntmm__pfn(e, pfn)->original_pte, orig);
	return pfn;
}

static void alloc_returns_an_active_frame_with_one_share(void **state)
{
	ntmm_engine_t *e = *state;
	ntmm__pfn_t pfn = must_alloc(e, NTMM__ALLOC_ZERO);
	uint64_t s = st(e, pfn);
	assert_int_equal(ntmm__pfn_loc(s), NTMM__LOC_ACTIVE);
	assert_int_equal(ntmm__pfn_shares(s), 1);
	assert_int_equal(ntmm__pfn_refs(s), 0);
	assert_false(s & NTMM__PFN_MODIFIED);
	assert_int_equal(ntmm__pfn_prio(s), NTMM__PFN_PRIO_DEFAULT);
	assert_int_equal(atomic_load(&ntmm__pfn(e, pfn)->pte), 0);
	assert_true(frame_is(e, pfn, 0));
	ntmm__page_free(e, pfn);
	assert_int_equal(ntmm_audit(e), 0);
}

static void clean_unmap_goes_to_standby_after_release(void **state)
{
	ntmm_engine_t *e = *state;
	ntmm__pfn_t pfn = owned(e, PTE_A, 0);
	ntmm__page_set_priority(e, pfn, 3);
	assert_true(ntmm__page_unmap(e, pfn, false, false));
	assert_int_equal(loc(e, pfn), NTMM__LOC_TRANSITION);
	assert_int_equal(ntmm__pfn_refs(st(e, pfn)), 1); /* the grace reference */
	ntmm__page_release_batch(e, &pfn, 1);
	assert_int_equal(loc(e, pfn), NTMM__LOC_STANDBY);
	ntmm_stats_t s;
	ntmm_stats_get(e, &s);
	assert_int_equal(s.standby_pages, 1);
	assert_int_equal(s.standby_by_priority[3], 1);
	assert_int_equal(ntmm_audit(e), 0);
	/* soft fault: only the owning PTE gets it back */
	assert_int_equal(ntmm__page_reclaim(e, pfn, PTE_B, false), NTMM_ECONFLICT);
	assert_int_equal(ntmm__page_reclaim(e, pfn, PTE_A, false), 0);
	assert_int_equal(loc(e, pfn), NTMM__LOC_ACTIVE);
	assert_int_equal(ntmm__pfn_shares(st(e, pfn)), 1);
	assert_int_equal(ntmm__page_reclaim(e, pfn, PTE_A, false), NTMM_ECONFLICT);
	ntmm__page_free(e, pfn);
	assert_int_equal(ntmm_audit(e), 0);
}

static void dirty_unmap_goes_to_modified_and_reclaims_dirty(void **state)
{
	ntmm_engine_t *e = *state;
	ntmm__pfn_t pfn = owned(e, PTE_A, 0);
	assert_true(ntmm__page_unmap(e, pfn, true, false));
	ntmm__page_release_batch(e, &pfn, 1);
	assert_int_equal(loc(e, pfn), NTMM__LOC_MODIFIED);
	assert_int_equal(ntmm_audit(e), 0);
	assert_int_equal(ntmm__page_reclaim(e, pfn, PTE_A, true), 0);
	assert_true(st(e, pfn) & NTMM__PFN_MODIFIED);
	ntmm__page_free(e, pfn);
	assert_int_equal(ntmm_audit(e), 0);
}

static void deleted_unmap_goes_to_free(void **state)
{
	ntmm_engine_t *e = *state;
	ntmm__pfn_t pfn = owned(e, PTE_A, 0);
	assert_true(ntmm__page_unmap(e, pfn, true, true));
	ntmm__page_release_batch(e, &pfn, 1);
	assert_int_equal(loc(e, pfn), NTMM__LOC_FREE);
	assert_int_equal(atomic_load(&ntmm__pfn(e, pfn)->pte), 0);
	assert_int_equal(ntmm__page_reclaim(e, pfn, PTE_A, false), NTMM_ECONFLICT);
	assert_int_equal(ntmm_audit(e), 0);
}

static void shared_frame_stays_active_until_last_unmap(void **state)
{
	ntmm_engine_t *e = *state;
	ntmm__pfn_t pfn = owned(e, PTE_A, 0);
	uint64_t s = st(e, pfn);
	assert_int_equal(ntmm__pfn_transition(e, pfn, &s, s + NTMM__PFN_SHARE_ONE), 0);
	assert_false(ntmm__page_unmap(e, pfn, false, false));
	assert_int_equal(loc(e, pfn), NTMM__LOC_ACTIVE);
	assert_true(ntmm__page_unmap(e, pfn, false, false));
	ntmm__page_release_batch(e, &pfn, 1);
	assert_int_equal(loc(e, pfn), NTMM__LOC_STANDBY);
	assert_int_equal(ntmm_audit(e), 0);
}

static void reclaim_during_grace_period_keeps_frame_until_both_release(void **state)
{
	ntmm_engine_t *e = *state;
	ntmm__pfn_t pfn = owned(e, PTE_A, 0);
	assert_true(ntmm__page_unmap(e, pfn, false, false));
	/* soft fault before the trimmer's grace period ended */
	assert_int_equal(ntmm__page_reclaim(e, pfn, PTE_A, false), 0);
	assert_int_equal(loc(e, pfn), NTMM__LOC_ACTIVE);
	/* trimmed again: a second batch holds it too */
	assert_true(ntmm__page_unmap(e, pfn, false, false));
	assert_int_equal(ntmm__pfn_refs(st(e, pfn)), 2);
	ntmm__page_release_batch(e, &pfn, 1); /* the first batch's grace period */
	assert_int_equal(loc(e, pfn), NTMM__LOC_TRANSITION);
	ntmm__page_release_batch(e, &pfn, 1); /* the second one */
	assert_int_equal(loc(e, pfn), NTMM__LOC_STANDBY);
	assert_int_equal(ntmm_audit(e), 0);
}

static void pinned_frame_moves_on_at_last_unref(void **state)
{
	ntmm_engine_t *e = *state;
	ntmm__pfn_t pfn = owned(e, PTE_A, 0);
	ntmm__page_ref(e, pfn);
	assert_true(ntmm__page_unmap(e, pfn, false, false));
	ntmm__page_release_batch(e, &pfn, 1);
	assert_int_equal(loc(e, pfn), NTMM__LOC_TRANSITION); /* still pinned */
	ntmm__page_unref(e, pfn);
	assert_int_equal(loc(e, pfn), NTMM__LOC_STANDBY);
	/* page_free of a referenced frame defers to the last unref */
	assert_int_equal(ntmm__page_reclaim(e, pfn, PTE_A, false), 0);
	ntmm__page_ref(e, pfn);
	ntmm__page_free(e, pfn);
	assert_int_equal(loc(e, pfn), NTMM__LOC_TRANSITION);
	ntmm__page_unref(e, pfn);
	assert_int_equal(loc(e, pfn), NTMM__LOC_FREE);
	assert_int_equal(ntmm_audit(e), 0);
}

static void delete_transition_frees_listed_and_marks_in_flight(void **state)
{
	ntmm_engine_t *e = *state;
	ntmm__pfn_t a = owned(e, PTE_A, 0), b = owned(e, PTE_B, 0);
	assert_true(ntmm__page_unmap(e, a, false, false));
	ntmm__page_release_batch(e, &a, 1);
	assert_false(ntmm__page_delete_transition(e, a, PTE_B));
	assert_true(ntmm__page_delete_transition(e, a, PTE_A));
	assert_int_equal(loc(e, a), NTMM__LOC_FREE);
	assert_false(ntmm__page_delete_transition(e, a, PTE_A));
	/* b is still awaiting its grace period: marked, freed on release */
	assert_true(ntmm__page_unmap(e, b, true, false));
	assert_true(ntmm__page_delete_transition(e, b, PTE_B));
	assert_true(st(e, b) & NTMM__PFN_DELETED);
	assert_int_equal(ntmm__page_reclaim(e, b, PTE_B, false), NTMM_ECONFLICT);
	ntmm__page_release_batch(e, &b, 1);
	assert_int_equal(loc(e, b), NTMM__LOC_FREE);
	assert_int_equal(ntmm_audit(e), 0);
}

static void writer_moves_modified_to_standby_tail(void **state)
{
	ntmm_engine_t *e = *state;
	ntmm__pfn_t clean = owned(e, PTE_A, 0), d1 = owned(e, PTE_B, 0), d2 = owned(e, 0x3000, 0);
	assert_true(ntmm__page_unmap(e, clean, false, false));
	assert_true(ntmm__page_unmap(e, d1, true, false));
	assert_true(ntmm__page_unmap(e, d2, true, false));
	ntmm__pfn_t batch[3] = {clean, d1, d2};
	ntmm__page_release_batch(e, batch, 3);
	ntmm__pfn_t w[4];
	assert_int_equal(ntmm__page_writer_take(e, NTMM__ALLOC_NODE_ANY, w, 4), 2);
	assert_int_equal(w[0], d1); /* oldest first */
	assert_int_equal(w[1], d2);
	uint64_t s = st(e, d1);
	assert_int_equal(ntmm__pfn_loc(s), NTMM__LOC_TRANSITION);
	assert_true(s & NTMM__PFN_WRITE_IN_PROGRESS);
	assert_false(s & NTMM__PFN_MODIFIED);
	/* a write fault must wait for the write; a read fault need not */
	assert_int_equal(ntmm__page_reclaim(e, d1, PTE_B, true), NTMM_EBUSY);
	assert_int_equal(ntmm__page_reclaim(e, d2, 0x3000, false), 0);
	ntmm__page_set_modified(e, d2); /* re-dirtied during the write */
	uint64_t orig[2] = {0xabc0, 0xdef0};
	ntmm__page_writer_done(e, w, orig, 2, true);
	assert_int_equal(loc(e, d1), NTMM__LOC_STANDBY);
	assert_int_equal(atomic_load(&ntmm__pfn(e, d1)->original_pte), 0xabc0);
	/* the written page is behind the trimmed one on its priority list */
	ntmm__plist_t *l = &e->phys.nodes[0].standby[NTMM__PFN_PRIO_DEFAULT];
	assert_int_equal(l->head, clean);
	assert_int_equal(l->tail, d1);
	assert_int_equal(loc(e, d2), NTMM__LOC_ACTIVE);
	assert_true(st(e, d2) & NTMM__PFN_MODIFIED);
	assert_int_equal(ntmm__pfn_refs(st(e, d2)), 0);
	/* a failed write leaves the page Modified */
	assert_true(ntmm__page_unmap(e, d2, false, false));
	ntmm__page_release_batch(e, &d2, 1);
	assert_int_equal(loc(e, d2), NTMM__LOC_MODIFIED);
	assert_int_equal(ntmm__page_writer_take(e, 0, w, 4), 1);
	ntmm__page_writer_done(e, w, NULL, 1, false);
	assert_int_equal(loc(e, d2), NTMM__LOC_MODIFIED);
	assert_int_equal(ntmm_audit(e), 0);
}

static void modified_nowrite_holds_frames_back_from_the_writer(void **state)
{
	ntmm_engine_t *e = *state;
	ntmm__pfn_t a = owned(e, PTE_A, 0), b = owned(e, PTE_B, 0);
	assert_true(ntmm__page_unmap(e, a, true, false));
	assert_true(ntmm__page_unmap(e, b, true, false));
	ntmm__pfn_t both[2] = {a, b};
	ntmm__page_release_batch(e, both, 2);
	assert_int_equal(ntmm__page_hold_write(e, a, true), 0);
	assert_int_equal(ntmm__page_hold_write(e, a, true), NTMM_EBUSY);
	assert_int_equal(loc(e, a), NTMM__LOC_MODIFIED_NOWRITE);
	ntmm_stats_t s;
	ntmm_stats_get(e, &s);
	assert_int_equal(s.modified_nowrite_pages, 1);
	assert_int_equal(s.modified_pages, 1);
	ntmm__pfn_t w[4];
	assert_int_equal(ntmm__page_writer_take(e, NTMM__ALLOC_NODE_ANY, w, 4), 1);
	assert_int_equal(w[0], b);
	ntmm__page_writer_done(e, w, NULL, 1, true);
	assert_int_equal(ntmm_audit(e), 0);
	/* released for writing, it is the writer's again */
	assert_int_equal(ntmm__page_hold_write(e, a, false), 0);
	assert_int_equal(ntmm__page_writer_take(e, NTMM__ALLOC_NODE_ANY, w, 4), 1);
	assert_int_equal(w[0], a);
	ntmm__page_writer_done(e, w, NULL, 1, true);
	/* a soft fault takes a held frame back, still dirty */
	assert_int_equal(ntmm__page_reclaim(e, b, PTE_B, false), 0);
	assert_true(ntmm__page_unmap(e, b, true, false));
	ntmm__page_release_batch(e, &b, 1);
	assert_int_equal(ntmm__page_hold_write(e, b, true), 0);
	assert_int_equal(ntmm__page_reclaim(e, b, PTE_B, true), 0);
	assert_true(st(e, b) & NTMM__PFN_MODIFIED);
	assert_int_equal(ntmm_audit(e), 0);
}

static void hard_fault_read_collides_then_maps(void **state)
{
	ntmm_engine_t *e = *state;
	ntmm__pfn_t pfn = must_alloc(e, 0);
	ntmm__page_read_begin(e, pfn, PTE_A, 0xf00d);
	uint64_t s = st(e, pfn);
	assert_int_equal(ntmm__pfn_loc(s), NTMM__LOC_TRANSITION);
	assert_true(s & NTMM__PFN_READ_IN_PROGRESS);
	/* a collided fault must wait for the read */
	assert_int_equal(ntmm__page_reclaim(e, pfn, PTE_A, false), NTMM_EBUSY);
	assert_int_equal(ntmm__page_read_done(e, pfn, true), 0);
	s = st(e, pfn);
	assert_int_equal(ntmm__pfn_loc(s), NTMM__LOC_ACTIVE);
	assert_int_equal(ntmm__pfn_shares(s), 1);
	assert_int_equal(ntmm__pfn_refs(s), 0);
	assert_false(s & NTMM__PFN_READ_IN_PROGRESS);
	assert_int_equal(atomic_load(&ntmm__pfn(e, pfn)->original_pte), 0xf00d);
	/* clean after the read: trimmed to Standby */
	assert_true(ntmm__page_unmap(e, pfn, false, false));
	ntmm__page_release_batch(e, &pfn, 1);
	assert_int_equal(loc(e, pfn), NTMM__LOC_STANDBY);
	assert_int_equal(ntmm_audit(e), 0);
}

static void failed_or_orphaned_read_frees_the_frame(void **state)
{
	ntmm_engine_t *e = *state;
	ntmm__pfn_t a = must_alloc(e, 0), b = must_alloc(e, 0);
	ntmm__page_read_begin(e, a, PTE_A, 1);
	assert_int_equal(ntmm__page_read_done(e, a, false), NTMM_EIO);
	assert_int_equal(loc(e, a), NTMM__LOC_FREE);
	ntmm__page_read_begin(e, b, PTE_B, 2);
	assert_true(ntmm__page_delete_transition(e, b, PTE_B)); /* owner torn down */
	assert_int_equal(ntmm__page_read_done(e, b, true), NTMM_ECONFLICT);
	assert_int_equal(loc(e, b), NTMM__LOC_FREE);
	assert_int_equal(ntmm_audit(e), 0);
}

typedef struct seen_repurpose {
	int calls;
	ntmm__pfn_t pfn;
	uint64_t pte, orig;
} seen_repurpose_t;
static seen_repurpose_t g_rep;

static void record_repurpose(ntmm_engine_t *e, ntmm__pfn_t pfn, uint64_t pte, uint64_t orig)
{
	g_rep.calls++;
	g_rep.pfn = pfn;
	g_rep.pte = pte;
	g_rep.orig = orig;
	assert_int_equal(ntmm__pfn_loc(st(e, pfn)), NTMM__LOC_ACTIVE);
}

static void standby_is_repurposed_last_with_callback_and_zeroed(void **state)
{
	ntmm_engine_t *e = *state; /* 512 frames */
	e->phys.repurpose = record_repurpose;
	memset(&g_rep, 0, sizeof(g_rep));
	size_t n = e->phys.nframes;
	ntmm__pfn_t *f = calloc(n, sizeof(*f));
	for (size_t i = 0; i < n; i++) {
		f[i] = owned(e, 0x10000 + i * 8, 0x7000 + i);
		memset(ntmm__pfn_host(e, f[i]), 0x5a, 4096);
	}
	ntmm__pfn_t extra;
	assert_int_equal(ntmm__page_alloc(e, 0, NTMM__ALLOC_NODE_ANY, NTMM__COLOUR_ANY, &extra),
	                 NTMM_ENOMEM);
	/* trim one to Standby */
	assert_true(ntmm__page_unmap(e, f[7], false, false));
	ntmm__page_release_batch(e, &f[7], 1);
	assert_int_equal(ntmm__page_alloc(e, NTMM__ALLOC_ZERO | NTMM__ALLOC_NO_STANDBY,
	                                  NTMM__ALLOC_NODE_ANY, NTMM__COLOUR_ANY, &extra),
	                 NTMM_ENOMEM);
	ntmm__pfn_t got = must_alloc(e, NTMM__ALLOC_ZERO);
	assert_int_equal(got, f[7]);
	assert_int_equal(g_rep.calls, 1);
	assert_int_equal(g_rep.pfn, f[7]);
	assert_int_equal(g_rep.pte, 0x10000 + 7 * 8);
	assert_int_equal(g_rep.orig, 0x7000 + 7);
	assert_true(frame_is(e, got, 0)); /* another owner's bytes never leak */
	assert_int_equal(atomic_load(&ntmm__pfn(e, got)->pte), 0);
	assert_int_equal(ntmm__page_reclaim(e, got, 0x10000 + 7 * 8, false), NTMM_ECONFLICT);
	ntmm_stats_t s;
	ntmm_stats_get(e, &s);
	assert_int_equal(s.standby_repurposed, 1);
	assert_true(s.frame_alloc_fails >= 2);
	for (size_t i = 0; i < n; i++)
		ntmm__page_free(e, f[i]);
	assert_int_equal(ntmm_audit(e), 0);
	free(f);
}

static void bad_frames_are_never_handed_out(void **state)
{
	ntmm_engine_t *e = *state;
	size_t n = e->phys.nframes;
	ntmm__pfn_t *f = calloc(n, sizeof(*f));
	/* commit the chunk, then give everything back to the node lists */
	f[0] = must_alloc(e, 0);
	ntmm__page_free(e, f[0]);
	ntmm__phys_flush_caches(e, NTMM__ALLOC_NODE_ANY);
	ntmm__pfn_t victim = 100;
	assert_int_equal(ntmm__page_mark_bad(e, victim), 0);
	assert_int_equal(ntmm__page_mark_bad(e, victim), NTMM_EBUSY);
	size_t k = 0;
	while (k < n &&
	       ntmm__page_alloc(e, 0, NTMM__ALLOC_NODE_ANY, NTMM__COLOUR_ANY, &f[k]) == 0) {
		assert_int_not_equal(f[k], victim);
		k++;
	}
	assert_int_equal(k, n - 1);
	assert_int_equal(loc(e, victim), NTMM__LOC_BAD);
	ntmm_stats_t s;
	ntmm_stats_get(e, &s);
	assert_int_equal(s.bad_pages, 1);
	for (size_t i = 0; i < k; i++)
		ntmm__page_free(e, f[i]);
	assert_int_equal(ntmm_audit(e), 0);
	free(f);
}

static void audit_catches_a_corrupted_frame(void **state)
{
	ntmm_engine_t *e = *state;
	ntmm__pfn_t pfn = must_alloc(e, 0);
	ntmm__page_free(e, pfn);
	ntmm__phys_flush_caches(e, NTMM__ALLOC_NODE_ANY);
	assert_int_equal(ntmm_audit(e), 0);
	/* a listed frame that claims to be ACTIVE: on a list and in use */
	uint64_t s = st(e, pfn);
	atomic_store(&ntmm__pfn(e, pfn)->state,
	             (s & ~NTMM__PFN_LOC_MASK) | NTMM__LOC_ACTIVE | NTMM__PFN_SHARE_ONE);
	fprintf(stderr, "(the audit complaints below are expected)\n");
	assert_int_equal(ntmm_audit(e), NTMM_EINVAL);
	atomic_store(&ntmm__pfn(e, pfn)->state, s);
	assert_int_equal(ntmm_audit(e), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(alloc_returns_an_active_frame_with_one_share,
	                                    setup_4mib, teardown),
	    cmocka_unit_test_setup_teardown(clean_unmap_goes_to_standby_after_release, setup_4mib,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(dirty_unmap_goes_to_modified_and_reclaims_dirty,
	                                    setup_4mib, teardown),
	    cmocka_unit_test_setup_teardown(deleted_unmap_goes_to_free, setup_4mib, teardown),
	    cmocka_unit_test_setup_teardown(shared_frame_stays_active_until_last_unmap, setup_4mib,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        reclaim_during_grace_period_keeps_frame_until_both_release, setup_4mib, teardown),
	    cmocka_unit_test_setup_teardown(pinned_frame_moves_on_at_last_unref, setup_4mib,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(delete_transition_frees_listed_and_marks_in_flight,
	                                    setup_4mib, teardown),
	    cmocka_unit_test_setup_teardown(writer_moves_modified_to_standby_tail, setup_4mib,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(hard_fault_read_collides_then_maps, setup_4mib,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(failed_or_orphaned_read_frees_the_frame, setup_4mib,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(modified_nowrite_holds_frames_back_from_the_writer,
	                                    setup_4mib, teardown),
	    cmocka_unit_test_setup_teardown(standby_is_repurposed_last_with_callback_and_zeroed,
	                                    setup_2mib, teardown),
	    cmocka_unit_test_setup_teardown(bad_frames_are_never_handed_out, setup_2mib, teardown),
	    cmocka_unit_test_setup_teardown(audit_catches_a_corrupted_frame, setup_2mib, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
