/*
 * The `ntmm` command's subcommands (tools/ntmm.c dispatches) and the
 * conventions they share (tools/cli.c): one getopt_long driver, strict
 * parsers for numeric option values, and one way to report an error — a
 * line on stderr naming the command, and under --json also a JSON object
 * {"error": ..., "detail": ...} on stdout. Exit status 2 is a usage error
 * (bad option or value), 1 a failure of the run, 0 success.
 */
#ifndef NTMM_TOOLS_H
#define NTMM_TOOLS_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <json-c/json.h>

#include <ntmm.h>

/* Each subcommand takes its own words, argv[0] being its name, and returns
   the process exit status. */
int ntmm__tool_info(int argc, char **argv);
int ntmm__tool_demo(int argc, char **argv);

/* ---- cli.c */

#define NTMM__TOOL_USAGE 2 /* exit status of a usage error */

typedef struct ntmm__tool {
	const char *cmd;            /* messages read "ntmm CMD: ..." */
	bool json;                  /* errors also go to stdout as a JSON object */
	void (*usage)(FILE *out);   /* the subcommand's option list */
	const struct option *longs; /* its getopt_long table ({0} ends it) */
} ntmm__tool_t;

/* Parses argv with t->longs through getopt_long, calling apply for each
   option (arg: its value or NULL). apply returns 0 to go on, or an exit
   status to stop with. An unknown option, a missing or unexpected value and
   a stray argument are usage errors (reported here, status 2); --help (an
   entry with val 'h') prints t->usage to stdout and gives -1: "done, exit
   0". Returns 0 when every option was applied. Sets t->json first when
   argv holds --json, so that errors in any option are reported as JSON. */
int ntmm__tool_parse(ntmm__tool_t *t, int argc, char **argv,
                     int (*apply)(void *ctx, int opt, const char *arg), void *ctx);

/* Reports an error (see the top of this file) and returns status.
   error is the headline (e.g. "usage", an ntmm_strerror text), detail says
   what was wrong. */
int ntmm__tool_fail(const ntmm__tool_t *t, int status, const char *error, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A usage error (status 2): fmt names the option and the value at fault. */
int ntmm__tool_usage_error(const ntmm__tool_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* An engine call failed with err: "what: ntmm_strerror(err)", with
   ntmm_error_detail() as the detail; status 1. */
int ntmm__tool_engine_error(const ntmm__tool_t *t, const char *what, int err);

/* Strict option values: the whole string must be the number (no leading
   space, no trailing junk), finite and within [min, max]; otherwise a usage
   error naming --opt and the value is reported and 2 returned. */
int ntmm__tool_parse_double(const ntmm__tool_t *t, const char *opt, const char *v, double min,
                            double max, double *out);
int ntmm__tool_parse_int(const ntmm__tool_t *t, const char *opt, const char *v, long min, long max,
                         int *out);
/* A size: digits with an optional K/M/G/T suffix (the engine's parser,
   ntmm__parse_size), at least 1 byte. */
int ntmm__tool_parse_size(const ntmm__tool_t *t, const char *opt, const char *v, size_t *out);

/* Prints obj on stdout followed by a newline (pretty: indented), then
   releases it. */
void ntmm__tool_print_json(json_object *obj, bool pretty);
/* A JSON number shown with printf format fmt (e.g. "%.3f"). */
json_object *ntmm__tool_json_double(double v, const char *fmt);
/* A JSON string, or null for NULL. */
json_object *ntmm__tool_json_str(const char *s);

/* ---- threads.c: the system threads with the scheduling they obtained */

void ntmm__tool_print_threads(ntmm_engine_t *e, FILE *o);
json_object *ntmm__tool_threads_json(ntmm_engine_t *e);

#endif
