/*
 * `ntmm info [--json]`: creates an engine as the NTMM_* environment and then
 * the options say, and reports what this machine gave it — the backing and
 * why, the NUMA nodes with their CPUs, distances and frames, the bytes per
 * PFN entry, the page colours, the paging I/O backend (io_uring or
 * preadv/pwritev, for which requests, and why), and every system thread
 * with the scheduling policy and priority it actually obtained (and why,
 * when degraded).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ntmm/stats.h>

#include "engine.h"
#include "tools.h"

static json_object *node_json(ntmm_engine_t *e, unsigned n)
{
	ntmm__phys_t *ph = &e->phys;
	ntmm__node_info_t ni;
	ntmm__phys_node_info(e, n, &ni);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "node", json_object_new_int64(n));
	json_object_object_add(o, "os_index", json_object_new_int64(ph->topo.os_node[n]));
	json_object_object_add(o, "frames", json_object_new_uint64(ni.frames));
	json_object_object_add(o, "committed_frames", json_object_new_uint64(ni.committed_frames));
	json_object_object_add(o, "zeroed", json_object_new_uint64(ni.zeroed));
	json_object_object_add(o, "free", json_object_new_uint64(ni.free_));
	json_object *cpus = json_object_new_array();
	for (unsigned c = 0; c < ph->ncpus; c++)
		if (ph->topo.cpu_node[c] == n)
			json_object_array_add(cpus, json_object_new_int64(c));
	json_object_object_add(o, "cpus", cpus);
	json_object *dist = json_object_new_array();
	for (unsigned m = 0; m < ph->nnodes; m++)
		json_object_array_add(dist, json_object_new_int64(ph->topo.distance[n][m]));
	json_object_object_add(o, "distances", dist);
	return o;
}

static void print_json(ntmm_engine_t *e)
{
	ntmm__phys_t *ph = &e->phys;
	ntmm_stats_t s;
	ntmm_stats_get(e, &s);
	char version[32], io[512];
	snprintf(version, sizeof(version), "%d.%d", NTMM_VERSION_MAJOR, NTMM_VERSION_MINOR);
	ntmm_engine_io_backend(e, io, sizeof(io));
	json_object *o = json_object_new_object();
	json_object_object_add(o, "version", json_object_new_string(version));
	json_object_object_add(o, "backing",
	                       json_object_new_string(ntmm__backing_name(ph->backing)));
	json_object_object_add(o, "backing_reason", ntmm__tool_json_str(ph->backing_note));
	json_object_object_add(o, "physical_bytes", json_object_new_uint64(ph->bytes));
	json_object_object_add(o, "frames", json_object_new_uint64(ph->nframes));
	json_object_object_add(o, "committed_frames",
	                       json_object_new_uint64(s.committed_chunk_frames));
	json_object_object_add(o, "chunk_bytes", json_object_new_uint64(NTMM__CHUNK_BYTES));
	json_object_object_add(o, "pfn_entry_bytes",
	                       json_object_new_uint64(sizeof(ntmm__pfn_entry_t)));
	json_object_object_add(o, "page_colours", json_object_new_int64(ph->ncolours));
	json_object_object_add(o, "cpus", json_object_new_int64(ph->ncpus));
	json_object_object_add(o, "topology", ntmm__tool_json_str(e->cfg.topology));
	json_object_object_add(o, "io_backend", json_object_new_string(io));
	json_object_object_add(o, "memory_bound", json_object_new_boolean(ph->bound));
	json_object *nodes = json_object_new_array();
	for (unsigned n = 0; n < ph->nnodes; n++)
		json_object_array_add(nodes, node_json(e, n));
	json_object_object_add(o, "nodes", nodes);
	json_object_object_add(o, "threads", ntmm__tool_threads_json(e));
	ntmm__tool_print_json(o, true);
}

static void print_text(ntmm_engine_t *e)
{
	ntmm__phys_t *ph = &e->phys;
	printf("ntmm %d.%d engine on this machine\n", NTMM_VERSION_MAJOR, NTMM_VERSION_MINOR);
	printf("  backing        %s (%s)\n", ntmm__backing_name(ph->backing), ph->backing_note);
	printf("  pool           %zu MiB = %zu frames of 4 KiB in %u chunks of 2 MiB\n",
	       ph->bytes >> 20, ph->nframes, ph->nchunks);
	printf("  PFN entry      %zu bytes (%zu KiB for the database)\n", sizeof(ntmm__pfn_entry_t),
	       ph->db_bytes >> 10);
	printf("  page colours   %u\n", ph->ncolours);
	printf("  topology       %s%s\n", e->cfg.topology ? e->cfg.topology : "this machine",
	       ph->bound ? ", memory bound per node" : "");
	char io[512];
	ntmm_engine_io_backend(e, io, sizeof(io));
	printf("  paging I/O     %s\n", io);
	printf("\n  %-5s %-10s %-12s %-12s %-10s %s\n", "node", "frames", "committed", "cpus",
	       "os index", "distances");
	for (unsigned n = 0; n < ph->nnodes; n++) {
		ntmm__node_info_t ni;
		ntmm__phys_node_info(e, n, &ni);
		char cpus[64] = "";
		size_t len = 0;
		for (unsigned c = 0; c < ph->ncpus && len + 8 < sizeof(cpus); c++)
			if (ph->topo.cpu_node[c] == n)
				len += (size_t)snprintf(cpus + len, sizeof(cpus) - len, "%s%u",
				                        len ? "," : "", c);
		printf("  %-5u %-10zu %-12zu %-12s %-10u", n, ni.frames, ni.committed_frames, cpus,
		       ph->topo.os_node[n]);
		for (unsigned m = 0; m < ph->nnodes; m++)
			printf(" %u", ph->topo.distance[n][m]);
		printf("\n");
	}
	printf("\n");
	ntmm__tool_print_threads(e, stdout);
}

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: ntmm info [options]\n"
	    "  --physical=SIZE       frame pool (default 64M, or NTMM_PHYSICAL_BYTES when set)\n"
	    "  --topology=STR        hwloc synthetic topology (default: this machine, or\n"
	    "                        NTMM_TOPOLOGY)\n"
	    "  --backing=KIND        auto | hugetlb | thp | 4k (default auto, or NTMM_BACKING)\n"
	    "  --no-threads          do not start the system threads\n"
	    "  --json                one JSON object on stdout (errors too)\n"
	    "Other engine settings come from the NTMM_* environment variables.\n");
}

static const struct option info_longs[] = {{"physical", required_argument, 0, 'm'},
                                           {"topology", required_argument, 0, 't'},
                                           {"backing", required_argument, 0, 'b'},
                                           {"no-threads", no_argument, 0, 'n'},
                                           {"json", no_argument, 0, 'j'},
                                           {"help", no_argument, 0, 'h'},
                                           {0, 0, 0, 0}};

typedef struct info_args {
	ntmm__tool_t *t;
	ntmm_config_t *cfg;
} info_args_t;

static int apply_option(void *ctx, int opt, const char *v)
{
	info_args_t *a = ctx;
	switch (opt) {
	case 'm':
		return ntmm__tool_parse_size(a->t, "physical", v, &a->cfg->physical_bytes);
	case 't':
		a->cfg->topology = v;
		return 0;
	case 'b':
		for (int k = 0; k < 4; k++)
			if (!strcasecmp(v, ntmm__backing_name(k))) {
				a->cfg->backing = k;
				return 0;
			}
		return ntmm__tool_usage_error(a->t, "--backing=%s: unknown (auto|hugetlb|thp|4k)",
		                              v);
	case 'n':
		a->cfg->start_threads = 0;
		return 0;
	default: /* 'j': ntmm__tool_parse has set t->json */
		return 0;
	}
}

int ntmm__tool_info(int argc, char **argv)
{
	ntmm__tool_t t = {.cmd = "info", .usage = usage, .longs = info_longs};
	ntmm_config_t cfg;
	ntmm_config_init(&cfg); /* defaults, then the NTMM_* environment */
	if (!getenv("NTMM_PHYSICAL_BYTES"))
		cfg.physical_bytes = 64u << 20; /* small: info only looks */
	info_args_t a = {&t, &cfg};
	int rc = ntmm__tool_parse(&t, argc, argv, apply_option, &a);
	if (rc)
		return rc < 0 ? 0 : rc;
	ntmm_engine_t *e = NULL;
	int err = ntmm_engine_create(&cfg, &e);
	if (err)
		return ntmm__tool_engine_error(&t, "engine", err);
	if (t.json)
		print_json(e);
	else
		print_text(e);
	ntmm_engine_destroy(e);
	return 0;
}
