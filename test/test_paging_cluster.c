/*
 * Hard-fault clustering in both directions: a fault reads the following
 * pages whose slots follow its own, then the preceding ones with what is
 * left of NTMM__HARD_CLUSTER, never past the VAD or the leaf table. A scan
 * from the last page down to the first takes one read per cluster, as a
 * forward scan does (test_paging_core.c), and every byte comes back.
 */
#include "paging_testutil.h"
#include "fixture.h"

/* The engine (and paging file) of each test that needs one comes from
   its setup; the teardown destroys it even after a failed assert. */
static paging_env_t fx;

static int setup_8_4_16(void **state)
{
	fx = paging_env(8, 4, 16, false, false);
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

#define PAGES 128u

static void fill(ntmm_process_t *p, uint64_t a, size_t n, uint64_t tag)
{
	static _Alignas(4096) char buf[4096];
	for (size_t i = 0; i < n; i++) {
		page_fill(buf, tag + i, 1);
		assert_int_equal(ntmm_write(p, a + i * PG, buf, PG), 0);
	}
}

/* The number of leaf tables [a, a + n pages) spans. */
static unsigned leaves(uint64_t a, size_t n)
{
	return (unsigned)(((a + n * PG - 1) / NTMM__PT_LEAF_SPAN) - (a / NTMM__PT_LEAF_SPAN) + 1);
}

static void a_backward_scan_reads_whole_clusters(void **s)
{
	paging_env_t v = *(paging_env_t *)*s; /* the fixture's handles */
	ntmm_process_t *p;
	assert_int_equal(ntmm_process_create(v.e, &p), 0);
	uint64_t a = commit_pages(p, PAGES);
	fill(p, a, PAGES, 9000);
	page_out(v.e, p, a, PAGES);

	uint64_t hard0 = PSTAT(v.e, hard_faults), ios0 = PSTAT(v.e, read_ios);
	static _Alignas(4096) char buf[4096];
	/* the last page: a hard fault that brings the pages before it */
	assert_int_equal(ntmm_read(p, a + (PAGES - 1) * PG, buf, PG), 0);
	assert_int_equal(ntmm_last_fault_kind(), NTMM_FAULT_HARD);
	if (leaves(a + (PAGES - NTMM__HARD_CLUSTER) * PG, NTMM__HARD_CLUSTER) == 1) {
		assert_int_equal(ntmm_read(p, a + (PAGES - 2) * PG, buf, PG), 0);
		assert_int_equal(ntmm_last_fault_kind(), NTMM_FAULT_SOFT);
		assert_int_equal(ntmm_read(p, a + (PAGES - NTMM__HARD_CLUSTER) * PG, buf, PG), 0);
		assert_int_equal(ntmm_last_fault_kind(), NTMM_FAULT_SOFT);
	}
	/* and so on down to the first page, every byte intact */
	for (size_t i = PAGES; i-- > 0;) {
		assert_int_equal(ntmm_read(p, a + i * PG, buf, PG), 0);
		assert_true(page_check(buf, 9000 + i, 1));
	}
	uint64_t hard = PSTAT(v.e, hard_faults) - hard0, ios = PSTAT(v.e, read_ios) - ios0;
	/* one read per cluster; a leaf-table boundary inside the range cuts
	   one cluster short (forward-only clustering took PAGES reads here) */
	assert_true(hard >= PAGES / NTMM__HARD_CLUSTER);
	assert_true(hard <= PAGES / NTMM__HARD_CLUSTER + leaves(a, PAGES) - 1);
	assert_int_equal(ios, hard);
	assert_int_equal(ntmm_audit(v.e), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(PSTAT(v.e, pagefile_pages), 0);
}

/* The first page of a VAD: nothing before it is read (the cluster stops at
   the VAD's start even where the slots before it hold another VAD's
   pages), the pages after it are. */
static void the_backward_cluster_stops_at_the_vad(void **s)
{
	paging_env_t v = *(paging_env_t *)*s; /* the fixture's handles */
	ntmm_process_t *p;
	assert_int_equal(ntmm_process_create(v.e, &p), 0);
	/* two adjacent VADs, written out together: their slots are adjacent */
	uint64_t a = commit_pages(p, 2 * PAGES);
	uint64_t b = a + PAGES * PG;
	assert_int_equal(ntmm_free(p, a, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_allocate(p, &a, PAGES * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT,
	                               NTMM_PAGE_READWRITE),
	                 0);
	assert_int_equal(ntmm_allocate(p, &b, PAGES * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT,
	                               NTMM_PAGE_READWRITE),
	                 0);
	fill(p, a, PAGES, 100);
	fill(p, b, PAGES, 100 + PAGES);
	page_out(v.e, p, a, PAGES);
	page_out(v.e, p, b, PAGES);

	static _Alignas(4096) char buf[4096];
	uint64_t ios0 = PSTAT(v.e, read_ios);
	assert_int_equal(ntmm_read(p, b, buf, PG), 0);
	assert_int_equal(ntmm_last_fault_kind(), NTMM_FAULT_HARD);
	assert_true(page_check(buf, 100 + PAGES, 1));
	/* the page before it, in the other VAD, was not read with it */
	assert_int_equal(ntmm_read(p, b - PG, buf, PG), 0);
	assert_int_equal(ntmm_last_fault_kind(), NTMM_FAULT_HARD);
	assert_true(page_check(buf, 100 + PAGES - 1, 1));
	assert_int_equal(PSTAT(v.e, read_ios) - ios0, 2);
	assert_int_equal(ntmm_audit(v.e), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(a_backward_scan_reads_whole_clusters, setup_8_4_16,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(the_backward_cluster_stops_at_the_vad, setup_8_4_16,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
