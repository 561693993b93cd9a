/*
 * Helpers for the paging tests: an engine with a real paging file in a
 * scratch directory (optionally through the fault-injecting driver), page
 * patterns that name their owner and version, and a way to make every
 * Standby page leave memory (repurpose them all) so that the next access
 * is a hard fault.
 */
#ifndef NTMM_TEST_PAGING_TESTUTIL_H
#define NTMM_TEST_PAGING_TESTUTIL_H

#include "iotest.h"
#include <ntmm/stats.h>

#include "engine.h"
#include "threads/writers.h"

#define PG  4096ull
#define MiB (1024ull * 1024)

typedef struct paging_env {
	ntmm_engine_t *e;
	char *dir;
	ntmm__faultdrv_t *fd; /* NULL unless asked for */
} paging_env_t;

/* pool_mib of frames; a paging file initial..maximum MiB, through the
   fault-injecting driver "faulty" when `faulty`; system threads if
   `threads`. */
static inline paging_env_t paging_env(size_t pool_mib, size_t pf_init_mib, size_t pf_max_mib,
                                      bool threads, bool faulty)
{
	paging_env_t v = {0};
	v.dir = io_tmpdir();
	ntmm_config_t c;
	ntmm_config_init(&c);
	c.physical_bytes = pool_mib * MiB;
	c.start_threads = threads;
	c.aslr_seed = 0;
	char *path = io_path(v.dir, "pagefile.sys");
	c.pagefile_path = faulty ? NULL : path;
	c.pagefile_initial = pf_init_mib * MiB;
	c.pagefile_maximum = pf_max_mib * MiB;
	assert_int_equal(ntmm_engine_create(&c, &v.e), 0);
	assert_int_equal(ntmm_thread_register(v.e), 0);
	if (faulty) {
		v.fd = calloc(1, sizeof(*v.fd));
		ntmm__faultdrv_init(v.fd, "faulty", &v.e->io.file_driver);
		assert_int_equal(ntmm__io_driver_register(&v.e->io, &v.fd->drv), 0);
		assert_int_equal(ntmm__pagefile_add(&v.e->io, path, pf_init_mib * MiB,
		                                    pf_max_mib * MiB, "faulty", NULL),
		                 0);
	}
	free(path);
	return v;
}

static inline void paging_env_done(paging_env_t *v)
{
	ntmm_thread_unregister(v->e);
	ntmm_engine_destroy(v->e);
	free(v->fd);
	io_rmtree(v->dir);
}

static inline uint64_t pstat(ntmm_engine_t *e, size_t offset)
{
	ntmm_stats_t st;
	assert_int_equal(ntmm_stats_get(e, &st), 0);
	return *(uint64_t *)((char *)&st + offset);
}
#define PSTAT(e, field) pstat((e), offsetof(ntmm_stats_t, field))

/* Writes every Modified page (the writer's path, on this thread). */
static inline size_t write_all_modified(ntmm_engine_t *e)
{
	size_t total = 0, k;
	while ((k = ntmm__mpw_write_batch(e, NTMM__MPW_BATCH, NULL)) > 0)
		total += k;
	return total;
}

/* Takes every frame the allocator will give (repurposing all Standby
   pages: their PTEs become pagefile PTEs again) and frees them. */
static inline size_t repurpose_all(ntmm_engine_t *e)
{
	size_t cap = e->phys.nframes, n = 0;
	ntmm__pfn_t *v = malloc(cap * sizeof(*v));
	while (n < cap &&
	       ntmm__page_alloc(e, 0, NTMM__ALLOC_NODE_ANY, NTMM__COLOUR_ANY, &v[n]) == 0)
		n++;
	for (size_t i = 0; i < n; i++)
		ntmm__page_free(e, v[i]);
	free(v);
	return n;
}

static inline uint64_t commit_pages(ntmm_process_t *p, size_t pages)
{
	uint64_t a = 0;
	assert_int_equal(ntmm_allocate(p, &a, pages * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT,
	                               NTMM_PAGE_READWRITE),
	                 0);
	return a;
}

/* Waits (sleeping, bounded) until cond holds; returns whether it did. */
/* Dirty pages to the paging file and out of memory: trim, write, repurpose
   every Standby page; every PTE of [a, a + n pages) is then a pagefile PTE. */
static inline void page_out(ntmm_engine_t *e, ntmm_process_t *p, uint64_t a, size_t n)
{
	assert_int_equal(ntmm_ws_empty(p), 0);
	write_all_modified(e);
	repurpose_all(e);
	ntmm_access_begin(e);
	for (size_t i = 0; i < n; i++) {
		_Atomic uint64_t *pte = ntmm__pt_lookup(p, a + i * PG);
		assert_non_null(pte);
		assert_true(ntmm__pte_is_pagefile(atomic_load(pte)));
	}
	ntmm_access_end(e);
}

#define WAIT_UNTIL(cond, seconds)                                                  \
	({                                                                         \
		uint64_t _end = test_now_ns() + (uint64_t)(seconds)*1000000000ull; \
		while (!(cond) && test_now_ns() < _end) {                          \
			struct timespec _ts = {0, 1000000};                        \
			nanosleep(&_ts, NULL);                                     \
		}                                                                  \
		(bool)(cond);                                                      \
	})

#endif
