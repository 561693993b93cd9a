/* The `ntmm` command line: every bad option value is a usage error (exit 2)
   whose message names the option and the value; under --json every error is
   one JSON object {"error", "detail"} on stdout; `info` and `demo` start
   from the NTMM_* environment and let the options override it; the demo's
   JSON report parses and carries the fields scripts/bench.sh and
   bench/report.py read; SIGINT and SIGTERM stop the demo cleanly: it dies
   of that signal and leaves no file behind. The tool runs as a child
   process (build/<preset>/ntmm beside test/). */
#include "testutil.h"

#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

static char tool[PATH_MAX + 16];
static char tmpbase[PATH_MAX];

static int setup(void **state)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return -1;
	self[n] = 0;
	*strrchr(self, '/') = 0;
	snprintf(tool, sizeof(tool), "%s/../ntmm", self);
	const char *t = getenv("NTMM_TEST_TMPDIR");
	snprintf(tmpbase, sizeof(tmpbase), "%s", t ? t : "/tmp");
	return 0;
}

#define NEED_TOOL()                                                                              \
	do {                                                                                     \
		if (access(tool, X_OK)) {                                                        \
			fprintf(stderr, "skipped: %s not built (NTMM_BUILD_TOOLS=OFF)\n", tool); \
			skip();                                                                  \
		}                                                                                \
	} while (0)

/* ------------------------------------------------------------ running it */

typedef struct buf {
	char s[1 << 18];
	size_t n;
} buf_t;

typedef struct child {
	pid_t pid;
	int out, err; /* read ends of its stdout and stderr; -1 at EOF */
	buf_t o, e;
} child_t;

/* Starts `ntmm args...` with the stop signals at their defaults (a test
   run from a background job inherits them ignored) and NTMM_PHYSICAL_BYTES
   unset unless env sets it. env: "NAME=VALUE" strings, NULL-terminated. */
static void spawn(child_t *c, const char *const *args, const char *const *env)
{
	int po[2], pe[2], px[2];
	assert_int_equal(pipe(po), 0);
	assert_int_equal(pipe(pe), 0);
	assert_int_equal(pipe2(px, O_CLOEXEC), 0); /* closes at exec: spawn returns after it */
	c->o.n = c->e.n = 0;
	c->o.s[0] = c->e.s[0] = 0;
	c->pid = fork();
	assert_true(c->pid >= 0);
	if (!c->pid) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		close(po[0]), close(po[1]), close(pe[0]), close(pe[1]), close(px[0]);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		unsetenv("NTMM_PHYSICAL_BYTES");
		for (; env && *env; env++)
			putenv((char *)*env);
		char *argv[64];
		int n = 0;
		argv[n++] = tool;
		for (; *args && n < 63; args++)
			argv[n++] = (char *)*args;
		argv[n] = NULL;
		execv(tool, argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	close(px[1]);
	/* Until the exec the child runs this program with the mask it inherited
	   (a CI runner may block SIGINT and SIGTERM): a look at its signal mask
	   must wait for the exec, which closes px[1]. */
	char b;
	while (read(px[0], &b, 1) < 0 && errno == EINTR)
		;
	close(px[0]);
	c->out = po[0];
	c->err = pe[0];
}

static void take(int *fd, buf_t *b)
{
	char tmp[4096];
	ssize_t n = read(*fd, tmp, sizeof(tmp));
	if (n <= 0) {
		if (n < 0 && errno == EINTR)
			return;
		close(*fd);
		*fd = -1;
		return;
	}
	size_t room = sizeof(b->s) - 1 - b->n;
	size_t k = (size_t)n < room ? (size_t)n : room;
	memcpy(b->s + b->n, tmp, k);
	b->n += k;
	b->s[b->n] = 0;
}

/* Reads the child's output until both pipes close or, with `until`, until
   its stderr holds that text; gives up after limit_s seconds (a guard
   against a hang, not a measurement). True when the condition was met. */
static bool drain(child_t *c, const char *until, int limit_s)
{
	uint64_t end = test_now_ns() + (uint64_t)limit_s * 1000000000u;
	while (c->out >= 0 || c->err >= 0) {
		if (until && strstr(c->e.s, until))
			return true;
		if (test_now_ns() > end)
			return false;
		struct pollfd p[2] = {{.fd = c->out, .events = POLLIN},
		                      {.fd = c->err, .events = POLLIN}};
		if (poll(p, 2, 200) <= 0)
			continue;
		if (p[0].revents)
			take(&c->out, &c->o);
		if (p[1].revents)
			take(&c->err, &c->e);
	}
	return until ? strstr(c->e.s, until) != NULL : true;
}

/* Waits for the child to exit (at most limit_s seconds, then kills it and
   fails); returns its wait status. */
static int reap(child_t *c, int limit_s)
{
	bool closed = drain(c, NULL, limit_s);
	int status = 0;
	uint64_t end = test_now_ns() + (uint64_t)limit_s * 1000000000u;
	pid_t r;
	while ((r = waitpid(c->pid, &status, WNOHANG)) == 0 && test_now_ns() < end)
		usleep(20000);
	if (r != c->pid) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, &status, 0);
		fail_msg("ntmm did not exit within %d s; stderr:\n%s", limit_s, c->e.s);
	}
	assert_true(closed);
	return status;
}

/* Runs `ntmm args...` to its end: the exit status (-1 if killed). */
static int run(child_t *c, const char *const *args, const char *const *env)
{
	spawn(c, args, env);
	int st = reap(c, 600);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static child_t ch; /* output buffers too large for the stack */

/* ------------------------------------------------------------ JSON */

static json_object *parse_json(const char *s)
{
	json_object *o = json_tokener_parse(s);
	if (!o)
		fail_msg("not JSON: '%s'", s);
	assert_true(json_object_is_type(o, json_type_object));
	return o;
}

/* o's member at a dotted path ("faults.hard.p99_ns"), which must exist. */
static json_object *member(json_object *o, const char *path)
{
	char key[128];
	snprintf(key, sizeof(key), "%s", path);
	for (char *save = NULL, *k = strtok_r(key, ".", &save); k; k = strtok_r(NULL, ".", &save)) {
		json_object *v;
		if (!json_object_object_get_ex(o, k, &v))
			fail_msg("no member '%s' (of '%s')", k, path);
		o = v;
	}
	return o;
}

static int64_t member_int(json_object *o, const char *path)
{
	json_object *v = member(o, path);
	assert_true(json_object_is_type(v, json_type_int));
	return json_object_get_int64(v);
}

static const char *member_str(json_object *o, const char *path)
{
	json_object *v = member(o, path);
	assert_true(json_object_is_type(v, json_type_string));
	return json_object_get_string(v);
}

/* stdout is exactly one error object whose detail names `names` (if set). */
static void assert_json_error(const char *out, const char *error_has, const char *names)
{
	json_object *o = parse_json(out);
	assert_int_equal(json_object_object_length(o), 2);
	const char *err = member_str(o, "error"), *detail = member_str(o, "detail");
	if (error_has && !strstr(err, error_has))
		fail_msg("error '%s' lacks '%s'", err, error_has);
	if (names && !strstr(detail, names))
		fail_msg("detail '%s' lacks '%s'", detail, names);
	json_object_put(o);
}

/* ------------------------------------------------------------ usage errors */

static void bad_values_are_usage_errors_naming_option_and_value(void **state)
{
	NEED_TOOL();
	static const struct {
		const char *cmd, *arg, *names;
	} cases[] = {
	    {"demo", "--physical=abc", "--physical=abc"},
	    {"demo", "--physical=12Q", "--physical=12Q"},
	    {"demo", "--physical=-1M", "--physical=-1M"},
	    {"demo", "--physical= 4M", "--physical= 4M"},
	    {"demo", "--physical=0", "--physical=0"},
	    {"demo", "--seconds=nan", "--seconds=nan"},
	    {"demo", "--seconds=inf", "--seconds=inf"},
	    {"demo", "--seconds=-1", "--seconds=-1"},
	    {"demo", "--seconds=0", "--seconds=0"},
	    {"demo", "--seconds=1e999", "--seconds=1e999"},
	    {"demo", "--seconds=2x", "--seconds=2x"},
	    {"demo", "--seconds=", "--seconds="},
	    {"demo", "--overcommit=inf", "--overcommit=inf"},
	    {"demo", "--overcommit=0", "--overcommit=0"},
	    {"demo", "--processes=3abc", "--processes=3abc"},
	    {"demo", "--processes=0", "--processes=0"},
	    {"demo", "--processes=1.5", "--processes=1.5"},
	    {"demo", "--processes=99999999999999999999", "--processes=99999999999999999999"},
	    {"demo", "--phase=-1", "--phase=-1"},
	    {"demo", "--writes=1.5", "--writes=1.5"},
	    {"demo", "--zipf=nan", "--zipf=nan"},
	    {"demo", "--patterns=bogus", "bogus"},
	    {"demo", "--patterns=,", "--patterns=,"},
	    {"demo", "--no-such-option", "--no-such-option"},
	    {"demo", "--quiet=1", "--quiet"},
	    {"demo", "--physical", "--physical"},
	    {"demo", "stray", "stray"},
	    {"info", "--physical=abc", "--physical=abc"},
	    {"info", "--backing=bogus", "--backing=bogus"},
	    {"info", "--no-such-option", "--no-such-option"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = run(&ch, ARGS(cases[i].cmd, cases[i].arg), NULL);
		if (rc != 2 || !strstr(ch.e.s, cases[i].names) || ch.o.n)
			fail_msg("ntmm %s '%s': exit %d, stderr '%s', stdout '%s' (want exit 2 "
			         "and a message naming '%s')",
			         cases[i].cmd, cases[i].arg, rc, ch.e.s, ch.o.s, cases[i].names);
		char prefix[32];
		snprintf(prefix, sizeof(prefix), "ntmm %s: ", cases[i].cmd);
		assert_non_null(strstr(ch.e.s, prefix));
	}
}

static void help_exits_0_with_the_option_list(void **state)
{
	NEED_TOOL();
	assert_int_equal(run(&ch, ARGS("demo", "--help"), NULL), 0);
	assert_non_null(strstr(ch.o.s, "--overcommit=X"));
	assert_int_equal(run(&ch, ARGS("info", "--help"), NULL), 0);
	assert_non_null(strstr(ch.o.s, "--backing=KIND"));
}

static void json_errors_are_one_object_on_stdout(void **state)
{
	NEED_TOOL();
	/* --json before or after the bad option, and abbreviated */
	assert_int_equal(run(&ch, ARGS("demo", "--json", "--physical=abc"), NULL), 2);
	assert_json_error(ch.o.s, "usage", "--physical=abc");
	assert_int_equal(run(&ch, ARGS("demo", "--seconds=nan", "--json"), NULL), 2);
	assert_json_error(ch.o.s, "usage", "--seconds=nan");
	assert_int_equal(run(&ch, ARGS("demo", "--overcommit=inf", "--json"), NULL), 2);
	assert_json_error(ch.o.s, "usage", "--overcommit=inf");
	assert_int_equal(run(&ch, ARGS("demo", "--json", "--bogus"), NULL), 2);
	assert_json_error(ch.o.s, "usage", "--bogus");
	assert_int_equal(run(&ch, ARGS("info", "--json", "--backing=x"), NULL), 2);
	assert_json_error(ch.o.s, "usage", "--backing=x");
	assert_int_equal(run(&ch, ARGS("nosuchcommand", "--json"), NULL), 2);
	assert_json_error(ch.o.s, "usage", "unknown command");
	/* an engine error: its code and ntmm_error_detail(); exit 1 */
	assert_int_equal(run(&ch, ARGS("info", "--json", "--topology=nonsense"), NULL), 1);
	assert_json_error(ch.o.s, "NTMM_EINVAL", "topology");
	assert_int_equal(run(&ch, ARGS("demo", "--json", "--physical=3M", "--seconds=1"), NULL), 1);
	assert_json_error(ch.o.s, "NTMM_EINVAL", "physical_bytes");
}

/* ------------------------------------------------------------ environment */

static void info_starts_from_the_environment_and_options_override_it(void **state)
{
	NEED_TOOL();
	assert_int_equal(
	    run(&ch, ARGS("info", "--json", "--no-threads"), ARGS("NTMM_PHYSICAL_BYTES=32M")), 0);
	json_object *o = parse_json(ch.o.s);
	assert_int_equal(member_int(o, "physical_bytes"), 32 << 20);
	assert_int_equal(member_int(o, "frames"), 8192);
	json_object_put(o);

	assert_int_equal(run(&ch, ARGS("info", "--json", "--no-threads", "--physical=16M"),
	                     ARGS("NTMM_PHYSICAL_BYTES=32M")),
	                 0);
	o = parse_json(ch.o.s);
	assert_int_equal(member_int(o, "physical_bytes"), 16 << 20);
	json_object_put(o);

	/* without the variable: info's own small default */
	assert_int_equal(run(&ch, ARGS("info", "--json", "--no-threads"), NULL), 0);
	o = parse_json(ch.o.s);
	assert_int_equal(member_int(o, "physical_bytes"), 64 << 20);
	json_object_put(o);
}

static char *make_dir(char *buf, size_t n)
{
	if (snprintf(buf, n, "%s/ntmm-cli-XXXXXX", tmpbase) >= (int)n)
		fail_msg("temporary directory name too long: %s", tmpbase);
	assert_non_null(mkdtemp(buf));
	return buf;
}

/* Entries in dir other than . and .. */
static int dir_entries(const char *dir, char *first, size_t n)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	int count = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			if (!count++)
				snprintf(first, n, "%s", de->d_name);
		}
	closedir(d);
	return count;
}

static void assert_dir_empty_and_remove(const char *dir)
{
	char first[256] = "";
	int n = dir_entries(dir, first, sizeof(first));
	if (n)
		fail_msg("%s holds %d entries (first: %s)", dir, n, first);
	rmdir(dir);
}

static void demo_json_report_has_the_fields_the_bench_scripts_read(void **state)
{
	NEED_TOOL();
	char dir[PATH_MAX], dopt[PATH_MAX + 8];
	make_dir(dir, sizeof(dir));
	snprintf(dopt, sizeof(dopt), "--dir=%s", dir);
	int rc =
	    run(&ch, ARGS("demo", "--json", "--seconds=1", "--overcommit=2", "--processes=2", dopt),
	        ARGS("NTMM_PHYSICAL_BYTES=16M"));
	if (rc != 0)
		fail_msg("demo exit %d; stdout '%s' stderr '%s'", rc, ch.o.s, ch.e.s);
	json_object *o = parse_json(ch.o.s);
	assert_int_equal(member_int(o, "physical_bytes"), 16 << 20); /* from the environment */
	assert_int_equal(member_int(o, "processes"), 2);
	int64_t committed = member_int(o, "committed_bytes");
	assert_true(committed >= 32 << 20);
	assert_true(json_object_get_boolean(member(o, "ok")));
	assert_int_equal(member_int(o, "verified_pages"), committed / 4096);
	assert_int_equal(member_int(o, "bad_pages"), 0);
	assert_int_equal(member_int(o, "access_errors"), 0);
	assert_int_equal(member_int(o, "audit"), 0);
	assert_true(member_int(o, "accesses") > 0);
	/* scripts/bench.sh and bench/report.py (targets.txt's demo rows) */
	static const char *kinds[] = {"valid", "soft", "demand_zero", "hard", "collided"};
	static const char *figs[] = {"count", "p50_ns", "p99_ns", "p999_ns"};
	for (size_t k = 0; k < 5; k++)
		for (size_t f = 0; f < 4; f++) {
			char path[64];
			snprintf(path, sizeof(path), "faults.%s.%s", kinds[k], figs[f]);
			assert_true(member_int(o, path) >= 0);
		}
	assert_true(member_int(o, "soft_plus_demand_zero.p50_ns") > 0);
	assert_true(member_int(o, "soft_plus_demand_zero.p99_ns") >=
	            member_int(o, "soft_plus_demand_zero.p50_ns"));
	assert_true(json_object_is_type(member(o, "hard_faults_per_s"), json_type_double));
	assert_true(json_object_is_type(member(o, "pages_written_per_s"), json_type_double));
	assert_true(json_object_get_double(member(o, "seconds")) >= 1.0);
	assert_true(json_object_is_type(member(o, "threads"), json_type_array));
	assert_true(json_object_array_length(member(o, "failures")) == 0);
	json_object_put(o);
	assert_dir_empty_and_remove(dir); /* the paging file is gone */
}

/* ------------------------------------------------------------ signals */

/* True once pid blocks sig (its /proc status SigBlk mask): the demo has
   taken over the stop signals. */
static bool blocks_signal(pid_t pid, int sig)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	unsigned long long mask = 0;
	bool found = false;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "SigBlk: %llx", &mask) == 1) {
			found = true;
			break;
		}
	if (f)
		fclose(f);
	return found && (mask >> (sig - 1) & 1);
}

/* Runs the demo for far longer than the test, waits until it is under way
   (json: until it blocks the stop signals, its first step; text: until the
   workers' progress line), sends sig, and checks that it dies of sig within
   a bounded time and leaves nothing in its directory. With use_tmpdir the
   demo makes its own directory under TMPDIR=dir, otherwise --dir=dir. */
static void stop_demo_with(int sig, bool json, bool use_tmpdir)
{
	NEED_TOOL();
	char dir[PATH_MAX], dopt[PATH_MAX + 8], env[PATH_MAX + 8];
	make_dir(dir, sizeof(dir));
	snprintf(dopt, sizeof(dopt), "--dir=%s", dir);
	snprintf(env, sizeof(env), "TMPDIR=%s", dir);
	const char *args[] = {"demo",
	                      "--physical=16M",
	                      "--seconds=3600",
	                      json ? "--json" : "--processes=2",
	                      use_tmpdir ? NULL : dopt,
	                      NULL};
	const char *envs[] = {use_tmpdir ? env : NULL, NULL};
	spawn(&ch, args, envs);
	if (json) {
		uint64_t end = test_now_ns() + 120 * 1000000000ull;
		while (!blocks_signal(ch.pid, sig) && test_now_ns() < end)
			usleep(1000);
		assert_true(blocks_signal(ch.pid, sig));
	} else if (!drain(&ch, "accesses", 120)) {
		kill(ch.pid, SIGKILL);
		fail_msg("the demo showed no progress; stderr '%s'", ch.e.s);
	}
	assert_int_equal(kill(ch.pid, sig), 0);
	int st = reap(&ch, 120);
	if (!WIFSIGNALED(st) || WTERMSIG(st) != sig)
		fail_msg("demo: wait status %#x, want death by signal %d; stderr '%s'", st, sig,
		         ch.e.s);
	assert_dir_empty_and_remove(dir); /* no paging file, no directory of its own */
	if (!strstr(ch.e.s, sig == SIGINT ? "stopped by SIGINT" : "stopped by SIGTERM"))
		fail_msg("demo's stderr does not say it was stopped: '%s'", ch.e.s);
	if (json)
		assert_json_error(ch.o.s, "interrupted", "stopped by");
}

static void demo_stopped_by_sigint_dies_of_it_and_leaves_no_file(void **state)
{
	stop_demo_with(SIGINT, false, false);
}

static void demo_stopped_by_sigterm_removes_its_temporary_directory(void **state)
{
	stop_demo_with(SIGTERM, false, true);
}

static void demo_stopped_under_json_says_so_as_json(void **state)
{
	stop_demo_with(SIGTERM, true, false);
	stop_demo_with(SIGINT, true, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(bad_values_are_usage_errors_naming_option_and_value),
	    cmocka_unit_test(help_exits_0_with_the_option_list),
	    cmocka_unit_test(json_errors_are_one_object_on_stdout),
	    cmocka_unit_test(info_starts_from_the_environment_and_options_override_it),
	    cmocka_unit_test(demo_json_report_has_the_fields_the_bench_scripts_read),
	    cmocka_unit_test(demo_stopped_by_sigint_dies_of_it_and_leaves_no_file),
	    cmocka_unit_test(demo_stopped_by_sigterm_removes_its_temporary_directory),
	    cmocka_unit_test(demo_stopped_under_json_says_so_as_json),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
