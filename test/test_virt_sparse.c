/* Large sparse address spaces: a reservation may cover the whole user
   address space; it costs its VAD (one word per run of pages) and the
   page-table pages its committed pages need — one chain of tables per
   isolated committed page, charged when committed, freed and given back
   when the last committed page under a table is decommitted. Every walk
   over such a range (query, protect, decommit, release, trim, audit,
   destroy) goes by runs and present tables, never page by page. */
#include "virt_testutil.h"

#include "engine.h"
#include "virt/virt.h"

#define GiB (1024ull * MiB)
#define TiB (1024ull * GiB)

#define USER_START 0x10000ull
#define USER_END   0x7fffffff0000ull

/* the 100 TiB sparse reservation: one page committed every 100 GiB */
#define SPARSE_BASE (1 * TiB)
#define SPARSE_SIZE (100 * TiB)
#define SPARSE_STEP (100 * GiB)
#define SPARSE_N    (SPARSE_SIZE / SPARSE_STEP) /* 1024 */

static ntmm_engine_t *E;
static ntmm_process_t *P;

static int setup(void **state)
{
	E = virt_engine(64 * MiB, 0);
	P = virt_process(E);
	return 0;
}
static int teardown(void **state)
{
	if (P)
		assert_int_equal(ntmm_process_destroy(P), 0);
	virt_engine_done(E);
	return 0;
}

static void query(uint64_t va, ntmm_region_info_t *i)
{
	assert_int_equal(ntmm_query(P, va, i), 0);
}

/* Page-table pages below the root charged to P: the system charge minus
   P's committed pages and its top-level table (P is the only process). */
static uint64_t table_charge(void)
{
	ntmm_process_info_t pi;
	assert_int_equal(ntmm_process_info(P, &pi), 0);
	return STAT(E, commit_pages) - pi.commit_pages - 1;
}

static uint64_t commit_of_p(void)
{
	ntmm_process_info_t pi;
	assert_int_equal(ntmm_process_info(P, &pi), 0);
	return pi.commit_pages;
}

/* Table pages present in P's tree (the root included), counted by the
   page-table audit (quiescent: this thread is the only one). */
static uint64_t tables_present(void)
{
	uint64_t valid, tables;
	assert_int_equal(ntmm__pt_audit(P, &valid, &tables), 0);
	return tables;
}

/* The model: table pages below the root that pages at va[0..n) need —
   one per distinct 2 MiB, 1 GiB and 512 GiB span (va ascending). */
static uint64_t tables_model(const uint64_t *va, size_t n)
{
	uint64_t t = 0;
	const unsigned shift[3] = {21, 30, 39};
	for (int l = 0; l < 3; l++)
		for (size_t i = 0; i < n; i++)
			t += i == 0 || (va[i] >> shift[l]) != (va[i - 1] >> shift[l]);
	return t;
}

static uint64_t sparse_va[SPARSE_N];

/* Reserves the 100 TiB range and commits one page every 100 GiB (each at
   a different offset in its 2 MiB span), checking the charge after each. */
static void sparse_reserve_and_commit(void)
{
	uint64_t b = SPARSE_BASE;
	assert_int_equal(ntmm_allocate(P, &b, SPARSE_SIZE, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE),
	                 0);
	assert_int_equal(b, SPARSE_BASE);
	assert_int_equal(table_charge(), 0);
	assert_int_equal(ntmm_audit(E), 0);
	for (uint64_t i = 0; i < SPARSE_N; i++) {
		uint64_t a = SPARSE_BASE + i * SPARSE_STEP + (i % 512) * PG;
		sparse_va[i] = a;
		assert_int_equal(ntmm_allocate(P, &a, PG, NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE), 0);
		assert_int_equal(a, sparse_va[i]);
		assert_int_equal(commit_of_p(), i + 1);
		assert_int_equal(table_charge(), tables_model(sparse_va, i + 1));
	}
	assert_int_equal(ntmm_audit(E), 0);
}

static void sparse_write_all(void)
{
	for (uint64_t i = 0; i < SPARSE_N; i++) {
		uint64_t word = sparse_va[i] ^ 0x5a5a5a5a5a5a5a5aull;
		assert_int_equal(ntmm_write(P, sparse_va[i] + 8 * (i % 512), &word, sizeof(word)),
		                 0);
	}
}

static void sparse_read_back(void)
{
	for (uint64_t i = 0; i < SPARSE_N; i++) {
		uint64_t word = 0, zero = 1;
		assert_int_equal(ntmm_read(P, sparse_va[i] + 8 * (i % 512), &word, sizeof(word)),
		                 0);
		assert_int_equal(word, sparse_va[i] ^ 0x5a5a5a5a5a5a5a5aull);
		/* the rest of the page is still zero */
		assert_int_equal(
		    ntmm_read(P, sparse_va[i] + 8 * ((i + 1) % 512), &zero, sizeof(zero)), 0);
		assert_int_equal(zero, 0);
	}
}

/* ---------------------------------------------------------------- tests */

static void whole_user_space_is_one_reservation(void **s)
{
	uint64_t b = USER_START;
	assert_int_equal(
	    ntmm_allocate(P, &b, USER_END - USER_START, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE), 0);
	assert_int_equal(b, USER_START);
	ntmm_region_info_t i;
	query(USER_END - PG, &i);
	assert_int_equal(i.allocation_base, USER_START);
	assert_int_equal(i.base, USER_END - PG);
	assert_int_equal(i.size, PG);
	assert_int_equal(i.state, NTMM_MEM_RESERVE);
	query(USER_START, &i);
	assert_int_equal(i.size, USER_END - USER_START);
	assert_int_equal(ntmm_audit(E), 0);

	/* nothing else fits, fixed or engine-chosen */
	uint64_t c = 64 * TiB;
	assert_int_equal(ntmm_allocate(P, &c, PG, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE),
	                 NTMM_ECONFLICT);
	c = 0;
	assert_int_equal(ntmm_allocate(P, &c, PG, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE),
	                 NTMM_ENOMEM);

	/* its first and last pages, and one in the middle, committed and used */
	uint64_t pages[3] = {USER_START, 64 * TiB, USER_END - PG};
	for (int k = 0; k < 3; k++) {
		uint64_t a = pages[k];
		assert_int_equal(ntmm_allocate(P, &a, PG, NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE), 0);
		uint64_t w = pages[k] * 3;
		assert_int_equal(ntmm_write(P, pages[k] + PG - 8, &w, 8), 0);
	}
	assert_int_equal(table_charge(), tables_model(pages, 3));
	assert_int_equal(tables_present(), 1 + tables_model(pages, 3));
	for (int k = 0; k < 3; k++) {
		uint64_t w = 0;
		assert_int_equal(ntmm_read(P, pages[k] + PG - 8, &w, 8), 0);
		assert_int_equal(w, pages[k] * 3);
	}
	query(USER_START + PG, &i);
	assert_int_equal(i.state, NTMM_MEM_RESERVE);
	assert_int_equal(i.size, 64 * TiB - USER_START - PG);
	assert_int_equal(ntmm_audit(E), 0);
	assert_int_equal(ntmm_free(P, USER_START, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(table_charge(), 0);
	assert_int_equal(tables_present(), 1);
	query(USER_START, &i);
	assert_int_equal(i.state, NTMM_MEM_FREE);
	assert_int_equal(i.size, USER_END - USER_START);
}

static void engine_can_choose_the_whole_user_space(void **s)
{
	uint64_t b = 0;
	assert_int_equal(
	    ntmm_allocate(P, &b, USER_END - USER_START, NTMM_MEM_RESERVE, NTMM_PAGE_READONLY), 0);
	assert_int_equal(b, USER_START);
	assert_int_equal(ntmm_audit(E), 0);
	assert_int_equal(ntmm_free(P, b, 0, NTMM_MEM_RELEASE), 0);
}

static void sparse_commits_cost_one_table_chain_each(void **s)
{
	uint64_t created = STAT(E, pagetable_pages);
	sparse_reserve_and_commit();
	/* committing takes no frame: no table exists before the first touch */
	assert_int_equal(tables_present(), 1);
	sparse_write_all();
	assert_int_equal(ntmm_audit(E), 0);
	uint64_t model = tables_model(sparse_va, SPARSE_N);
	/* 1024 leaf tables, 1024 middle ones, one per 512 GiB span touched */
	assert_int_equal(model, 2 * SPARSE_N + (SPARSE_SIZE + SPARSE_BASE) / (512 * GiB) -
	                            SPARSE_BASE / (512 * GiB));
	assert_int_equal(tables_present(), 1 + model);
	assert_int_equal(STAT(E, pagetable_pages) - created, model);
	assert_int_equal(table_charge(), model);
	sparse_read_back();

	/* the VAD: one run per committed page and one per reserved gap (the
	   first page is the reservation's first: no gap before it) */
	ntmm__vad_map_t *m = atomic_load(&P->vads);
	assert_int_equal(m->n, 1);
	assert_int_equal(m->vads[0]->npages, SPARSE_SIZE / PG);
	assert_int_equal(m->vads[0]->ncommitted, SPARSE_N);
	assert_int_equal(m->vads[0]->nruns, 2 * SPARSE_N);

	/* trimmed to the paging lists and faulted back: still there */
	assert_int_equal(ntmm_ws_empty(P), 0);
	assert_int_equal(ntmm_audit(E), 0);
	sparse_read_back();
	assert_int_equal(ntmm_audit(E), 0);
}

static void decommit_of_the_last_page_under_a_table_frees_the_chain(void **s)
{
	sparse_reserve_and_commit();
	sparse_write_all();
	uint64_t present = tables_present();
	/* decommit page by page: each frees its leaf and middle tables, the
	   512 GiB table when its last page goes, and gives their charge back */
	for (uint64_t i = 0; i < SPARSE_N; i++) {
		assert_int_equal(ntmm_free(P, sparse_va[i], PG, NTMM_MEM_DECOMMIT), 0);
		uint64_t left = tables_model(sparse_va + i + 1, SPARSE_N - i - 1);
		assert_int_equal(table_charge(), left);
		assert_int_equal(tables_present(), 1 + left);
		assert_int_equal(commit_of_p(), SPARSE_N - i - 1);
		if (i % 128 == 0)
			assert_int_equal(ntmm_audit(E), 0);
	}
	assert_true(present > 1 + 2 * SPARSE_N);
	assert_int_equal(tables_present(), 1);
	assert_int_equal(table_charge(), 0);
	assert_int_equal(ntmm_audit(E), 0);
	/* decommitted pages read as inaccessible; the range is still reserved */
	uint64_t w;
	assert_int_equal(ntmm_read(P, sparse_va[7], &w, 8), NTMM_EACCESS);
	ntmm_region_info_t i;
	query(SPARSE_BASE, &i);
	assert_int_equal(i.state, NTMM_MEM_RESERVE);
	assert_int_equal(i.size, SPARSE_SIZE);
	assert_int_equal(ntmm_free(P, SPARSE_BASE, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_audit(E), 0);
}

static void decommit_of_the_whole_sparse_range_gives_everything_back(void **s)
{
	uint64_t charge0 = STAT(E, commit_pages), active0 = STAT(E, active_pages);
	sparse_reserve_and_commit();
	sparse_write_all();
	assert_true(STAT(E, active_pages) >= active0 + SPARSE_N + 2 * SPARSE_N);
	assert_int_equal(ntmm_free(P, SPARSE_BASE, SPARSE_SIZE, NTMM_MEM_DECOMMIT), 0);
	assert_int_equal(commit_of_p(), 0);
	assert_int_equal(table_charge(), 0);
	assert_int_equal(STAT(E, commit_pages), charge0);
	assert_int_equal(tables_present(), 1);
	/* every data frame and table page went back to the pool */
	assert_int_equal(STAT(E, active_pages), active0);
	ntmm__vad_map_t *m = atomic_load(&P->vads);
	assert_int_equal(m->vads[0]->nruns, 1);
	assert_int_equal(ntmm_audit(E), 0);
	assert_int_equal(ntmm_free(P, SPARSE_BASE, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_audit(E), 0);
}

static void release_of_a_touched_sparse_range_gives_everything_back(void **s)
{
	uint64_t charge0 = STAT(E, commit_pages), active0 = STAT(E, active_pages);
	sparse_reserve_and_commit();
	sparse_write_all();
	assert_int_equal(ntmm_free(P, SPARSE_BASE, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(STAT(E, commit_pages), charge0);
	assert_int_equal(STAT(E, active_pages), active0);
	assert_int_equal(tables_present(), 1);
	assert_int_equal(ntmm_audit(E), 0);
}

static void destroy_of_a_sparse_process_gives_everything_back(void **s)
{
	uint64_t active0 = STAT(E, active_pages);
	sparse_reserve_and_commit();
	sparse_write_all();
	assert_int_equal(ntmm_process_destroy(P), 0);
	P = NULL;
	/* the root went with the process, as did the table chains */
	assert_int_equal(STAT(E, commit_pages), 0);
	assert_true(STAT(E, active_pages) < active0);
	assert_int_equal(ntmm_audit(E), 0);
}

static void query_of_a_sparse_reservation_returns_its_runs(void **s)
{
	sparse_reserve_and_commit();
	/* one page made read-only, one guard page: runs of their own */
	unsigned old;
	assert_int_equal(ntmm_protect(P, sparse_va[10], PG, NTMM_PAGE_READONLY, &old), 0);
	assert_int_equal(old, NTMM_PAGE_READWRITE);
	assert_int_equal(
	    ntmm_protect(P, sparse_va[900], PG, NTMM_PAGE_READWRITE | NTMM_PAGE_GUARD, &old), 0);
	/* a protect that spans reserved pages is refused */
	assert_int_equal(ntmm_protect(P, sparse_va[11], 2 * PG, NTMM_PAGE_READONLY, &old),
	                 NTMM_ECONFLICT);

	uint64_t va = SPARSE_BASE;
	for (uint64_t k = 0; k < SPARSE_N; k++) {
		ntmm_region_info_t i;
		query(va, &i);
		assert_int_equal(i.allocation_base, SPARSE_BASE);
		if (va < sparse_va[k]) { /* the reserved gap before page k */
			assert_int_equal(i.base, va);
			assert_int_equal(i.state, NTMM_MEM_RESERVE);
			assert_int_equal(i.size, sparse_va[k] - va);
			va = sparse_va[k];
			query(va, &i);
		}
		assert_int_equal(i.base, sparse_va[k]);
		assert_int_equal(i.state, NTMM_MEM_COMMIT);
		assert_int_equal(i.size, PG);
		assert_int_equal(i.prot, k == 10    ? NTMM_PAGE_READONLY
		                         : k == 900 ? (NTMM_PAGE_READWRITE | NTMM_PAGE_GUARD)
		                                    : NTMM_PAGE_READWRITE);
		va += PG;
	}
	ntmm_region_info_t i;
	query(va, &i); /* the tail up to the reservation's end */
	assert_int_equal(i.state, NTMM_MEM_RESERVE);
	assert_int_equal(i.base + i.size, SPARSE_BASE + SPARSE_SIZE);
	query(SPARSE_BASE + SPARSE_SIZE, &i);
	assert_int_equal(i.state, NTMM_MEM_FREE);
	assert_int_equal(i.size, USER_END - SPARSE_BASE - SPARSE_SIZE);

	/* the guard page faults once, a write to the read-only page is refused */
	uint64_t w = 1;
	assert_int_equal(ntmm_write(P, sparse_va[900], &w, 8), NTMM_EGUARD);
	assert_int_equal(ntmm_write(P, sparse_va[900], &w, 8), 0);
	assert_int_equal(ntmm_write(P, sparse_va[10], &w, 8), NTMM_EACCESS);
	assert_int_equal(ntmm_audit(E), 0);
	assert_int_equal(ntmm_free(P, SPARSE_BASE, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_audit(E), 0);
}

/* A commit of more than 2^32 pages counts every one of them. */
static void commit_of_more_than_4g_pages_is_counted_in_full(void **s)
{
	uint64_t b = 0, size = 17 * TiB;
	assert_int_equal(ntmm_allocate(P, &b, size, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE), 0);
	uint64_t charge0 = STAT(E, commit_pages);
	uint64_t a = b;
	assert_int_equal(ntmm_allocate(P, &a, size, NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE),
	                 NTMM_ECOMMIT);
	assert_non_null(strstr(ntmm_error_detail(), "4563402752 pages"));
	assert_int_equal(STAT(E, commit_pages), charge0);
	/* the same with reserve and commit in one call */
	uint64_t c = 0;
	assert_int_equal(
	    ntmm_allocate(P, &c, size, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE),
	    NTMM_ECOMMIT);
	assert_int_equal(STAT(E, commit_pages), charge0);
	/* a page past 16 TiB into the reservation is its own page */
	a = b + 16 * TiB + 5 * PG;
	assert_int_equal(ntmm_allocate(P, &a, PG, NTMM_MEM_COMMIT, NTMM_PAGE_READONLY), 0);
	ntmm_region_info_t i;
	query(b + 5 * PG, &i);
	assert_int_equal(i.state, NTMM_MEM_RESERVE);
	query(a, &i);
	assert_int_equal(i.base, b + 16 * TiB + 5 * PG);
	assert_int_equal(i.state, NTMM_MEM_COMMIT);
	assert_int_equal(i.prot, NTMM_PAGE_READONLY);
	assert_int_equal(i.size, PG);
	uint64_t w = 9;
	assert_int_equal(ntmm_read(P, a, &w, 8), 0);
	assert_int_equal(w, 0);
	assert_int_equal(ntmm_read(P, b + 5 * PG, &w, 8), NTMM_EACCESS);
	assert_int_equal(ntmm_audit(E), 0);
	assert_int_equal(ntmm_free(P, b, 0, NTMM_MEM_RELEASE), 0);
}

static void engine_places_a_64tib_reservation(void **s)
{
	for (int top = 0; top < 2; top++) {
		uint64_t b = 0, c = 0;
		unsigned type = NTMM_MEM_RESERVE | (top ? NTMM_MEM_TOP_DOWN : 0);
		assert_int_equal(ntmm_allocate(P, &b, 64 * TiB, type, NTMM_PAGE_READWRITE), 0);
		assert_int_equal(b % GRAN, 0);
		assert_true(b >= USER_START && b + 64 * TiB <= USER_END);
		if (top)
			assert_int_equal(b, USER_END - 64 * TiB);
		else
			assert_int_equal(b, USER_START);
		ntmm_region_info_t i;
		query(b, &i);
		assert_int_equal(i.state, NTMM_MEM_RESERVE);
		assert_int_equal(i.size, 64 * TiB);
		/* a second one does not fit beside it (the space is 128 KiB short) */
		assert_int_equal(ntmm_allocate(P, &c, 64 * TiB, type, NTMM_PAGE_READWRITE),
		                 NTMM_ENOMEM);
		/* a smaller one does, in the other half */
		assert_int_equal(ntmm_allocate(P, &c, 32 * TiB, type, NTMM_PAGE_READWRITE), 0);
		assert_true(c >= b + 64 * TiB || c + 32 * TiB <= b);
		uint64_t a = c + 20 * TiB;
		assert_int_equal(ntmm_allocate(P, &a, PG, NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE), 0);
		assert_int_equal(ntmm_write(P, a, &a, 8), 0);
		assert_int_equal(ntmm_audit(E), 0);
		assert_int_equal(ntmm_free(P, b, 0, NTMM_MEM_RELEASE), 0);
		assert_int_equal(ntmm_free(P, c, 0, NTMM_MEM_RELEASE), 0);
	}
}

static void engine_places_a_64tib_reservation_with_aslr(void **s)
{
	ntmm_engine_t *e = virt_engine(4 * MiB, 7);
	ntmm_process_t *p = virt_process(e);
	uint64_t b = 0;
	assert_int_equal(ntmm_allocate(p, &b, 64 * TiB, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE), 0);
	assert_int_equal(b % GRAN, 0);
	assert_true(b >= USER_START && b + 64 * TiB <= USER_END);
	assert_int_equal(ntmm_process_destroy(p), 0);
	virt_engine_done(e);
}

static void reservation_above_the_free_space_is_enomem_with_a_detail(void **s)
{
	/* one granule taken in the middle: neither half holds 100 TiB */
	uint64_t mid = 64 * TiB, b = 0;
	assert_int_equal(ntmm_allocate(P, &mid, GRAN, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE), 0);
	assert_int_equal(ntmm_allocate(P, &b, 100 * TiB, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE),
	                 NTMM_ENOMEM);
	assert_int_equal(b, 0); /* as given */
	assert_non_null(strstr(ntmm_error_detail(), "no free range"));
	assert_int_equal(ntmm_allocate(P, &b, 100 * TiB, NTMM_MEM_RESERVE | NTMM_MEM_TOP_DOWN,
	                               NTMM_PAGE_READWRITE),
	                 NTMM_ENOMEM);
	assert_int_equal(
	    ntmm_allocate(P, &b, USER_END - USER_START, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE),
	    NTMM_ENOMEM);
	/* larger than the whole user space: a bad size, not a full space */
	assert_int_equal(
	    ntmm_allocate(P, &b, USER_END - USER_START + PG, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE),
	    NTMM_EINVAL);
	assert_non_null(strstr(ntmm_error_detail(), "larger than the user address space"));
	assert_int_equal(ntmm_allocate(P, &b, 128 * TiB, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE),
	                 NTMM_EINVAL);
	/* a fixed base: the range must lie in the user space */
	b = 64 * TiB + 2 * GRAN;
	assert_int_equal(ntmm_allocate(P, &b, 64 * TiB, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE),
	                 NTMM_EINVAL);
	assert_int_equal(ntmm_audit(E), 0);
	assert_int_equal(ntmm_free(P, mid, 0, NTMM_MEM_RELEASE), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(whole_user_space_is_one_reservation, setup, teardown),
	    cmocka_unit_test_setup_teardown(engine_can_choose_the_whole_user_space, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(sparse_commits_cost_one_table_chain_each, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(decommit_of_the_last_page_under_a_table_frees_the_chain,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        decommit_of_the_whole_sparse_range_gives_everything_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(release_of_a_touched_sparse_range_gives_everything_back,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(destroy_of_a_sparse_process_gives_everything_back,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(query_of_a_sparse_reservation_returns_its_runs, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(commit_of_more_than_4g_pages_is_counted_in_full, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(engine_places_a_64tib_reservation, setup, teardown),
	    cmocka_unit_test(engine_places_a_64tib_reservation_with_aslr),
	    cmocka_unit_test_setup_teardown(
	        reservation_above_the_free_space_is_enomem_with_a_detail, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
