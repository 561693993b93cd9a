/* Allocation: the NT order (Zeroed vs Free first), colour hints and colour
   spreading, local node first on 2- and 4-node synthetic topologies and
   fallback by distance, exhaustion, and bad configs refused with nothing
   leaked. */
#include "phys_testutil.h"

#include <sched.h>
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
static int setup_8mib_2node(void **state)
{
	fx.e = phys_engine(8, "pack:2 numa:1 core:2 pu:1", NTMM_BACKING_AUTO, 0);
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

static ntmm__pfn_t alloc_on(ntmm_engine_t *e, unsigned flags, int node, uint32_t colour)
{
	ntmm__pfn_t pfn = NTMM__PFN_NONE;
	assert_int_equal(ntmm__page_alloc(e, flags, node, colour, &pfn), 0);
	return pfn;
}

static void zero_request_prefers_zeroed_and_plain_prefers_free(void **state)
{
	ntmm_engine_t *e = *state;
	enum { N = 48 };
	ntmm__pfn_t f[N];
	bool was_freed[2048] = {0};
	for (int i = 0; i < N; i++) {
		f[i] = must_alloc(e, 0);
		memset(ntmm__pfn_host(e, f[i]), 0xee, 4096);
	}
	for (int i = 0; i < N; i++) {
		was_freed[f[i]] = true;
		ntmm__page_free(e, f[i]);
	}
	/* a plain request takes the dirty Free frames first */
	for (int i = 0; i < N; i++) {
		f[i] = must_alloc(e, 0);
		assert_true(was_freed[f[i]]);
	}
	for (int i = 0; i < N; i++)
		ntmm__page_free(e, f[i]);
	/* a zero request takes Zeroed frames while there are any */
	for (int i = 0; i < N; i++) {
		f[i] = must_alloc(e, NTMM__ALLOC_ZERO);
		assert_false(was_freed[f[i]]);
		assert_true(frame_is(e, f[i], 0));
	}
	for (int i = 0; i < N; i++)
		ntmm__page_free(e, f[i]);
	assert_int_equal(ntmm_audit(e), 0);
}

static void zero_request_zeroes_free_frames_inline_when_zeroed_is_empty(void **state)
{
	ntmm_engine_t *e = *state;
	size_t n = e->phys.nframes;
	ntmm__pfn_t *f = calloc(n, sizeof(*f));
	for (size_t i = 0; i < n; i++) {
		f[i] = must_alloc(e, NTMM__ALLOC_ZERO);
		memset(ntmm__pfn_host(e, f[i]), 0x77, 4096);
	}
	for (size_t i = 0; i < n; i++)
		ntmm__page_free(e, f[i]);
	ntmm_stats_t before, after;
	ntmm_stats_get(e, &before);
	assert_int_equal(before.zeroed_pages, 0);
	for (size_t i = 0; i < n; i++) {
		f[i] = must_alloc(e, NTMM__ALLOC_ZERO);
		assert_true(frame_is(e, f[i], 0));
	}
	ntmm_stats_get(e, &after);
	assert_int_equal(after.frames_zeroed_inline - before.frames_zeroed_inline, n);
	for (size_t i = 0; i < n; i++)
		ntmm__page_free(e, f[i]);
	assert_int_equal(ntmm_audit(e), 0);
	free(f);
}

static void colour_hint_is_honoured(void **state)
{
	ntmm_engine_t *e = *state;
	unsigned nc = e->phys.ncolours;
	assert_true(nc >= 1 && (nc & (nc - 1)) == 0);
	ntmm__pfn_t f[256];
	for (unsigned i = 0; i < 256; i++) {
		f[i] = alloc_on(e, NTMM__ALLOC_ZERO, NTMM__ALLOC_NODE_ANY, i * 7);
		assert_int_equal(f[i] & (nc - 1), (i * 7) & (nc - 1));
	}
	for (unsigned i = 0; i < 256; i++)
		ntmm__page_free(e, f[i]);
	assert_int_equal(ntmm_audit(e), 0);
}

static void consecutive_allocations_spread_over_colours(void **state)
{
	ntmm_engine_t *e = *state;
	unsigned nc = e->phys.ncolours;
	ntmm__pfn_t f[NTMM__MAX_COLOURS];
	uint64_t seen = 0;
	for (unsigned i = 0; i < nc; i++) {
		f[i] = must_alloc(e, NTMM__ALLOC_ZERO);
		seen |= 1ull << (f[i] & (nc - 1));
	}
	/* nc allocations without a hint cover every colour */
	assert_int_equal(__builtin_popcountll(seen), nc);
	for (unsigned i = 0; i < nc; i++)
		ntmm__page_free(e, f[i]);
}

static bool in_node(ntmm_engine_t *e, ntmm__pfn_t pfn, unsigned node)
{
	ntmm__node_t *n = &e->phys.nodes[node];
	return pfn >= n->first_pfn && pfn < n->first_pfn + n->nframes;
}

static void two_node_topology_allocates_on_the_asked_and_local_node(void **state)
{
	ntmm_engine_t *e = *state;
	assert_int_equal(e->phys.nnodes, 2);
	assert_true(e->phys.topo.distance[0][1] > e->phys.topo.distance[0][0]);
	for (unsigned node = 0; node < 2; node++) {
		ntmm__pfn_t pfn = alloc_on(e, NTMM__ALLOC_ZERO, (int)node, NTMM__COLOUR_ANY);
		assert_true(in_node(e, pfn, node));
		ntmm__page_free(e, pfn);
	}
	/* local node: the node of the CPU we run on (machine CPUs are dealt
	   round-robin over synthetic nodes) */
	cpu_set_t old;
	sched_getaffinity(0, sizeof(old), &old);
	for (unsigned cpu = 0; cpu < e->ncpus && cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &old))
			continue;
		cpu_set_t one;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		if (sched_setaffinity(0, sizeof(one), &one))
			continue;
		ntmm__pfn_t pfn = must_alloc(e, NTMM__ALLOC_ZERO);
		assert_true(in_node(e, pfn, e->phys.topo.cpu_node[cpu]));
		ntmm__page_free(e, pfn);
	}
	sched_setaffinity(0, sizeof(old), &old);
	assert_int_equal(alloc_on(e, 0, 1, NTMM__COLOUR_ANY) != NTMM__PFN_NONE, 1);
	ntmm__pfn_t x;
	assert_int_equal(ntmm__page_alloc(e, 0, 2, NTMM__COLOUR_ANY, &x), NTMM_EINVAL);
}

static void four_node_topology_falls_back_by_distance(void **state)
{
	/* nodes 0,1 share package 0; nodes 2,3 package 1 */
	ntmm_engine_t *e = phys_engine(8, "pack:2 numa:2 core:1 pu:1", NTMM_BACKING_AUTO, 0);
	assert_int_equal(e->phys.nnodes, 4);
	ntmm__topo_t *t = &e->phys.topo;
	assert_true(t->distance[0][1] < t->distance[0][2]);
	assert_int_equal(t->order[0][0], 0);
	assert_int_equal(t->order[0][1], 1);
	size_t per = e->phys.nodes[0].nframes;
	ntmm__pfn_t *f = calloc(e->phys.nframes, sizeof(*f));
	size_t k = 0;
	/* drain node 0, then node 1 must serve node-0 requests, then 2 or 3 */
	for (; k < per; k++) {
		f[k] = alloc_on(e, 0, 0, NTMM__COLOUR_ANY);
		assert_true(in_node(e, f[k], 0));
	}
	for (size_t i = 0; i < e->phys.nodes[1].nframes; i++, k++) {
		f[k] = alloc_on(e, 0, 0, NTMM__COLOUR_ANY);
		assert_true(in_node(e, f[k], 1));
	}
	f[k] = alloc_on(e, 0, 0, NTMM__COLOUR_ANY);
	assert_true(in_node(e, f[k], 2) || in_node(e, f[k], 3));
	k++;
	/* from node 3's point of view node 2 is nearest */
	f[k] = alloc_on(e, 0, 3, NTMM__COLOUR_ANY);
	assert_true(in_node(e, f[k], 3));
	k++;
	for (size_t i = 0; i < k; i++)
		ntmm__page_free(e, f[i]);
	assert_int_equal(ntmm_audit(e), 0);
	free(f);
	ntmm_engine_destroy(e);
}

static void exhaustion_is_enomem_and_recovers(void **state)
{
	ntmm_engine_t *e = *state;
	size_t n = e->phys.nframes;
	ntmm__pfn_t *f = calloc(n, sizeof(*f));
	for (size_t i = 0; i < n; i++)
		f[i] = must_alloc(e, i & 1 ? NTMM__ALLOC_ZERO : 0);
	ntmm__pfn_t x;
	assert_int_equal(ntmm__page_alloc(e, 0, NTMM__ALLOC_NODE_ANY, NTMM__COLOUR_ANY, &x),
	                 NTMM_ENOMEM);
	assert_int_equal(ntmm__page_alloc(e, NTMM__ALLOC_ZERO, NTMM__ALLOC_NODE_ANY, 3, &x),
	                 NTMM_ENOMEM);
	ntmm_stats_t s;
	ntmm_stats_get(e, &s);
	assert_int_equal(s.active_pages, n);
	assert_int_equal(s.committed_chunk_frames, n);
	ntmm__page_free(e, f[5]);
	x = must_alloc(e, NTMM__ALLOC_ZERO);
	assert_int_equal(x, f[5]);
	assert_true(frame_is(e, x, 0));
	for (size_t i = 0; i < n; i++)
		ntmm__page_free(e, f[i]);
	ntmm_stats_get(e, &s);
	assert_int_equal(s.frame_allocs, n + 1);
	assert_int_equal(s.frame_frees, n + 1);
	assert_int_equal(s.active_pages, 0);
	assert_int_equal(ntmm_audit(e), 0);
	free(f);
}

static void pool_commits_chunks_only_when_used(void **state)
{
	ntmm_engine_t *e = *state;
	ntmm_stats_t s;
	ntmm_stats_get(e, &s);
	assert_int_equal(s.total_frames, 16 * 256);
	assert_int_equal(s.committed_chunk_frames, 0);
	ntmm__pfn_t pfn = must_alloc(e, 0);
	ntmm_stats_get(e, &s);
	assert_int_equal(s.committed_chunk_frames, NTMM__CHUNK_FRAMES);
	assert_int_equal(s.chunk_commits, 1);
	ntmm__page_free(e, pfn);
	assert_int_equal(ntmm_audit(e), 0);
}

static void bad_topologies_and_sizes_are_einval(void **state)
{
	ntmm_config_t c;
	ntmm_engine_t *e = (ntmm_engine_t *)1;
	const char *bad[] = {"", "garbage:3", "pack:2 numa:", "pu:0"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ntmm_config_init(&c);
		c.physical_bytes = 8u << 20;
		c.topology = bad[i];
		assert_int_equal(ntmm_engine_create(&c, &e), NTMM_EINVAL);
		assert_null(e);
		assert_non_null(strstr(ntmm_error_detail(), "topology"));
	}
	/* fewer chunks than nodes */
	ntmm_config_init(&c);
	c.physical_bytes = 2u << 20;
	c.topology = "pack:4 numa:1 core:1 pu:1";
	assert_int_equal(ntmm_engine_create(&c, &e), NTMM_EINVAL);
	assert_null(e);
	/* unknown backing */
	ntmm_config_init(&c);
	c.backing = 4;
	assert_int_equal(ntmm_engine_create(&c, &e), NTMM_EINVAL);
	/* ASan's leak check at exit proves nothing leaked on these paths */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(zero_request_prefers_zeroed_and_plain_prefers_free,
	                                    setup_4mib, teardown),
	    cmocka_unit_test_setup_teardown(
	        zero_request_zeroes_free_frames_inline_when_zeroed_is_empty, setup_2mib, teardown),
	    cmocka_unit_test_setup_teardown(colour_hint_is_honoured, setup_4mib, teardown),
	    cmocka_unit_test_setup_teardown(consecutive_allocations_spread_over_colours, setup_4mib,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(two_node_topology_allocates_on_the_asked_and_local_node,
	                                    setup_8mib_2node, teardown),
	    cmocka_unit_test(four_node_topology_falls_back_by_distance),
	    cmocka_unit_test_setup_teardown(exhaustion_is_enomem_and_recovers, setup_4mib,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(pool_commits_chunks_only_when_used, setup_16mib,
	                                    teardown),
	    cmocka_unit_test(bad_topologies_and_sizes_are_einval),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
