/* Synthetic topologies are checked before hwloc builds them: counts that
   would take hwloc seconds to load (10 000 NUMA nodes took over 20 s) or
   exceed the engine's per-node arrays are NTMM_EINVAL with a detail naming
   the string, at once; the shapes the tests use still load. */
#include "phys_testutil.h"

static int create_with(const char *topology, ntmm_engine_t **e)
{
	ntmm_config_t c;
	ntmm_config_init(&c);
	c.physical_bytes = 256u << 20;
	c.topology = topology;
	c.backing = NTMM_BACKING_4K;
	c.start_threads = 0;
	*e = NULL;
	return ntmm_engine_create(&c, e);
}

static void refused(const char *topology, const char *why)
{
	ntmm_engine_t *e;
	assert_int_equal(create_with(topology, &e), NTMM_EINVAL);
	assert_null(e);
	const char *d = ntmm_error_detail();
	char head[41]; /* the detail quotes a long string shortened */
	snprintf(head, sizeof(head), "%s", topology);
	if (!strstr(d, head) || !strstr(d, why))
		fprintf(stderr, "detail for \"%s\": %s\n", topology, d);
	assert_non_null(strstr(d, head));
	assert_non_null(strstr(d, why));
}

static void accepted(const char *topology, unsigned nodes)
{
	ntmm_engine_t *e;
	int err = create_with(topology, &e);
	if (err)
		fprintf(stderr, "\"%s\": %s (%s)\n", topology, ntmm_strerror(err),
		        ntmm_error_detail());
	assert_int_equal(err, 0);
	assert_int_equal(e->phys.nnodes, nodes);
#ifdef __SANITIZE_THREAD__
	/* the audit holds two locks per node at once; TSan's deadlock
	   detector tracks at most 64 held locks */
	if (nodes < 30)
#endif
		assert_int_equal(ntmm_audit(e), 0);
	ntmm_engine_destroy(e);
}

static void ten_thousand_numa_nodes_are_refused_before_loading(void **state)
{
	(void)state;
	refused("numa:10000 pu:1", "NUMA");
	refused("pack:2 numa:40 pu:1", "80 NUMA nodes; at most 64");
	refused("pack:65 [numa] core:1 pu:1", "65 NUMA nodes; at most 64");
}

/* hwloc would load these (slowly) and the engine used to accept them. */
static void too_many_pus_are_refused_before_loading(void **state)
{
	(void)state;
	refused("pack:2 core:4096 pu:1", "at most 1024 PUs");
	refused("pack:16 core:16 pu:8", "at most 1024 PUs");
	refused("core:100000 pu:1", "at most 1024 PUs");
	refused("99999999999999999999 pu:1", "at most 1024 PUs");
}

static void too_many_objects_or_levels_are_refused(void **state)
{
	(void)state;
	refused("pack:1024 group:1 group:1 group:1 group:1 group:1 group:1 group:1 pu:1",
	        "objects in all");
	char deep[512] = "";
	for (int i = 0; i < 33; i++)
		strcat(deep, "group:1 ");
	strcat(deep, "pu:1");
	refused(deep, "levels");
}

static void malformed_levels_are_refused(void **state)
{
	(void)state;
	refused("numa:x pu:1", "no count");
	refused("numa:2x pu:1", "cannot read level 1");
	ntmm_engine_t *e;
	assert_int_equal(create_with("numa:0 pu:1", &e), NTMM_EINVAL);
	assert_int_equal(create_with("bogus:2 pu:1", &e), NTMM_EINVAL);
}

static void shapes_within_the_limits_load(void **state)
{
	(void)state;
	accepted("pack:2 numa:1 core:1 pu:1", 2);
	accepted("numa:64 pu:16", 64);
	accepted("pack:64 [numa] core:16 pu:1", 64);
	accepted("pack:2 [numa] [numa] core:2 pu:1", 4);
	accepted("[numa] pack:2 core:2 pu:1", 1);
	accepted("numa:2(memory=1GB) pu:2", 2);
	accepted("pack:2 l2:2 core:2 pu:2", 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(ten_thousand_numa_nodes_are_refused_before_loading),
	    cmocka_unit_test(too_many_pus_are_refused_before_loading),
	    cmocka_unit_test(too_many_objects_or_levels_are_refused),
	    cmocka_unit_test(malformed_levels_are_refused),
	    cmocka_unit_test(shapes_within_the_limits_load),
	};
	const char *filter = getenv("CMOCKA_TEST_FILTER");
	if (filter)
		cmocka_set_test_filter(filter);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
