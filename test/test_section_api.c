/*
 * The section and view API's contract (include/ntmm.h, "sections, views,
 * copy-on-write, clone"), bad input first, each its own test: a clear
 * NTMM_E* code with an error detail, nothing changed, and the audit
 * passing after each (the teardown audits). Then what a view looks like
 * to the rest of the virtual memory API: ntmm_query, ntmm_protect,
 * ntmm_free and accesses past its end.
 *
 * The fixture: a 16 MiB pool, a fixed 32 MiB paging file, no system
 * threads, one process and a 256 KiB data file (pattern 1) opened O_RDWR.
 */
#include "section_testutil.h"

#define FILE_BYTES (256 * KiB)

static sec_env_t V;
static ntmm_process_t *P;
static int FD;

static int setup(void **state)
{
	(void)state;
	V = sec_env(16, 32, false);
	P = sec_process(V.e);
	FD = sec_file(&V, "data", FILE_BYTES, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	assert_int_equal(ntmm_process_destroy(P), 0);
	close(FD);
	sec_env_done(&V);
	return 0;
}

/* A file section of the whole data file with protection prot. */
static ntmm_section_t *file_section(unsigned prot)
{
	return sec_create(V.e, FD, 0, prot, 0);
}

/* ------------------------------------------------- ntmm_section_create */

static void readonly_file_section_larger_than_the_file_is_einval(void **st)
{
	(void)st;
	ntmm_section_t *s = (ntmm_section_t *)1;
	assert_refused(ntmm_section_create(V.e, FD, FILE_BYTES + PG, NTMM_PAGE_READONLY, 0, &s),
	               NTMM_EINVAL);
	assert_null(s);
	assert_int_equal(sec_fsize(FD), FILE_BYTES); /* not grown */
	/* a size within the file is fine */
	s = sec_create(V.e, FD, FILE_BYTES - GRAN, NTMM_PAGE_READONLY, 0);
	assert_int_equal(ntmm_section_close(s), 0);
}

static void readwrite_file_section_larger_than_the_file_grows_it(void **st)
{
	(void)st;
	ntmm_section_t *s = sec_create(V.e, FD, FILE_BYTES + 2 * GRAN, NTMM_PAGE_READWRITE, 0);
	assert_int_equal(sec_fsize(FD), FILE_BYTES + 2 * GRAN);
	uint64_t b = sec_map(s, P, 0, 0, NTMM_PAGE_READWRITE);
	ntmm_region_info_t i = sec_query(P, b);
	assert_int_equal(i.size, FILE_BYTES + 2 * GRAN);
	/* the old bytes are the file's, the grown part reads zero */
	assert_int_equal(sec_check(P, b, 0, FILE_BYTES, 1), 0);
	char z[PG];
	assert_int_equal(ntmm_read(P, b + FILE_BYTES + GRAN, z, sizeof(z)), 0);
	assert_true(sec_all_zero(z, sizeof(z)));
	assert_int_equal(ntmm_unmap_view(P, b), 0);
	assert_int_equal(ntmm_section_close(s), 0);
}

/* A descriptor that is not open names no file: an invalid handle. */
static void a_descriptor_that_is_not_open_is_einval(void **st)
{
	(void)st;
	int fd = dup(FD);
	assert_true(fd >= 0);
	close(fd);
	ntmm_section_t *s = (ntmm_section_t *)1;
	assert_refused(ntmm_section_create(V.e, fd, 0, NTMM_PAGE_READONLY, 0, &s), NTMM_EINVAL);
	assert_null(s);
}

/* A directory cannot back a section. */
static void a_directory_descriptor_is_einval(void **st)
{
	(void)st;
	int fd = open(V.dir, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	ntmm_section_t *s = (ntmm_section_t *)1;
	assert_refused(ntmm_section_create(V.e, fd, 0, NTMM_PAGE_READONLY, 0, &s), NTMM_EINVAL);
	assert_null(s);
	assert_refused(ntmm_section_create(V.e, fd, GRAN, NTMM_PAGE_READWRITE, 0, &s), NTMM_EINVAL);
	close(fd);
}

/* The descriptor must allow what the section's protection needs: reading
   for every section, writing for READWRITE ones (a WRITECOPY section never
   writes its file). Refused at create, not at the first fault. */
static void a_descriptor_without_the_access_the_section_needs_is_einval(void **st)
{
	(void)st;
	ntmm_section_t *s = (ntmm_section_t *)1;
	int wo = sec_reopen(&V, "data", O_WRONLY);
	assert_refused(ntmm_section_create(V.e, wo, 0, NTMM_PAGE_READONLY, 0, &s), NTMM_EINVAL);
	assert_null(s);
	assert_refused(ntmm_section_create(V.e, wo, 0, NTMM_PAGE_READWRITE, 0, &s), NTMM_EINVAL);
	close(wo);
	int ro = sec_reopen(&V, "data", O_RDONLY);
	assert_refused(ntmm_section_create(V.e, ro, 0, NTMM_PAGE_READWRITE, 0, &s), NTMM_EINVAL);
	assert_null(s);
	/* read-only descriptors back READONLY and WRITECOPY sections */
	s = sec_create(V.e, ro, 0, NTMM_PAGE_READONLY, 0);
	assert_int_equal(ntmm_section_close(s), 0);
	s = sec_create(V.e, ro, 0, NTMM_PAGE_WRITECOPY, 0);
	assert_int_equal(ntmm_section_close(s), 0);
	close(ro);
}

/* An empty file with size 0 would be a section of no bytes. */
static void an_empty_file_with_size_0_is_einval(void **st)
{
	(void)st;
	int fd = sec_file(&V, "empty", 0, 2);
	ntmm_section_t *s = (ntmm_section_t *)1;
	assert_refused(ntmm_section_create(V.e, fd, 0, NTMM_PAGE_READONLY, 0, &s), NTMM_EINVAL);
	assert_null(s);
	close(fd);
}

static void paging_file_section_of_size_0_is_einval(void **st)
{
	(void)st;
	ntmm_section_t *s = (ntmm_section_t *)1;
	assert_refused(ntmm_section_create(V.e, -1, 0, NTMM_PAGE_READWRITE, 0, &s), NTMM_EINVAL);
	assert_null(s);
	assert_refused(ntmm_section_create(V.e, -1, 0, NTMM_PAGE_READWRITE, NTMM_SEC_RESERVE, &s),
	               NTMM_EINVAL);
}

/* fd < 0 means the paging files, whatever the negative value. */
static void any_negative_descriptor_is_a_paging_file_section(void **st)
{
	(void)st;
	ntmm_section_t *s = sec_create(V.e, -2, GRAN, NTMM_PAGE_READWRITE, 0);
	uint64_t b = sec_map(s, P, 0, 0, NTMM_PAGE_READWRITE);
	char z[PG];
	assert_int_equal(ntmm_read(P, b + PG, z, sizeof(z)), 0);
	assert_true(sec_all_zero(z, sizeof(z))); /* demand-zero */
	assert_int_equal(sec_write(P, b, 0, GRAN, 3), 0);
	assert_int_equal(sec_check(P, b, 0, GRAN, 3), 0);
	assert_int_equal(ntmm_unmap_view(P, b), 0);
	assert_int_equal(ntmm_section_close(s), 0);
}

static void bad_section_arguments_are_einval(void **st)
{
	(void)st;
	ntmm_section_t *s = (ntmm_section_t *)1;
	assert_refused(ntmm_section_create(NULL, -1, GRAN, NTMM_PAGE_READWRITE, 0, &s),
	               NTMM_EINVAL);
	assert_refused(ntmm_section_create(V.e, -1, GRAN, NTMM_PAGE_READWRITE, 0, NULL),
	               NTMM_EINVAL);
	/* a section's protection is READONLY, READWRITE or WRITECOPY */
	const unsigned bad_prot[] = {0, NTMM_PAGE_NOACCESS, NTMM_PAGE_READWRITE | NTMM_PAGE_GUARD,
	                             NTMM_PAGE_READONLY | NTMM_PAGE_READWRITE, 0x80000000u};
	for (size_t i = 0; i < sizeof(bad_prot) / sizeof(bad_prot[0]); i++) {
		assert_refused(ntmm_section_create(V.e, -1, GRAN, bad_prot[i], 0, &s), NTMM_EINVAL);
		assert_refused(ntmm_section_create(V.e, FD, 0, bad_prot[i], 0, &s), NTMM_EINVAL);
	}
	/* flags: COMMIT or RESERVE for paging-file sections, 0 for files */
	assert_refused(ntmm_section_create(V.e, -1, GRAN, NTMM_PAGE_READWRITE,
	                                   NTMM_SEC_COMMIT | NTMM_SEC_RESERVE, &s),
	               NTMM_EINVAL);
	assert_refused(ntmm_section_create(V.e, -1, GRAN, NTMM_PAGE_READWRITE, 0x1u, &s),
	               NTMM_EINVAL);
	assert_refused(ntmm_section_create(V.e, FD, 0, NTMM_PAGE_READWRITE, NTMM_SEC_COMMIT, &s),
	               NTMM_EINVAL);
	assert_refused(ntmm_section_create(V.e, FD, 0, NTMM_PAGE_READWRITE, NTMM_SEC_RESERVE, &s),
	               NTMM_EINVAL);
	assert_null(s);
	/* SEC_COMMIT spelled out is the default */
	s = sec_create(V.e, -1, GRAN, NTMM_PAGE_READWRITE, NTMM_SEC_COMMIT);
	assert_int_equal(ntmm_section_close(s), 0);
}

/* SEC_COMMIT charges the whole size at create: past the limit it is
   NTMM_ECOMMIT and nothing is charged; within it, the charge comes back
   when the section (mapped nowhere) is closed. SEC_RESERVE charges
   nothing at create. */
static void sec_commit_past_the_commit_limit_is_ecommit(void **st)
{
	(void)st;
	uint64_t limit = SEC_STAT(V.e, commit_limit_pages), charge = SEC_STAT(V.e, commit_pages);
	uint64_t room = limit - charge;
	ntmm_section_t *s = (ntmm_section_t *)1;
	assert_refused(
	    ntmm_section_create(V.e, -1, (room + 1) * PG, NTMM_PAGE_READWRITE, NTMM_SEC_COMMIT, &s),
	    NTMM_ECOMMIT);
	assert_null(s);
	assert_int_equal(SEC_STAT(V.e, commit_pages), charge);
	/* the default flags are SEC_COMMIT */
	assert_refused(ntmm_section_create(V.e, -1, (room + 1) * PG, NTMM_PAGE_READWRITE, 0, &s),
	               NTMM_ECOMMIT);
	assert_int_equal(SEC_STAT(V.e, commit_pages), charge);

	s = sec_create(V.e, -1, (room / 2) * PG, NTMM_PAGE_READWRITE, NTMM_SEC_COMMIT);
	assert_true(SEC_STAT(V.e, commit_pages) >= charge + room / 2);
	assert_int_equal(ntmm_section_close(s), 0);
	assert_int_equal(SEC_STAT(V.e, commit_pages), charge);

	s = sec_create(V.e, -1, (room + 1) * PG, NTMM_PAGE_READWRITE, NTMM_SEC_RESERVE);
	assert_true(SEC_STAT(V.e, commit_pages) < charge + room / 2);
	assert_int_equal(ntmm_section_close(s), 0);
	assert_int_equal(SEC_STAT(V.e, commit_pages), charge);
}

static void section_close_of_null_is_einval(void **st)
{
	(void)st;
	assert_refused(ntmm_section_close(NULL), NTMM_EINVAL);
}

/* ------------------------------------------------------- ntmm_map_view */

static void view_offset_not_64k_aligned_is_einval(void **st)
{
	(void)st;
	ntmm_section_t *s = file_section(NTMM_PAGE_READWRITE);
	uint64_t b = 0;
	assert_refused(ntmm_map_view(s, P, &b, PG, PG, NTMM_PAGE_READWRITE), NTMM_EINVAL);
	assert_refused(ntmm_map_view(s, P, &b, GRAN + PG, 0, NTMM_PAGE_READWRITE), NTMM_EINVAL);
	assert_refused(ntmm_map_view(s, P, &b, GRAN / 2, PG, NTMM_PAGE_READONLY), NTMM_EINVAL);
	assert_refused(ntmm_map_view(s, P, &b, 1, PG, NTMM_PAGE_READONLY), NTMM_EINVAL);
	assert_int_equal(b, 0);
	/* nothing was mapped: the low user space is still free */
	ntmm_region_info_t i = sec_query(P, GRAN);
	assert_int_equal(i.state, NTMM_MEM_FREE);
	b = sec_map(s, P, GRAN, PG, NTMM_PAGE_READWRITE);
	assert_int_equal(sec_check(P, b, GRAN, PG, 1), 0);
	assert_int_equal(ntmm_unmap_view(P, b), 0);
	assert_int_equal(ntmm_section_close(s), 0);
}

static void view_past_the_sections_end_is_einval(void **st)
{
	(void)st;
	ntmm_section_t *s = file_section(NTMM_PAGE_READWRITE);
	uint64_t b = 0;
	/* one page too many, from the start and from the middle */
	assert_refused(ntmm_map_view(s, P, &b, 0, FILE_BYTES + PG, NTMM_PAGE_READWRITE),
	               NTMM_EINVAL);
	assert_refused(ntmm_map_view(s, P, &b, 0, FILE_BYTES + 1, NTMM_PAGE_READWRITE),
	               NTMM_EINVAL);
	assert_refused(ntmm_map_view(s, P, &b, 3 * GRAN, 2 * GRAN, NTMM_PAGE_READWRITE),
	               NTMM_EINVAL);
	/* an offset at or past the end, with a size or to the end */
	assert_refused(ntmm_map_view(s, P, &b, FILE_BYTES, PG, NTMM_PAGE_READWRITE), NTMM_EINVAL);
	assert_refused(ntmm_map_view(s, P, &b, FILE_BYTES, 0, NTMM_PAGE_READWRITE), NTMM_EINVAL);
	assert_refused(ntmm_map_view(s, P, &b, FILE_BYTES + GRAN, 0, NTMM_PAGE_READONLY),
	               NTMM_EINVAL);
	/* sizes that wrap around */
	assert_refused(ntmm_map_view(s, P, &b, GRAN, SIZE_MAX, NTMM_PAGE_READONLY), NTMM_EINVAL);
	assert_refused(ntmm_map_view(s, P, &b, UINT64_MAX & ~(GRAN - 1), PG, NTMM_PAGE_READONLY),
	               NTMM_EINVAL);
	assert_int_equal(b, 0);
	/* exactly the section fits */
	b = sec_map(s, P, 3 * GRAN, GRAN, NTMM_PAGE_READWRITE);
	assert_int_equal(ntmm_unmap_view(P, b), 0);
	b = sec_map(s, P, 0, FILE_BYTES, NTMM_PAGE_READWRITE);
	assert_int_equal(ntmm_unmap_view(P, b), 0);
	assert_int_equal(ntmm_section_close(s), 0);
}

/* Size 0 maps from the offset to the section's end: one region of that
   size, and nothing after it. */
static void view_of_size_0_runs_to_the_sections_end(void **st)
{
	(void)st;
	ntmm_section_t *s = file_section(NTMM_PAGE_READWRITE);
	uint64_t b = sec_map(s, P, GRAN, 0, NTMM_PAGE_READONLY);
	ntmm_region_info_t i = sec_query(P, b);
	assert_int_equal(i.base, b);
	assert_int_equal(i.allocation_base, b);
	assert_int_equal(i.size, FILE_BYTES - GRAN);
	assert_int_equal(sec_check(P, b, GRAN, FILE_BYTES - GRAN, 1), 0);
	char c;
	assert_int_equal(ntmm_read(P, b + FILE_BYTES - GRAN, &c, 1), NTMM_EACCESS);
	assert_int_equal(ntmm_unmap_view(P, b), 0);
	assert_int_equal(ntmm_section_close(s), 0);
}

/* A size that is not a multiple of pages is rounded up to pages. */
static void view_size_rounds_up_to_pages(void **st)
{
	(void)st;
	ntmm_section_t *s = file_section(NTMM_PAGE_READWRITE);
	uint64_t b = sec_map(s, P, 0, PG + 1, NTMM_PAGE_READONLY);
	ntmm_region_info_t i = sec_query(P, b);
	assert_int_equal(i.size, 2 * PG);
	assert_int_equal(sec_check(P, b, 0, 2 * PG, 1), 0);
	char c;
	assert_int_equal(ntmm_read(P, b + 2 * PG, &c, 1), NTMM_EACCESS);
	assert_int_equal(ntmm_unmap_view(P, b), 0);
	assert_int_equal(ntmm_section_close(s), 0);
}

/* Each pairing of view and section protection the contract names maps;
   every other is NTMM_EACCESS. */
static void readwrite_view_of_a_readonly_section_is_eaccess(void **st)
{
	(void)st;
	ntmm_section_t *s = file_section(NTMM_PAGE_READONLY);
	uint64_t b = 0;
	assert_refused(ntmm_map_view(s, P, &b, 0, 0, NTMM_PAGE_READWRITE), NTMM_EACCESS);
	assert_int_equal(b, 0);
	assert_int_equal(ntmm_section_close(s), 0);
	s = sec_create(V.e, -1, GRAN, NTMM_PAGE_READONLY, 0);
	assert_refused(ntmm_map_view(s, P, &b, 0, 0, NTMM_PAGE_READWRITE), NTMM_EACCESS);
	assert_int_equal(ntmm_section_close(s), 0);
}

static void writecopy_view_of_a_readonly_section_is_eaccess(void **st)
{
	(void)st;
	ntmm_section_t *s = file_section(NTMM_PAGE_READONLY);
	uint64_t b = 0;
	uint64_t charge = SEC_STAT(V.e, commit_pages);
	assert_refused(ntmm_map_view(s, P, &b, 0, 0, NTMM_PAGE_WRITECOPY), NTMM_EACCESS);
	assert_int_equal(b, 0);
	assert_int_equal(SEC_STAT(V.e, commit_pages), charge); /* nothing charged */
	assert_int_equal(ntmm_section_close(s), 0);
}

static void readwrite_view_of_a_writecopy_section_is_eaccess(void **st)
{
	(void)st;
	ntmm_section_t *s = file_section(NTMM_PAGE_WRITECOPY);
	uint64_t b = 0;
	assert_refused(ntmm_map_view(s, P, &b, 0, 0, NTMM_PAGE_READWRITE), NTMM_EACCESS);
	assert_int_equal(b, 0);
	assert_int_equal(ntmm_section_close(s), 0);
}

static void the_pairings_the_contract_names_map(void **st)
{
	(void)st;
	const struct {
		unsigned sec, view;
	} ok[] = {
	    {NTMM_PAGE_READONLY, NTMM_PAGE_READONLY},   {NTMM_PAGE_READWRITE, NTMM_PAGE_READONLY},
	    {NTMM_PAGE_WRITECOPY, NTMM_PAGE_READONLY},  {NTMM_PAGE_READWRITE, NTMM_PAGE_WRITECOPY},
	    {NTMM_PAGE_WRITECOPY, NTMM_PAGE_WRITECOPY}, {NTMM_PAGE_READWRITE, NTMM_PAGE_READWRITE},
	};
	for (size_t k = 0; k < sizeof(ok) / sizeof(ok[0]); k++) {
		ntmm_section_t *s = file_section(ok[k].sec);
		uint64_t b = sec_map(s, P, 0, 0, ok[k].view);
		ntmm_region_info_t i = sec_query(P, b);
		assert_int_equal(i.prot, ok[k].view);
		/* every earlier write was to a private copy: the file's bytes */
		assert_int_equal(sec_check(P, b, 0, FILE_BYTES, 1), 0);
		char c = 7;
		assert_int_equal(ntmm_write(P, b, &c, 1),
		                 ok[k].view == NTMM_PAGE_READONLY ? NTMM_EACCESS : 0);
		assert_int_equal(ntmm_unmap_view(P, b), 0);
		assert_int_equal(ntmm_section_close(s), 0);
	}
	/* the last write, through the READWRITE view, is the file's now: a
	   fresh section and view read it back without any flush */
	ntmm_section_t *s = file_section(NTMM_PAGE_READONLY);
	uint64_t b = sec_map(s, P, 0, 0, NTMM_PAGE_READONLY);
	char c = 0;
	assert_int_equal(ntmm_read(P, b, &c, 1), 0);
	assert_int_equal(c, 7);
	assert_int_equal(sec_check(P, b + 1, 1, FILE_BYTES - 1, 1), 0);
	assert_int_equal(ntmm_unmap_view(P, b), 0);
	assert_int_equal(ntmm_section_close(s), 0);
}

static void null_arguments_of_map_view_are_einval(void **st)
{
	(void)st;
	ntmm_section_t *s = file_section(NTMM_PAGE_READWRITE);
	uint64_t b = 0;
	assert_refused(ntmm_map_view(NULL, P, &b, 0, 0, NTMM_PAGE_READONLY), NTMM_EINVAL);
	assert_refused(ntmm_map_view(s, NULL, &b, 0, 0, NTMM_PAGE_READONLY), NTMM_EINVAL);
	assert_refused(ntmm_map_view(s, P, NULL, 0, 0, NTMM_PAGE_READONLY), NTMM_EINVAL);
	assert_int_equal(b, 0);
	assert_int_equal(ntmm_section_close(s), 0);
}

static void view_base_not_64k_aligned_is_einval(void **st)
{
	(void)st;
	ntmm_section_t *s = file_section(NTMM_PAGE_READWRITE);
	const uint64_t bad[] = {0x40000000 + PG, 0x40000000 + GRAN / 2, 0x40000001};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		uint64_t b = bad[k];
		assert_refused(ntmm_map_view(s, P, &b, 0, 0, NTMM_PAGE_READWRITE), NTMM_EINVAL);
		assert_int_equal(b, bad[k]);
		assert_int_equal(sec_query(P, 0x40000000).state, NTMM_MEM_FREE);
	}
	/* aligned, at the address asked for */
	uint64_t b = 0x40000000;
	assert_int_equal(ntmm_map_view(s, P, &b, 0, 0, NTMM_PAGE_READWRITE), 0);
	assert_int_equal(b, 0x40000000);
	assert_int_equal(sec_query(P, b).allocation_base, 0x40000000);
	assert_int_equal(ntmm_unmap_view(P, b), 0);
	assert_int_equal(ntmm_section_close(s), 0);
}

static void view_base_overlapping_a_reservation_is_econflict(void **st)
{
	(void)st;
	ntmm_section_t *s = file_section(NTMM_PAGE_READWRITE);
	uint64_t r = 0x50000000;
	assert_int_equal(ntmm_allocate(P, &r, GRAN, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE), 0);
	/* at the reservation, and a view that would run into it */
	uint64_t b = r;
	assert_refused(ntmm_map_view(s, P, &b, 0, GRAN, NTMM_PAGE_READWRITE), NTMM_ECONFLICT);
	b = r - GRAN;
	assert_refused(ntmm_map_view(s, P, &b, 0, 2 * GRAN, NTMM_PAGE_READWRITE), NTMM_ECONFLICT);
	assert_int_equal(b, r - GRAN);
	assert_int_equal(sec_query(P, r - GRAN).state, NTMM_MEM_FREE);
	/* onto another view */
	uint64_t v = sec_map(s, P, 0, 0, NTMM_PAGE_READWRITE);
	b = v;
	assert_refused(ntmm_map_view(s, P, &b, 0, GRAN, NTMM_PAGE_READONLY), NTMM_ECONFLICT);
	b = v + GRAN;
	assert_refused(ntmm_map_view(s, P, &b, 0, GRAN, NTMM_PAGE_READONLY), NTMM_ECONFLICT);
	/* and a reservation cannot be made onto a view */
	uint64_t a = v;
	assert_int_equal(ntmm_allocate(P, &a, GRAN, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE),
	                 NTMM_ECONFLICT);
	/* just beside the reservation is fine */
	b = r - GRAN;
	assert_int_equal(ntmm_map_view(s, P, &b, 0, GRAN, NTMM_PAGE_READWRITE), 0);
	assert_int_equal(ntmm_unmap_view(P, b), 0);
	assert_int_equal(ntmm_unmap_view(P, v), 0);
	assert_int_equal(ntmm_free(P, r, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_section_close(s), 0);
}

/* ---------------------------------------------------- ntmm_unmap_view */

static void unmapping_what_is_not_a_view_is_einval(void **st)
{
	(void)st;
	uint64_t r = 0;
	assert_int_equal(
	    ntmm_allocate(P, &r, 4 * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE),
	    0);
	char c = 9;
	assert_int_equal(ntmm_write(P, r, &c, 1), 0);
	/* private memory, free space, an address inside a view but not its base */
	assert_refused(ntmm_unmap_view(P, r), NTMM_EINVAL);
	assert_refused(ntmm_unmap_view(P, 0x60000000), NTMM_EINVAL);
	assert_refused(ntmm_unmap_view(P, 0), NTMM_EINVAL);
	ntmm_section_t *s = file_section(NTMM_PAGE_READWRITE);
	uint64_t b = sec_map(s, P, 0, 0, NTMM_PAGE_READWRITE);
	assert_refused(ntmm_unmap_view(P, b + PG), NTMM_EINVAL);
	assert_refused(ntmm_unmap_view(P, b + GRAN), NTMM_EINVAL);
	assert_refused(ntmm_unmap_view(NULL, b), NTMM_EINVAL);
	/* nothing changed */
	c = 0;
	assert_int_equal(ntmm_read(P, r, &c, 1), 0);
	assert_int_equal(c, 9);
	assert_int_equal(sec_query(P, b).type, NTMM_MEM_MAPPED);
	assert_int_equal(sec_check(P, b, 0, FILE_BYTES, 1), 0);
	assert_int_equal(ntmm_unmap_view(P, b), 0);
	assert_int_equal(ntmm_free(P, r, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_section_close(s), 0);
}

static void unmapping_twice_is_einval(void **st)
{
	(void)st;
	ntmm_section_t *s = file_section(NTMM_PAGE_READWRITE);
	uint64_t b = sec_map(s, P, 0, 0, NTMM_PAGE_READWRITE);
	assert_int_equal(ntmm_unmap_view(P, b), 0);
	assert_refused(ntmm_unmap_view(P, b), NTMM_EINVAL);
	assert_int_equal(sec_query(P, b).state, NTMM_MEM_FREE);
	assert_int_equal(ntmm_section_close(s), 0);
}

static void unmapping_inside_an_access_section_is_ebusy(void **st)
{
	(void)st;
	ntmm_section_t *s = file_section(NTMM_PAGE_READWRITE);
	uint64_t b = sec_map(s, P, 0, 0, NTMM_PAGE_READWRITE);
	void *h = NULL;
	ntmm_access_begin(V.e);
	assert_int_equal(ntmm_translate(P, b, NTMM_ACCESS_READ, &h), 0);
	assert_refused(ntmm_unmap_view(P, b), NTMM_EBUSY);
	assert_int_equal(sec_diff(h, 0, PG, 1), -1); /* still mapped, still the file's */
	ntmm_access_end(V.e);
	assert_int_equal(ntmm_unmap_view(P, b), 0);
	assert_int_equal(ntmm_section_close(s), 0);
}

static void accesses_after_unmap_are_eaccess(void **st)
{
	(void)st;
	ntmm_section_t *s = file_section(NTMM_PAGE_READWRITE);
	uint64_t b = sec_map(s, P, 0, 0, NTMM_PAGE_READWRITE);
	assert_int_equal(sec_check(P, b, 0, FILE_BYTES, 1), 0);
	assert_int_equal(ntmm_unmap_view(P, b), 0);
	char c = 0;
	void *h;
	assert_int_equal(ntmm_read(P, b, &c, 1), NTMM_EACCESS);
	assert_int_equal(ntmm_write(P, b + FILE_BYTES - 1, &c, 1), NTMM_EACCESS);
	assert_int_equal(ntmm_translate(P, b + PG, NTMM_ACCESS_READ, &h), NTMM_EACCESS);
	assert_int_equal(ntmm_section_close(s), 0);
}

/* ------------------------------------------- views and the VM calls */

static void free_on_a_view_is_einval(void **st)
{
	(void)st;
	ntmm_section_t *s = file_section(NTMM_PAGE_READWRITE);
	uint64_t b = sec_map(s, P, 0, 0, NTMM_PAGE_READWRITE);
	assert_int_equal(sec_write(P, b, 0, PG, 4), 0);
	assert_refused(ntmm_free(P, b, 0, NTMM_MEM_RELEASE), NTMM_EINVAL);
	assert_refused(ntmm_free(P, b, 0, NTMM_MEM_DECOMMIT), NTMM_EINVAL);
	assert_refused(ntmm_free(P, b, PG, NTMM_MEM_DECOMMIT), NTMM_EINVAL);
	assert_refused(ntmm_free(P, b + GRAN, GRAN, NTMM_MEM_DECOMMIT), NTMM_EINVAL);
	/* the view is as it was */
	ntmm_region_info_t i = sec_query(P, b);
	assert_int_equal(i.type, NTMM_MEM_MAPPED);
	assert_int_equal(i.size, FILE_BYTES);
	assert_int_equal(sec_check(P, b, 0, PG, 4), 0);
	assert_int_equal(sec_check(P, b + PG, PG, FILE_BYTES - PG, 1), 0);
	assert_int_equal(ntmm_unmap_view(P, b), 0);
	assert_int_equal(ntmm_section_close(s), 0);
}

static void flush_outside_a_view_is_einval(void **st)
{
	(void)st;
	uint64_t r = 0;
	assert_int_equal(
	    ntmm_allocate(P, &r, 4 * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE),
	    0);
	char c = 1;
	assert_int_equal(ntmm_write(P, r, &c, 1), 0);
	ntmm_section_t *s = file_section(NTMM_PAGE_READWRITE);
	uint64_t b = sec_map(s, P, 0, 2 * GRAN, NTMM_PAGE_READWRITE);
	/* private memory, free space, a range running out of the view */
	assert_refused(ntmm_flush_view(P, r, PG), NTMM_EINVAL);
	assert_refused(ntmm_flush_view(P, r, 0), NTMM_EINVAL);
	assert_refused(ntmm_flush_view(P, 0x60000000, 0), NTMM_EINVAL);
	assert_refused(ntmm_flush_view(P, b + 2 * GRAN, PG), NTMM_EINVAL);
	assert_refused(ntmm_flush_view(P, b + GRAN, 2 * GRAN), NTMM_EINVAL);
	assert_refused(ntmm_flush_view(NULL, b, 0), NTMM_EINVAL);
	/* inside: fine, with and without writes to flush */
	assert_int_equal(ntmm_flush_view(P, b, 0), 0);
	assert_int_equal(sec_write(P, b + PG, PG, PG, 5), 0);
	assert_int_equal(ntmm_flush_view(P, b + PG, PG), 0);
	assert_true(sec_file_is(FD, PG, PG, 5));
	assert_int_equal(ntmm_flush_view(P, b + 2 * GRAN - PG, PG), 0);
	assert_int_equal(ntmm_unmap_view(P, b), 0);
	assert_refused(ntmm_flush_view(P, b, 0), NTMM_EINVAL); /* no view there any more */
	assert_int_equal(ntmm_free(P, r, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_section_close(s), 0);
}

/* A view is one region of type MAPPED, its base the allocation base, its
   protection the view's; a query inside it reports the rest of it. */
static void query_of_a_view_reports_one_mapped_region(void **st)
{
	(void)st;
	ntmm_section_t *s = file_section(NTMM_PAGE_READWRITE);
	uint64_t b = sec_map(s, P, GRAN, 2 * GRAN, NTMM_PAGE_READWRITE);
	ntmm_region_info_t i = sec_query(P, b);
	assert_int_equal(i.base, b);
	assert_int_equal(i.allocation_base, b);
	assert_int_equal(i.size, 2 * GRAN);
	assert_int_equal(i.state, NTMM_MEM_COMMIT);
	assert_int_equal(i.type, NTMM_MEM_MAPPED);
	assert_int_equal(i.prot, NTMM_PAGE_READWRITE);
	assert_int_equal(i.allocation_prot, NTMM_PAGE_READWRITE);
	i = sec_query(P, b + 3 * PG + 123);
	assert_int_equal(i.base, b + 3 * PG);
	assert_int_equal(i.allocation_base, b);
	assert_int_equal(i.size, 2 * GRAN - 3 * PG);
	assert_int_equal(i.type, NTMM_MEM_MAPPED);
	/* accesses change nothing in the answer */
	assert_int_equal(sec_write(P, b + PG, GRAN + PG, PG, 6), 0);
	i = sec_query(P, b);
	assert_int_equal(i.size, 2 * GRAN);
	assert_int_equal(i.prot, NTMM_PAGE_READWRITE);
	/* past its end: free */
	i = sec_query(P, b + 2 * GRAN);
	assert_int_equal(i.state, NTMM_MEM_FREE);
	/* a private region beside it is still PRIVATE */
	uint64_t r = b + 2 * GRAN;
	assert_int_equal(ntmm_allocate(P, &r, GRAN, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE), 0);
	assert_int_equal(sec_query(P, r).type, NTMM_MEM_PRIVATE);
	assert_int_equal(sec_query(P, b).size, 2 * GRAN);
	assert_int_equal(ntmm_free(P, r, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_unmap_view(P, b), 0);
	i = sec_query(P, b);
	assert_int_equal(i.state, NTMM_MEM_FREE);
	assert_int_equal(ntmm_section_close(s), 0);
}

static void protect_inside_a_view_beyond_the_section_is_eaccess(void **st)
{
	(void)st;
	ntmm_section_t *s = file_section(NTMM_PAGE_READONLY);
	uint64_t b = sec_map(s, P, 0, 0, NTMM_PAGE_READONLY);
	unsigned old = 12345;
	assert_refused(ntmm_protect(P, b, PG, NTMM_PAGE_READWRITE, &old), NTMM_EACCESS);
	assert_int_equal(old, 12345);
	assert_refused(ntmm_protect(P, b + GRAN, 2 * PG, NTMM_PAGE_READWRITE, &old), NTMM_EACCESS);
	ntmm_region_info_t i = sec_query(P, b);
	assert_int_equal(i.prot, NTMM_PAGE_READONLY);
	assert_int_equal(i.size, FILE_BYTES);
	char c = 1;
	assert_int_equal(ntmm_write(P, b, &c, 1), NTMM_EACCESS);
	assert_int_equal(ntmm_unmap_view(P, b), 0);
	assert_int_equal(ntmm_section_close(s), 0);
	assert_true(sec_file_is(FD, 0, FILE_BYTES, 1));
}

/* Within what the section allows, ntmm_protect splits the view into runs
   (all of them MAPPED with the view's base) and governs accesses. */
static void protect_inside_a_view_within_the_section_works(void **st)
{
	(void)st;
	ntmm_section_t *s = file_section(NTMM_PAGE_READWRITE);
	uint64_t b = sec_map(s, P, 0, 0, NTMM_PAGE_READONLY);
	unsigned old = 0;
	char c = 8;
	assert_int_equal(ntmm_write(P, b + PG, &c, 1), NTMM_EACCESS);
	/* a READONLY view of a READWRITE section may be made writable */
	assert_int_equal(ntmm_protect(P, b + PG, PG, NTMM_PAGE_READWRITE, &old), 0);
	assert_int_equal(old, NTMM_PAGE_READONLY);
	assert_int_equal(ntmm_write(P, b + PG, &c, 1), 0);
	assert_int_equal(ntmm_write(P, b, &c, 1), NTMM_EACCESS);
	ntmm_region_info_t i = sec_query(P, b + PG);
	assert_int_equal(i.base, b + PG);
	assert_int_equal(i.size, PG);
	assert_int_equal(i.prot, NTMM_PAGE_READWRITE);
	assert_int_equal(i.allocation_base, b);
	assert_int_equal(i.type, NTMM_MEM_MAPPED);
	i = sec_query(P, b + 2 * PG);
	assert_int_equal(i.prot, NTMM_PAGE_READONLY);
	assert_int_equal(i.allocation_base, b);
	/* NOACCESS, then back */
	assert_int_equal(ntmm_protect(P, b + GRAN, GRAN, NTMM_PAGE_NOACCESS, &old), 0);
	assert_int_equal(old, NTMM_PAGE_READONLY);
	assert_int_equal(ntmm_read(P, b + GRAN + PG, &c, 1), NTMM_EACCESS);
	assert_int_equal(ntmm_protect(P, b + GRAN, GRAN, NTMM_PAGE_READONLY, &old), 0);
	assert_int_equal(old, NTMM_PAGE_NOACCESS);
	assert_int_equal(sec_check(P, b + GRAN, GRAN, GRAN, 1), 0);
	/* a range running out of the view is not one region */
	assert_refused(ntmm_protect(P, b + FILE_BYTES - PG, 2 * PG, NTMM_PAGE_READONLY, &old),
	               NTMM_ECONFLICT);
	assert_int_equal(ntmm_unmap_view(P, b), 0);
	assert_int_equal(ntmm_section_close(s), 0);
}

/* A view covers its pages only, even inside its 64 KiB granule. */
static void accesses_past_a_views_end_are_eaccess(void **st)
{
	(void)st;
	ntmm_section_t *s = file_section(NTMM_PAGE_READWRITE);
	uint64_t b = sec_map(s, P, 0, PG, NTMM_PAGE_READWRITE);
	char c = 0;
	void *h;
	assert_int_equal(ntmm_read(P, b + PG - 1, &c, 1), 0);
	assert_int_equal(ntmm_read(P, b + PG, &c, 1), NTMM_EACCESS);
	assert_int_equal(ntmm_translate(P, b + GRAN - 1, NTMM_ACCESS_WRITE, &h), NTMM_EACCESS);
	/* a copy running off the end stops there */
	char buf[16];
	assert_int_equal(ntmm_read(P, b + PG - 8, buf, sizeof(buf)), NTMM_EACCESS);
	assert_int_equal(ntmm_unmap_view(P, b), 0);
	assert_int_equal(ntmm_section_close(s), 0);
}

/* Closing drops the caller's reference only: the views go on working,
   and unmapping the last one frees the section (its commit comes back). */
static void a_section_lives_while_a_view_maps_it(void **st)
{
	(void)st;
	uint64_t charge = SEC_STAT(V.e, commit_pages);
	ntmm_process_t *q = sec_process(V.e);
	ntmm_section_t *s = sec_create(V.e, -1, 4 * GRAN, NTMM_PAGE_READWRITE, NTMM_SEC_COMMIT);
	uint64_t b = sec_map(s, q, 0, 0, NTMM_PAGE_READWRITE);
	assert_int_equal(sec_write(q, b, 0, 4 * GRAN, 7), 0);
	assert_int_equal(ntmm_section_close(s), 0);
	assert_int_equal(sec_check(q, b, 0, 4 * GRAN, 7), 0);
	assert_int_equal(sec_write(q, b, 0, GRAN, 8), 0);
	assert_int_equal(sec_check(q, b, 0, GRAN, 8), 0);
	assert_true(SEC_STAT(V.e, commit_pages) >= charge + 4 * GRAN / PG);
	assert_int_equal(ntmm_unmap_view(q, b), 0);
	assert_int_equal(sec_query(q, b).state, NTMM_MEM_FREE);
	/* the section went with its last view: with the process, everything
	   charged since is given back */
	assert_int_equal(ntmm_process_destroy(q), 0);
	assert_int_equal(SEC_STAT(V.e, commit_pages), charge);
	assert_int_equal(ntmm_audit(V.e), 0);
}

/* A view may start at any 64 KiB offset; two views of one section in one
   process see the same bytes. */
static void two_views_of_one_section_in_one_process_alias(void **st)
{
	(void)st;
	ntmm_section_t *s = file_section(NTMM_PAGE_READWRITE);
	uint64_t a = sec_map(s, P, 0, 0, NTMM_PAGE_READWRITE);
	uint64_t b = sec_map(s, P, 2 * GRAN, GRAN, NTMM_PAGE_READWRITE);
	assert_true(a != b);
	assert_int_equal(sec_write(P, b + PG, 2 * GRAN + PG, PG, 9), 0);
	assert_int_equal(sec_check(P, a + 2 * GRAN + PG, 2 * GRAN + PG, PG, 9), 0);
	void *ha, *hb;
	ntmm_access_begin(V.e);
	assert_int_equal(ntmm_translate(P, a + 2 * GRAN, NTMM_ACCESS_READ, &ha), 0);
	assert_int_equal(ntmm_translate(P, b, NTMM_ACCESS_READ, &hb), 0);
	assert_ptr_equal(ha, hb); /* one page, one frame */
	ntmm_access_end(V.e);
	assert_int_equal(ntmm_unmap_view(P, a), 0);
	assert_int_equal(sec_check(P, b + PG, 2 * GRAN + PG, PG, 9), 0);
	assert_int_equal(ntmm_unmap_view(P, b), 0);
	assert_int_equal(ntmm_section_close(s), 0);
}

/* Destroying a process unmaps its views; the section and other views go on. */
static void destroying_a_process_unmaps_its_views(void **st)
{
	(void)st;
	ntmm_section_t *s = file_section(NTMM_PAGE_READWRITE);
	ntmm_process_t *q = sec_process(V.e);
	uint64_t bq = sec_map(s, q, 0, 0, NTMM_PAGE_READWRITE);
	uint64_t bp = sec_map(s, P, 0, 0, NTMM_PAGE_READONLY);
	assert_int_equal(sec_write(q, bq, 0, 2 * PG, 10), 0);
	assert_int_equal(ntmm_process_destroy(q), 0);
	assert_int_equal(sec_check(P, bp, 0, 2 * PG, 10), 0);
	assert_int_equal(sec_check(P, bp + 2 * PG, 2 * PG, FILE_BYTES - 2 * PG, 1), 0);
	assert_int_equal(ntmm_unmap_view(P, bp), 0);
	assert_int_equal(ntmm_section_close(s), 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(readonly_file_section_larger_than_the_file_is_einval),
	    T(readwrite_file_section_larger_than_the_file_grows_it),
	    T(a_descriptor_that_is_not_open_is_einval),
	    T(a_directory_descriptor_is_einval),
	    T(a_descriptor_without_the_access_the_section_needs_is_einval),
	    T(an_empty_file_with_size_0_is_einval),
	    T(paging_file_section_of_size_0_is_einval),
	    T(any_negative_descriptor_is_a_paging_file_section),
	    T(bad_section_arguments_are_einval),
	    T(sec_commit_past_the_commit_limit_is_ecommit),
	    T(section_close_of_null_is_einval),
	    T(view_offset_not_64k_aligned_is_einval),
	    T(view_past_the_sections_end_is_einval),
	    T(view_of_size_0_runs_to_the_sections_end),
	    T(view_size_rounds_up_to_pages),
	    T(readwrite_view_of_a_readonly_section_is_eaccess),
	    T(writecopy_view_of_a_readonly_section_is_eaccess),
	    T(readwrite_view_of_a_writecopy_section_is_eaccess),
	    T(the_pairings_the_contract_names_map),
	    T(null_arguments_of_map_view_are_einval),
	    T(view_base_not_64k_aligned_is_einval),
	    T(view_base_overlapping_a_reservation_is_econflict),
	    T(unmapping_what_is_not_a_view_is_einval),
	    T(unmapping_twice_is_einval),
	    T(unmapping_inside_an_access_section_is_ebusy),
	    T(accesses_after_unmap_are_eaccess),
	    T(free_on_a_view_is_einval),
	    T(flush_outside_a_view_is_einval),
	    T(query_of_a_view_reports_one_mapped_region),
	    T(protect_inside_a_view_beyond_the_section_is_eaccess),
	    T(protect_inside_a_view_within_the_section_works),
	    T(accesses_past_a_views_end_are_eaccess),
	    T(a_section_lives_while_a_view_maps_it),
	    T(two_views_of_one_section_in_one_process_alias),
	    T(destroying_a_process_unmaps_its_views),
	};
	if (getenv("NTMM_TEST_FILTER"))
		cmocka_set_test_filter(getenv("NTMM_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
