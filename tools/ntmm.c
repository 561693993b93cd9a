/*
 * The `ntmm` command: a dispatcher over subcommands that look into an
 * engine the way the Windows tools look into Windows: `info`, which creates
 * an engine as configured and reports what it got, and `demo`, a verified
 * paging workload. Each subcommand parses its own options (tools/cli.c
 * holds the conventions they share).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
     "[--json] [--quiet] [--physical=SIZE] [--overcommit=X] [--processes=N]\n"
     "        [--seconds=S] [--phase=S] [--writes=F] [--patterns=sequential,random,zipf]\n"
     "        [--zipf=S] [--dir=PATH]\n"
     "        commit several times the frame pool across processes, page it through a\n"
     "        paging file under changing access patterns, verify every byte, report\n"
     "        faults by kind with latency percentiles, I/O rates, the paging I/O backend\n"
     "        and thread policies; exit 1 on any access error, lost byte or failed audit;\n"
     "        SIGINT or SIGTERM stops it cleanly (paging file removed, then the signal)"},
};

static void usage(FILE *out)
{
	fprintf(out, "usage: ntmm COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(out, "  %s %s\n", subcommands[i].name, subcommands[i].help);
	fprintf(out, "\nEngine settings start from the NTMM_* environment variables "
	             "(e.g. NTMM_PHYSICAL_BYTES=512M);\n"
	             "options override them. `ntmm COMMAND --help` lists a command's options.\n"
	             "Exit status: 0 success, 1 the run failed, 2 a usage error; under --json an "
	             "error\nis also a JSON object {\"error\": ..., \"detail\": ...} on stdout.\n");
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
			return subcommands[i].run(argc - 1, argv + 1);
	ntmm__tool_t t = {.cmd = argv[1], .usage = usage};
	for (int i = 2; i < argc && strcmp(argv[i], "--"); i++)
		t.json |= !strcmp(argv[i], "--json");
	ntmm__tool_fail(&t, 2, "usage", "unknown command (commands: info, demo)");
	if (!t.json)
		usage(stderr);
	return 2;
}
