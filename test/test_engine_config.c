/* Engine configuration: defaults, environment overrides, bad configs. */
#include "testutil.h"

#include <limits.h>
#include <ntmm/stats.h>
#include <stdbool.h>
#include <string.h>

static void defaults_are_the_documented_ones(void **state)
{
	unsetenv("NTMM_PHYSICAL_BYTES");
	ntmm_config_t c;
	ntmm_config_init(&c);
	assert_int_equal(c.physical_bytes, 256u << 20);
	assert_int_equal(c.backing, NTMM_BACKING_AUTO);
	assert_int_equal(c.thread_priority[NTMM_THREAD_BALANCE_SET], 16);
	assert_int_equal(c.thread_priority[NTMM_THREAD_SWAPPER], 23);
	assert_int_equal(c.thread_priority[NTMM_THREAD_MODIFIED_WRITER], 17);
	assert_int_equal(c.thread_priority[NTMM_THREAD_MAPPED_WRITER], 17);
	assert_int_equal(c.thread_priority[NTMM_THREAD_SEGMENT_DEREF], 18);
	assert_int_equal(c.thread_priority[NTMM_THREAD_ZERO_PAGE], 23);
	assert_int_equal(c.thread_cpu[0], -1);
	assert_null(c.pagefile_path);
	assert_null(c.topology);
}

static void environment_overrides_with_suffixes(void **state)
{
	setenv("NTMM_PHYSICAL_BYTES", "64M", 1);
	setenv("NTMM_BACKING", "4k", 1);
	setenv("NTMM_PRIO_ZERO_PAGE", "0", 1);
	ntmm_config_t c;
	ntmm_config_init(&c);
	assert_int_equal(c.physical_bytes, 64u << 20);
	assert_int_equal(c.backing, NTMM_BACKING_4K);
	assert_int_equal(c.thread_priority[NTMM_THREAD_ZERO_PAGE], 0);
	unsetenv("NTMM_PHYSICAL_BYTES");
	unsetenv("NTMM_BACKING");
	unsetenv("NTMM_PRIO_ZERO_PAGE");
}

static void bad_configs_are_einval(void **state)
{
	ntmm_engine_t *e = (ntmm_engine_t *)1;
	ntmm_config_t c;

	ntmm_config_init(&c);
	c.physical_bytes = 0;
	assert_int_equal(ntmm_engine_create(&c, &e), NTMM_EINVAL);
	assert_null(e);
	assert_true(strlen(ntmm_error_detail()) > 0);

	ntmm_config_init(&c);
	c.physical_bytes = (2u << 20) + 4096;
	assert_int_equal(ntmm_engine_create(&c, &e), NTMM_EINVAL);

	ntmm_config_init(&c);
	c.backing = 7;
	assert_int_equal(ntmm_engine_create(&c, &e), NTMM_EINVAL);

	ntmm_config_init(&c);
	c.thread_priority[NTMM_THREAD_ZERO_PAGE] = 32;
	assert_int_equal(ntmm_engine_create(&c, &e), NTMM_EINVAL);

	ntmm_config_init(&c);
	c.thread_priority[NTMM_THREAD_SWAPPER] = -1;
	assert_int_equal(ntmm_engine_create(&c, &e), NTMM_EINVAL);

	assert_int_equal(ntmm_engine_create(NULL, &e), NTMM_EINVAL);
	ntmm_config_init(&c);
	assert_int_equal(ntmm_engine_create(&c, NULL), NTMM_EINVAL);
}

/* Every code of the NTMM_ERRORS list (the one the enum and ntmm_strerror
   are made from, so a code added there is checked here with no edit) is
   negative and has its own text, which names the code; 0 is "success" and
   a code outside the list is "unknown ntmm error". */
#define LISTED(name, value, text) {NTMM_##name, "NTMM_" #name ": "},
static const struct {
	int code;
	const char *prefix;
} listed[] = {NTMM_ERRORS(LISTED)};
#undef LISTED
#define NLISTED (sizeof(listed) / sizeof(listed[0]))

static bool is_listed(int code)
{
	for (size_t i = 0; i < NLISTED; i++)
		if (listed[i].code == code)
			return true;
	return false;
}

static void strerror_gives_each_listed_code_its_own_text(void **state)
{
	assert_true(NLISTED >= 9);
	for (size_t i = 0; i < NLISTED; i++) {
		const char *t = ntmm_strerror(listed[i].code);
		assert_true(listed[i].code < 0);
		assert_non_null(t);
		/* "NTMM_EINVAL: invalid argument ...": its own name, then a text */
		assert_int_equal(strncmp(t, listed[i].prefix, strlen(listed[i].prefix)), 0);
		assert_true(strlen(t) > strlen(listed[i].prefix));
		for (size_t j = 0; j < i; j++) {
			assert_int_not_equal(listed[i].code, listed[j].code);
			assert_string_not_equal(t, ntmm_strerror(listed[j].code));
		}
	}
	assert_string_equal(ntmm_strerror(0), "success");
	/* the codes just outside the list, on both sides, and far away */
	int lo = 0;
	for (size_t i = 0; i < NLISTED; i++)
		lo = listed[i].code < lo ? listed[i].code : lo;
	int unlisted[] = {lo - 1, 1, -1000, INT_MIN, INT_MAX};
	for (size_t i = 0; i < sizeof(unlisted) / sizeof(unlisted[0]); i++) {
		assert_false(is_listed(unlisted[i]));
		assert_string_equal(ntmm_strerror(unlisted[i]), "unknown ntmm error");
	}
}

static void engine_creates_and_destroys(void **state)
{
	ntmm_config_t c;
	ntmm_config_init(&c);
	c.physical_bytes = 8u << 20;
	ntmm_engine_t *e = NULL;
	assert_int_equal(ntmm_engine_create(&c, &e), 0);
	assert_non_null(e);
	ntmm_stats_t st;
	assert_int_equal(ntmm_stats_get(e, &st), 0);
	assert_int_equal(st.version, NTMM_STATS_VERSION);
	assert_int_equal(ntmm_audit(e), 0);
	ntmm_engine_destroy(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(defaults_are_the_documented_ones),
	    cmocka_unit_test(environment_overrides_with_suffixes),
	    cmocka_unit_test(bad_configs_are_einval),
	    cmocka_unit_test(strerror_gives_each_listed_code_its_own_text),
	    cmocka_unit_test(engine_creates_and_destroys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
