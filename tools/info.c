/*
 * `ntmm info [--json]`: creates an engine as the options and NTMM_*
 * environment say, and reports what this machine gave it — the backing and
 * why, the NUMA nodes with their CPUs, distances and frames, the bytes per
 * PFN entry, the page colours, the paging I/O backend (io_uring or
 * preadv/pwritev, for which requests, and why), and every system thread
 * with the scheduling policy and priority it actually obtained (and why,
 * when degraded).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <ntmm/stats.h>

#include "engine.h"
#include "tools.h"

static void json_str(FILE *o, const char *s)
{
	fputc('"', o);
	for (; s && *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(o, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(o, "\\u%04x", *s);
		else
			fputc(*s, o);
	}
	fputc('"', o);
}

static void print_json(ntmm_engine_t *e)
{
	ntmm__phys_t *ph = &e->phys;
	ntmm_stats_t s;
	ntmm_stats_get(e, &s);
	FILE *o = stdout;
	fprintf(o, "{\n  \"version\": \"%d.%d\",\n", NTMM_VERSION_MAJOR, NTMM_VERSION_MINOR);
	fprintf(o,
	        "  \"backing\": \"%s\",\n  \"backing_reason\": ", ntmm__backing_name(ph->backing));
	json_str(o, ph->backing_note);
	fprintf(o, ",\n  \"physical_bytes\": %zu,\n  \"frames\": %zu,\n", ph->bytes, ph->nframes);
	fprintf(o, "  \"committed_frames\": %llu,\n", (unsigned long long)s.committed_chunk_frames);
	fprintf(o, "  \"chunk_bytes\": %llu,\n", (unsigned long long)NTMM__CHUNK_BYTES);
	fprintf(o, "  \"pfn_entry_bytes\": %zu,\n", sizeof(ntmm__pfn_entry_t));
	fprintf(o, "  \"page_colours\": %u,\n  \"cpus\": %u,\n", ph->ncolours, ph->ncpus);
	fprintf(o, "  \"topology\": ");
	if (e->cfg.topology)
		json_str(o, e->cfg.topology);
	else
		fprintf(o, "null");
	char io[512];
	ntmm_engine_io_backend(e, io, sizeof(io));
	fprintf(o, ",\n  \"io_backend\": ");
	json_str(o, io);
	fprintf(o, ",\n  \"memory_bound\": %s,\n  \"nodes\": [\n", ph->bound ? "true" : "false");
	for (unsigned n = 0; n < ph->nnodes; n++) {
		ntmm__node_info_t ni;
		ntmm__phys_node_info(e, n, &ni);
		fprintf(o,
		        "    {\"node\": %u, \"os_index\": %u, \"frames\": %zu, "
		        "\"committed_frames\": %zu, \"zeroed\": %zu, \"free\": %zu, \"cpus\": [",
		        n, ph->topo.os_node[n], ni.frames, ni.committed_frames, ni.zeroed,
		        ni.free_);
		const char *sep = "";
		for (unsigned c = 0; c < ph->ncpus; c++)
			if (ph->topo.cpu_node[c] == n) {
				fprintf(o, "%s%u", sep, c);
				sep = ", ";
			}
		fprintf(o, "], \"distances\": [");
		for (unsigned m = 0; m < ph->nnodes; m++)
			fprintf(o, "%s%u", m ? ", " : "", ph->topo.distance[n][m]);
		fprintf(o, "]}%s\n", n + 1 < ph->nnodes ? "," : "");
	}
	fprintf(o, "  ],\n  \"threads\": ");
	ntmm__tool_print_threads(e, o, true);
	fprintf(o, "\n}\n");
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
	ntmm__tool_print_threads(e, stdout, false);
}

int ntmm__tool_info(int argc, char **argv)
{
	ntmm_config_t cfg;
	ntmm_config_init(&cfg);
	cfg.physical_bytes = 64u << 20; /* small: info only looks */
	bool json = false;
	for (int i = 0; i < argc; i++) {
		const char *v;
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--no-threads"))
			cfg.start_threads = 0;
		else if ((v = ntmm__tool_opt(argv[i], "physical"))) {
			cfg.physical_bytes = ntmm__tool_size(v);
			if (!cfg.physical_bytes) {
				fprintf(stderr, "ntmm info: bad size '%s'\n", v);
				return 2;
			}
		} else if ((v = ntmm__tool_opt(argv[i], "topology")))
			cfg.topology = v;
		else if ((v = ntmm__tool_opt(argv[i], "backing"))) {
			int b = -1;
			for (int k = 0; k < 4; k++)
				if (!strcasecmp(v, ntmm__backing_name(k)))
					b = k;
			if (b < 0) {
				fprintf(stderr,
				        "ntmm info: unknown backing '%s' (auto|hugetlb|thp|4k)\n",
				        v);
				return 2;
			}
			cfg.backing = b;
		} else {
			fprintf(stderr, "ntmm info: unknown option '%s'\n", argv[i]);
			return 2;
		}
	}
	ntmm_engine_t *e = NULL;
	int err = ntmm_engine_create(&cfg, &e);
	if (err) {
		fprintf(stderr, "ntmm info: %s: %s\n", ntmm_strerror(err), ntmm_error_detail());
		return 1;
	}
	if (json)
		print_json(e);
	else
		print_text(e);
	ntmm_engine_destroy(e);
	return 0;
}
