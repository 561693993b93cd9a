/*
 * Working set manager benchmarks (items = working-set pages):
 *   BM_wsm_age — one aging pass over a resident 16384-page working set
 *     (clear Accessed, age the entries, histogram), per page, vs
 *     BM_peer_madv_cold — the kernel's closest per-range operation,
 *     MADV_COLD (deactivate: the pages move to the inactive LRU, their
 *     young bits are cleared) over a resident anonymous range of the same
 *     size, re-touched with the timer paused.
 *   BM_wsm_trim — trimming the whole set oldest first (the manager's
 *     trim: invalidate, one grace period, pages to Standby), per page; the
 *     pages are read back with the timer paused.
 */
#include "shim.h"

#include <ntmm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "engine.h"

#define PG       4096ull
#define WS_PAGES 16384u

typedef struct wsb {
	ntmm_engine_t *e;
	ntmm_process_t *p;
	uint64_t base;
} wsb_t;

static void touch_all(wsb_t *c)
{
	for (size_t i = 0; i < WS_PAGES; i++) {
		char b;
		ntmm_read(c->p, c->base + i * PG, &b, 1);
	}
}

static void *wsb_setup(int threads)
{
	(void)threads;
	wsb_t *c = calloc(1, sizeof(*c));
	ntmm_config_t cfg;
	ntmm_config_init(&cfg);
	cfg.physical_bytes = 256ull << 20;
	cfg.start_threads = 0;
	cfg.pagefile_path = NULL;
	if (ntmm_engine_create(&cfg, &c->e))
		abort();
	ntmm_thread_register(c->e);
	if (ntmm_process_create(c->e, &c->p) ||
	    ntmm_allocate(c->p, &c->base, WS_PAGES * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT,
	                  NTMM_PAGE_READWRITE) ||
	    ntmm_ws_set_limits(c->p, 1, 2 * WS_PAGES))
		abort();
	touch_all(c);
	return c;
}

static void wsb_teardown(void *ctx)
{
	wsb_t *c = ctx;
	ntmm_process_destroy(c->p);
	ntmm_thread_unregister(c->e);
	ntmm_engine_destroy(c->e);
	free(c);
}

static void age_run(ntmm_bench_state_t *st, void *ctx)
{
	wsb_t *c = ctx;
	ntmm_thread_register(c->e);
	size_t hist[8];
	while (ntmm_bench_keep_running(st)) {
		ntmm__wsm_age(c->p, hist);
		ntmm_bench_escape(hist);
	}
	ntmm_bench_set_items(st, (int64_t)(ntmm_bench_iterations(st) * WS_PAGES));
	ntmm_thread_unregister(c->e);
}
NTMM_BENCH(BM_wsm_age, .run = age_run, .setup = wsb_setup, .teardown = wsb_teardown)

static void trim_run(ntmm_bench_state_t *st, void *ctx)
{
	wsb_t *c = ctx;
	ntmm_thread_register(c->e);
	size_t hist[8];
	while (ntmm_bench_keep_running(st)) {
		ntmm_bench_pause(st);
		touch_all(c);
		ntmm__wsm_age(c->p, hist);
		ntmm_bench_resume(st);
		if (ntmm__wsm_trim_oldest(c->p, hist, WS_PAGES, 0, NULL) != WS_PAGES) {
			ntmm_bench_skip(st, "trim took fewer pages than the set holds");
			break;
		}
	}
	ntmm_bench_set_items(st, (int64_t)(ntmm_bench_iterations(st) * WS_PAGES));
	ntmm_thread_unregister(c->e);
}
NTMM_BENCH(BM_wsm_trim, .run = trim_run, .setup = wsb_setup, .teardown = wsb_teardown)

static void cold_run(ntmm_bench_state_t *st, void *ctx)
{
	(void)ctx;
	size_t len = WS_PAGES * PG;
	char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		ntmm_bench_skip(st, "mmap failed");
		return;
	}
	madvise(m, len, MADV_NOHUGEPAGE); /* 4 KiB pages, as the engine's */
	memset(m, 1, len);
	while (ntmm_bench_keep_running(st)) {
		ntmm_bench_pause(st);
		for (size_t i = 0; i < len; i += PG)
			((volatile char *)m)[i]++; /* young again */
		ntmm_bench_resume(st);
		if (madvise(m, len, MADV_COLD) != 0) {
			ntmm_bench_skip(st, "MADV_COLD not supported");
			break;
		}
	}
	ntmm_bench_set_items(st, (int64_t)(ntmm_bench_iterations(st) * WS_PAGES));
	munmap(m, len);
}
NTMM_BENCH(BM_peer_madv_cold, .run = cold_run)
