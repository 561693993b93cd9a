/*
 * Paging, one behaviour at a time, without system threads (the writer's
 * batch runs on the test thread, so each step is deterministic): the
 * writer moves pages to Standby with pagefile OriginalPtes, repurposing
 * turns the PTEs into pagefile PTEs, hard faults read them back (clustered)
 * and report their kind, failed reads are NTMM_EIO with the PTE kept and a
 * retry succeeding, failed writes keep pages Modified, the commit limit
 * grows the paging file and stops at its maximum with NTMM_ECOMMIT, and no
 * paging-file slot outlives its process.
 */
#include "paging_testutil.h"
#include "fixture.h"

/* The engine (and paging file) of each test that needs one comes from
   its setup; the teardown destroys it even after a failed assert. */
static paging_env_t fx;

static int setup_8_4_16(void **state)
{
	fx = paging_env(8, 4, 16, false, false);
	*state = &fx;
	return 0;
}
static int setup_8_4_16_faulty(void **state)
{
	fx = paging_env(8, 4, 16, false, true);
	*state = &fx;
	return 0;
}
static int setup_8_1_8(void **state)
{
	fx = paging_env(8, 1, 8, false, false);
	*state = &fx;
	return 0;
}
static int setup_8_1_1(void **state)
{
	fx = paging_env(8, 1, 1, false, false);
	*state = &fx;
	return 0;
}
static int setup_scaled(void **state)
{
	fx = paging_env(scaled_mib(8), scaled_mib(4), scaled_mib(16), false, false);
	*state = &fx;
	return 0;
}
static int teardown(void **state)
{
	if (fx.e) {
		fixture_close_sections(fx.e);
		paging_env_done(&fx);
	}
	fx = (paging_env_t){0};
	return 0;
}

static void fill_pages(ntmm_process_t *p, uint64_t a, size_t n, uint64_t tag, uint64_t ver)
{
	static _Alignas(4096) char buf[4096];
	for (size_t i = 0; i < n; i++) {
		page_fill(buf, tag + i, ver);
		assert_int_equal(ntmm_write(p, a + i * PG, buf, PG), 0);
	}
}

static void check_pages(ntmm_process_t *p, uint64_t a, size_t n, uint64_t tag, uint64_t ver)
{
	static _Alignas(4096) char buf[4096];
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(ntmm_read(p, a + i * PG, buf, PG), 0);
		assert_true(page_check(buf, tag + i, ver));
	}
}

static void written_pages_go_to_standby_with_pagefile_original(void **s)
{
	paging_env_t v = *(paging_env_t *)*s; /* the fixture's handles */
	ntmm_process_t *p;
	assert_int_equal(ntmm_process_create(v.e, &p), 0);
	uint64_t a = commit_pages(p, 64);
	fill_pages(p, a, 64, 100, 1);
	assert_int_equal(ntmm_ws_empty(p), 0);
	assert_int_equal(PSTAT(v.e, modified_pages), 64);
	assert_int_equal(write_all_modified(v.e), 64);
	assert_int_equal(PSTAT(v.e, modified_pages), 0);
	assert_true(PSTAT(v.e, standby_pages) >= 64);
	assert_int_equal(PSTAT(v.e, pagefile_pages), 64);
	/* a soft fault brings one back; its data is intact */
	check_pages(p, a, 64, 100, 1);
	assert_int_equal(ntmm_audit(v.e), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(PSTAT(v.e, pagefile_pages), 0);
}

static void hard_fault_reads_back_every_byte_clustered(void **s)
{
	paging_env_t v = *(paging_env_t *)*s; /* the fixture's handles */
	ntmm_process_t *p;
	assert_int_equal(ntmm_process_create(v.e, &p), 0);
	uint64_t a = commit_pages(p, 128);
	fill_pages(p, a, 128, 7000, 3);
	page_out(v.e, p, a, 128);
	uint64_t hard0 = PSTAT(v.e, hard_faults), ios0 = PSTAT(v.e, read_ios);
	char c;
	assert_int_equal(ntmm_read(p, a, &c, 1), 0);
	assert_int_equal(ntmm_last_fault_kind(), NTMM_FAULT_HARD);
	assert_int_equal(ntmm_read(p, a, &c, 1), 0);
	assert_int_equal(ntmm_last_fault_kind(), NTMM_FAULT_NONE);
	/* the neighbours came in with it: soft faults from Standby */
	assert_int_equal(ntmm_read(p, a + PG, &c, 1), 0);
	assert_int_equal(ntmm_last_fault_kind(), NTMM_FAULT_SOFT);
	check_pages(p, a, 128, 7000, 3);
	uint64_t hard = PSTAT(v.e, hard_faults) - hard0, ios = PSTAT(v.e, read_ios) - ios0;
	assert_true(hard >= 1 && hard <= 128 / (NTMM__HARD_CLUSTER / 2));
	assert_true(ios <= hard);
	ntmm_process_info_t pi;
	assert_int_equal(ntmm_process_info(p, &pi), 0);
	assert_int_equal(pi.hard_faults, hard);
	assert_int_equal(ntmm_audit(v.e), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(PSTAT(v.e, pagefile_pages), 0);
}

/* Clean pages keep their slot (a re-trim needs no write); a write frees it. */
static void clean_pages_keep_their_slot_dirty_ones_free_it(void **s)
{
	paging_env_t v = *(paging_env_t *)*s; /* the fixture's handles */
	ntmm_process_t *p;
	assert_int_equal(ntmm_process_create(v.e, &p), 0);
	uint64_t a = commit_pages(p, 16);
	fill_pages(p, a, 16, 1, 1);
	page_out(v.e, p, a, 16);
	check_pages(p, a, 16, 1, 1); /* read back: clean */
	assert_int_equal(PSTAT(v.e, pagefile_pages), 16);
	assert_int_equal(ntmm_ws_empty(p), 0);
	assert_int_equal(PSTAT(v.e, modified_pages), 0); /* nothing to write again */
	page_out(v.e, p, a, 16);
	/* a hard fault for a write frees its slot at once; the prefetched
	   neighbours, written after a soft fault, keep theirs until the writer
	   takes them (it frees the stale copy then) */
	fill_pages(p, a, 16, 1, 2);
	assert_true(PSTAT(v.e, pagefile_pages) < 16);
	page_out(v.e, p, a, 16);
	assert_int_equal(PSTAT(v.e, pagefile_pages), 16);
	check_pages(p, a, 16, 1, 2);
	/* soft-faulted back and re-dirtied: the writer frees the stale copy */
	fill_pages(p, a, 16, 1, 3);
	assert_int_equal(ntmm_ws_empty(p), 0);
	write_all_modified(v.e);
	assert_int_equal(PSTAT(v.e, pagefile_pages), 16);
	check_pages(p, a, 16, 1, 3);
	assert_int_equal(ntmm_audit(v.e), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(PSTAT(v.e, pagefile_pages), 0);
}

static void failed_read_is_eio_pte_kept_and_retry_succeeds(void **s)
{
	paging_env_t v = *(paging_env_t *)*s; /* the fixture's handles */
	ntmm_process_t *p;
	assert_int_equal(ntmm_process_create(v.e, &p), 0);
	uint64_t a = commit_pages(p, 8);
	fill_pages(p, a, 8, 55, 1);
	page_out(v.e, p, a, 8);
	uint64_t frames_free = PSTAT(v.e, free_pages) + PSTAT(v.e, zeroed_pages);
	ntmm__faultdrv_fail_read_in(v.fd, 1);
	char c;
	assert_int_equal(ntmm_read(p, a + 3 * PG, &c, 1), NTMM_EIO);
	ntmm_access_begin(v.e);
	_Atomic uint64_t *pte = ntmm__pt_lookup(p, a + 3 * PG);
	assert_true(ntmm__pte_is_pagefile(atomic_load(pte)));
	ntmm_access_end(v.e);
	/* the frames went back */
	assert_true(PSTAT(v.e, free_pages) + PSTAT(v.e, zeroed_pages) + 64 >= frames_free);
	assert_true(PSTAT(v.e, io_errors) >= 1);
	check_pages(p, a, 8, 55, 1); /* the retry reads the intact slots */
	assert_int_equal(ntmm_audit(v.e), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(PSTAT(v.e, pagefile_pages), 0);
}

static void failed_write_keeps_pages_modified_and_frees_slots(void **s)
{
	paging_env_t v = *(paging_env_t *)*s; /* the fixture's handles */
	ntmm_process_t *p;
	assert_int_equal(ntmm_process_create(v.e, &p), 0);
	uint64_t a = commit_pages(p, 32);
	fill_pages(p, a, 32, 900, 1);
	assert_int_equal(ntmm_ws_empty(p), 0);
	ntmm__faultdrv_fail_write_in(v.fd, 1);
	int err = 0;
	size_t k = ntmm__mpw_write_batch(v.e, NTMM__MPW_BATCH, &err);
	assert_int_equal(k, 0);
	assert_int_equal(err, NTMM_EIO);
	assert_int_equal(PSTAT(v.e, modified_pages), 32);
	assert_int_equal(PSTAT(v.e, pagefile_pages), 0);
	/* retried later: succeeds, nothing lost */
	page_out(v.e, p, a, 32);
	check_pages(p, a, 32, 900, 1);
	assert_int_equal(ntmm_audit(v.e), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(PSTAT(v.e, pagefile_pages), 0);
}

static void commit_limit_grows_the_pagefile_then_ecommit_at_maximum(void **s)
{
	/* 8 MiB of frames (2048), a paging file of 1 MiB growing to 8 MiB */
	paging_env_t v = *(paging_env_t *)*s; /* the fixture's handles */
	uint64_t limit0 = PSTAT(v.e, commit_limit_pages);
	assert_true(limit0 >= 2048 && limit0 < 2048 + 256);
	ntmm_process_t *p;
	assert_int_equal(ntmm_process_create(v.e, &p), 0);
	/* past the limit now, within the maximum: the paging file grows */
	uint64_t a = commit_pages(p, 2048 + 1024);
	assert_true(PSTAT(v.e, commit_limit_pages) >= 2048 + 1024);
	fill_pages(p, a, 256, 31, 1);
	page_out(v.e, p, a, 256);
	/* beyond frames + maximum: refused, nothing changes */
	uint64_t charge = PSTAT(v.e, commit_pages);
	uint64_t b = 0;
	assert_int_equal(ntmm_allocate(p, &b, 1024 * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT,
	                               NTMM_PAGE_READWRITE),
	                 NTMM_ECOMMIT);
	assert_int_equal(PSTAT(v.e, commit_pages), charge);
	check_pages(p, a, 256, 31, 1);
	assert_int_equal(ntmm_audit(v.e), 0);
	/* freeing commit makes room again */
	assert_int_equal(ntmm_free(p, a + 1024 * PG, 1024 * PG, NTMM_MEM_DECOMMIT), 0);
	b = 0;
	assert_int_equal(
	    ntmm_allocate(p, &b, 512 * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE),
	    0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(PSTAT(v.e, pagefile_pages), 0);
	assert_int_equal(PSTAT(v.e, commit_pages), 0);
}

/* Paging file full and at its maximum: the writer cannot place pages, they
   stay Modified (nothing lost), and commits past the limit fail. */
static void full_pagefile_keeps_pages_modified(void **s)
{
	paging_env_t v = *(paging_env_t *)*s; /* the fixture's handles */ /* 255 usable slots */
	ntmm_process_t *p;
	assert_int_equal(ntmm_process_create(v.e, &p), 0);
	uint64_t a = commit_pages(p, 400);
	fill_pages(p, a, 400, 4242, 1);
	assert_int_equal(ntmm_ws_empty(p), 0);
	size_t w = write_all_modified(v.e);
	assert_true(w <= 255);
	int err = 0;
	assert_int_equal(ntmm__mpw_write_batch(v.e, NTMM__MPW_BATCH, &err), 0);
	assert_int_equal(err, NTMM_ECOMMIT);
	assert_int_equal(PSTAT(v.e, modified_pages) + w, 400);
	uint64_t b = 0;
	assert_int_equal(ntmm_allocate(p, &b, 2048 * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT,
	                               NTMM_PAGE_READWRITE),
	                 NTMM_ECOMMIT);
	repurpose_all(v.e);
	check_pages(p, a, 400, 4242, 1);
	assert_int_equal(ntmm_audit(v.e), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(PSTAT(v.e, pagefile_pages), 0);
}

/* Decommit and release free the slots of pagefile PTEs and of resident
   pages alike. */
static void decommit_frees_pagefile_slots(void **s)
{
	paging_env_t v = *(paging_env_t *)*s; /* the fixture's handles */
	ntmm_process_t *p;
	assert_int_equal(ntmm_process_create(v.e, &p), 0);
	uint64_t a = commit_pages(p, 64);
	fill_pages(p, a, 64, 3, 1);
	page_out(v.e, p, a, 64);
	check_pages(p, a, 8, 3, 1); /* some resident (clean, slot kept) */
	assert_int_equal(PSTAT(v.e, pagefile_pages), 64);
	assert_int_equal(ntmm_free(p, a, 32 * PG, NTMM_MEM_DECOMMIT), 0);
	assert_int_equal(PSTAT(v.e, pagefile_pages), 32);
	assert_int_equal(ntmm_free(p, a, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(PSTAT(v.e, pagefile_pages), 0);
	assert_int_equal(ntmm_audit(v.e), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
}

typedef struct reader {
	ntmm_engine_t *e;
	ntmm_process_t *p;
	uint64_t a;
	size_t n;
	pthread_barrier_t *go; /* all readers start their first fault together */
	long collided;
} reader_t;

static void *read_all(void *arg)
{
	reader_t *r = arg;
	WORKER_CHECK(ntmm_thread_register(r->e) == 0);
	void *buf = aligned_alloc(4096, 4096);
	pthread_barrier_wait(r->go);
	for (size_t i = 0; i < r->n; i++) {
		WORKER_CHECK(ntmm_read(r->p, r->a + i * PG, buf, PG) == 0);
		WORKER_CHECK(page_check(buf, 5000 + i, 7));
		r->collided += ntmm_last_fault_kind() == NTMM_FAULT_COLLIDED;
	}
	free(buf);
	ntmm_thread_unregister(r->e);
	return NULL;
}

#define READERS 4
/* A round may miss the race (one reader gets ahead of the others for the
   whole run); rounds repeat until collisions were seen, this many at most. */
#define COLLIDE_MAX_ROUNDS 300

/* Several threads hard-fault the same pages at once: one read per page,
   the others wait on the page in flight (never a second frame), and every
   thread sees the data. */
static void collided_hard_faults_wait_for_the_read(void **s)
{
	paging_env_t v = *(paging_env_t *)*s; /* the fixture's handles */
	ntmm_process_t *p;
	assert_int_equal(ntmm_process_create(v.e, &p), 0);
	size_t n = (size_t)scaled(512);
	uint64_t a = commit_pages(p, n);
	fill_pages(p, a, n, 5000, 7);
	pthread_barrier_t go;
	assert_int_equal(pthread_barrier_init(&go, NULL, READERS), 0);
	long collided = 0;
	int round;
	for (round = 0; round < COLLIDE_MAX_ROUNDS && (round < 3 || collided == 0); round++) {
		page_out(v.e, p, a, n);
		uint64_t read0 = PSTAT(v.e, pages_read), ios0 = PSTAT(v.e, read_ios);
		uint64_t hard0 = PSTAT(v.e, hard_faults), coll0 = PSTAT(v.e, collided_faults);
		reader_t r[READERS];
		pthread_t t[READERS];
		for (int i = 0; i < READERS; i++) {
			r[i] = (reader_t){v.e, p, a, n, &go, 0};
			assert_int_equal(pthread_create(&t[i], NULL, read_all, &r[i]), 0);
		}
		long seen = 0;
		for (int i = 0; i < READERS; i++) {
			pthread_join(t[i], NULL);
			seen += r[i].collided;
		}
		assert_int_equal(atomic_load(&test_failures), 0);
		/* every page came from the paging file exactly once, however many
		   readers faulted on it: a reader that found the page in flight
		   waited for that read instead of issuing its own */
		assert_int_equal(PSTAT(v.e, pages_read) - read0, n);
		uint64_t hard = PSTAT(v.e, hard_faults) - hard0;
		assert_true(hard >= 1 && hard <= n);
		assert_int_equal(PSTAT(v.e, read_ios) - ios0, hard);
		/* the engine counted at least the collisions the readers saw */
		assert_true(PSTAT(v.e, collided_faults) - coll0 >= (uint64_t)seen);
		ntmm_process_info_t pi;
		assert_int_equal(ntmm_process_info(p, &pi), 0);
		assert_int_equal(pi.ws_pages, n); /* one frame per page */
		assert_int_equal(ntmm_audit(v.e), 0);
		collided += seen;
	}
	fprintf(stderr, "%ld collided faults in %d rounds\n", collided, round);
	assert_true(collided > 0);
	pthread_barrier_destroy(&go);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(PSTAT(v.e, pagefile_pages), 0);
}

/* A paging file added at run time raises the commit limit; one the charge
   relies on cannot be removed; once the charge fits without it, it can. */
static void added_pagefile_raises_limit_and_removal_lowers_it(void **s)
{
	paging_env_t v = *(paging_env_t *)*s; /* the fixture's handles */
	uint64_t limit0 = PSTAT(v.e, commit_limit_pages);
	char *path = io_path(v.dir, "second.sys");
	assert_int_equal(ntmm_pagefile_add(v.e, path, 4 * MiB, 4 * MiB), 0);
	assert_int_equal(PSTAT(v.e, commit_limit_pages), limit0 + 1023);
	ntmm_process_t *p;
	assert_int_equal(ntmm_process_create(v.e, &p), 0);
	uint64_t a = commit_pages(p, limit0 + 512);
	assert_int_equal(ntmm_pagefile_remove(v.e, path), NTMM_EBUSY);
	assert_int_equal(PSTAT(v.e, commit_limit_pages), limit0 + 1023);
	assert_int_equal(ntmm_free(p, a, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_pagefile_remove(v.e, path), 0);
	assert_int_equal(PSTAT(v.e, commit_limit_pages), limit0);
	assert_int_equal(ntmm_audit(v.e), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(written_pages_go_to_standby_with_pagefile_original,
	                                    setup_8_4_16, teardown),
	    cmocka_unit_test_setup_teardown(hard_fault_reads_back_every_byte_clustered,
	                                    setup_8_4_16, teardown),
	    cmocka_unit_test_setup_teardown(clean_pages_keep_their_slot_dirty_ones_free_it,
	                                    setup_8_4_16, teardown),
	    cmocka_unit_test_setup_teardown(failed_read_is_eio_pte_kept_and_retry_succeeds,
	                                    setup_8_4_16_faulty, teardown),
	    cmocka_unit_test_setup_teardown(failed_write_keeps_pages_modified_and_frees_slots,
	                                    setup_8_4_16_faulty, teardown),
	    cmocka_unit_test_setup_teardown(commit_limit_grows_the_pagefile_then_ecommit_at_maximum,
	                                    setup_8_1_8, teardown),
	    cmocka_unit_test_setup_teardown(full_pagefile_keeps_pages_modified, setup_8_1_1,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(decommit_frees_pagefile_slots, setup_8_4_16, teardown),
	    cmocka_unit_test_setup_teardown(collided_hard_faults_wait_for_the_read, setup_scaled,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(added_pagefile_raises_limit_and_removal_lowers_it,
	                                    setup_8_1_1, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
