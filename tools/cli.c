/*
 * The command-line conventions every `ntmm` subcommand shares: options go
 * through one getopt_long driver, every numeric value through a strict
 * parser that names the option and the value it refuses, and every error
 * through one reporter, so that a script running with --json always gets a
 * JSON object on stdout, even for a misspelt option.
 */
#include "tools.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

static int vfail(const ntmm__tool_t *t, int status, const char *error, const char *fmt, va_list ap)
{
	char detail[1024];
	vsnprintf(detail, sizeof(detail), fmt, ap);
	if (!strcmp(error, "usage"))
		fprintf(stderr, "ntmm %s: %s\n", t->cmd, detail);
	else
		fprintf(stderr, "ntmm %s: %s: %s\n", t->cmd, error, detail);
	if (t->json) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "error", json_object_new_string(error));
		json_object_object_add(o, "detail", json_object_new_string(detail));
		ntmm__tool_print_json(o, false);
	}
	return status;
}

int ntmm__tool_fail(const ntmm__tool_t *t, int status, const char *error, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vfail(t, status, error, fmt, ap);
	va_end(ap);
	return rc;
}

int ntmm__tool_usage_error(const ntmm__tool_t *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vfail(t, NTMM__TOOL_USAGE, "usage", fmt, ap);
	va_end(ap);
	if (!t->json)
		fprintf(stderr, "(ntmm %s --help lists the options)\n", t->cmd);
	return rc;
}

int ntmm__tool_engine_error(const ntmm__tool_t *t, const char *what, int err)
{
	/* copy the detail first: it is thread-local and any call may reset it */
	char detail[512];
	snprintf(detail, sizeof(detail), "%s", ntmm_error_detail());
	return ntmm__tool_fail(t, 1, ntmm_strerror(err), "%s: %s", what,
	                       detail[0] ? detail : "(no detail)");
}

/* "--name=value" or "--name": the entry of t->longs it names exactly. */
static const struct option *find_long(const ntmm__tool_t *t, const char *word)
{
	if (strncmp(word, "--", 2))
		return NULL;
	const char *name = word + 2, *eq = strchr(name, '=');
	size_t n = eq ? (size_t)(eq - name) : strlen(name);
	for (const struct option *o = t->longs; o->name; o++)
		if (strlen(o->name) == n && !strncmp(o->name, name, n))
			return o;
	return NULL;
}

int ntmm__tool_parse(ntmm__tool_t *t, int argc, char **argv,
                     int (*apply)(void *ctx, int opt, const char *arg), void *ctx)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--json"))
			t->json = true;
	opterr = 0; /* every message comes from here, as JSON too under --json */
	optind = 0; /* 0: glibc re-initialises its scan */
	int c, li = -1;
	/* ':' first: a missing value is ':' rather than '?' */
	while ((c = getopt_long(argc, argv, ":", t->longs, &li)) != -1) {
		const char *word = argv[optind - 1];
		if (c == ':') {
			return ntmm__tool_usage_error(t, "option '%s' needs a value (%s=VALUE)",
			                              word, word);
		} else if (c == '?') {
			const struct option *o = find_long(t, word);
			if (strncmp(word, "--", 2)) /* a short option: none is known */
				return ntmm__tool_usage_error(t, "unknown option '-%c'", optopt);
			if (o && o->has_arg == no_argument && strchr(word, '='))
				return ntmm__tool_usage_error(
				    t, "option '--%s' takes no value (got '%s')", o->name, word);
			return ntmm__tool_usage_error(t, "unknown or ambiguous option '%s'", word);
		} else if (c == 'h') {
			t->usage(stdout);
			return -1;
		}
		if (li >= 0 && !strcmp(t->longs[li].name, "json"))
			t->json = true; /* also when abbreviated (--js) */
		li = -1;
		int rc = apply(ctx, c, optarg);
		if (rc)
			return rc;
	}
	if (optind < argc)
		return ntmm__tool_usage_error(t, "unexpected argument '%s'", argv[optind]);
	return 0;
}

int ntmm__tool_parse_double(const ntmm__tool_t *t, const char *opt, const char *v, double min,
                            double max, double *out)
{
	char *end = NULL;
	double d = 0;
	bool num = *v && !isspace((unsigned char)*v);
	errno = 0;
	if (num)
		d = strtod(v, &end);
	if (!num || end == v || *end)
		return ntmm__tool_usage_error(t, "--%s=%s: not a number", opt, v);
	if (isnan(d) || (isinf(d) && errno != ERANGE))
		return ntmm__tool_usage_error(t, "--%s=%s: not a finite number", opt, v);
	if (errno == ERANGE)
		return ntmm__tool_usage_error(t, "--%s=%s: out of range", opt, v);
	if (d < min || d > max)
		return ntmm__tool_usage_error(t, "--%s=%s: outside [%g, %g]", opt, v, min, max);
	*out = d;
	return 0;
}

int ntmm__tool_parse_int(const ntmm__tool_t *t, const char *opt, const char *v, long min, long max,
                         int *out)
{
	char *end = NULL;
	long x = 0;
	bool num = isdigit((unsigned char)v[0]) || (v[0] == '-' && isdigit((unsigned char)v[1]));
	errno = 0;
	if (num)
		x = strtol(v, &end, 10);
	if (!num || *end)
		return ntmm__tool_usage_error(t, "--%s=%s: not a whole number", opt, v);
	if (errno == ERANGE || x < min || x > max)
		return ntmm__tool_usage_error(t, "--%s=%s: outside [%ld, %ld]", opt, v, min, max);
	*out = (int)x;
	return 0;
}

int ntmm__tool_parse_size(const ntmm__tool_t *t, const char *opt, const char *v, size_t *out)
{
	/* digits first: the engine's parser takes strtoull's sign and spaces */
	long long x = isdigit((unsigned char)*v) ? ntmm__parse_size(v) : -1;
	if (x < 0)
		return ntmm__tool_usage_error(
		    t,
		    "--%s=%s: not a size (a number of bytes with an optional K, M, G or T suffix)",
		    opt, v);
	if (x == 0)
		return ntmm__tool_usage_error(t, "--%s=%s: must be at least 1 byte", opt, v);
	*out = (size_t)x;
	return 0;
}

void ntmm__tool_print_json(json_object *obj, bool pretty)
{
	int flags =
	    JSON_C_TO_STRING_NOSLASHESCAPE |
	    (pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED : JSON_C_TO_STRING_PLAIN);
	printf("%s\n", json_object_to_json_string_ext(obj, flags));
	fflush(stdout);
	json_object_put(obj);
}

json_object *ntmm__tool_json_double(double v, const char *fmt)
{
	char s[64];
	snprintf(s, sizeof(s), fmt, v);
	return json_object_new_double_s(v, s);
}

json_object *ntmm__tool_json_str(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}
