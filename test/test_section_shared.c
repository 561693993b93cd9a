/*
 * Paging-file-backed sections: shared memory between processes of one
 * engine. SEC_COMMIT sections are readable and writable at once in every
 * view; SEC_RESERVE sections are committed page by page with
 * ntmm_allocate(MEM_COMMIT) inside a view, for every view at once. Shared
 * pages survive trims of every working set and the paging file with their
 * data intact; concurrent faults on one shared page from several
 * processes and threads (more threads than cores), with trims and memory
 * pressure in between, lose no write; a stress with the system threads on
 * ends with every page right. The audit runs after each.
 */
#include "section_testutil.h"

#define NPROC 4
#define NTHR  8 /* more threads than the machine has cores */

/* ------------------------------------------------------------ SEC_COMMIT */

static void sec_commit_memory_is_shared_between_two_processes(void **st)
{
	(void)st;
	sec_env_t v = sec_env(8, 16, false);
	ntmm_process_t *p = sec_process(v.e), *q = sec_process(v.e);
	ntmm_section_t *s = sec_create(v.e, -1, 1 * MiB, NTMM_PAGE_READWRITE, NTMM_SEC_COMMIT);
	uint64_t bp = sec_map(s, p, 0, 0, NTMM_PAGE_READWRITE);
	uint64_t bq = sec_map(s, q, 0, 0, NTMM_PAGE_READWRITE);
	/* new pages are zero in both */
	char z[PG];
	assert_int_equal(ntmm_read(q, bq + 7 * PG, z, PG), 0);
	assert_true(sec_all_zero(z, PG));
	/* p writes, q reads; q writes, p reads */
	assert_int_equal(sec_write(p, bp, 0, 1 * MiB / 2, 101), 0);
	assert_int_equal(sec_check(q, bq, 0, 1 * MiB / 2, 101), 0);
	assert_int_equal(sec_write(q, bq + 1 * MiB / 2, 1 * MiB / 2, 1 * MiB / 2, 102), 0);
	assert_int_equal(sec_check(p, bp + 1 * MiB / 2, 1 * MiB / 2, 1 * MiB / 2, 102), 0);
	/* one frame for both */
	void *hp, *hq;
	ntmm_access_begin(v.e);
	assert_int_equal(ntmm_translate(p, bp + 3 * PG, NTMM_ACCESS_READ, &hp), 0);
	assert_int_equal(ntmm_translate(q, bq + 3 * PG, NTMM_ACCESS_WRITE, &hq), 0);
	assert_ptr_equal(hp, hq);
	ntmm_access_end(v.e);
	/* both report a MAPPED view of their own */
	ntmm_region_info_t i = sec_query(q, bq);
	assert_int_equal(i.type, NTMM_MEM_MAPPED);
	assert_int_equal(i.state, NTMM_MEM_COMMIT);
	assert_int_equal(i.allocation_base, bq);
	assert_int_equal(i.size, 1 * MiB);
	/* nothing to flush for the paging files */
	assert_int_equal(ntmm_flush_view(p, bp, 0), 0);
	assert_int_equal(ntmm_unmap_view(p, bp), 0);
	assert_int_equal(ntmm_unmap_view(q, bq), 0);
	assert_int_equal(ntmm_section_close(s), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(ntmm_process_destroy(q), 0);
	sec_env_done(&v);
}

/* Six processes, each writing its own stripe of one section (views at
   different offsets in some), each reading every stripe. */
static void several_processes_see_one_anothers_writes(void **st)
{
	(void)st;
	enum { N = 6 };
	sec_env_t v = sec_env(8, 16, false);
	ntmm_section_t *s = sec_create(v.e, -1, N * GRAN, NTMM_PAGE_READWRITE, 0);
	ntmm_process_t *p[N];
	uint64_t b[N]; /* each view's address for offset 0 of the section */
	for (int k = 0; k < N; k++) {
		p[k] = sec_process(v.e);
		/* odd ones map from their own stripe to the end */
		uint64_t off = k % 2 ? (uint64_t)k * GRAN : 0;
		b[k] = sec_map(s, p[k], off, 0, NTMM_PAGE_READWRITE) - off;
	}
	for (int k = 0; k < N; k++)
		assert_int_equal(sec_write(p[k], b[k] + k * GRAN, k * GRAN, GRAN, 110 + k), 0);
	for (int k = 0; k < N; k++)
		for (int j = k % 2 ? k : 0; j < N; j++)
			assert_int_equal(sec_check(p[k], b[k] + j * GRAN, j * GRAN, GRAN, 110 + j),
			                 0);
	/* the section stays while any view maps it */
	assert_int_equal(ntmm_section_close(s), 0);
	for (int k = 0; k < N - 1; k++)
		assert_int_equal(ntmm_process_destroy(p[k]), 0);
	assert_int_equal(
	    sec_check(p[N - 1], b[N - 1] + (N - 1) * GRAN, (N - 1) * GRAN, GRAN, 110 + N - 1), 0);
	assert_int_equal(ntmm_process_destroy(p[N - 1]), 0);
	sec_env_done(&v);
}

/* Views unmapped from every process while the section is open: mapped
   again, the data is there. */
static void a_section_keeps_its_data_with_no_view_mapped(void **st)
{
	(void)st;
	sec_env_t v = sec_env(8, 16, false);
	ntmm_process_t *p = sec_process(v.e);
	ntmm_section_t *s = sec_create(v.e, -1, 4 * GRAN, NTMM_PAGE_READWRITE, 0);
	uint64_t b = sec_map(s, p, 0, 0, NTMM_PAGE_READWRITE);
	assert_int_equal(sec_write(p, b, 0, 4 * GRAN, 120), 0);
	assert_int_equal(ntmm_unmap_view(p, b), 0);
	sec_push_out(v.e, 2 * 8 * MiB / PG);
	ntmm_process_t *q = sec_process(v.e);
	b = sec_map(s, q, GRAN, 0, NTMM_PAGE_READONLY);
	assert_int_equal(sec_check(q, b, GRAN, 3 * GRAN, 120), 0);
	assert_int_equal(ntmm_section_close(s), 0);
	assert_int_equal(sec_check(q, b, GRAN, 3 * GRAN, 120), 0);
	assert_int_equal(ntmm_unmap_view(q, b), 0);
	assert_int_equal(ntmm_process_destroy(q), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	sec_env_done(&v);
}

/* ----------------------------------------------------------- SEC_RESERVE */

static void sec_reserve_pages_are_committed_in_a_view(void **st)
{
	(void)st;
	sec_env_t v = sec_env(8, 16, false);
	uint64_t charge0 = SEC_STAT(v.e, commit_pages);
	ntmm_process_t *p = sec_process(v.e), *q = sec_process(v.e);
	ntmm_section_t *s = sec_create(v.e, -1, 16 * GRAN, NTMM_PAGE_READWRITE, NTMM_SEC_RESERVE);
	uint64_t bp = sec_map(s, p, 0, 0, NTMM_PAGE_READWRITE);
	uint64_t bq = sec_map(s, q, 0, 0, NTMM_PAGE_READWRITE);
	/* reserved: no access, queried as RESERVE */
	ntmm_region_info_t i = sec_query(p, bp);
	assert_int_equal(i.state, NTMM_MEM_RESERVE);
	assert_int_equal(i.type, NTMM_MEM_MAPPED);
	assert_int_equal(i.allocation_base, bp);
	assert_int_equal(i.size, 16 * GRAN);
	char c = 1;
	void *h;
	assert_int_equal(ntmm_read(p, bp, &c, 1), NTMM_EACCESS);
	assert_int_equal(ntmm_write(q, bq + 5 * GRAN, &c, 1), NTMM_EACCESS);
	assert_int_equal(ntmm_translate(p, bp + PG, NTMM_ACCESS_READ, &h), NTMM_EACCESS);
	uint64_t charge1 = SEC_STAT(v.e, commit_pages);
	/* four pages committed through p's view */
	uint64_t a = bp + 2 * GRAN + 1;
	assert_int_equal(ntmm_allocate(p, &a, 4 * PG - 1, NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE), 0);
	assert_int_equal(a, bp + 2 * GRAN);
	assert_true(SEC_STAT(v.e, commit_pages) >= charge1 + 4);
	i = sec_query(p, bp + 2 * GRAN);
	assert_int_equal(i.state, NTMM_MEM_COMMIT);
	assert_int_equal(i.size, 4 * PG);
	assert_int_equal(i.type, NTMM_MEM_MAPPED);
	assert_int_equal(i.allocation_base, bp);
	assert_int_equal(sec_query(p, bp).state, NTMM_MEM_RESERVE);
	assert_int_equal(sec_query(p, bp + 2 * GRAN + 4 * PG).state, NTMM_MEM_RESERVE);
	/* zero, writable in p, and committed in q's view too: they are the
	   section's pages */
	char z[PG];
	assert_int_equal(ntmm_read(p, bp + 2 * GRAN + 3 * PG, z, PG), 0);
	assert_true(sec_all_zero(z, PG));
	assert_int_equal(sec_write(p, bp + 2 * GRAN, 2 * GRAN, 4 * PG, 121), 0);
	assert_int_equal(sec_query(q, bq + 2 * GRAN).state, NTMM_MEM_COMMIT);
	assert_int_equal(sec_check(q, bq + 2 * GRAN, 2 * GRAN, 4 * PG, 121), 0);
	assert_int_equal(ntmm_read(q, bq + 2 * GRAN + 4 * PG, &c, 1), NTMM_EACCESS);
	assert_int_equal(ntmm_read(q, bq + 2 * GRAN - 1, &c, 1), NTMM_EACCESS);
	/* committing them again (from q) charges nothing more */
	uint64_t charge2 = SEC_STAT(v.e, commit_pages);
	a = bq + 2 * GRAN;
	assert_int_equal(ntmm_allocate(q, &a, 4 * PG, NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE), 0);
	assert_int_equal(SEC_STAT(v.e, commit_pages), charge2);
	assert_int_equal(sec_check(p, bp + 2 * GRAN, 2 * GRAN, 4 * PG, 121), 0);
	/* a reservation onto the view, a commit running out of it */
	a = bp;
	assert_int_equal(ntmm_allocate(p, &a, GRAN, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE),
	                 NTMM_ECONFLICT);
	a = bp + 16 * GRAN - PG;
	assert_int_equal(ntmm_allocate(p, &a, 2 * PG, NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE),
	                 NTMM_ECONFLICT);
	assert_int_equal(sec_query(p, bp + 16 * GRAN - PG).state, NTMM_MEM_RESERVE);
	/* the pages survive trims and the paging file */
	assert_int_equal(ntmm_ws_empty(p), 0);
	assert_int_equal(ntmm_ws_empty(q), 0);
	sec_push_out(v.e, 2 * 8 * MiB / PG);
	assert_int_equal(sec_check(q, bq + 2 * GRAN, 2 * GRAN, 4 * PG, 121), 0);
	/* everything is given back with the section */
	assert_int_equal(ntmm_unmap_view(p, bp), 0);
	assert_int_equal(ntmm_unmap_view(q, bq), 0);
	assert_int_equal(ntmm_section_close(s), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(ntmm_process_destroy(q), 0);
	assert_int_equal(SEC_STAT(v.e, commit_pages), charge0);
	assert_int_equal(ntmm_audit(v.e), 0);
	sec_env_done(&v);
}

/* Committing in a SEC_RESERVE view is held to the commit limit. */
static void sec_reserve_commit_past_the_limit_is_ecommit(void **st)
{
	(void)st;
	sec_env_t v = sec_env(8, 16, false);
	ntmm_process_t *p = sec_process(v.e);
	uint64_t room = SEC_STAT(v.e, commit_limit_pages) - SEC_STAT(v.e, commit_pages);
	uint64_t size = (room + 64) * PG;
	ntmm_section_t *s = sec_create(v.e, -1, size, NTMM_PAGE_READWRITE, NTMM_SEC_RESERVE);
	uint64_t b = sec_map(s, p, 0, 0, NTMM_PAGE_READWRITE);
	uint64_t charge = SEC_STAT(v.e, commit_pages);
	uint64_t a = b;
	assert_refused(ntmm_allocate(p, &a, (room + 1) * PG, NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE),
	               NTMM_ECOMMIT);
	assert_int_equal(a, b);
	assert_int_equal(SEC_STAT(v.e, commit_pages), charge);
	assert_int_equal(sec_query(p, b).state, NTMM_MEM_RESERVE);
	char c;
	assert_int_equal(ntmm_read(p, b, &c, 1), NTMM_EACCESS);
	/* a part that fits */
	assert_int_equal(ntmm_allocate(p, &a, 64 * PG, NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE), 0);
	assert_int_equal(sec_write(p, b, 0, 64 * PG, 122), 0);
	assert_int_equal(sec_check(p, b, 0, 64 * PG, 122), 0);
	assert_int_equal(ntmm_unmap_view(p, b), 0);
	assert_int_equal(ntmm_section_close(s), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	sec_env_done(&v);
}

/* ------------------------------------------- through the paging file */

/* A section three times the pool, written through one process and read
   through another: its pages went through the paging file. Then every
   working set emptied and the pool flushed by other memory: both
   processes, and a third that maps it late, read every byte right. */
static void shared_pages_survive_trims_and_the_paging_file(void **st)
{
	(void)st;
	const size_t pool_mib = 8;
	const uint64_t bytes = 3 * pool_mib * MiB, half = bytes / 2;
	sec_env_t v = sec_env(pool_mib, 64, false);
	ntmm_process_t *p = sec_process(v.e), *q = sec_process(v.e);
	ntmm_section_t *s = sec_create(v.e, -1, bytes, NTMM_PAGE_READWRITE, NTMM_SEC_COMMIT);
	uint64_t bp = sec_map(s, p, 0, 0, NTMM_PAGE_READWRITE);
	uint64_t bq = sec_map(s, q, 0, 0, NTMM_PAGE_READWRITE);
	uint64_t written = SEC_STAT(v.e, pages_written);
	assert_int_equal(sec_write(p, bp, 0, bytes, 131), 0);
	assert_int_equal(sec_check(q, bq, 0, bytes, 131), 0);
	assert_true(SEC_STAT(v.e, pages_written) > written);
	assert_int_equal(sec_write(q, bq + half, half, half, 132), 0);
	assert_int_equal(ntmm_audit(v.e), 0);
	assert_int_equal(ntmm_ws_empty(p), 0);
	assert_int_equal(ntmm_ws_empty(q), 0);
	assert_int_equal(sec_info(p).ws_pages, 0);
	assert_int_equal(sec_info(q).ws_pages, 0);
	sec_push_out(v.e, 2 * pool_mib * MiB / PG);
	ntmm_process_t *r = sec_process(v.e);
	uint64_t br = sec_map(s, r, 0, 0, NTMM_PAGE_READONLY);
	assert_int_equal(sec_check(p, bp, 0, half, 131), 0);
	assert_int_equal(sec_check(p, bp + half, half, half, 132), 0);
	assert_int_equal(sec_check(r, br, 0, half, 131), 0);
	assert_int_equal(sec_check(r, br + half, half, half, 132), 0);
	assert_int_equal(ntmm_ws_empty(p), 0);
	assert_int_equal(ntmm_ws_empty(r), 0);
	assert_int_equal(sec_check(q, bq, 0, half, 131), 0);
	assert_int_equal(sec_check(q, bq + half, half, half, 132), 0);
	assert_int_equal(ntmm_audit(v.e), 0);
	/* the section holds paging-file space until it goes */
	assert_int_equal(ntmm_section_close(s), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(ntmm_process_destroy(q), 0);
	assert_int_equal(sec_check(r, br, 0, half, 131), 0);
	assert_int_equal(ntmm_process_destroy(r), 0);
	assert_int_equal(SEC_STAT(v.e, pagefile_pages), 0);
	sec_env_done(&v);
}

/* ------------------------------------ concurrent faults on one page */

typedef struct hammer {
	ntmm_engine_t *e;
	ntmm_process_t *p;
	uint64_t base;   /* the view's base in p */
	unsigned slot;   /* this thread's word in each page */
	unsigned npages; /* pages hammered: i % npages */
	long iters;
	long trim_every;    /* ntmm_ws_empty(p) after this many accesses */
	uint64_t count[16]; /* per page: what this thread's word must hold */
} hammer_t;

/* Increments its own word of the shared page(s) through a translated
   pointer, checking it still holds what it last wrote (a lost or stale
   copy of the page shows here), and empties its process's working set
   every trim_every accesses. */
static void *hammer_main(void *arg)
{
	hammer_t *h = arg;
	WORKER_CHECK(ntmm_thread_register(h->e) == 0);
	for (long i = 0; i < h->iters; i++) {
		unsigned pg = (unsigned)(i % h->npages);
		uint64_t *w = NULL;
		ntmm_access_begin(h->e);
		int r = ntmm_translate(h->p, h->base + pg * PG, NTMM_ACCESS_WRITE, (void **)&w);
		WORKER_CHECK(r == 0);
		if (r == 0) {
			WORKER_CHECK(w[h->slot] == h->count[pg]);
			w[h->slot] = ++h->count[pg];
		}
		ntmm_access_end(h->e);
		if (i % h->trim_every == h->trim_every - 1)
			WORKER_CHECK(ntmm_ws_empty(h->p) == 0);
	}
	ntmm_thread_unregister(h->e);
	return NULL;
}

typedef struct presser {
	ntmm_engine_t *e;
	size_t pages;
	atomic_int *stop;
	long rounds;
} presser_t;

/* Memory pressure beside the hammers (worker-safe: no cmocka asserts):
   a process of its own commits and writes `pages` private pages, then
   releases them, until told to stop. */
static void *presser_main(void *arg)
{
	presser_t *m = arg;
	WORKER_CHECK(ntmm_thread_register(m->e) == 0);
	ntmm_process_t *q = NULL;
	WORKER_CHECK(ntmm_process_create(m->e, &q) == 0);
	while (q && !atomic_load(m->stop)) {
		uint64_t a = 0;
		int r = ntmm_allocate(q, &a, m->pages * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT,
		                      NTMM_PAGE_READWRITE);
		WORKER_CHECK(r == 0);
		if (r)
			break;
		for (size_t i = 0; i < m->pages && !atomic_load(m->stop); i++) {
			uint64_t w = i;
			WORKER_CHECK(ntmm_write(q, a + i * PG, &w, sizeof(w)) == 0);
		}
		WORKER_CHECK(ntmm_free(q, a, 0, NTMM_MEM_RELEASE) == 0);
		m->rounds++;
	}
	if (q)
		WORKER_CHECK(ntmm_process_destroy(q) == 0);
	ntmm_thread_unregister(m->e);
	return NULL;
}

/* NPROC processes map one SEC_COMMIT section; NTHR threads (two per
   process) hammer `npages` shared pages, each its own word, emptying
   their working sets in between; with `pressure`, another thread pushes
   the pool's pages out meanwhile (so the page goes through the paging
   file too). Afterwards every process reads every thread's final count,
   and the audit passes. */
static void hammer_shared(bool threads, unsigned npages, bool pressure)
{
	const size_t pool_mib = 8;
	sec_env_t v = sec_env(pool_mib, 64, threads);
	ntmm_section_t *s = sec_create(v.e, -1, GRAN, NTMM_PAGE_READWRITE, NTMM_SEC_COMMIT);
	ntmm_process_t *p[NPROC];
	uint64_t b[NPROC];
	for (int k = 0; k < NPROC; k++) {
		p[k] = sec_process(v.e);
		b[k] = sec_map(s, p[k], 0, 0, NTMM_PAGE_READWRITE);
	}
	hammer_t h[NTHR];
	for (int t = 0; t < NTHR; t++)
		h[t] = (hammer_t){.e = v.e,
		                  .p = p[t % NPROC],
		                  .base = b[t % NPROC],
		                  .slot = (unsigned)t,
		                  .npages = npages,
		                  .iters = scaled(6000),
		                  .trim_every = 50 + t};
	atomic_int stop = 0;
	presser_t m = {.e = v.e, .pages = 2 * pool_mib * MiB / PG, .stop = &stop};
	pthread_t pt;
	atomic_store(&test_failures, 0);
	if (pressure)
		assert_int_equal(pthread_create(&pt, NULL, presser_main, &m), 0);
	run_threads(NTHR, hammer_main, h, sizeof(h[0]));
	if (pressure) {
		atomic_store(&stop, 1);
		pthread_join(pt, NULL);
	}
	assert_int_equal(atomic_load(&test_failures), 0);
	assert_int_equal(ntmm_audit(v.e), 0);
	for (int k = 0; k < NPROC; k++)
		for (unsigned pg = 0; pg < npages; pg++) {
			uint64_t w[NTHR];
			assert_int_equal(ntmm_read(p[k], b[k] + pg * PG, w, sizeof(w)), 0);
			for (int t = 0; t < NTHR; t++)
				assert_int_equal(w[t], h[t].count[pg]);
		}
	/* and again once everything was pushed out */
	for (int k = 0; k < NPROC; k++)
		assert_int_equal(ntmm_ws_empty(p[k]), 0);
	sec_push_out(v.e, 2 * pool_mib * MiB / PG);
	for (unsigned pg = 0; pg < npages; pg++) {
		uint64_t w[NTHR];
		assert_int_equal(ntmm_read(p[pg % NPROC], b[pg % NPROC] + pg * PG, w, sizeof(w)),
		                 0);
		for (int t = 0; t < NTHR; t++)
			assert_int_equal(w[t], h[t].count[pg]);
	}
	assert_int_equal(ntmm_section_close(s), 0);
	for (int k = 0; k < NPROC; k++)
		assert_int_equal(ntmm_process_destroy(p[k]), 0);
	sec_env_done(&v);
}

static void concurrent_faults_on_one_shared_page_with_trims(void **st)
{
	(void)st;
	hammer_shared(false, 1, false);
}

static void concurrent_faults_on_one_shared_page_with_trims_and_pressure(void **st)
{
	(void)st;
	hammer_shared(false, 1, true);
}

static void concurrent_faults_on_shared_pages_with_system_threads(void **st)
{
	(void)st;
	hammer_shared(true, 4, true);
}

/* ------------------------------------------- stress, system threads on */

typedef struct stressor {
	ntmm_engine_t *e;
	ntmm_process_t **p; /* NPROC processes */
	uint64_t *b;        /* their views' bases */
	unsigned t;         /* this thread: pages t, t + NTHR, ... */
	size_t npages;
	int rounds;
} stressor_t;

/* Each page holds (page, round) at both ends. */
static void *stressor_main(void *arg)
{
	stressor_t *w = arg;
	WORKER_CHECK(ntmm_thread_register(w->e) == 0);
	uint64_t seed = 0x1234567 + w->t;
	for (int r = 0; r < w->rounds; r++) {
		/* each round through another process's view */
		int k = (int)((w->t + (unsigned)r) % NPROC);
		for (size_t pg = w->t; pg < w->npages; pg += NTHR) {
			uint64_t va = w->b[k] + pg * PG, stamp[2];
			if (r > 0) {
				WORKER_CHECK(ntmm_read(w->p[k], va, stamp, sizeof(stamp)) == 0);
				WORKER_CHECK(stamp[0] == pg && stamp[1] == (uint64_t)r - 1);
				WORKER_CHECK(ntmm_read(w->p[k], va + PG - sizeof(stamp), stamp,
				                       sizeof(stamp)) == 0);
				WORKER_CHECK(stamp[0] == pg && stamp[1] == (uint64_t)r - 1);
			}
			stamp[0] = pg, stamp[1] = (uint64_t)r;
			WORKER_CHECK(ntmm_write(w->p[k], va, stamp, sizeof(stamp)) == 0);
			WORKER_CHECK(ntmm_write(w->p[k], va + PG - sizeof(stamp), stamp,
			                        sizeof(stamp)) == 0);
			if (test_rand(&seed) % 256 == 0)
				WORKER_CHECK(ntmm_ws_empty(w->p[test_rand(&seed) % NPROC]) == 0);
		}
	}
	ntmm_thread_unregister(w->e);
	return NULL;
}

/* A section twice the pool, four processes, eight threads writing and
   checking page stamps through every process's view in turn, trims at
   random, the system threads paging; then every page is checked in every
   process, and the audit passes. */
static void stress_with_the_system_threads_on(void **st)
{
	(void)st;
	const size_t pool_mib = 8, npages = 2 * pool_mib * MiB / PG;
	sec_env_t v = sec_env(pool_mib, 64, true);
	ntmm_section_t *s = sec_create(v.e, -1, npages * PG, NTMM_PAGE_READWRITE, NTMM_SEC_COMMIT);
	ntmm_process_t *p[NPROC];
	uint64_t b[NPROC];
	for (int k = 0; k < NPROC; k++) {
		p[k] = sec_process(v.e);
		b[k] = sec_map(s, p[k], 0, 0, NTMM_PAGE_READWRITE);
	}
	const int rounds = (int)scaled(4) + 1;
	stressor_t w[NTHR];
	for (unsigned t = 0; t < NTHR; t++)
		w[t] = (stressor_t){
		    .e = v.e, .p = p, .b = b, .t = t, .npages = npages, .rounds = rounds};
	atomic_store(&test_failures, 0);
	run_threads(NTHR, stressor_main, w, sizeof(w[0]));
	assert_int_equal(atomic_load(&test_failures), 0);
	assert_int_equal(ntmm_audit(v.e), 0);
	for (int k = 0; k < NPROC; k++)
		for (size_t pg = 0; pg < npages; pg++) {
			uint64_t stamp[2];
			assert_int_equal(ntmm_read(p[k], b[k] + pg * PG, stamp, sizeof(stamp)), 0);
			assert_int_equal(stamp[0], pg);
			assert_int_equal(stamp[1], (uint64_t)rounds - 1);
		}
	assert_int_equal(ntmm_audit(v.e), 0);
	assert_int_equal(ntmm_section_close(s), 0);
	for (int k = 0; k < NPROC; k++)
		assert_int_equal(ntmm_process_destroy(p[k]), 0);
	sec_env_done(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(sec_commit_memory_is_shared_between_two_processes),
	    cmocka_unit_test(several_processes_see_one_anothers_writes),
	    cmocka_unit_test(a_section_keeps_its_data_with_no_view_mapped),
	    cmocka_unit_test(sec_reserve_pages_are_committed_in_a_view),
	    cmocka_unit_test(sec_reserve_commit_past_the_limit_is_ecommit),
	    cmocka_unit_test(shared_pages_survive_trims_and_the_paging_file),
	    cmocka_unit_test(concurrent_faults_on_one_shared_page_with_trims),
	    cmocka_unit_test(concurrent_faults_on_one_shared_page_with_trims_and_pressure),
	    cmocka_unit_test(concurrent_faults_on_shared_pages_with_system_threads),
	    cmocka_unit_test(stress_with_the_system_threads_on),
	};
	if (getenv("NTMM_TEST_FILTER"))
		cmocka_set_test_filter(getenv("NTMM_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
