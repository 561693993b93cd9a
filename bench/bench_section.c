/*
 * Section benchmarks (memory-mapped files, copy-on-write, clone) beside the
 * kernel doing the same thing with mmap and fork, each peer registered right
 * after its ntmm benchmark so both run in one invocation:
 *   BM_section_soft_fault   — a fresh read-only view of a 4 MiB file section
 *                             whose pages a holder process keeps resident,
 *                             each page read once, the view unmapped (the
 *                             prototype-PTE path; items = pages, map and
 *                             unmap included) vs BM_peer_kernel_file_fault:
 *                             mmap MAP_SHARED of the same size over a file in
 *                             the page cache, each page read once, munmap.
 *   BM_section_hard_fault   — a page of a file section that is out of the
 *                             engine, read by an 8-byte ntmm_read (items =
 *                             faults) vs BM_peer_pread_4k (bench_io.c). The
 *                             file stays in the kernel's page cache, so this
 *                             is the engine's read path against pread's copy.
 *                             Faults take even pages in random order while a
 *                             holder keeps every odd page resident, so no
 *                             fault can cluster and each is one 4 KiB read;
 *                             between batches of 256 (timer paused) the pages
 *                             are trimmed and every Standby page repurposed.
 *   BM_section_cow_fault    — the first write to a page of a WRITECOPY view
 *                             the process has already read (items = pages;
 *                             map, read and unmap paused) vs
 *                             BM_peer_kernel_cow_fault: the write to a
 *                             MAP_PRIVATE file page already read.
 *   BM_clone_256m           — ntmm_process_clone of a process with 256 MiB
 *                             committed and written, then the child destroyed
 *                             vs BM_peer_fork_256m: fork of this process with
 *                             256 MiB of anonymous 4 KiB pages written, the
 *                             child exiting at once, the parent waiting.
 *   BM_map_unmap_view_1m    — map and unmap a 1 MiB READWRITE view of a file
 *                             section, no page touched vs
 *                             BM_peer_mmap_munmap_1m (MAP_SHARED of a file).
 *   BM_mapped_writer        — 256 pages of one view dirtied (timer paused),
 *                             then ntmm_flush_view: written and fdatasync'ed
 *                             (items = pages) vs BM_peer_msync: 256 pages of
 *                             a MAP_SHARED mapping dirtied (paused), then
 *                             msync(MS_SYNC). Compared as rates.
 * The test files live in a fresh directory under $TMPDIR (default /tmp), one
 * per run, removed at teardown. Engines run without system threads, so the
 * work measured runs on the benchmark thread. A setup or step the engine
 * refuses marks the benchmark skipped with the call and its error detail;
 * the peers run regardless. Wall-clock time (real_time) throughout: fork's
 * child and the disk do part of the work on other threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine.h"
#include "shim.h"

#define PG       4096ull
#define GOLD     0x9e3779b97f4a7c15ull
#define SF_PAGES 1024u  /* soft fault: pages per view (4 MiB) */
#define HF_PAGES 2048u  /* hard fault: even pages faulted; the file has twice as many */
#define HF_BATCH 256u   /* hard faults between page-outs */
#define CW_PAGES 1024u  /* copy-on-write: pages per view (4 MiB) */
#define CL_PAGES 65536u /* clone / fork: 256 MiB written */
#define MU_PAGES 256u   /* map/unmap: 1 MiB views */
#define MW_PAGES 256u   /* mapped writer: pages dirtied per flush (1 MiB) */

/* The first word of file page i (the rest of the page follows it). */
static uint64_t expect(uint64_t i)
{
	return (i + 1) * GOLD;
}

/* One benchmark run's state: its file, and either an engine with the
   measured process, a holder process and a section, or a peer's mapping. */
typedef struct sec {
	char dir[512], path[600];
	int fd;                 /* the test file, O_RDWR; -1 none */
	size_t pages;           /* the file's size in pages */
	ntmm_engine_t *e;       /* NULL for peers */
	ntmm_process_t *p;      /* the measured process */
	ntmm_process_t *holder; /* keeps shared pages resident; NULL none */
	ntmm_section_t *s;      /* NULL none */
	uint64_t base;          /* p's standing view (0 none) */
	uint64_t hbase;         /* holder's view (0 none) */
	uint32_t *perm;         /* hard fault: a permutation of the even pages */
	size_t idx;
	uint64_t gen; /* writers: the generation of words last written */
	char *map;    /* peers: a standing mapping (NULL none), map_len bytes */
	size_t map_len;
	const char *skip; /* why the run cannot go on; NULL = fine */
	char why[320];
} sec_t;

/* Records an engine refusal as the run's skip reason: the call, the
   engine's error detail and the code. Returns rc. */
static int sec_fail(sec_t *c, const char *what, int rc)
{
	snprintf(c->why, sizeof(c->why), "%s: %s (%s)", what, ntmm_error_detail(),
	         ntmm_strerror(rc));
	c->skip = c->why;
	return rc;
}

static void sec_fail_sys(sec_t *c, const char *what)
{
	snprintf(c->why, sizeof(c->why), "%s: %s", what, strerror(errno));
	c->skip = c->why;
}

/* The same, inside a run: marks the benchmark skipped (which also stops its
   timer; the run must not pause or resume it afterwards). */
static void run_fail(ntmm_bench_state_t *st, sec_t *c, const char *what, int rc)
{
	sec_fail(c, what, rc);
	ntmm_bench_skip(st, c->why);
}

static sec_t *sec_new(void)
{
	sec_t *c = calloc(1, sizeof(*c));
	c->fd = -1;
	return c;
}

/* A file of `pages` pages in a fresh temporary directory, page i filled
   from expect(i); it stays in the page cache (just written). */
static int sec_file(sec_t *c, size_t pages)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(c->dir, sizeof(c->dir), "%s/ntmm-bench-section-XXXXXX",
	         tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(c->dir)) {
		c->dir[0] = 0;
		sec_fail_sys(c, "cannot create a temporary directory");
		return -1;
	}
	snprintf(c->path, sizeof(c->path), "%s/data", c->dir);
	c->fd = open(c->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (c->fd < 0) {
		sec_fail_sys(c, "cannot create the data file");
		return -1;
	}
	c->pages = pages;
	enum { CHUNK = 64 };
	uint64_t *buf = malloc(CHUNK * PG);
	for (size_t p = 0; p < pages; p += CHUNK) {
		size_t n = pages - p < CHUNK ? pages - p : CHUNK;
		for (size_t k = 0; k < n; k++)
			for (size_t w = 0; w < PG / 8; w++)
				buf[k * (PG / 8) + w] = expect(p + k) + w;
		if (pwrite(c->fd, buf, n * PG, (off_t)(p * PG)) != (ssize_t)(n * PG)) {
			free(buf);
			sec_fail_sys(c, "cannot write the data file");
			return -1;
		}
	}
	free(buf);
	return 0;
}

/* An engine of pool_mib MiB without system threads or paging file, the
   calling thread registered, and the measured process. */
static int sec_engine(sec_t *c, size_t pool_mib)
{
	ntmm_config_t cfg;
	ntmm_config_init(&cfg);
	cfg.physical_bytes = pool_mib << 20;
	cfg.pagefile_path = NULL;
	cfg.start_threads = 0;
	int rc = ntmm_engine_create(&cfg, &c->e);
	if (rc) {
		c->e = NULL;
		return sec_fail(c, "ntmm_engine_create", rc);
	}
	if ((rc = ntmm_thread_register(c->e)))
		return sec_fail(c, "ntmm_thread_register", rc);
	if ((rc = ntmm_process_create(c->e, &c->p))) {
		c->p = NULL;
		return sec_fail(c, "ntmm_process_create", rc);
	}
	return 0;
}

/* The file, an engine, and a section over the whole file with the given
   most permissive protection. */
static int sec_file_section(sec_t *c, size_t pages, size_t pool_mib, unsigned prot)
{
	if (sec_file(c, pages) || sec_engine(c, pool_mib))
		return -1;
	int rc = ntmm_section_create(c->e, c->fd, 0, prot, 0, &c->s);
	if (rc) {
		c->s = NULL;
		return sec_fail(c, "ntmm_section_create", rc);
	}
	return 0;
}

/* A holder process with a read-only view of the whole section that reads
   the pages first .. pages by step, making them resident and keeping them
   in its working set (nothing trims it: no system threads). */
static int sec_hold(sec_t *c, size_t first, size_t step)
{
	int rc = ntmm_process_create(c->e, &c->holder);
	if (rc) {
		c->holder = NULL;
		return sec_fail(c, "ntmm_process_create (holder)", rc);
	}
	if ((rc = ntmm_map_view(c->s, c->holder, &c->hbase, 0, 0, NTMM_PAGE_READONLY))) {
		c->hbase = 0;
		return sec_fail(c, "ntmm_map_view (holder)", rc);
	}
	for (size_t i = first; i < c->pages; i += step) {
		uint64_t v;
		if ((rc = ntmm_read(c->holder, c->hbase + i * PG, &v, sizeof(v))))
			return sec_fail(c, "ntmm_read (holder)", rc);
		if (v != expect(i)) {
			c->skip = "a view read data other than the file's";
			return -1;
		}
	}
	return 0;
}

static void sec_done(void *ctx)
{
	sec_t *c = ctx;
	if (c->e) {
		if (c->base)
			ntmm_unmap_view(c->p, c->base);
		if (c->hbase)
			ntmm_unmap_view(c->holder, c->hbase);
		if (c->s)
			ntmm_section_close(c->s);
		if (c->holder)
			ntmm_process_destroy(c->holder);
		if (c->p)
			ntmm_process_destroy(c->p);
		ntmm_thread_unregister(c->e);
		ntmm_engine_destroy(c->e);
	}
	if (c->map)
		munmap(c->map, c->map_len);
	if (c->fd >= 0)
		close(c->fd);
	if (c->dir[0]) {
		if (c->fd >= 0)
			unlink(c->path);
		rmdir(c->dir);
	}
	free(c->perm);
	free(c);
}

/* Peers: the file alone, optionally with a standing mapping of all of it. */
static sec_t *peer_file(size_t pages, int map_flags)
{
	sec_t *c = sec_new();
	if (sec_file(c, pages) || !map_flags)
		return c;
	c->map_len = pages * PG;
	c->map = mmap(NULL, c->map_len, PROT_READ | PROT_WRITE, map_flags, c->fd, 0);
	if (c->map == MAP_FAILED) {
		c->map = NULL;
		sec_fail_sys(c, "mmap");
	}
	return c;
}

/* ------------------------------------------------------------ soft fault */

static void *sf_setup(int threads)
{
	(void)threads;
	sec_t *c = sec_new();
	if (sec_file_section(c, SF_PAGES, 64, NTMM_PAGE_READONLY) == 0)
		sec_hold(c, 0, 1);
	return c;
}

static void run_section_soft_fault(ntmm_bench_state_t *st, void *ctx)
{
	sec_t *c = ctx;
	if (c->skip) {
		ntmm_bench_skip(st, c->skip);
		return;
	}
	ntmm_process_info_t i0, i1;
	ntmm_process_info(c->p, &i0);
	uint64_t soft = 0, bad = 0;
	while (ntmm_bench_keep_running_batch(st, SF_PAGES)) {
		uint64_t base = 0;
		int rc = ntmm_map_view(c->s, c->p, &base, 0, SF_PAGES * PG, NTMM_PAGE_READONLY);
		if (rc) {
			run_fail(st, c, "ntmm_map_view", rc);
			return;
		}
		for (size_t i = 0; i < SF_PAGES; i++) {
			const uint64_t *h;
			ntmm_access_begin(c->e);
			rc = ntmm_translate(c->p, base + i * PG, NTMM_ACCESS_READ, (void **)&h);
			if (rc == 0) {
				bad += *h != expect(i);
				soft += ntmm_last_fault_kind() == NTMM_FAULT_SOFT;
			}
			ntmm_access_end(c->e);
			if (rc) {
				run_fail(st, c, "ntmm_translate", rc);
				ntmm_unmap_view(c->p, base);
				return;
			}
		}
		if ((rc = ntmm_unmap_view(c->p, base))) {
			run_fail(st, c, "ntmm_unmap_view", rc);
			return;
		}
	}
	if (bad) {
		ntmm_bench_skip(st, "a view read data other than the file's");
		return;
	}
	ntmm_process_info(c->p, &i1);
	uint64_t it = ntmm_bench_iterations(st);
	ntmm_bench_set_items(st, (int64_t)it);
	ntmm_bench_counter(st, "soft_share", it ? (double)soft / (double)it : 0);
	ntmm_bench_counter(st, "faults_per_page",
	                   it ? (double)(i1.page_faults - i0.page_faults) / (double)it : 0);
}
NTMM_BENCH(BM_section_soft_fault, .run = run_section_soft_fault, .setup = sf_setup,
           .teardown = sec_done, .real_time = 1)

static void *kff_setup(int threads)
{
	(void)threads;
	return peer_file(SF_PAGES, 0);
}

static void run_peer_kernel_file_fault(ntmm_bench_state_t *st, void *ctx)
{
	sec_t *c = ctx;
	if (c->skip) {
		ntmm_bench_skip(st, c->skip);
		return;
	}
	uint64_t bad = 0;
	while (ntmm_bench_keep_running_batch(st, SF_PAGES)) {
		char *m = mmap(NULL, SF_PAGES * PG, PROT_READ, MAP_SHARED, c->fd, 0);
		if (m == MAP_FAILED) {
			sec_fail_sys(c, "mmap");
			ntmm_bench_skip(st, c->why);
			return;
		}
		for (size_t i = 0; i < SF_PAGES; i++)
			bad += *(volatile uint64_t *)(m + i * PG) != expect(i);
		munmap(m, SF_PAGES * PG);
	}
	if (bad) {
		ntmm_bench_skip(st, "the mapping read data other than the file's");
		return;
	}
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st));
}
NTMM_BENCH(BM_peer_kernel_file_fault, .run = run_peer_kernel_file_fault, .setup = kff_setup,
           .teardown = sec_done, .real_time = 1)

/* ------------------------------------------------------------ hard fault */

/* Every Standby page leaves memory: its prototype PTE goes back to
   describing the file. */
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

static void *hf_setup(int threads)
{
	(void)threads;
	sec_t *c = sec_new();
	/* a small pool: the page-out between batches walks every free frame */
	if (sec_file_section(c, 2 * HF_PAGES, 24, NTMM_PAGE_READONLY) || sec_hold(c, 1, 2))
		return c;
	int rc = ntmm_map_view(c->s, c->p, &c->base, 0, 0, NTMM_PAGE_READONLY);
	if (rc) {
		c->base = 0;
		sec_fail(c, "ntmm_map_view", rc);
		return c;
	}
	c->perm = malloc(HF_PAGES * sizeof(*c->perm));
	for (uint32_t i = 0; i < HF_PAGES; i++)
		c->perm[i] = i;
	uint64_t s = GOLD;
	for (uint32_t i = HF_PAGES - 1; i > 0; i--) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		uint32_t j = (uint32_t)(s % (i + 1)), t = c->perm[i];
		c->perm[i] = c->perm[j];
		c->perm[j] = t;
	}
	return c;
}

static void run_section_hard_fault(ntmm_bench_state_t *st, void *ctx)
{
	sec_t *c = ctx;
	if (c->skip) {
		ntmm_bench_skip(st, c->skip);
		return;
	}
	ntmm_stats_t s0, s1;
	ntmm_stats_get(c->e, &s0);
	uint64_t hard = 0, bad = 0;
	while (ntmm_bench_keep_running_batch(st, HF_BATCH)) {
		ntmm_bench_pause(st);
		int rc = ntmm_ws_empty(c->p);
		if (rc) {
			run_fail(st, c, "ntmm_ws_empty", rc);
			return;
		}
		repurpose_standby(c->e);
		ntmm_bench_resume(st);
		for (unsigned i = 0; i < HF_BATCH; i++) {
			uint64_t page = 2ull * c->perm[c->idx++ % HF_PAGES], v;
			if ((rc = ntmm_read(c->p, c->base + page * PG, &v, sizeof(v)))) {
				run_fail(st, c, "ntmm_read", rc);
				return;
			}
			bad += v != expect(page);
			hard += ntmm_last_fault_kind() == NTMM_FAULT_HARD;
		}
	}
	if (bad) {
		ntmm_bench_skip(st, "a view read data other than the file's");
		return;
	}
	ntmm_stats_get(c->e, &s1);
	uint64_t it = ntmm_bench_iterations(st);
	ntmm_bench_set_items(st, (int64_t)it);
	ntmm_bench_set_bytes(st, (int64_t)(it * PG));
	ntmm_bench_counter(st, "hard_share", it ? (double)hard / (double)it : 0);
	ntmm_bench_counter(st, "reads_per_fault",
	                   hard ? (double)(s1.read_ios - s0.read_ios) / (double)hard : 0);
}
NTMM_BENCH(BM_section_hard_fault, .run = run_section_hard_fault, .setup = hf_setup,
           .teardown = sec_done, .real_time = 1)

/* ------------------------------------------------------- copy-on-write */

static void *cw_setup(int threads)
{
	(void)threads;
	sec_t *c = sec_new();
	if (sec_file_section(c, CW_PAGES, 64, NTMM_PAGE_READWRITE) == 0)
		sec_hold(c, 0, 1);
	return c;
}

static void run_section_cow_fault(ntmm_bench_state_t *st, void *ctx)
{
	sec_t *c = ctx;
	if (c->skip) {
		ntmm_bench_skip(st, c->skip);
		return;
	}
	uint64_t cow = 0, bad = 0;
	while (ntmm_bench_keep_running_batch(st, CW_PAGES)) {
		ntmm_bench_pause(st);
		uint64_t base = 0;
		int rc = ntmm_map_view(c->s, c->p, &base, 0, CW_PAGES * PG, NTMM_PAGE_WRITECOPY);
		if (rc) {
			run_fail(st, c, "ntmm_map_view (WRITECOPY)", rc);
			return;
		}
		for (size_t i = 0; i < CW_PAGES; i++) { /* read first, as the peer does */
			uint64_t v;
			if ((rc = ntmm_read(c->p, base + i * PG, &v, sizeof(v)))) {
				run_fail(st, c, "ntmm_read", rc);
				ntmm_unmap_view(c->p, base);
				return;
			}
			bad += v != expect(i);
		}
		ntmm_bench_resume(st);
		for (size_t i = 0; i < CW_PAGES; i++) {
			uint64_t *h;
			ntmm_access_begin(c->e);
			rc = ntmm_translate(c->p, base + i * PG, NTMM_ACCESS_WRITE, (void **)&h);
			if (rc == 0) {
				*h = i;
				cow += ntmm_last_fault_kind() == NTMM_FAULT_COPY_ON_WRITE;
			}
			ntmm_access_end(c->e);
			if (rc) {
				run_fail(st, c, "ntmm_translate (write)", rc);
				ntmm_unmap_view(c->p, base);
				return;
			}
		}
		ntmm_bench_pause(st);
		if ((rc = ntmm_unmap_view(c->p, base))) {
			run_fail(st, c, "ntmm_unmap_view", rc);
			return;
		}
		ntmm_bench_resume(st);
	}
	/* the holder's view still sees the file's data, not the copies */
	uint64_t v = 0;
	if (ntmm_read(c->holder, c->hbase + 7 * PG, &v, sizeof(v)) || v != expect(7))
		bad++;
	if (bad) {
		ntmm_bench_skip(st, "a WRITECOPY view's pages or the file's are wrong");
		return;
	}
	uint64_t it = ntmm_bench_iterations(st);
	ntmm_bench_set_items(st, (int64_t)it);
	ntmm_bench_counter(st, "cow_share", it ? (double)cow / (double)it : 0);
}
NTMM_BENCH(BM_section_cow_fault, .run = run_section_cow_fault, .setup = cw_setup,
           .teardown = sec_done, .real_time = 1)

static void *kcw_setup(int threads)
{
	(void)threads;
	return peer_file(CW_PAGES, 0);
}

static void run_peer_kernel_cow_fault(ntmm_bench_state_t *st, void *ctx)
{
	sec_t *c = ctx;
	if (c->skip) {
		ntmm_bench_skip(st, c->skip);
		return;
	}
	uint64_t bad = 0;
	while (ntmm_bench_keep_running_batch(st, CW_PAGES)) {
		ntmm_bench_pause(st);
		char *m = mmap(NULL, CW_PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, c->fd, 0);
		if (m == MAP_FAILED) {
			sec_fail_sys(c, "mmap");
			ntmm_bench_skip(st, c->why);
			return;
		}
		for (size_t i = 0; i < CW_PAGES; i++)
			bad += *(volatile uint64_t *)(m + i * PG) != expect(i);
		ntmm_bench_resume(st);
		for (size_t i = 0; i < CW_PAGES; i++)
			*(volatile uint64_t *)(m + i * PG) = i;
		ntmm_bench_pause(st);
		munmap(m, CW_PAGES * PG);
		ntmm_bench_resume(st);
	}
	uint64_t v = 0;
	if (pread(c->fd, &v, sizeof(v), 7 * PG) != sizeof(v) || v != expect(7))
		bad++;
	if (bad) {
		ntmm_bench_skip(st, "a MAP_PRIVATE mapping's pages or the file's are wrong");
		return;
	}
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st));
}
NTMM_BENCH(BM_peer_kernel_cow_fault, .run = run_peer_kernel_cow_fault, .setup = kcw_setup,
           .teardown = sec_done, .real_time = 1)

/* ------------------------------------------------------------ clone */

static void *cl_setup(int threads)
{
	(void)threads;
	sec_t *c = sec_new();
	/* room for the 256 MiB, its page tables, and the child's commit charge */
	if (sec_engine(c, 768))
		return c;
	/* an empty process first, so an engine without clone costs no touching */
	ntmm_process_t *probe;
	int rc = ntmm_process_clone(c->p, &probe);
	if (rc) {
		sec_fail(c, "ntmm_process_clone", rc);
		return c;
	}
	if ((rc = ntmm_process_destroy(probe))) {
		sec_fail(c, "ntmm_process_destroy (clone)", rc);
		return c;
	}
	/* private memory, not a view: the process's destruction frees it */
	uint64_t base = 0;
	if ((rc = ntmm_allocate(c->p, &base, CL_PAGES * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT,
	                        NTMM_PAGE_READWRITE))) {
		sec_fail(c, "ntmm_allocate", rc);
		return c;
	}
	for (uint64_t i = 0; i < CL_PAGES; i++) {
		uint64_t v = expect(i);
		if ((rc = ntmm_write(c->p, base + i * PG, &v, sizeof(v)))) {
			sec_fail(c, "ntmm_write", rc);
			break;
		}
	}
	return c;
}

static void run_clone_256m(ntmm_bench_state_t *st, void *ctx)
{
	sec_t *c = ctx;
	if (c->skip) {
		ntmm_bench_skip(st, c->skip);
		return;
	}
	ntmm_process_t *child = NULL;
	while (ntmm_bench_keep_running(st)) {
		int rc = ntmm_process_clone(c->p, &child);
		if (rc) {
			run_fail(st, c, "ntmm_process_clone", rc);
			return;
		}
		if ((rc = ntmm_process_destroy(child))) {
			run_fail(st, c, "ntmm_process_destroy (child)", rc);
			return;
		}
	}
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st));
	ntmm_bench_counter(st, "pages", CL_PAGES);
}
NTMM_BENCH(BM_clone_256m, .run = run_clone_256m, .setup = cl_setup, .teardown = sec_done,
           .real_time = 1)

static void *fork_setup(int threads)
{
	(void)threads;
	sec_t *c = sec_new();
	c->map_len = CL_PAGES * PG;
	c->map = mmap(NULL, c->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (c->map == MAP_FAILED) {
		c->map = NULL;
		sec_fail_sys(c, "mmap");
		return c;
	}
	/* 4 KiB pages, as the engine's */
	madvise(c->map, c->map_len, MADV_NOHUGEPAGE);
	for (uint64_t i = 0; i < CL_PAGES; i++)
		*(volatile uint64_t *)(c->map + i * PG) = expect(i);
	return c;
}

static void run_peer_fork_256m(ntmm_bench_state_t *st, void *ctx)
{
	sec_t *c = ctx;
	if (c->skip) {
		ntmm_bench_skip(st, c->skip);
		return;
	}
	while (ntmm_bench_keep_running(st)) {
		pid_t pid = fork();
		if (pid == 0)
			_exit(0);
		if (pid < 0) {
			sec_fail_sys(c, "fork");
			ntmm_bench_skip(st, c->why);
			return;
		}
		int status;
		while (waitpid(pid, &status, 0) < 0)
			if (errno != EINTR) {
				sec_fail_sys(c, "waitpid");
				ntmm_bench_skip(st, c->why);
				return;
			}
	}
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st));
	ntmm_bench_counter(st, "pages", CL_PAGES);
}
NTMM_BENCH(BM_peer_fork_256m, .run = run_peer_fork_256m, .setup = fork_setup, .teardown = sec_done,
           .real_time = 1)

/* ------------------------------------------------------- map / unmap */

static void *mu_setup(int threads)
{
	(void)threads;
	sec_t *c = sec_new();
	sec_file_section(c, MU_PAGES, 16, NTMM_PAGE_READWRITE);
	return c;
}

static void run_map_unmap_view_1m(ntmm_bench_state_t *st, void *ctx)
{
	sec_t *c = ctx;
	if (c->skip) {
		ntmm_bench_skip(st, c->skip);
		return;
	}
	while (ntmm_bench_keep_running(st)) {
		uint64_t base = 0;
		int rc = ntmm_map_view(c->s, c->p, &base, 0, MU_PAGES * PG, NTMM_PAGE_READWRITE);
		if (rc) {
			run_fail(st, c, "ntmm_map_view", rc);
			return;
		}
		if ((rc = ntmm_unmap_view(c->p, base))) {
			run_fail(st, c, "ntmm_unmap_view", rc);
			return;
		}
	}
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st));
}
NTMM_BENCH(BM_map_unmap_view_1m, .run = run_map_unmap_view_1m, .setup = mu_setup,
           .teardown = sec_done, .real_time = 1)

static void *mm_setup(int threads)
{
	(void)threads;
	return peer_file(MU_PAGES, 0);
}

static void run_peer_mmap_munmap_1m(ntmm_bench_state_t *st, void *ctx)
{
	sec_t *c = ctx;
	if (c->skip) {
		ntmm_bench_skip(st, c->skip);
		return;
	}
	while (ntmm_bench_keep_running(st)) {
		void *m = mmap(NULL, MU_PAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
		if (m == MAP_FAILED) {
			sec_fail_sys(c, "mmap");
			ntmm_bench_skip(st, c->why);
			return;
		}
		ntmm_bench_escape(m);
		munmap(m, MU_PAGES * PG);
	}
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st));
}
NTMM_BENCH(BM_peer_mmap_munmap_1m, .run = run_peer_mmap_munmap_1m, .setup = mm_setup,
           .teardown = sec_done, .real_time = 1)

/* ------------------------------------------------------ mapped writer */

static void *mw_setup(int threads)
{
	(void)threads;
	sec_t *c = sec_new();
	if (sec_file_section(c, MW_PAGES, 16, NTMM_PAGE_READWRITE))
		return c;
	int rc = ntmm_map_view(c->s, c->p, &c->base, 0, 0, NTMM_PAGE_READWRITE);
	if (rc) {
		c->base = 0;
		sec_fail(c, "ntmm_map_view", rc);
	}
	return c;
}

/* The file holds generation gen's words (checked at two pages). */
static int file_holds(sec_t *c, uint64_t gen)
{
	const uint64_t pages[2] = {0, MW_PAGES - 1};
	for (int k = 0; k < 2; k++) {
		uint64_t v;
		if (pread(c->fd, &v, sizeof(v), (off_t)(pages[k] * PG)) != sizeof(v) ||
		    v != gen * GOLD + pages[k])
			return 0;
	}
	return 1;
}

static void run_mapped_writer(ntmm_bench_state_t *st, void *ctx)
{
	sec_t *c = ctx;
	if (c->skip) {
		ntmm_bench_skip(st, c->skip);
		return;
	}
	while (ntmm_bench_keep_running_batch(st, MW_PAGES)) {
		ntmm_bench_pause(st);
		uint64_t gen = ++c->gen;
		int rc;
		for (uint64_t i = 0; i < MW_PAGES; i++) {
			uint64_t v = gen * GOLD + i;
			if ((rc = ntmm_write(c->p, c->base + i * PG, &v, sizeof(v)))) {
				run_fail(st, c, "ntmm_write", rc);
				return;
			}
		}
		ntmm_bench_resume(st);
		if ((rc = ntmm_flush_view(c->p, c->base, 0))) {
			run_fail(st, c, "ntmm_flush_view", rc);
			return;
		}
	}
	if (!file_holds(c, c->gen)) {
		ntmm_bench_skip(st, "the file does not hold what ntmm_flush_view wrote");
		return;
	}
	uint64_t it = ntmm_bench_iterations(st);
	ntmm_bench_set_items(st, (int64_t)it);
	ntmm_bench_set_bytes(st, (int64_t)(it * PG));
}
NTMM_BENCH(BM_mapped_writer, .run = run_mapped_writer, .setup = mw_setup, .teardown = sec_done,
           .real_time = 1)

static void *ms_setup(int threads)
{
	(void)threads;
	return peer_file(MW_PAGES, MAP_SHARED);
}

static void run_peer_msync(ntmm_bench_state_t *st, void *ctx)
{
	sec_t *c = ctx;
	if (c->skip) {
		ntmm_bench_skip(st, c->skip);
		return;
	}
	while (ntmm_bench_keep_running_batch(st, MW_PAGES)) {
		ntmm_bench_pause(st);
		uint64_t gen = ++c->gen;
		for (uint64_t i = 0; i < MW_PAGES; i++)
			*(volatile uint64_t *)(c->map + i * PG) = gen * GOLD + i;
		ntmm_bench_resume(st);
		if (msync(c->map, MW_PAGES * PG, MS_SYNC)) {
			sec_fail_sys(c, "msync");
			ntmm_bench_skip(st, c->why);
			return;
		}
	}
	if (!file_holds(c, c->gen)) {
		ntmm_bench_skip(st, "the file does not hold what msync wrote");
		return;
	}
	uint64_t it = ntmm_bench_iterations(st);
	ntmm_bench_set_items(st, (int64_t)it);
	ntmm_bench_set_bytes(st, (int64_t)(it * PG));
}
NTMM_BENCH(BM_peer_msync, .run = run_peer_msync, .setup = ms_setup, .teardown = sec_done,
           .real_time = 1)
