/* A pool far larger than the machine costs nothing until it is used: the
   PFN database is a reservation whose entries are populated a chunk at a
   time as chunks are first committed, so creating a 1 or 4 TiB engine
   leaves the process RSS where it was, allocating a few MiB populates only
   what those frames need, and the audit, the gauges and the PFN helpers
   step over the unpopulated ranges. A pool beyond what the PFN index can
   name is NTMM_EINVAL with a detail, never a kill. */
#include "phys_testutil.h"

#include <sys/resource.h>
#include <unistd.h>

#define TiB ((size_t)1 << 40)
#define MiB ((size_t)1 << 20)

/* RSS growth allowed across create + a few MiB of use */
#define RSS_SLACK (64 * MiB)

static size_t rss_bytes(void)
{
	long size, resident;
	FILE *f = fopen("/proc/self/statm", "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%ld %ld", &size, &resident), 2);
	fclose(f);
	return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* Creates an engine of `bytes` with no threads and 4 KiB backing. Returns
   the error; *out is the engine on success. */
static int create_pool(size_t bytes, const char *topology, ntmm_engine_t **out)
{
	ntmm_config_t c;
	ntmm_config_init(&c);
	c.physical_bytes = bytes;
	c.topology = topology;
	c.backing = NTMM_BACKING_4K;
	c.start_threads = 0;
	*out = NULL;
	return ntmm_engine_create(&c, out);
}

/* Allocates `frames` frames (filling each), frees them; the audit holds
   before and after. Returns the chunks it committed. */
static void use_some(ntmm_engine_t *e, size_t frames, int node)
{
	ntmm__pfn_t *f = calloc(frames, sizeof(*f));
	assert_non_null(f);
	for (size_t i = 0; i < frames; i++) {
		assert_int_equal(
		    ntmm__page_alloc(e, NTMM__ALLOC_ZERO, node, NTMM__COLOUR_ANY, &f[i]), 0);
		if (node != NTMM__ALLOC_NODE_ANY)
			assert_int_equal(ntmm__pfn_node(&e->phys, f[i]), (unsigned)node);
		memset(ntmm__pfn_host(e, f[i]), 0x5a, 4096);
	}
	assert_int_equal(ntmm_audit(e), 0);
	for (size_t i = 0; i < frames; i++)
		ntmm__page_free(e, f[i]);
	free(f);
	assert_int_equal(ntmm_audit(e), 0);
}

static void huge_pool_costs_nothing_until_used(size_t bytes)
{
	size_t before = rss_bytes();
	ntmm_engine_t *e;
	int err = create_pool(bytes, NULL, &e);
	if (err) {
		/* a machine without the address space for it: a clean error */
		fprintf(stderr, "  %zu GiB pool: %s (%s)\n", bytes >> 30, ntmm_strerror(err),
		        ntmm_error_detail());
		assert_int_equal(err, NTMM_ENOMEM);
		assert_true(strlen(ntmm_error_detail()) > 0);
		return;
	}
	size_t created = rss_bytes();
	assert_int_equal(e->phys.nframes, bytes >> 12);
	assert_int_equal(ntmm_audit(e), 0);
	ntmm_stats_t s;
	assert_int_equal(ntmm_stats_get(e, &s), 0);
	assert_int_equal(s.total_frames, bytes >> 12);
	/* 8 MiB of frames: a few chunks, a few pages of PFN entries */
	use_some(e, 2048, NTMM__ALLOC_NODE_ANY);
	size_t used = rss_bytes();
	fprintf(stderr, "  %zu GiB pool: RSS +%zu KiB at create, +%zu KiB after use\n", bytes >> 30,
	        (created - before) >> 10, (used - before) >> 10);
	assert_true(created < before + RSS_SLACK);
	assert_true(used < before + RSS_SLACK);
	ntmm_engine_destroy(e);
}

static void one_tib_pool_costs_nothing_until_used(void **state)
{
	(void)state;
	huge_pool_costs_nothing_until_used(1 * TiB);
}

static void four_tib_pool_costs_nothing_until_used(void **state)
{
	(void)state;
	huge_pool_costs_nothing_until_used(4 * TiB);
}

/* The largest pool the 32-bit PFN index can name. */
static void largest_pool_costs_nothing_until_used(void **state)
{
	(void)state;
	huge_pool_costs_nothing_until_used(16 * TiB - 2 * MiB);
}

/* 16 TiB and beyond (64 TiB passed validation once) is refused. */
static void pool_beyond_the_pfn_index_is_einval(void **state)
{
	(void)state;
	size_t sizes[] = {16 * TiB, 64 * TiB, 1ull << 50};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t before = rss_bytes();
		ntmm_engine_t *e;
		assert_int_equal(create_pool(sizes[i], NULL, &e), NTMM_EINVAL);
		assert_null(e);
		assert_non_null(strstr(ntmm_error_detail(), "physical_bytes"));
		assert_true(rss_bytes() < before + RSS_SLACK);
	}
}

/* Two synthetic nodes split a 1 TiB pool in halves; each node populates
   its own range when it is used. */
static void huge_pool_splits_over_synthetic_nodes(void **state)
{
	(void)state;
	size_t before = rss_bytes();
	ntmm_engine_t *e;
	int err = create_pool(1 * TiB, "pack:2 numa:1 core:1 pu:1", &e);
	if (err == NTMM_ENOMEM) {
		fprintf(stderr, "  1 TiB pool: %s\n", ntmm_error_detail());
		return;
	}
	assert_int_equal(err, 0);
	assert_int_equal(e->phys.nnodes, 2);
	for (unsigned n = 0; n < 2; n++) {
		ntmm__node_info_t ni;
		ntmm__phys_node_info(e, n, &ni);
		assert_int_equal(ni.frames, (1 * TiB >> 12) / 2);
		assert_int_equal(ni.committed_frames, 0);
	}
	use_some(e, 1024, 1);
	use_some(e, 1024, 0);
	ntmm__node_info_t n0, n1;
	ntmm__phys_node_info(e, 0, &n0);
	ntmm__phys_node_info(e, 1, &n1);
	assert_true(n0.committed_frames > 0 && n1.committed_frames > 0);
	assert_true(rss_bytes() < before + RSS_SLACK);
	ntmm_engine_destroy(e);
}

/* Process memory on a 1 TiB pool: commit and write 8 MiB through the
   public API, read it back, audit (which walks the page tables and the PFN
   database), and the RSS stays small. */
static void huge_pool_serves_process_memory(void **state)
{
	(void)state;
	size_t before = rss_bytes();
	ntmm_engine_t *e;
	int err = create_pool(1 * TiB, NULL, &e);
	if (err == NTMM_ENOMEM)
		return;
	assert_int_equal(err, 0);
	assert_int_equal(ntmm_thread_register(e), 0);
	ntmm_process_t *p = NULL;
	assert_int_equal(ntmm_process_create(e, &p), 0);
	size_t len = 8 * MiB;
	uint64_t a = 0;
	assert_int_equal(
	    ntmm_allocate(p, &a, len, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE), 0);
	uint8_t page[4096];
	for (size_t off = 0; off < len; off += sizeof(page)) {
		memset(page, (int)(off >> 12), sizeof(page));
		assert_int_equal(ntmm_write(p, a + off, page, sizeof(page)), 0);
	}
	for (size_t off = 0; off < len; off += sizeof(page)) {
		assert_int_equal(ntmm_read(p, a + off, page, sizeof(page)), 0);
		assert_int_equal(page[0], (uint8_t)(off >> 12));
		assert_int_equal(page[4095], (uint8_t)(off >> 12));
	}
	assert_int_equal(ntmm_audit(e), 0);
	assert_true(rss_bytes() < before + RSS_SLACK);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(ntmm_audit(e), 0);
	ntmm_thread_unregister(e);
	ntmm_engine_destroy(e);
}

/* Released chunks go back to the OS; committing again reuses the
   populated entries (generations continue) and the audit holds. */
static void huge_pool_release_and_recommit(void **state)
{
	(void)state;
	ntmm_engine_t *e;
	int err = create_pool(1 * TiB, NULL, &e);
	if (err == NTMM_ENOMEM)
		return;
	assert_int_equal(err, 0);
	for (int round = 0; round < 3; round++) {
		use_some(e, 4096, NTMM__ALLOC_NODE_ANY);
		assert_true(ntmm__phys_release_chunks(e, NTMM__ALLOC_NODE_ANY, 0) > 0);
		assert_int_equal(ntmm_audit(e), 0);
	}
	ntmm_engine_destroy(e);
}

/* When the machine will not back a chunk's PFN entries (here: the data
   limit, which a private writable mapping counts against, lowered below
   what the process already has), the allocation is NTMM_ENOMEM naming the
   entries' size, not a kill; with the limit back the same chunk works. */
static void unbackable_pfn_entries_are_enomem(void **state)
{
	(void)state;
	ntmm_engine_t *e;
	int err = create_pool(1 * TiB, NULL, &e);
	if (err == NTMM_ENOMEM)
		return;
	assert_int_equal(err, 0);
	struct rlimit old, low;
	assert_int_equal(getrlimit(RLIMIT_DATA, &old), 0);
	low = old;
	low.rlim_cur = 1 << 20; /* far below the pool's own mapping */
	assert_int_equal(setrlimit(RLIMIT_DATA, &low), 0);
	ntmm__pfn_t pfn = NTMM__PFN_NONE;
	err = ntmm__page_alloc(e, 0, NTMM__ALLOC_NODE_ANY, NTMM__COLOUR_ANY, &pfn);
	const char *detail = ntmm_error_detail();
	char saved[256];
	snprintf(saved, sizeof(saved), "%s", detail ? detail : "");
	assert_int_equal(setrlimit(RLIMIT_DATA, &old), 0);
	assert_int_equal(err, NTMM_ENOMEM);
	assert_non_null(strstr(saved, "PFN database"));
	assert_non_null(strstr(saved, "16384 bytes"));
	assert_int_equal(ntmm_audit(e), 0);
	assert_int_equal(ntmm__page_alloc(e, 0, NTMM__ALLOC_NODE_ANY, NTMM__COLOUR_ANY, &pfn), 0);
	ntmm__page_free(e, pfn);
	assert_int_equal(ntmm_audit(e), 0);
	ntmm_engine_destroy(e);
}

/* The PFN helpers refuse frames whose entries are not populated, instead
   of reading the reservation. */
static void pfn_helpers_refuse_unpopulated_frames(void **state)
{
	(void)state;
	ntmm_engine_t *e;
	int err = create_pool(1 * TiB, NULL, &e);
	if (err == NTMM_ENOMEM)
		return;
	assert_int_equal(err, 0);
	ntmm__pfn_t far = (ntmm__pfn_t)(e->phys.nframes - 1);
	uint64_t s = NTMM__LOC_OFFLINE;
	assert_int_equal(ntmm__pfn_transition(e, far, &s, NTMM__LOC_ZEROED), NTMM_EINVAL);
	assert_int_equal(ntmm__page_mark_bad(e, far), NTMM_EBUSY);
	assert_int_equal(ntmm_audit(e), 0);
	ntmm_engine_destroy(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(one_tib_pool_costs_nothing_until_used),
	    cmocka_unit_test(four_tib_pool_costs_nothing_until_used),
	    cmocka_unit_test(largest_pool_costs_nothing_until_used),
	    cmocka_unit_test(pool_beyond_the_pfn_index_is_einval),
	    cmocka_unit_test(huge_pool_splits_over_synthetic_nodes),
	    cmocka_unit_test(huge_pool_serves_process_memory),
	    cmocka_unit_test(huge_pool_release_and_recommit),
	    cmocka_unit_test(unbackable_pfn_entries_are_enomem),
	    cmocka_unit_test(pfn_helpers_refuse_unpopulated_frames),
	};
	const char *filter = getenv("CMOCKA_TEST_FILTER");
	if (filter)
		cmocka_set_test_filter(filter);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
