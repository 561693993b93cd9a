/*
 * Paging benchmarks beside the peers in bench_io.c:
 *   BM_hard_fault       — a page that lives only in the paging file, faulted
 *                         in by a 1-byte ntmm_read: frame allocation, the
 *                         in-page transition, one 4 KiB read, the valid PTE
 *                         (items = pages). Pages are written at a stride of
 *                         two, so no neighbour is in the paging file and no
 *                         read is clustered: each fault is one 4 KiB read,
 *                         the fair match for BM_peer_pread_4k. Between
 *                         batches of 256 faults (timer paused) the pages are
 *                         trimmed and every Standby page is repurposed, so
 *                         each timed access is a true hard fault.
 *   BM_modified_writer  — the modified page writer's path (take, sort,
 *                         free the stale copies, allocate runs, one vectored
 *                         write per run, move to Standby) over one writer
 *                         batch of 256 pages just re-dirtied (items = pages),
 *                         beside BM_peer_pwrite_seq (64 KiB pwrites of one
 *                         buffer). Both write recently touched memory; with
 *                         a cold source (4096 pages, 16 MiB) the kernel's
 *                         copy dominates and the writer reaches about 0.65x
 *                         the peer's rate, with 1024 pages about 0.8x.
 * Both use a paging file in $TMPDIR (default /tmp), as the peers do; the
 * engine runs without system threads so the writer's batches run on the
 * benchmark thread and are timed exactly. Wall-clock time (real_time).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "shim.h"
#include "threads/writers.h"

#define PG       4096ull
#define HF_PAGES 4096u /* pages faulted per round (16 MiB in the paging file) */
#define MW_PAGES 256u  /* pages per writer round: one writer batch (1 MiB) */

typedef struct pctx {
	ntmm_engine_t *e;
	ntmm_process_t *p;
	uint64_t base;
	char dir[512];
	char path[600];
	uint32_t *perm;
	size_t idx;
	const char *skip;
} pctx_t;

static pctx_t *env(size_t pool_mib, size_t pf_mib)
{
	pctx_t *c = calloc(1, sizeof(*c));
	const char *base = getenv("TMPDIR");
	snprintf(c->dir, sizeof(c->dir), "%s/ntmm-bench-paging-XXXXXX",
	         base && *base ? base : "/tmp");
	if (!mkdtemp(c->dir)) {
		c->skip = "cannot create a temporary directory";
		return c;
	}
	snprintf(c->path, sizeof(c->path), "%s/pagefile.sys", c->dir);
	ntmm_config_t cfg;
	ntmm_config_init(&cfg);
	cfg.physical_bytes = pool_mib << 20;
	cfg.pagefile_path = c->path;
	cfg.pagefile_initial = pf_mib << 20;
	cfg.pagefile_maximum = pf_mib << 20;
	cfg.start_threads = 0;
	if (ntmm_engine_create(&cfg, &c->e) || ntmm_thread_register(c->e) ||
	    ntmm_process_create(c->e, &c->p)) {
		c->skip = "engine creation failed";
		return c;
	}
	return c;
}

static void env_done(void *ctx)
{
	pctx_t *c = ctx;
	if (c->e) {
		ntmm_thread_unregister(c->e);
		ntmm_engine_destroy(c->e);
	}
	rmdir(c->dir);
	free(c->perm);
	free(c);
}

static void write_modified(ntmm_engine_t *e)
{
	while (ntmm__mpw_write_batch(e, NTMM__MPW_BATCH, NULL) > 0)
		;
}

/* Every Standby page leaves memory (its PTE becomes a pagefile PTE). */
static void repurpose_standby(ntmm_engine_t *e)
{
	size_t cap = e->phys.nframes, n = 0;
	ntmm__pfn_t *v = malloc(cap * sizeof(*v));
	while (n < cap &&
	       ntmm__page_alloc(e, 0, NTMM__ALLOC_NODE_ANY, NTMM__COLOUR_ANY, &v[n]) == 0)
		n++;
	for (size_t i = 0; i < n; i++)
		ntmm__page_free(e, v[i]);
	free(v);
}

static void page_out(pctx_t *c)
{
	ntmm_ws_empty(c->p);
	write_modified(c->e);
	repurpose_standby(c->e);
}

/* ------------------------------------------------------------ hard fault */

static void *hf_setup(int threads)
{
	(void)threads;
	/* a small pool: the pause's page-out walks every frame, and a large
	   pool would only make that walk evict more of the fault path's data */
	pctx_t *c = env(8, 64);
	if (c->skip)
		return c;
	if (ntmm_allocate(c->p, &c->base, 2 * HF_PAGES * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT,
	                  NTMM_PAGE_READWRITE)) {
		c->skip = "commit failed";
		return c;
	}
	static char page[4096];
	for (uint32_t i = 0; i < HF_PAGES; i++) {
		memset(page, (int)(i & 0xff) | 1, sizeof(page));
		if (ntmm_write(c->p, c->base + 2 * i * PG, page, PG)) {
			c->skip = "write failed";
			return c;
		}
		if (i % 1024 == 1023)
			page_out(c);
	}
	page_out(c);
	c->perm = malloc(HF_PAGES * sizeof(*c->perm));
	for (uint32_t i = 0; i < HF_PAGES; i++)
		c->perm[i] = i;
	uint64_t s = 0x9e3779b97f4a7c15ull;
	for (uint32_t i = HF_PAGES - 1; i > 0; i--) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		uint32_t j = (uint32_t)(s % (i + 1));
		uint32_t t = c->perm[i];
		c->perm[i] = c->perm[j];
		c->perm[j] = t;
	}
	return c;
}

static void run_hard_fault(ntmm_bench_state_t *st, void *ctx)
{
	pctx_t *c = ctx;
	if (c->skip) {
		ntmm_bench_skip(st, c->skip);
		return;
	}
	ntmm_stats_t s0, s1;
	ntmm_stats_get(c->e, &s0);
	uint64_t hard = 0;
	while (ntmm_bench_keep_running_batch(st, 256)) {
		ntmm_bench_pause(st);
		page_out(c);
		ntmm_bench_resume(st);
		for (int i = 0; i < 256; i++) {
			uint64_t va = c->base + 2ull * c->perm[c->idx++ % HF_PAGES] * PG;
			char b;
			if (ntmm_read(c->p, va, &b, 1))
				abort();
			hard += ntmm_last_fault_kind() == NTMM_FAULT_HARD;
		}
	}
	ntmm_stats_get(c->e, &s1);
	uint64_t it = ntmm_bench_iterations(st);
	ntmm_bench_set_items(st, (int64_t)it);
	ntmm_bench_set_bytes(st, (int64_t)(it * PG));
	ntmm_bench_counter(st, "hard_share", it ? (double)hard / (double)it : 0);
	ntmm_bench_counter(st, "reads_per_fault",
	                   hard ? (double)(s1.read_ios - s0.read_ios) / (double)hard : 0);
}
NTMM_BENCH(BM_hard_fault, .run = run_hard_fault, .setup = hf_setup, .teardown = env_done,
           .real_time = 1)

/* ------------------------------------------------------ modified writer */

static void *mw_setup(int threads)
{
	(void)threads;
	pctx_t *c = env(64, 64);
	if (c->skip)
		return c;
	if (ntmm_allocate(c->p, &c->base, MW_PAGES * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT,
	                  NTMM_PAGE_READWRITE))
		c->skip = "commit failed";
	return c;
}

static void run_modified_writer(ntmm_bench_state_t *st, void *ctx)
{
	pctx_t *c = ctx;
	if (c->skip) {
		ntmm_bench_skip(st, c->skip);
		return;
	}
	uint64_t gen = 0;
	while (ntmm_bench_keep_running_batch(st, MW_PAGES)) {
		ntmm_bench_pause(st);
		gen++;
		for (uint32_t i = 0; i < MW_PAGES; i++) {
			uint64_t v = gen * 0x9e3779b97f4a7c15ull + i;
			if (ntmm_write(c->p, c->base + i * PG, &v, sizeof(v)))
				abort();
		}
		ntmm_ws_empty(c->p);
		ntmm_bench_resume(st);
		size_t n = 0, k;
		while ((k = ntmm__mpw_write_batch(c->e, NTMM__MPW_BATCH, NULL)) > 0)
			n += k;
		if (n != MW_PAGES)
			abort();
	}
	uint64_t it = ntmm_bench_iterations(st);
	ntmm_bench_set_items(st, (int64_t)it);
	ntmm_bench_set_bytes(st, (int64_t)(it * PG));
}
NTMM_BENCH(BM_modified_writer, .run = run_modified_writer, .setup = mw_setup, .teardown = env_done,
           .real_time = 1)
