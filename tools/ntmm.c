/*
 * The `ntmm` command: a dispatcher over subcommands that look into an
 * engine the way the Windows tools look into Windows. So far `info`, which
 * creates an engine as configured and reports what it got; `demo`, `vm`,
 * `rammap`, `vmmap` and `top` come with later issues.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "tools.h"

typedef struct subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
} subcommand_t;

static const subcommand_t subcommands[] = {
    {"info", ntmm__tool_info,
     "[--json] [--physical=SIZE] [--topology=STR] [--backing=auto|hugetlb|thp|4k] "
     "[--no-threads]\n"
     "        create an engine and report its backing, nodes, frames, PFN entry size,\n"
     "        paging I/O backend and system threads (policy and priority obtained)"},
    {"demo", ntmm__tool_demo,
     "[--json] [--physical=SIZE] [--overcommit=X] [--processes=N] [--seconds=S]\n"
     "        [--phase=S] [--writes=F] [--patterns=sequential,random,zipf] [--dir=PATH]\n"
     "        commit several times the frame pool across processes, page it through a\n"
     "        paging file under changing access patterns, verify every byte, report\n"
     "        faults by kind with latency percentiles, I/O rates, the paging I/O backend\n"
     "        and thread policies; exit 1 on any access error, lost byte or failed audit"},
};

static void usage(FILE *out)
{
	fprintf(out, "usage: ntmm COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(out, "  %s %s\n", subcommands[i].name, subcommands[i].help);
	fprintf(out, "\nEngine settings also come from NTMM_* environment variables "
	             "(e.g. NTMM_PHYSICAL_BYTES=512M).\n");
}

const char *ntmm__tool_opt(const char *arg, const char *name)
{
	size_t n = strlen(name);
	if (strncmp(arg, "--", 2) || strncmp(arg + 2, name, n) || arg[2 + n] != '=')
		return NULL;
	return arg + 3 + n;
}

size_t ntmm__tool_size(const char *s)
{
	long long v = ntmm__parse_size(s); /* the engine's option parser */
	return v > 0 ? (size_t)v : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (!strcmp(argv[1], subcommands[i].name))
			return subcommands[i].run(argc - 2, argv + 2);
	fprintf(stderr, "ntmm: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
