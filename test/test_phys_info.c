/* `ntmm info`: the command reports the engine it created (backing, nodes,
   frames per node, PFN entry size, system threads with their policy), as
   JSON with --json, and refuses bad options with a non-zero status. */
#include "testutil.h"

#include <limits.h>
#include <string.h>
#include <unistd.h>

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
	snprintf(cmd, sizeof(cmd), "%s %s 2>&1", tool, args);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	static char out[1 << 16];
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	*status = pclose(p);
	return out;
}

static void json_names_backing_nodes_frames_and_threads(void **state)
{
	if (access(tool, X_OK)) {
		fprintf(stderr, "skipped: %s not built (NTMM_BUILD_TOOLS=OFF)\n", tool);
		skip();
	}
	int status;
	char *out =
	    run("info --json --physical=16M --topology='pack:2 numa:1 core:2 pu:1'", &status);
	assert_int_equal(status, 0);
	assert_non_null(strstr(out, "\"backing\": \""));
	assert_non_null(strstr(out, "\"frames\": 4096"));
	assert_non_null(strstr(out, "\"pfn_entry_bytes\": 32"));
	assert_non_null(strstr(out, "\"node\": 1"));
	assert_non_null(strstr(out, "\"frames\": 2048"));
	assert_non_null(strstr(out, "\"name\": \"ntmm-zero/1\""));
	assert_non_null(strstr(out, "\"policy\": \"SCHED_"));
	assert_non_null(strstr(out, "\"nt_priority\": 23"));
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
