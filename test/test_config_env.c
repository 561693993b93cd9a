/* NTMM_<NAME> environment overrides: every value is taken exactly or
   refused. Decimal only (a leading 0 is decimal, 0x is refused), sizes
   with one K/M/G/T suffix, nothing after the number, nothing that does not
   fit, nothing outside the option's range; a refused variable leaves the
   field at its default and makes ntmm_engine_create fail with NTMM_EINVAL
   and a detail naming the variable and its value. */
#include "testutil.h"

#include <string.h>

#include "engine.h"

#define MiB ((size_t)1 << 20)

/* Every variable the tests set, unset before and after each test. */
static const char *vars[] = {
    "NTMM_PHYSICAL_BYTES", "NTMM_BALANCE_TICK_MS", "NTMM_SWAP_IDLE_MS",  "NTMM_PRIO_ZERO_PAGE",
    "NTMM_CPU_ZERO_PAGE",  "NTMM_ASLR_SEED",       "NTMM_TOPOLOGY",      "NTMM_BACKING",
    "NTMM_PAGEFILE_PATH",  "NTMM_WS_MIN_PAGES",    "NTMM_START_THREADS",
};

static int clean_env(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	return 0;
}

/* Sets var=value, runs ntmm_config_init, and checks the value was refused
   with `why` in the reason; the engine will not be created from it. */
static void refused(const char *var, const char *value, const char *why)
{
	clean_env(NULL);
	setenv(var, value, 1);
	ntmm_config_t c, d;
	ntmm_config_init(&c);
	unsetenv(var);
	ntmm_config_init(&d);
	if (!strstr(c.env_error, var) || !strstr(c.env_error, why))
		fprintf(stderr, "%s=\"%s\": env_error \"%s\"\n", var, value, c.env_error);
	assert_non_null(strstr(c.env_error, var));
	assert_non_null(strstr(c.env_error, why));
	/* the field kept its default: apart from env_error, c is d */
	memset(c.env_error, 0, sizeof(c.env_error));
	assert_memory_equal(&c, &d, sizeof(c));

	/* create refuses it, naming the variable and the value */
	setenv(var, value, 1);
	ntmm_config_init(&c);
	c.start_threads = 0;
	ntmm_engine_t *e = (ntmm_engine_t *)1;
	assert_int_equal(ntmm_engine_create(&c, &e), NTMM_EINVAL);
	assert_null(e);
	assert_non_null(strstr(ntmm_error_detail(), var));
	if (strlen(value) <= 48)
		assert_non_null(strstr(ntmm_error_detail(), value));
	/* and so does the checked form */
	assert_int_equal(ntmm_config_init_checked(&c), NTMM_EINVAL);
	assert_non_null(strstr(ntmm_error_detail(), var));
	unsetenv(var);
}

/* Sets var=value and returns the config it gives (asserting no error). */
static ntmm_config_t taken(const char *var, const char *value)
{
	clean_env(NULL);
	setenv(var, value, 1);
	ntmm_config_t c;
	assert_int_equal(ntmm_config_init_checked(&c), 0);
	assert_string_equal(c.env_error, "");
	unsetenv(var);
	return c;
}

static void sizes_are_decimal_with_one_suffix(void **state)
{
	(void)state;
	assert_int_equal(taken("NTMM_PHYSICAL_BYTES", "64M").physical_bytes, 64 * MiB);
	assert_int_equal(taken("NTMM_PHYSICAL_BYTES", "64MiB").physical_bytes, 64 * MiB);
	assert_int_equal(taken("NTMM_PHYSICAL_BYTES", "64mb").physical_bytes, 64 * MiB);
	assert_int_equal(taken("NTMM_PHYSICAL_BYTES", "1G").physical_bytes, 1024 * MiB);
	assert_int_equal(taken("NTMM_PHYSICAL_BYTES", "4194304").physical_bytes, 4 * MiB);
	assert_int_equal(taken("NTMM_PHYSICAL_BYTES", "4194304B").physical_bytes, 4 * MiB);
	/* a leading zero is decimal: 010M is 10 MiB, not 8 */
	assert_int_equal(taken("NTMM_PHYSICAL_BYTES", "010M").physical_bytes, 10 * MiB);
	assert_int_equal(taken("NTMM_WS_MIN_PAGES", "0100").ws_min_pages, 100);
}

static void size_overflow_is_refused(void **state)
{
	(void)state;
	/* 16777220 × 2^40 wrapped to 4 TiB */
	refused("NTMM_PHYSICAL_BYTES", "16777220T", "does not fit 63 bits");
	refused("NTMM_PHYSICAL_BYTES", "8589934592G", "does not fit 63 bits"); /* 2^63 */
	refused("NTMM_PHYSICAL_BYTES", "9223372036854775808", "does not fit 63 bits");
	refused("NTMM_PHYSICAL_BYTES", "18446744073709551616", "does not fit 63 bits");
	refused("NTMM_PHYSICAL_BYTES", "99999999999999999999999999", "does not fit 63 bits");
	/* fits, but beyond the option's range */
	refused("NTMM_PHYSICAL_BYTES", "64T", "outside [");
	refused("NTMM_PHYSICAL_BYTES", "1M", "outside [");
}

static void size_malformed_is_refused(void **state)
{
	(void)state;
	refused("NTMM_PHYSICAL_BYTES", "0x4000000", "trailing characters");
	refused("NTMM_PHYSICAL_BYTES", "64M junk", "trailing characters");
	refused("NTMM_PHYSICAL_BYTES", "64MM", "trailing characters");
	refused("NTMM_PHYSICAL_BYTES", "64Q", "trailing characters");
	refused("NTMM_PHYSICAL_BYTES", "64M ", "trailing characters");
	refused("NTMM_PHYSICAL_BYTES", "6.4G", "trailing characters");
	refused("NTMM_PHYSICAL_BYTES", " 64M", "not a decimal number");
	refused("NTMM_PHYSICAL_BYTES", "+64M", "not a decimal number");
	refused("NTMM_PHYSICAL_BYTES", "M", "not a decimal number");
	refused("NTMM_PHYSICAL_BYTES", "-64M", "negative");
	refused("NTMM_PHYSICAL_BYTES", "", "empty");
}

static void unsigned_values_are_exact(void **state)
{
	(void)state;
	assert_int_equal(taken("NTMM_BALANCE_TICK_MS", "500").balance_tick_ms, 500);
	assert_int_equal(taken("NTMM_BALANCE_TICK_MS", "010").balance_tick_ms, 10);
	assert_int_equal(taken("NTMM_SWAP_IDLE_MS", "0").swap_idle_ms, 0);
	/* 2^32 + 1 became 1 */
	refused("NTMM_BALANCE_TICK_MS", "4294967297", "outside [1, 60000]");
	refused("NTMM_SWAP_IDLE_MS", "4294967296", "outside [0, ");
	refused("NTMM_BALANCE_TICK_MS", "9223372036854775808", "does not fit 63 bits");
	refused("NTMM_BALANCE_TICK_MS", "0", "outside [1, 60000]");
	refused("NTMM_BALANCE_TICK_MS", "1K", "trailing characters");
	refused("NTMM_BALANCE_TICK_MS", "100ms", "trailing characters");
	refused("NTMM_BALANCE_TICK_MS", "0x10", "trailing characters");
	refused("NTMM_BALANCE_TICK_MS", "-1", "negative");
	refused("NTMM_BALANCE_TICK_MS", "", "empty");
}

static void int_values_are_exact(void **state)
{
	(void)state;
	assert_int_equal(taken("NTMM_CPU_ZERO_PAGE", "-1").thread_cpu[NTMM_THREAD_ZERO_PAGE], -1);
	assert_int_equal(taken("NTMM_CPU_ZERO_PAGE", "0").thread_cpu[NTMM_THREAD_ZERO_PAGE], 0);
	assert_int_equal(taken("NTMM_PRIO_ZERO_PAGE", "08").thread_priority[NTMM_THREAD_ZERO_PAGE],
	                 8);
	assert_int_equal(taken("NTMM_START_THREADS", "0").start_threads, 0);
	refused("NTMM_PRIO_ZERO_PAGE", "32", "outside [0, 31]");
	refused("NTMM_PRIO_ZERO_PAGE", "4294967312", "outside [0, 31]"); /* 2^32 + 16 */
	refused("NTMM_PRIO_ZERO_PAGE", "-1", "negative");
	refused("NTMM_CPU_ZERO_PAGE", "-2", "outside [-1, 4095]");
	refused("NTMM_CPU_ZERO_PAGE", "-9223372036854775809", "does not fit 63 bits");
	refused("NTMM_CPU_ZERO_PAGE", "--1", "not a decimal number");
	refused("NTMM_CPU_ZERO_PAGE", "-", "not a decimal number");
	refused("NTMM_CPU_ZERO_PAGE", "1.5", "trailing characters");
	refused("NTMM_START_THREADS", "yes", "not a decimal number");
	refused("NTMM_START_THREADS", "", "empty");
}

static void u64_seed_takes_64_bits(void **state)
{
	(void)state;
	assert_true(taken("NTMM_ASLR_SEED", "18446744073709551615").aslr_seed == UINT64_MAX);
	assert_true(taken("NTMM_ASLR_SEED", "0123").aslr_seed == 123);
	refused("NTMM_ASLR_SEED", "18446744073709551616", "does not fit 64 bits");
	refused("NTMM_ASLR_SEED", "0x10", "trailing characters");
	refused("NTMM_ASLR_SEED", "-1", "negative");
	refused("NTMM_ASLR_SEED", "", "empty");
}

static void strings_and_names_are_checked(void **state)
{
	(void)state;
	assert_int_equal(taken("NTMM_BACKING", "4K").backing, NTMM_BACKING_4K);
	assert_int_equal(taken("NTMM_BACKING", "thp").backing, NTMM_BACKING_THP);
	assert_string_equal(taken("NTMM_TOPOLOGY", "pack:2 numa:1 core:1 pu:1").topology,
	                    "pack:2 numa:1 core:1 pu:1");
	refused("NTMM_BACKING", "huge", "not one of auto, hugetlb, thp, 4k");
	refused("NTMM_BACKING", "4k ", "not one of");
	refused("NTMM_BACKING", "", "not one of");
	refused("NTMM_TOPOLOGY", "", "empty");
	refused("NTMM_PAGEFILE_PATH", "", "empty");
}

/* A long value is quoted shortened; the first bad variable is the one
   named; clearing env_error accepts the defaults left in place. */
static void first_error_is_kept_and_can_be_cleared(void **state)
{
	(void)state;
	char longv[200];
	memset(longv, '7', sizeof(longv) - 2);
	longv[sizeof(longv) - 2] = 'x';
	longv[sizeof(longv) - 1] = 0;
	refused("NTMM_SWAP_IDLE_MS", longv, "does not fit 63 bits");

	setenv("NTMM_PHYSICAL_BYTES", "1O0M", 1); /* letter O */
	setenv("NTMM_BALANCE_TICK_MS", "4294967297", 1);
	ntmm_config_t c;
	ntmm_config_init(&c);
	assert_non_null(strstr(c.env_error, "NTMM_PHYSICAL_BYTES=\"1O0M\""));
	assert_null(strstr(c.env_error, "BALANCE"));
	assert_int_equal(c.physical_bytes, 256 * MiB);
	assert_int_equal(c.balance_tick_ms, 1000);
	c.env_error[0] = 0;
	c.start_threads = 0;
	c.physical_bytes = 16 * MiB;
	ntmm_engine_t *e = NULL;
	assert_int_equal(ntmm_engine_create(&c, &e), 0);
	ntmm_engine_destroy(e);
	clean_env(NULL);
}

/* The size parser the command line shares: exact or -1. */
static void parse_size_is_exact_or_refuses(void **state)
{
	(void)state;
	assert_int_equal(ntmm__parse_size("4T"), 4ll << 40);
	assert_int_equal(ntmm__parse_size("010M"), 10ll << 20);
	assert_int_equal(ntmm__parse_size("8388607T"), 8388607ll << 40);
	assert_int_equal(ntmm__parse_size("9223372036854775807"), INT64_MAX);
	assert_int_equal(ntmm__parse_size("16777220T"), -1);
	assert_int_equal(ntmm__parse_size("8388608T"), -1); /* 2^63 */
	assert_int_equal(ntmm__parse_size("9223372036854775808"), -1);
	assert_int_equal(ntmm__parse_size("0x10"), -1);
	assert_int_equal(ntmm__parse_size("-1"), -1);
	assert_int_equal(ntmm__parse_size(""), -1);
	assert_int_equal(ntmm__parse_size("3abc"), -1);
	assert_int_equal(ntmm__parse_size(NULL), -1);
}

static void null_config_is_einval_for_the_checked_form(void **state)
{
	(void)state;
	ntmm_config_init(NULL);
	assert_int_equal(ntmm_config_init_checked(NULL), NTMM_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(sizes_are_decimal_with_one_suffix, clean_env,
	                                    clean_env),
	    cmocka_unit_test_setup_teardown(size_overflow_is_refused, clean_env, clean_env),
	    cmocka_unit_test_setup_teardown(size_malformed_is_refused, clean_env, clean_env),
	    cmocka_unit_test_setup_teardown(unsigned_values_are_exact, clean_env, clean_env),
	    cmocka_unit_test_setup_teardown(int_values_are_exact, clean_env, clean_env),
	    cmocka_unit_test_setup_teardown(u64_seed_takes_64_bits, clean_env, clean_env),
	    cmocka_unit_test_setup_teardown(strings_and_names_are_checked, clean_env, clean_env),
	    cmocka_unit_test_setup_teardown(first_error_is_kept_and_can_be_cleared, clean_env,
	                                    clean_env),
	    cmocka_unit_test(parse_size_is_exact_or_refuses),
	    cmocka_unit_test(null_config_is_einval_for_the_checked_form),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
