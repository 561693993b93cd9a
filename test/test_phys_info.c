/* `ntmm info`: the command reports the engine it created (backing, nodes,
   frames per node, PFN entry size, system threads with their policy), as
   JSON with --json (parsed here), and refuses bad options with a non-zero status. */
#include "testutil.h"

#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

static char tool[PATH_MAX + 16];

static int setup(void **state)
{
	/* build/<preset>/test/test_phys_info → build/<preset>/ntmm */
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return -1;
	self[n] = 0;
	char *slash = strrchr(self, '/');
	*slash = 0;
	snprintf(tool, sizeof(tool), "%s/../ntmm", self);
	return 0;
}

static char *run(const char *args, int *status)
{
	char cmd[PATH_MAX + 256];
	snprintf(cmd, sizeof(cmd), "%s %s %s", tool, args, strstr(args, "2>") ? "" : "2>&1");
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	static char out[1 << 16];
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	*status = pclose(p);
	return out;
}

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;
	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("no member '%s'", key);
	return v;
}

static void json_names_backing_nodes_frames_and_threads(void **state)
{
	if (access(tool, X_OK)) {
		fprintf(stderr, "skipped: %s not built (NTMM_BUILD_TOOLS=OFF)\n", tool);
		skip();
	}
	int status;
	char *out = run("info --json --physical=16M --topology='pack:2 numa:1 core:2 pu:1' "
	                "2>/dev/null",
	                &status);
	assert_int_equal(status, 0);
	json_object *o = json_tokener_parse(out);
	if (!o)
		fail_msg("not JSON: '%s'", out);
	assert_true(json_object_is_type(get(o, "backing"), json_type_string));
	assert_int_equal(json_object_get_int64(get(o, "frames")), 4096);
	assert_int_equal(json_object_get_int64(get(o, "pfn_entry_bytes")), 32);
	json_object *nodes = get(o, "nodes");
	assert_int_equal(json_object_array_length(nodes), 2);
	for (size_t n = 0; n < 2; n++) {
		json_object *node = json_object_array_get_idx(nodes, n);
		assert_int_equal(json_object_get_int64(get(node, "node")), (int64_t)n);
		assert_int_equal(json_object_get_int64(get(node, "frames")), 2048);
		assert_int_equal(json_object_array_length(get(node, "distances")), 2);
	}
	json_object *threads = get(o, "threads");
	bool zero1 = false;
	for (size_t i = 0; i < json_object_array_length(threads); i++) {
		json_object *t = json_object_array_get_idx(threads, i);
		assert_int_equal(strncmp(json_object_get_string(get(t, "policy")), "SCHED_", 6), 0);
		if (!strcmp(json_object_get_string(get(t, "name")), "ntmm-zero/1")) {
			zero1 = true;
			assert_int_equal(json_object_get_int(get(t, "nt_priority")), 23);
		}
	}
	assert_true(zero1);
	json_object_put(o);
}

static void text_form_and_bad_options(void **state)
{
	if (access(tool, X_OK))
		skip();
	int status;
	char *out = run("info --physical=8M --backing=4k", &status);
	assert_int_equal(status, 0);
	assert_non_null(strstr(out, "backing        4k"));
	assert_non_null(strstr(out, "ntmm-zero/0"));
	run("info --backing=bogus", &status);
	assert_int_not_equal(status, 0);
	out = run("info --topology=nonsense", &status);
	assert_int_not_equal(status, 0);
	assert_non_null(strstr(out, "NTMM_EINVAL"));
	run("no-such-command", &status);
	assert_int_not_equal(status, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(json_names_backing_nodes_frames_and_threads),
	    cmocka_unit_test(text_form_and_bad_options),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
