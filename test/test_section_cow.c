/*
 * Copy-on-write: WRITECOPY views and ntmm_process_clone.
 *
 * A WRITECOPY view charges commit for its whole size when it is mapped;
 * its first write to a page makes a private copy (NTMM_FAULT_COPY_ON_WRITE)
 * and the file never sees it, not after a flush, not after the copy was
 * paged to the paging file; other views go on seeing the file's pages.
 * A clone shares the parent's private pages copy-on-write both ways, maps
 * the views again, keeps reservations, protections and guard pages, is
 * charged up front (NTMM_ECOMMIT with nothing created when it does not
 * fit), and either side may be destroyed first. The audit runs after each.
 */
#include "section_testutil.h"

/* ---------------------------------------------------- WRITECOPY views */

static void a_writecopy_view_charges_its_size_at_map(void **st)
{
	(void)st;
	sec_env_t v = sec_env(8, 16, false);
	ntmm_process_t *p = sec_process(v.e);
	int fd = sec_file(&v, "data", 16 * GRAN, 1);
	ntmm_section_t *s = sec_create(v.e, fd, 0, NTMM_PAGE_READWRITE, 0);
	size_t own = sec_info(p).commit_pages;
	uint64_t charge = SEC_STAT(v.e, commit_pages);
	uint64_t b = sec_map(s, p, 0, 0, NTMM_PAGE_WRITECOPY);
	assert_int_equal(sec_info(p).commit_pages, own + 16 * GRAN / PG);
	assert_true(SEC_STAT(v.e, commit_pages) >= charge + 16 * GRAN / PG);
	/* writing charges nothing more: it was all charged at map */
	assert_int_equal(sec_write(p, b, 0, 16 * GRAN, 2), 0);
	assert_int_equal(sec_info(p).commit_pages, own + 16 * GRAN / PG);
	/* part of the section: that part's size */
	uint64_t b2 = sec_map(s, p, 2 * GRAN, 3 * GRAN, NTMM_PAGE_WRITECOPY);
	assert_int_equal(sec_info(p).commit_pages, own + 19 * GRAN / PG);
	/* shared views charge nothing to the process */
	uint64_t b3 = sec_map(s, p, 0, 0, NTMM_PAGE_READWRITE);
	uint64_t b4 = sec_map(s, p, 0, 0, NTMM_PAGE_READONLY);
	assert_int_equal(sec_info(p).commit_pages, own + 19 * GRAN / PG);
	/* unmapping gives the charge back */
	assert_int_equal(ntmm_unmap_view(p, b), 0);
	assert_int_equal(sec_info(p).commit_pages, own + 3 * GRAN / PG);
	assert_int_equal(ntmm_unmap_view(p, b2), 0);
	assert_int_equal(sec_info(p).commit_pages, own);
	assert_int_equal(ntmm_unmap_view(p, b3), 0);
	assert_int_equal(ntmm_unmap_view(p, b4), 0);
	assert_int_equal(ntmm_section_close(s), 0);
	assert_true(sec_file_is(fd, 0, 16 * GRAN, 1));
	close(fd);
	assert_int_equal(ntmm_process_destroy(p), 0);
	sec_env_done(&v);
}

static void a_writecopy_view_past_the_commit_limit_is_ecommit(void **st)
{
	(void)st;
	sec_env_t v = sec_env(8, 0, false); /* the limit is the pool's */
	ntmm_process_t *p = sec_process(v.e);
	int fd = sec_file(&v, "data", 4 * MiB, 1);
	ntmm_section_t *s = sec_create(v.e, fd, 0, NTMM_PAGE_READWRITE, 0);
	/* leave less room than the view needs */
	uint64_t room = SEC_STAT(v.e, commit_limit_pages) - SEC_STAT(v.e, commit_pages);
	assert_true(room > 4 * MiB / PG + 64);
	size_t fill = (size_t)(room - 4 * MiB / PG / 2);
	uint64_t a = 0;
	assert_int_equal(ntmm_allocate(p, &a, fill * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT,
	                               NTMM_PAGE_READWRITE),
	                 0);
	size_t own = sec_info(p).commit_pages;
	uint64_t charge = SEC_STAT(v.e, commit_pages);
	uint64_t b = 0;
	assert_refused(ntmm_map_view(s, p, &b, 0, 0, NTMM_PAGE_WRITECOPY), NTMM_ECOMMIT);
	assert_int_equal(b, 0);
	assert_int_equal(sec_info(p).commit_pages, own);
	assert_int_equal(SEC_STAT(v.e, commit_pages), charge);
	/* views that charge nothing still map, and a small WRITECOPY one */
	b = sec_map(s, p, 0, 0, NTMM_PAGE_READONLY);
	uint64_t b2 = sec_map(s, p, 0, 0, NTMM_PAGE_READWRITE);
	uint64_t b3 = sec_map(s, p, 0, GRAN, NTMM_PAGE_WRITECOPY);
	assert_int_equal(sec_write(p, b3, 0, GRAN, 2), 0);
	assert_int_equal(sec_check(p, b, 0, GRAN, 1), 0);
	assert_int_equal(ntmm_unmap_view(p, b), 0);
	assert_int_equal(ntmm_unmap_view(p, b2), 0);
	assert_int_equal(ntmm_unmap_view(p, b3), 0);
	/* with the room back, the whole view maps */
	assert_int_equal(ntmm_free(p, a, 0, NTMM_MEM_RELEASE), 0);
	b = sec_map(s, p, 0, 0, NTMM_PAGE_WRITECOPY);
	assert_int_equal(ntmm_unmap_view(p, b), 0);
	assert_int_equal(ntmm_section_close(s), 0);
	close(fd);
	assert_int_equal(ntmm_process_destroy(p), 0);
	sec_env_done(&v);
}

/* A resident page's first write is a copy-on-write fault into a frame of
   its own; later accesses to it fault no more. */
static void the_first_write_to_a_writecopy_view_is_a_copy_on_write_fault(void **st)
{
	(void)st;
	sec_env_t v = sec_env(16, 16, false);
	ntmm_process_t *p = sec_process(v.e);
	int fd = sec_file(&v, "data", 4 * GRAN, 1);
	ntmm_section_t *s = sec_create(v.e, fd, 0, NTMM_PAGE_READWRITE, 0);
	uint64_t wc = sec_map(s, p, 0, 0, NTMM_PAGE_WRITECOPY);
	uint64_t ro = sec_map(s, p, 0, 0, NTMM_PAGE_READONLY);
	assert_int_equal(sec_check(p, wc, 0, 4 * GRAN, 1), 0); /* all resident now */
	char c = 42;
	assert_int_equal(ntmm_write(p, wc + 5 * PG + 7, &c, 1), 0);
	assert_int_equal(ntmm_last_fault_kind(), NTMM_FAULT_COPY_ON_WRITE);
	assert_int_equal(ntmm_write(p, wc + 5 * PG + 8, &c, 1), 0);
	assert_int_equal(ntmm_last_fault_kind(), NTMM_FAULT_NONE);
	char page[PG];
	assert_int_equal(ntmm_read(p, wc + 5 * PG, page, PG), 0);
	assert_int_equal(ntmm_last_fault_kind(), NTMM_FAULT_NONE);
	/* the copy is the file's page with the two bytes changed */
	assert_int_equal(sec_diff(page, 5 * PG, 7, 1), -1);
	assert_int_equal(page[7], 42);
	assert_int_equal(page[8], 42);
	assert_int_equal(sec_diff(page + 9, 5 * PG + 9, PG - 9, 1), -1);
	/* through translate, and into another frame than the shared page's */
	void *hw, *hr, *hs;
	ntmm_access_begin(v.e);
	assert_int_equal(ntmm_translate(p, wc + 6 * PG, NTMM_ACCESS_READ, &hs), 0);
	assert_int_equal(ntmm_translate(p, wc + 6 * PG, NTMM_ACCESS_WRITE, &hw), 0);
	assert_int_equal(ntmm_last_fault_kind(), NTMM_FAULT_COPY_ON_WRITE);
	assert_int_equal(ntmm_translate(p, ro + 6 * PG, NTMM_ACCESS_READ, &hr), 0);
	assert_ptr_not_equal(hw, hr);
	assert_ptr_equal(hs, hr); /* before the write, the view read the shared page */
	assert_int_equal(sec_diff(hw, 6 * PG, PG, 1), -1);
	memset(hw, 0x5a, 16);
	assert_int_equal(sec_diff(hr, 6 * PG, PG, 1), -1);
	ntmm_access_end(v.e);
	/* the READONLY view of the section still reads the file's bytes */
	assert_int_equal(sec_check(p, ro, 0, 4 * GRAN, 1), 0);
	assert_int_equal(ntmm_unmap_view(p, wc), 0);
	assert_int_equal(ntmm_unmap_view(p, ro), 0);
	assert_int_equal(ntmm_section_close(s), 0);
	assert_true(sec_file_is(fd, 0, 4 * GRAN, 1));
	close(fd);
	assert_int_equal(ntmm_process_destroy(p), 0);
	sec_env_done(&v);
}

/* Every page of a WRITECOPY view written; flushed; trimmed and pushed out
   to the paging file; unmapped; the engine destroyed: the file is as it
   was at every step, other views see the file's bytes, and the writing
   process reads its own. */
static void writecopy_leaves_the_file_untouched(bool threads)
{
	const size_t pool_mib = 8;
	const uint64_t bytes = 2 * MiB;
	sec_env_t v = sec_env(pool_mib, 64, threads);
	ntmm_process_t *p = sec_process(v.e), *q = sec_process(v.e);
	int fd = sec_file(&v, "data", bytes, 1);
	ntmm_section_t *s = sec_create(v.e, fd, 0, NTMM_PAGE_READWRITE, 0);
	uint64_t wc = sec_map(s, p, 0, 0, NTMM_PAGE_WRITECOPY);
	uint64_t rq = sec_map(s, q, 0, 0, NTMM_PAGE_READONLY);
	assert_int_equal(sec_write(p, wc, 0, bytes, 2), 0);
	assert_int_equal(ntmm_flush_view(p, wc, 0), 0);
	assert_true(sec_file_is(fd, 0, bytes, 1));
	assert_int_equal(sec_check(q, rq, 0, bytes, 1), 0);
	/* the copies page to the paging file, never to the file */
	uint64_t written = SEC_STAT(v.e, pages_written);
	assert_int_equal(ntmm_ws_empty(p), 0);
	assert_int_equal(ntmm_ws_empty(q), 0);
	sec_push_out(v.e, 2 * pool_mib * MiB / PG);
	assert_true(SEC_STAT(v.e, pages_written) > written);
	assert_true(sec_file_is(fd, 0, bytes, 1));
	assert_int_equal(sec_check(p, wc, 0, bytes, 2), 0);
	assert_int_equal(sec_check(q, rq, 0, bytes, 1), 0);
	assert_int_equal(ntmm_flush_view(p, wc, 0), 0);
	assert_true(sec_file_is(fd, 0, bytes, 1));
	assert_int_equal(ntmm_audit(v.e), 0);
	/* nor at unmap, close or destroy */
	assert_int_equal(ntmm_unmap_view(p, wc), 0);
	assert_int_equal(ntmm_section_close(s), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(ntmm_process_destroy(q), 0);
	sec_env_done(&v);
	assert_true(sec_file_is(fd, 0, bytes, 1));
	close(fd);
}

static void writecopy_leaves_the_file_untouched_without_system_threads(void **st)
{
	(void)st;
	writecopy_leaves_the_file_untouched(false);
}

static void writecopy_leaves_the_file_untouched_with_system_threads(void **st)
{
	(void)st;
	writecopy_leaves_the_file_untouched(true);
}

/* Pages a WRITECOPY view has not written are the section's shared pages:
   a write through a READWRITE view shows in them; the pages it has
   written are its own. */
static void unwritten_pages_of_a_writecopy_view_are_the_shared_ones(void **st)
{
	(void)st;
	sec_env_t v = sec_env(8, 16, false);
	ntmm_process_t *p = sec_process(v.e), *q = sec_process(v.e);
	int fd = sec_file(&v, "data", 4 * GRAN, 1);
	ntmm_section_t *s = sec_create(v.e, fd, 0, NTMM_PAGE_READWRITE, 0);
	uint64_t wc = sec_map(s, p, 0, 0, NTMM_PAGE_WRITECOPY);
	uint64_t rw = sec_map(s, q, 0, 0, NTMM_PAGE_READWRITE);
	assert_int_equal(sec_write(p, wc, 0, PG, 2), 0);       /* page 0: p's own */
	assert_int_equal(sec_write(q, rw + PG, PG, PG, 3), 0); /* page 1: shared */
	assert_int_equal(sec_write(q, rw, 0, PG, 3), 0);       /* page 0: shared */
	assert_int_equal(sec_check(p, wc + PG, PG, PG, 3), 0); /* p sees q's write */
	assert_int_equal(sec_check(p, wc, 0, PG, 2), 0);       /* but keeps its copy */
	assert_int_equal(sec_check(q, rw, 0, 2 * PG, 3), 0);   /* q never sees p's */
	assert_int_equal(sec_check(p, wc + 2 * PG, 2 * PG, 4 * GRAN - 2 * PG, 1), 0);
	assert_int_equal(ntmm_flush_view(q, rw, 0), 0);
	assert_true(sec_file_is(fd, 0, 2 * PG, 3));
	assert_true(sec_file_is(fd, 2 * PG, 4 * GRAN - 2 * PG, 1));
	assert_int_equal(ntmm_unmap_view(p, wc), 0);
	assert_int_equal(ntmm_unmap_view(q, rw), 0);
	assert_int_equal(ntmm_section_close(s), 0);
	close(fd);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(ntmm_process_destroy(q), 0);
	sec_env_done(&v);
}

/* A WRITECOPY section needs only a read-only descriptor; each process's
   WRITECOPY view writes copies of its own. */
static void writecopy_views_of_a_read_only_file_keep_copies_of_their_own(void **st)
{
	(void)st;
	sec_env_t v = sec_env(8, 16, false);
	ntmm_process_t *p = sec_process(v.e), *q = sec_process(v.e);
	int fd = sec_file(&v, "data", 4 * GRAN, 1);
	int ro = sec_reopen(&v, "data", O_RDONLY);
	ntmm_section_t *s = sec_create(v.e, ro, 0, NTMM_PAGE_WRITECOPY, 0);
	close(ro);
	uint64_t bp = sec_map(s, p, 0, 0, NTMM_PAGE_WRITECOPY);
	uint64_t bq = sec_map(s, q, 0, 0, NTMM_PAGE_WRITECOPY);
	assert_int_equal(sec_write(p, bp, 0, 2 * GRAN, 2), 0);
	assert_int_equal(sec_write(q, bq + GRAN, GRAN, 2 * GRAN, 3), 0);
	assert_int_equal(sec_check(p, bp, 0, 2 * GRAN, 2), 0);
	assert_int_equal(sec_check(p, bp + 2 * GRAN, 2 * GRAN, 2 * GRAN, 1), 0);
	assert_int_equal(sec_check(q, bq, 0, GRAN, 1), 0);
	assert_int_equal(sec_check(q, bq + GRAN, GRAN, 2 * GRAN, 3), 0);
	assert_int_equal(sec_check(q, bq + 3 * GRAN, 3 * GRAN, GRAN, 1), 0);
	assert_int_equal(ntmm_flush_view(p, bp, 0), 0);
	assert_true(sec_file_is(fd, 0, 4 * GRAN, 1));
	assert_int_equal(ntmm_section_close(s), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(ntmm_process_destroy(q), 0);
	sec_env_done(&v);
	assert_true(sec_file_is(fd, 0, 4 * GRAN, 1));
	close(fd);
}

/* ---------------------------------------------------------------- clone */

static ntmm_process_t *clone_of(ntmm_process_t *p)
{
	ntmm_process_t *c = NULL;
	int r = ntmm_process_clone(p, &c);
	if (r)
		fail_msg("ntmm_process_clone: %s (%s)", ntmm_strerror(r), ntmm_error_detail());
	assert_non_null(c);
	assert_ptr_not_equal(c, p);
	return c;
}

static uint64_t private_region(ntmm_process_t *p, size_t pages, unsigned prot)
{
	uint64_t a = 0;
	assert_int_equal(ntmm_allocate(p, &a, pages * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, prot),
	                 0);
	return a;
}

static void clone_of_null_is_einval(void **st)
{
	(void)st;
	sec_env_t v = sec_env(8, 0, false);
	ntmm_process_t *p = sec_process(v.e), *c = (ntmm_process_t *)1;
	uint64_t procs = SEC_STAT(v.e, processes);
	assert_refused(ntmm_process_clone(NULL, &c), NTMM_EINVAL);
	assert_null(c);
	assert_refused(ntmm_process_clone(p, NULL), NTMM_EINVAL);
	assert_int_equal(SEC_STAT(v.e, processes), procs);
	assert_int_equal(ntmm_process_destroy(p), 0);
	sec_env_done(&v);
}

/* The parent's pages, shared after the clone; a write on either side is
   a copy-on-write fault that the other side does not see. */
static void clone_shares_private_memory_copy_on_write_both_ways(void **st)
{
	(void)st;
	sec_env_t v = sec_env(16, 64, false);
	ntmm_process_t *p = sec_process(v.e);
	const size_t n = 64;
	uint64_t a = private_region(p, n, NTMM_PAGE_READWRITE);
	assert_int_equal(sec_write(p, a, 0, (n - 8) * PG, 201), 0); /* the last 8 untouched */
	ntmm_process_t *c = clone_of(p);
	assert_int_equal(sec_check(c, a, 0, (n - 8) * PG, 201), 0);
	char z[PG];
	assert_int_equal(ntmm_read(c, a + (n - 1) * PG, z, PG), 0);
	assert_true(sec_all_zero(z, PG)); /* demand-zero stays zero */
	/* unwritten pages are one frame for both */
	void *hp, *hc;
	ntmm_access_begin(v.e);
	assert_int_equal(ntmm_translate(p, a + 10 * PG, NTMM_ACCESS_READ, &hp), 0);
	assert_int_equal(ntmm_translate(c, a + 10 * PG, NTMM_ACCESS_READ, &hc), 0);
	assert_ptr_equal(hp, hc);
	ntmm_access_end(v.e);
	/* the parent writes page 0: a copy; the child still has the old one */
	char x = 'P';
	assert_int_equal(ntmm_write(p, a, &x, 1), 0);
	assert_int_equal(ntmm_last_fault_kind(), NTMM_FAULT_COPY_ON_WRITE);
	assert_int_equal(sec_check(c, a, 0, PG, 201), 0);
	/* the child writes page 1: the parent keeps its own */
	x = 'C';
	assert_int_equal(ntmm_write(c, a + PG, &x, 1), 0);
	assert_int_equal(ntmm_last_fault_kind(), NTMM_FAULT_COPY_ON_WRITE);
	assert_int_equal(sec_check(p, a + PG, PG, PG, 201), 0);
	/* the same both ways on a page both write */
	assert_int_equal(sec_write(p, a + 2 * PG, 2 * PG, PG, 202), 0);
	assert_int_equal(sec_write(c, a + 2 * PG, 2 * PG, PG, 203), 0);
	/* and on a demand-zero page */
	assert_int_equal(sec_write(c, a + (n - 2) * PG, 0, PG, 204), 0);
	assert_int_equal(ntmm_read(p, a + (n - 2) * PG, z, PG), 0);
	assert_true(sec_all_zero(z, PG));
	/* each reads its own, also once both were emptied */
	for (int round = 0; round < 2; round++) {
		char b;
		assert_int_equal(ntmm_read(p, a, &b, 1), 0);
		assert_int_equal(b, 'P');
		assert_int_equal(sec_check(p, a + 1, 1, PG - 1, 201), 0);
		assert_int_equal(ntmm_read(c, a + PG, &b, 1), 0);
		assert_int_equal(b, 'C');
		assert_int_equal(sec_check(c, a + PG + 1, PG + 1, PG - 1, 201), 0);
		assert_int_equal(sec_check(p, a + 2 * PG, 2 * PG, PG, 202), 0);
		assert_int_equal(sec_check(c, a + 2 * PG, 2 * PG, PG, 203), 0);
		assert_int_equal(sec_check(c, a + (n - 2) * PG, 0, PG, 204), 0);
		assert_int_equal(sec_check(p, a + 3 * PG, 3 * PG, (n - 11) * PG, 201), 0);
		assert_int_equal(sec_check(c, a + 3 * PG, 3 * PG, (n - 11) * PG, 201), 0);
		assert_int_equal(ntmm_ws_empty(p), 0);
		assert_int_equal(ntmm_ws_empty(c), 0);
		sec_push_out(v.e, 2 * 16 * MiB / PG);
	}
	assert_int_equal(ntmm_audit(v.e), 0);
	assert_int_equal(ntmm_process_destroy(c), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	sec_env_done(&v);
}

/* Reservations, protections and guard pages are the parent's. */
static void clone_keeps_reservations_protections_and_guards(void **st)
{
	(void)st;
	sec_env_t v = sec_env(8, 16, false);
	ntmm_process_t *p = sec_process(v.e);
	uint64_t r = 0x30000000;
	assert_int_equal(ntmm_allocate(p, &r, 16 * PG, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE), 0);
	uint64_t c1 = r + 4 * PG;
	assert_int_equal(ntmm_allocate(p, &c1, 4 * PG, NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE), 0);
	assert_int_equal(sec_write(p, c1, 0, 4 * PG, 211), 0);
	unsigned old;
	assert_int_equal(ntmm_protect(p, c1, PG, NTMM_PAGE_READONLY, &old), 0);
	assert_int_equal(ntmm_protect(p, c1 + PG, PG, NTMM_PAGE_READWRITE | NTMM_PAGE_GUARD, &old),
	                 0);
	assert_int_equal(ntmm_protect(p, c1 + 2 * PG, PG, NTMM_PAGE_NOACCESS, &old), 0);
	ntmm_process_t *c = clone_of(p);
	/* the child's map is the parent's, region by region */
	for (uint64_t va = r; va < r + 16 * PG;) {
		ntmm_region_info_t ip = sec_query(p, va), ic = sec_query(c, va);
		assert_int_equal(ic.base, ip.base);
		assert_int_equal(ic.allocation_base, ip.allocation_base);
		assert_int_equal(ic.size, ip.size);
		assert_int_equal(ic.state, ip.state);
		assert_int_equal(ic.prot, ip.prot);
		assert_int_equal(ic.allocation_prot, ip.allocation_prot);
		assert_int_equal(ic.type, NTMM_MEM_PRIVATE);
		va += ip.size;
	}
	char b = 1;
	assert_int_equal(ntmm_read(c, r, &b, 1), NTMM_EACCESS); /* reserved only */
	assert_int_equal(ntmm_write(c, c1, &b, 1), NTMM_EACCESS);
	assert_int_equal(sec_check(c, c1, 0, PG, 211), 0);
	assert_int_equal(ntmm_read(c, c1 + PG, &b, 1), NTMM_EGUARD);
	assert_int_equal(sec_check(c, c1 + PG, PG, PG, 211), 0);
	assert_int_equal(ntmm_read(c, c1 + 2 * PG, &b, 1), NTMM_EACCESS);
	assert_int_equal(sec_check(c, c1 + 3 * PG, 3 * PG, PG, 211), 0);
	/* the parent's guard is its own: still there */
	assert_int_equal(ntmm_read(p, c1 + PG, &b, 1), NTMM_EGUARD);
	/* commits after the clone are each side's own */
	uint64_t c2 = r + 12 * PG;
	assert_int_equal(ntmm_allocate(c, &c2, PG, NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE), 0);
	assert_int_equal(sec_query(p, r + 12 * PG).state, NTMM_MEM_RESERVE);
	assert_int_equal(ntmm_audit(v.e), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(ntmm_process_destroy(c), 0);
	sec_env_done(&v);
}

/* Views are mapped again in the child at the same addresses: READWRITE
   file views and paging-file views shared, WRITECOPY views copy-on-write
   (the parent's copies are the child's starting point). */
static void clone_maps_the_views_again(void **st)
{
	(void)st;
	sec_env_t v = sec_env(16, 16, false);
	ntmm_process_t *p = sec_process(v.e);
	int fd = sec_file(&v, "data", 4 * GRAN, 1);
	ntmm_section_t *fs = sec_create(v.e, fd, 0, NTMM_PAGE_READWRITE, 0);
	ntmm_section_t *ps = sec_create(v.e, -1, 4 * GRAN, NTMM_PAGE_READWRITE, 0);
	uint64_t rw = sec_map(fs, p, 0, 0, NTMM_PAGE_READWRITE);
	uint64_t wc = sec_map(fs, p, 0, 0, NTMM_PAGE_WRITECOPY);
	uint64_t sh = sec_map(ps, p, 0, 0, NTMM_PAGE_READWRITE);
	assert_int_equal(sec_write(p, wc, 0, PG, 221), 0); /* a private copy before the clone */
	assert_int_equal(sec_write(p, sh, 0, 4 * GRAN, 222), 0);
	ntmm_process_t *c = clone_of(p);
	const uint64_t views[] = {rw, wc, sh};
	for (int k = 0; k < 3; k++) {
		ntmm_region_info_t ip = sec_query(p, views[k]), ic = sec_query(c, views[k]);
		assert_int_equal(ic.type, NTMM_MEM_MAPPED);
		assert_int_equal(ic.allocation_base, views[k]);
		assert_int_equal(ic.allocation_prot, ip.allocation_prot);
		assert_int_equal(ic.state, ip.state);
	}
	/* shared views: each sees the other's writes */
	assert_int_equal(sec_check(c, sh, 0, 4 * GRAN, 222), 0);
	assert_int_equal(sec_write(c, sh + GRAN, GRAN, GRAN, 223), 0);
	assert_int_equal(sec_check(p, sh + GRAN, GRAN, GRAN, 223), 0);
	assert_int_equal(sec_write(p, rw + 2 * GRAN, 2 * GRAN, PG, 224), 0);
	assert_int_equal(sec_check(c, rw + 2 * GRAN, 2 * GRAN, PG, 224), 0);
	/* the WRITECOPY view: the parent's copy, then copies of each side's own */
	assert_int_equal(sec_check(c, wc, 0, PG, 221), 0);
	assert_int_equal(sec_write(c, wc, 0, PG, 225), 0);
	assert_int_equal(sec_check(p, wc, 0, PG, 221), 0);
	assert_int_equal(sec_write(p, wc + PG, PG, PG, 226), 0);
	assert_int_equal(sec_check(c, wc + PG, PG, PG, 1), 0);
	assert_int_equal(sec_check(c, wc + 2 * GRAN, 2 * GRAN, PG, 224), 0); /* unwritten: shared */
	/* a flush from the child writes the shared file pages, no copy */
	assert_int_equal(ntmm_flush_view(c, rw, 0), 0);
	assert_true(sec_file_is(fd, 0, 2 * GRAN, 1));
	assert_true(sec_file_is(fd, 2 * GRAN, PG, 224));
	assert_true(sec_file_is(fd, 2 * GRAN + PG, 2 * GRAN - PG, 1));
	/* the child's views are its own to unmap */
	assert_int_equal(ntmm_unmap_view(c, sh), 0);
	assert_int_equal(sec_check(p, sh, 0, GRAN, 222), 0);
	assert_int_equal(ntmm_section_close(fs), 0);
	assert_int_equal(ntmm_section_close(ps), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(sec_check(c, wc, 0, PG, 225), 0);
	assert_int_equal(sec_check(c, rw + 2 * GRAN, 2 * GRAN, PG, 224), 0);
	assert_int_equal(ntmm_process_destroy(c), 0);
	sec_env_done(&v);
	assert_true(sec_file_is(fd, 2 * GRAN, PG, 224));
	assert_true(sec_file_is(fd, 0, PG * 2, 1));
	close(fd);
}

/* Parent and child write different parts after the clone; one of them is
   destroyed; the other reads every page right, also after its pages were
   pushed out; all commit and paging-file space comes back at the end. */
static void destroy_one_side_first(bool parent_first)
{
	const size_t pool_mib = 8, n = 3 * pool_mib * MiB / PG / 2; /* 1.5x the pool */
	sec_env_t v = sec_env(pool_mib, 64, false);
	uint64_t charge0 = SEC_STAT(v.e, commit_pages);
	ntmm_process_t *p = sec_process(v.e);
	uint64_t a = private_region(p, n, NTMM_PAGE_READWRITE);
	assert_int_equal(sec_write(p, a, 0, n * PG, 231), 0);
	ntmm_process_t *c = clone_of(p);
	const uint64_t q = n / 4 * PG; /* a quarter */
	assert_int_equal(sec_write(p, a, 0, q, 232), 0);
	assert_int_equal(sec_write(c, a + q, q, q, 233), 0);
	ntmm_process_t *gone = parent_first ? p : c, *left = parent_first ? c : p;
	assert_int_equal(ntmm_process_destroy(gone), 0);
	assert_int_equal(ntmm_audit(v.e), 0);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(sec_check(left, a, 0, q, parent_first ? 231 : 232), 0);
		assert_int_equal(sec_check(left, a + q, q, q, parent_first ? 233 : 231), 0);
		assert_int_equal(sec_check(left, a + 2 * q, 2 * q, n * PG - 2 * q, 231), 0);
		assert_int_equal(ntmm_ws_empty(left), 0);
		sec_push_out(v.e, 2 * pool_mib * MiB / PG);
	}
	/* and it writes on as before */
	assert_int_equal(sec_write(left, a, 0, n * PG, 234), 0);
	assert_int_equal(sec_check(left, a, 0, n * PG, 234), 0);
	assert_int_equal(ntmm_audit(v.e), 0);
	assert_int_equal(ntmm_process_destroy(left), 0);
	assert_int_equal(SEC_STAT(v.e, commit_pages), charge0);
	assert_int_equal(SEC_STAT(v.e, pagefile_pages), 0);
	sec_env_done(&v);
}

static void destroying_the_parent_first_leaves_the_child_intact(void **st)
{
	(void)st;
	destroy_one_side_first(true);
}

static void destroying_the_child_first_leaves_the_parent_intact(void **st)
{
	(void)st;
	destroy_one_side_first(false);
}

/* The child is charged the parent's private commit when it is made. */
static void clone_is_charged_up_front(void **st)
{
	(void)st;
	sec_env_t v = sec_env(8, 16, false);
	ntmm_process_t *p = sec_process(v.e);
	uint64_t a = private_region(p, 300, NTMM_PAGE_READWRITE);
	assert_int_equal(sec_write(p, a, 0, 10 * PG, 241), 0); /* most never touched */
	size_t own = sec_info(p).commit_pages;
	assert_true(own >= 300);
	uint64_t charge = SEC_STAT(v.e, commit_pages);
	ntmm_process_t *c = clone_of(p);
	assert_int_equal(sec_info(c).commit_pages, own);
	assert_int_equal(sec_info(p).commit_pages, own);
	assert_true(SEC_STAT(v.e, commit_pages) >= charge + own);
	/* writes copy pages without charging anything more */
	uint64_t after = SEC_STAT(v.e, commit_pages);
	assert_int_equal(sec_write(c, a, 0, 300 * PG, 242), 0);
	assert_int_equal(sec_write(p, a, 0, 300 * PG, 243), 0);
	assert_int_equal(SEC_STAT(v.e, commit_pages), after);
	assert_int_equal(ntmm_process_destroy(c), 0);
	assert_int_equal(SEC_STAT(v.e, commit_pages), charge);
	assert_int_equal(ntmm_process_destroy(p), 0);
	sec_env_done(&v);
}

static void clone_past_the_commit_limit_is_ecommit_and_creates_nothing(void **st)
{
	(void)st;
	sec_env_t v = sec_env(8, 0, false); /* the limit is the pool's */
	ntmm_process_t *p = sec_process(v.e);
	uint64_t room = SEC_STAT(v.e, commit_limit_pages) - SEC_STAT(v.e, commit_pages);
	size_t n = (size_t)(room * 6 / 10);
	uint64_t a = private_region(p, n, NTMM_PAGE_READWRITE);
	assert_int_equal(sec_write(p, a, 0, 16 * PG, 251), 0);
	uint64_t charge = SEC_STAT(v.e, commit_pages), procs = SEC_STAT(v.e, processes);
	ntmm_process_t *c = (ntmm_process_t *)1;
	assert_refused(ntmm_process_clone(p, &c), NTMM_ECOMMIT);
	assert_null(c);
	assert_int_equal(SEC_STAT(v.e, commit_pages), charge);
	assert_int_equal(SEC_STAT(v.e, processes), procs);
	/* the parent is untouched and writes without a copy */
	assert_int_equal(sec_check(p, a, 0, 16 * PG, 251), 0);
	char x = 1;
	assert_int_equal(ntmm_read(p, a + 3 * PG, &x, 1), 0);
	assert_int_equal(ntmm_write(p, a + 3 * PG, &x, 1), 0);
	assert_int_equal(ntmm_last_fault_kind(), NTMM_FAULT_NONE);
	assert_int_equal(ntmm_audit(v.e), 0);
	/* with room made, the clone is made */
	assert_int_equal(ntmm_free(p, a + (n / 2) * PG, (n - n / 2) * PG, NTMM_MEM_DECOMMIT), 0);
	c = clone_of(p);
	assert_int_equal(sec_check(c, a, 0, 3 * PG, 251), 0);
	assert_int_equal(ntmm_process_destroy(c), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	sec_env_done(&v);
}

/* A clone of a clone: three processes share the pages, each write copies
   for its writer alone, and destroying the middle one leaves the other
   two intact. */
static void a_clone_of_a_clone_shares_three_ways(void **st)
{
	(void)st;
	sec_env_t v = sec_env(8, 32, false);
	ntmm_process_t *p = sec_process(v.e);
	const size_t n = 32;
	uint64_t a = private_region(p, n, NTMM_PAGE_READWRITE);
	assert_int_equal(sec_write(p, a, 0, n * PG, 261), 0);
	ntmm_process_t *c = clone_of(p);
	assert_int_equal(sec_write(c, a, 0, PG, 262), 0); /* page 0: the child's */
	ntmm_process_t *g = clone_of(c);
	assert_int_equal(sec_check(g, a, 0, PG, 262), 0);
	assert_int_equal(sec_write(g, a + PG, PG, PG, 263), 0); /* page 1: the grandchild's */
	assert_int_equal(sec_write(p, a + 2 * PG, 2 * PG, PG, 264), 0); /* page 2: the parent's */
	assert_int_equal(ntmm_process_destroy(c), 0);
	assert_int_equal(sec_check(p, a, 0, 2 * PG, 261), 0);
	assert_int_equal(sec_check(p, a + 2 * PG, 2 * PG, PG, 264), 0);
	assert_int_equal(sec_check(g, a, 0, PG, 262), 0);
	assert_int_equal(sec_check(g, a + PG, PG, PG, 263), 0);
	assert_int_equal(sec_check(g, a + 2 * PG, 2 * PG, (n - 2) * PG, 261), 0);
	assert_int_equal(sec_check(p, a + 3 * PG, 3 * PG, (n - 3) * PG, 261), 0);
	assert_int_equal(ntmm_audit(v.e), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(sec_check(g, a + 2 * PG, 2 * PG, (n - 2) * PG, 261), 0);
	assert_int_equal(ntmm_process_destroy(g), 0);
	sec_env_done(&v);
}

/* ------------------------------------------------------ clone, a model */

#define MODEL_PROCS 6
#define MODEL_PAGES 512

typedef struct model_proc {
	ntmm_process_t *p;          /* NULL: not alive */
	uint64_t word[MODEL_PAGES]; /* what the first word of each page holds */
} model_proc_t;

/* Random writes, clones, destroys and trims over up to six processes that
   share one region by descent, each checked against its own model; the
   region of all of them together is several times the pool. */
static void clone_model(bool threads)
{
	const size_t pool_mib = 8;
	sec_env_t v = sec_env(pool_mib, 64, threads);
	uint64_t charge0 = SEC_STAT(v.e, commit_pages);
	static model_proc_t m[MODEL_PROCS];
	memset(m, 0, sizeof(m));
	m[0].p = sec_process(v.e);
	uint64_t a = private_region(m[0].p, MODEL_PAGES, NTMM_PAGE_READWRITE);
	uint64_t seed = 0x5eed, version = 1;
	long steps = scaled(3000);
	for (long step = 0; step < steps; step++) {
		int k = (int)(test_rand(&seed) % MODEL_PROCS);
		if (!m[k].p)
			continue;
		unsigned op = (unsigned)(test_rand(&seed) % 100);
		if (op < 80) { /* write, then read back somewhere */
			size_t pg = test_rand(&seed) % MODEL_PAGES;
			uint64_t w = version++;
			assert_int_equal(ntmm_write(m[k].p, a + pg * PG, &w, sizeof(w)), 0);
			m[k].word[pg] = w;
			pg = test_rand(&seed) % MODEL_PAGES;
			assert_int_equal(ntmm_read(m[k].p, a + pg * PG, &w, sizeof(w)), 0);
			assert_int_equal(w, m[k].word[pg]);
		} else if (op < 88) { /* clone into a free slot */
			int j = 0;
			while (j < MODEL_PROCS && m[j].p)
				j++;
			if (j < MODEL_PROCS) {
				m[j].p = clone_of(m[k].p);
				memcpy(m[j].word, m[k].word, sizeof(m[j].word));
			}
		} else if (op < 94) { /* destroy, keeping one alive */
			int alive = 0;
			for (int j = 0; j < MODEL_PROCS; j++)
				alive += m[j].p != NULL;
			if (alive > 1) {
				assert_int_equal(ntmm_process_destroy(m[k].p), 0);
				m[k].p = NULL;
			}
		} else if (op < 99) {
			assert_int_equal(ntmm_ws_empty(m[k].p), 0);
		} else {
			sec_push_out(v.e, pool_mib * MiB / PG);
		}
	}
	assert_int_equal(ntmm_audit(v.e), 0);
	for (int k = 0; k < MODEL_PROCS; k++) {
		if (!m[k].p)
			continue;
		for (size_t pg = 0; pg < MODEL_PAGES; pg++) {
			uint64_t w;
			assert_int_equal(ntmm_read(m[k].p, a + pg * PG, &w, sizeof(w)), 0);
			assert_int_equal(w, m[k].word[pg]);
		}
	}
	assert_int_equal(ntmm_audit(v.e), 0);
	for (int k = 0; k < MODEL_PROCS; k++)
		if (m[k].p)
			assert_int_equal(ntmm_process_destroy(m[k].p), 0);
	assert_int_equal(SEC_STAT(v.e, commit_pages), charge0);
	assert_int_equal(SEC_STAT(v.e, pagefile_pages), 0);
	sec_env_done(&v);
}

static void clones_written_destroyed_and_trimmed_at_random_match_a_model(void **st)
{
	(void)st;
	clone_model(false);
}

static void clones_at_random_match_a_model_with_system_threads(void **st)
{
	(void)st;
	clone_model(true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_writecopy_view_charges_its_size_at_map),
	    cmocka_unit_test(a_writecopy_view_past_the_commit_limit_is_ecommit),
	    cmocka_unit_test(the_first_write_to_a_writecopy_view_is_a_copy_on_write_fault),
	    cmocka_unit_test(writecopy_leaves_the_file_untouched_without_system_threads),
	    cmocka_unit_test(writecopy_leaves_the_file_untouched_with_system_threads),
	    cmocka_unit_test(unwritten_pages_of_a_writecopy_view_are_the_shared_ones),
	    cmocka_unit_test(writecopy_views_of_a_read_only_file_keep_copies_of_their_own),
	    cmocka_unit_test(clone_of_null_is_einval),
	    cmocka_unit_test(clone_shares_private_memory_copy_on_write_both_ways),
	    cmocka_unit_test(clone_keeps_reservations_protections_and_guards),
	    cmocka_unit_test(clone_maps_the_views_again),
	    cmocka_unit_test(destroying_the_parent_first_leaves_the_child_intact),
	    cmocka_unit_test(destroying_the_child_first_leaves_the_parent_intact),
	    cmocka_unit_test(clone_is_charged_up_front),
	    cmocka_unit_test(clone_past_the_commit_limit_is_ecommit_and_creates_nothing),
	    cmocka_unit_test(a_clone_of_a_clone_shares_three_ways),
	    cmocka_unit_test(clones_written_destroyed_and_trimmed_at_random_match_a_model),
	    cmocka_unit_test(clones_at_random_match_a_model_with_system_threads),
	};
	if (getenv("NTMM_TEST_FILTER"))
		cmocka_set_test_filter(getenv("NTMM_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
