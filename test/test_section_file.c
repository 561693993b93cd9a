/*
 * File-backed sections end to end, checked against the file itself with
 * pread: views read the file's bytes, writes reach the file after
 * ntmm_flush_view (and stay there when the process that flushed is killed
 * at once), a file four times the frame pool goes through one view, two
 * sections of one file share its pages, the tail past the end of file
 * reads zero, unmapping, closing and destroying lose nothing, and a file
 * that fails a read or a write (the section's fault-injection hook) gives
 * NTMM_EIO with nothing lost. The audit runs at the end of each.
 */
#include "section_testutil.h"

#include <signal.h>
#include <sys/wait.h>

#include "section/section.h"

/* A data file of `bytes` (pattern tag) in v's directory, its section
   (prot) and a view of all of it in p. */
typedef struct mapped {
	int fd;
	ntmm_section_t *s;
	uint64_t base;
} mapped_t;

static mapped_t map_file(sec_env_t *v, ntmm_process_t *p, const char *name, uint64_t bytes,
                         uint64_t tag, unsigned prot)
{
	mapped_t m;
	m.fd = sec_file(v, name, bytes, tag);
	m.s = sec_create(v->e, m.fd, 0, prot, 0);
	m.base = sec_map(m.s, p, 0, 0, prot);
	return m;
}

static void unmap_file(ntmm_process_t *p, mapped_t *m)
{
	assert_int_equal(ntmm_unmap_view(p, m->base), 0);
	assert_int_equal(ntmm_section_close(m->s), 0);
	close(m->fd);
}

/* ------------------------------------------------------ reads, writes */

static void a_view_reads_what_pread_reads(void **st)
{
	(void)st;
	sec_env_t v = sec_env(8, 0, false);
	ntmm_process_t *p = sec_process(v.e);
	mapped_t m = map_file(&v, p, "data", 1 * MiB, 11, NTMM_PAGE_READONLY);
	/* page by page, against the file's own bytes */
	char *view = malloc(PG), *file = malloc(PG);
	for (uint64_t off = 0; off < 1 * MiB; off += PG) {
		assert_int_equal(ntmm_read(p, m.base + off, view, PG), 0);
		assert_int_equal(pread(m.fd, file, PG, (off_t)off), (ssize_t)PG);
		assert_memory_equal(view, file, PG);
	}
	/* host pointers from ntmm_translate see the same bytes */
	ntmm_access_begin(v.e);
	for (uint64_t off = 0; off < 1 * MiB; off += 17 * PG) {
		void *h;
		assert_int_equal(ntmm_translate(p, m.base + off + 100, NTMM_ACCESS_READ, &h), 0);
		assert_int_equal(pread(m.fd, file, PG - 100, (off_t)(off + 100)),
		                 (ssize_t)(PG - 100));
		assert_memory_equal(h, file, PG - 100);
	}
	ntmm_access_end(v.e);
	/* reads across page boundaries */
	char buf[3 * PG + 10];
	assert_int_equal(ntmm_read(p, m.base + 5 * PG - 5, buf, sizeof(buf)), 0);
	assert_int_equal(sec_diff(buf, 5 * PG - 5, sizeof(buf), 11), -1);
	free(view), free(file);
	unmap_file(p, &m);
	assert_int_equal(ntmm_process_destroy(p), 0);
	sec_env_done(&v);
}

static void writes_reach_the_file_after_flush(void **st)
{
	(void)st;
	sec_env_t v = sec_env(8, 0, false);
	ntmm_process_t *p = sec_process(v.e);
	mapped_t m = map_file(&v, p, "data", 1 * MiB, 11, NTMM_PAGE_READWRITE);
	/* every other 64 KiB rewritten (pattern 12), through ntmm_write and
	   through translated pointers */
	for (uint64_t off = 0; off < 1 * MiB; off += 2 * GRAN)
		assert_int_equal(sec_write(p, m.base + off, off, GRAN / 2, 12), 0);
	ntmm_access_begin(v.e);
	for (uint64_t off = GRAN / 2; off < 1 * MiB; off += 2 * GRAN)
		for (uint64_t k = 0; k < GRAN / 2; k += PG) {
			void *h;
			assert_int_equal(ntmm_translate(p, m.base + off + k, NTMM_ACCESS_WRITE, &h),
			                 0);
			sec_fill(h, off + k, PG, 12);
		}
	ntmm_access_end(v.e);
	assert_int_equal(ntmm_flush_view(p, m.base, 0), 0);
	for (uint64_t off = 0; off < 1 * MiB; off += GRAN)
		assert_true(sec_file_is(m.fd, off, GRAN, (off / GRAN) % 2 ? 11 : 12));
	/* a flush of part of the view writes that part */
	assert_int_equal(sec_write(p, m.base + 3 * GRAN + PG, 3 * GRAN + PG, 2 * PG, 13), 0);
	assert_int_equal(ntmm_flush_view(p, m.base + 3 * GRAN + PG, 2 * PG), 0);
	assert_true(sec_file_is(m.fd, 3 * GRAN + PG, 2 * PG, 13));
	/* len 0 from inside the view: from there to the view's end */
	assert_int_equal(
	    sec_write(p, m.base + 1 * MiB - 2 * GRAN, 1 * MiB - 2 * GRAN, 2 * GRAN, 14), 0);
	assert_int_equal(ntmm_flush_view(p, m.base + 1 * MiB - 2 * GRAN, 0), 0);
	assert_true(sec_file_is(m.fd, 1 * MiB - 2 * GRAN, 2 * GRAN, 14));
	/* and the view reads its writes back */
	assert_int_equal(sec_check(p, m.base, 0, GRAN, 12), 0);
	assert_int_equal(sec_check(p, m.base + GRAN, GRAN, GRAN, 11), 0);
	assert_int_equal(sec_check(p, m.base + 3 * GRAN + PG, 3 * GRAN + PG, 2 * PG, 13), 0);
	assert_int_equal(sec_fsize(m.fd), 1 * MiB);
	unmap_file(p, &m);
	assert_int_equal(ntmm_process_destroy(p), 0);
	sec_env_done(&v);
}

/* A READONLY view refuses writes and the file stays as it was. */
static void a_readonly_view_leaves_the_file_alone(void **st)
{
	(void)st;
	sec_env_t v = sec_env(8, 0, false);
	ntmm_process_t *p = sec_process(v.e);
	mapped_t m = map_file(&v, p, "data", 4 * GRAN, 14, NTMM_PAGE_READONLY);
	char c = 1;
	void *h;
	assert_int_equal(ntmm_write(p, m.base + PG, &c, 1), NTMM_EACCESS);
	assert_int_equal(ntmm_translate(p, m.base, NTMM_ACCESS_WRITE, &h), NTMM_EACCESS);
	assert_int_equal(ntmm_flush_view(p, m.base, 0), 0);
	assert_true(sec_file_is(m.fd, 0, 4 * GRAN, 14));
	unmap_file(p, &m);
	assert_int_equal(ntmm_process_destroy(p), 0);
	sec_env_done(&v);
}

/* ------------------------------------------------- flush, then SIGKILL */

enum { CHILD_KILLED_TOO_LATE = 90 };

/* The child: its own engine, the file's section and view, pattern `tag`
   written through it, flushed, then SIGKILL at once (no unmap, no close,
   no destroy, no exit handler). Returns only on a failure, with the step
   that failed. */
static int flush_then_die(const char *path, uint64_t bytes, uint64_t tag, bool threads)
{
	int fd = open(path, O_RDWR);
	if (fd < 0)
		return 1;
	ntmm_config_t c;
	ntmm_config_init(&c);
	c.physical_bytes = 8 * MiB;
	c.start_threads = threads;
	c.pagefile_path = NULL;
	ntmm_engine_t *e;
	if (ntmm_engine_create(&c, &e))
		return 2;
	ntmm_process_t *p;
	if (ntmm_process_create(e, &p))
		return 3;
	ntmm_section_t *s;
	if (ntmm_section_create(e, fd, 0, NTMM_PAGE_READWRITE, 0, &s))
		return 4;
	close(fd); /* the engine has its own descriptor */
	uint64_t base = 0;
	if (ntmm_map_view(s, p, &base, 0, 0, NTMM_PAGE_READWRITE))
		return 5;
	char *buf = malloc(GRAN);
	for (uint64_t off = 0; off < bytes; off += GRAN) {
		sec_fill(buf, off, GRAN, tag);
		if (ntmm_write(p, base + off, buf, GRAN))
			return 6;
	}
	if (ntmm_flush_view(p, base, 0))
		return 7;
	raise(SIGKILL);
	return CHILD_KILLED_TOO_LATE;
}

static void flush_then_sigkill(bool threads)
{
	sec_env_t v = {0}; /* the directory only: no engine in the parent at the fork */
	sec_mkdtemp(v.dir, sizeof(v.dir));
	int fd = sec_file(&v, "data", 2 * MiB, 21);
	char path[700];
	snprintf(path, sizeof(path), "%s/data", v.dir);
	fflush(NULL); /* nothing buffered is written twice */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(flush_then_die(path, 2 * MiB, 22, threads)); /* no cmocka in the child */
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status))
		fail_msg("the child failed at step %d", WEXITSTATUS(status));
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	/* everything flushed is in the file, through a fresh descriptor too */
	assert_true(sec_file_is(fd, 0, 2 * MiB, 22));
	int fd2 = sec_reopen(&v, "data", O_RDONLY);
	assert_true(sec_file_is(fd2, 0, 2 * MiB, 22));
	assert_int_equal(sec_fsize(fd2), 2 * MiB);
	close(fd2);
	close(fd);
	sec_env_free(&v);
}

static void flush_then_sigkill_of_a_forked_child_keeps_the_data(void **st)
{
	(void)st;
	flush_then_sigkill(false);
}

static void flush_then_sigkill_with_system_threads_keeps_the_data(void **st)
{
	(void)st;
	flush_then_sigkill(true);
}

/* ------------------------------------------- a file 4x the frame pool */

/* One view of a file four times the pool: every page read and checked,
   then every page rewritten, flushed, and every byte of the file checked
   with pread; the view reads the new bytes back. The pages can only have
   gone through the file (no paging file). */
static void four_times_the_pool(bool threads)
{
	const size_t pool_mib = 8;
	const uint64_t bytes = 4 * pool_mib * MiB;
	sec_env_t v = sec_env(pool_mib, 0, threads);
	ntmm_process_t *p = sec_process(v.e);
	mapped_t m = map_file(&v, p, "big", bytes, 31, NTMM_PAGE_READWRITE);
	uint64_t hard = SEC_STAT(v.e, hard_faults);
	assert_int_equal(sec_check(p, m.base, 0, bytes, 31), 0);
	assert_true(SEC_STAT(v.e, hard_faults) > hard); /* the file was read */
	assert_int_equal(sec_write(p, m.base, 0, bytes, 32), 0);
	assert_int_equal(ntmm_flush_view(p, m.base, 0), 0);
	assert_true(sec_file_is(m.fd, 0, bytes, 32));
	assert_int_equal(sec_fsize(m.fd), bytes);
	assert_int_equal(sec_check(p, m.base, 0, bytes, 32), 0);
	assert_int_equal(ntmm_audit(v.e), 0);
	/* a second round, read-modify-write one word a page, then unmap,
	   close and destroy with no flush: nothing is lost */
	for (uint64_t off = 0; off < bytes; off += PG) {
		uint64_t w;
		assert_int_equal(ntmm_read(p, m.base + off + 8, &w, 8), 0);
		assert_int_equal(w, sec_word(32, (off + 8) / 8));
		w = sec_word(33, (off + 8) / 8);
		assert_int_equal(ntmm_write(p, m.base + off + 8, &w, 8), 0);
	}
	assert_int_equal(ntmm_audit(v.e), 0);
	int fd = m.fd;
	m.fd = -1;
	unmap_file(p, &m);
	assert_int_equal(ntmm_process_destroy(p), 0);
	sec_env_done(&v);
	char *buf = malloc(PG);
	for (uint64_t off = 0; off < bytes; off += PG) {
		assert_int_equal(pread(fd, buf, PG, (off_t)off), (ssize_t)PG);
		uint64_t w;
		memcpy(&w, buf + 8, 8);
		assert_int_equal(w, sec_word(33, (off + 8) / 8));
		sec_fill(buf + 8, off + 8, 8, 32); /* the rest is round one's */
		assert_int_equal(sec_diff(buf, off, PG, 32), -1);
	}
	free(buf);
	close(fd);
}

static void a_file_four_times_the_pool_round_trips_through_one_view(void **st)
{
	(void)st;
	four_times_the_pool(false);
}

static void a_file_four_times_the_pool_round_trips_with_system_threads(void **st)
{
	(void)st;
	four_times_the_pool(true);
}

/* ------------------------------------------------ one file, one segment */

/* Two sections of one file (each made from its own open() of the file)
   share its pages: a write through one view is read through the other at
   once, without a flush, in two processes, and both views translate to
   the same frame. */
static void two_sections_of_one_file_share_its_pages(void **st)
{
	(void)st;
	sec_env_t v = sec_env(8, 0, false);
	ntmm_process_t *p = sec_process(v.e), *q = sec_process(v.e);
	int fd = sec_file(&v, "data", 8 * GRAN, 41);
	int fd2 = sec_reopen(&v, "data", O_RDWR);
	ntmm_section_t *a = sec_create(v.e, fd, 0, NTMM_PAGE_READWRITE, 0);
	ntmm_section_t *b = sec_create(v.e, fd2, 0, NTMM_PAGE_READWRITE, 0);
	uint64_t va = sec_map(a, p, 0, 0, NTMM_PAGE_READWRITE);
	uint64_t vb = sec_map(b, q, 2 * GRAN, 0, NTMM_PAGE_READWRITE);
	uint64_t vb_same = sec_map(b, p, 0, 0, NTMM_PAGE_READONLY);
	/* p writes through a; q and p read through b */
	assert_int_equal(sec_write(p, va + 2 * GRAN, 2 * GRAN, GRAN, 42), 0);
	assert_int_equal(sec_check(q, vb, 2 * GRAN, GRAN, 42), 0);
	assert_int_equal(sec_check(p, vb_same + 2 * GRAN, 2 * GRAN, GRAN, 42), 0);
	/* q writes through b; p reads through a */
	assert_int_equal(sec_write(q, vb + GRAN + PG, 3 * GRAN + PG, PG, 43), 0);
	assert_int_equal(sec_check(p, va + 3 * GRAN + PG, 3 * GRAN + PG, PG, 43), 0);
	/* the pages nobody wrote are the file's in every view */
	assert_int_equal(sec_check(p, va, 0, 2 * GRAN, 41), 0);
	assert_int_equal(sec_check(q, vb + 3 * GRAN, 5 * GRAN, 3 * GRAN, 41), 0);
	void *h1, *h2, *h3;
	ntmm_access_begin(v.e);
	assert_int_equal(ntmm_translate(p, va + 4 * GRAN, NTMM_ACCESS_READ, &h1), 0);
	assert_int_equal(ntmm_translate(q, vb + 2 * GRAN, NTMM_ACCESS_READ, &h2), 0);
	assert_int_equal(ntmm_translate(p, vb_same + 4 * GRAN, NTMM_ACCESS_READ, &h3), 0);
	assert_ptr_equal(h1, h2);
	assert_ptr_equal(h1, h3);
	ntmm_access_end(v.e);
	/* the same after every working set was emptied (soft or hard faults) */
	assert_int_equal(ntmm_ws_empty(p), 0);
	assert_int_equal(ntmm_ws_empty(q), 0);
	assert_int_equal(sec_check(q, vb, 2 * GRAN, GRAN, 42), 0);
	assert_int_equal(sec_check(p, va + 3 * GRAN + PG, 3 * GRAN + PG, PG, 43), 0);
	/* a flush through either section writes the one copy */
	assert_int_equal(ntmm_flush_view(q, vb, 0), 0);
	assert_int_equal(ntmm_flush_view(p, va, 0), 0);
	assert_true(sec_file_is(fd, 0, 2 * GRAN, 41));
	assert_true(sec_file_is(fd, 2 * GRAN, GRAN, 42));
	assert_true(sec_file_is(fd, 3 * GRAN + PG, PG, 43));
	assert_int_equal(ntmm_unmap_view(p, va), 0);
	assert_int_equal(ntmm_unmap_view(q, vb), 0);
	assert_int_equal(ntmm_unmap_view(p, vb_same), 0);
	assert_int_equal(ntmm_section_close(a), 0);
	assert_int_equal(ntmm_section_close(b), 0);
	close(fd), close(fd2);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(ntmm_process_destroy(q), 0);
	sec_env_done(&v);
}

/* -------------------------------------------------- the end of the file */

/* A file of 10000 bytes: its view has three pages; past byte 10000 the
   last page reads zero; a write there does not grow the file (the section
   is 10000 bytes); past the third page is no view. */
static void the_tail_past_the_end_of_file_reads_zero(void **st)
{
	(void)st;
	const uint64_t bytes = 10000;
	sec_env_t v = sec_env(8, 0, false);
	ntmm_process_t *p = sec_process(v.e);
	mapped_t m = map_file(&v, p, "odd", bytes, 51, NTMM_PAGE_READWRITE);
	ntmm_region_info_t i = sec_query(p, m.base);
	assert_int_equal(i.size, 3 * PG);
	char page[PG];
	assert_int_equal(ntmm_read(p, m.base + 2 * PG, page, PG), 0);
	assert_int_equal(sec_diff(page, 2 * PG, bytes - 2 * PG, 51), -1);
	assert_true(sec_all_zero(page + (bytes - 2 * PG), 3 * PG - bytes));
	char c;
	assert_int_equal(ntmm_read(p, m.base + 3 * PG, &c, 1), NTMM_EACCESS);
	/* writes in the last page, before and after the end of file */
	assert_int_equal(sec_write(p, m.base + 9000, 9000, 100, 52), 0);
	assert_int_equal(sec_write(p, m.base + bytes, bytes, 100, 52), 0);
	assert_int_equal(ntmm_flush_view(p, m.base, 0), 0);
	assert_int_equal(sec_fsize(m.fd), bytes);
	assert_true(sec_file_is(m.fd, 0, 9000, 51));
	assert_true(sec_file_is(m.fd, 9000, 100, 52));
	assert_true(sec_file_is(m.fd, 9100, bytes - 9100, 51));
	unmap_file(p, &m);
	/* a file whose size is a page multiple minus one: the same */
	m = map_file(&v, p, "odd2", 2 * PG - 1, 53, NTMM_PAGE_READONLY);
	assert_int_equal(ntmm_read(p, m.base + PG, page, PG), 0);
	assert_int_equal(sec_diff(page, PG, PG - 1, 53), -1);
	assert_int_equal(page[PG - 1], 0);
	unmap_file(p, &m);
	assert_int_equal(ntmm_process_destroy(p), 0);
	sec_env_done(&v);
}

/* A section smaller than its file maps only its own size. */
static void a_section_smaller_than_its_file_maps_only_its_size(void **st)
{
	(void)st;
	sec_env_t v = sec_env(8, 0, false);
	ntmm_process_t *p = sec_process(v.e);
	int fd = sec_file(&v, "data", 8 * GRAN, 54);
	ntmm_section_t *s = sec_create(v.e, fd, 2 * GRAN, NTMM_PAGE_READWRITE, 0);
	uint64_t b = sec_map(s, p, 0, 0, NTMM_PAGE_READWRITE);
	assert_int_equal(sec_query(p, b).size, 2 * GRAN);
	assert_int_equal(sec_check(p, b, 0, 2 * GRAN, 54), 0);
	char c;
	assert_int_equal(ntmm_read(p, b + 2 * GRAN, &c, 1), NTMM_EACCESS);
	uint64_t b2 = 0;
	assert_int_equal(ntmm_map_view(s, p, &b2, 2 * GRAN, 0, NTMM_PAGE_READWRITE), NTMM_EINVAL);
	assert_int_equal(sec_fsize(fd), 8 * GRAN);
	assert_int_equal(ntmm_unmap_view(p, b), 0);
	assert_int_equal(ntmm_section_close(s), 0);
	close(fd);
	assert_int_equal(ntmm_process_destroy(p), 0);
	sec_env_done(&v);
}

/* ------------------------------------------------------ losing nothing */

/* Written, unmapped, closed, the engine destroyed, never flushed: the
   file has the data (the caller's descriptor was closed right after the
   create; the engine kept its own). */
static void unmap_close_destroy_lose_nothing(bool threads)
{
	sec_env_t v = sec_env(8, 0, threads);
	ntmm_process_t *p = sec_process(v.e);
	int fd = sec_file(&v, "data", 1 * MiB, 61);
	ntmm_section_t *s = sec_create(v.e, fd, 0, NTMM_PAGE_READWRITE, 0);
	close(fd);
	uint64_t b = sec_map(s, p, 0, 0, NTMM_PAGE_READWRITE);
	assert_int_equal(sec_write(p, b + GRAN, GRAN, 4 * GRAN, 62), 0);
	assert_int_equal(ntmm_unmap_view(p, b), 0);
	assert_int_equal(ntmm_section_close(s), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(ntmm_audit(v.e), 0);
	ntmm_thread_unregister(v.e);
	ntmm_engine_destroy(v.e);
	v.e = NULL;
	fd = sec_reopen(&v, "data", O_RDONLY);
	assert_true(sec_file_is(fd, 0, GRAN, 61));
	assert_true(sec_file_is(fd, GRAN, 4 * GRAN, 62));
	assert_true(sec_file_is(fd, 5 * GRAN, 1 * MiB - 5 * GRAN, 61));
	close(fd);
	sec_env_free(&v);
}

static void unmap_close_and_destroy_lose_nothing(void **st)
{
	(void)st;
	unmap_close_destroy_lose_nothing(false);
}

static void unmap_close_and_destroy_lose_nothing_with_system_threads(void **st)
{
	(void)st;
	unmap_close_destroy_lose_nothing(true);
}

/* Written, unmapped and closed: a new section of the file, mapped in
   another process, reads the data before anything was flushed; a process
   destroyed with a dirty view loses nothing either. */
static void a_new_section_after_close_sees_the_unflushed_data(void **st)
{
	(void)st;
	sec_env_t v = sec_env(8, 0, false);
	ntmm_process_t *p = sec_process(v.e), *q = sec_process(v.e);
	mapped_t m = map_file(&v, p, "data", 4 * GRAN, 63, NTMM_PAGE_READWRITE);
	assert_int_equal(sec_write(p, m.base, 0, GRAN, 64), 0);
	unmap_file(p, &m);
	int fd = sec_reopen(&v, "data", O_RDWR);
	ntmm_section_t *s = sec_create(v.e, fd, 0, NTMM_PAGE_READWRITE, 0);
	uint64_t b = sec_map(s, q, 0, 0, NTMM_PAGE_READWRITE);
	assert_int_equal(sec_check(q, b, 0, GRAN, 64), 0);
	assert_int_equal(sec_check(q, b + GRAN, GRAN, 3 * GRAN, 63), 0);
	assert_int_equal(sec_write(q, b + GRAN, GRAN, GRAN, 65), 0);
	assert_int_equal(ntmm_process_destroy(q), 0); /* the view goes with it */
	assert_int_equal(ntmm_section_close(s), 0);
	s = sec_create(v.e, fd, 0, NTMM_PAGE_READONLY, 0);
	b = sec_map(s, p, 0, 0, NTMM_PAGE_READONLY);
	assert_int_equal(sec_check(p, b, 0, GRAN, 64), 0);
	assert_int_equal(sec_check(p, b + GRAN, GRAN, GRAN, 65), 0);
	assert_int_equal(sec_check(p, b + 2 * GRAN, 2 * GRAN, 2 * GRAN, 63), 0);
	assert_int_equal(ntmm_unmap_view(p, b), 0);
	assert_int_equal(ntmm_section_close(s), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	sec_env_done(&v);
	assert_true(sec_file_is(fd, 0, GRAN, 64));
	assert_true(sec_file_is(fd, GRAN, GRAN, 65));
	close(fd);
}

/* --------------------------------------------------- in-page errors */

/* The next file read fails: the fault that needed it returns NTMM_EIO,
   the next access reads the page, and a dirty page elsewhere in the view
   is intact. Far apart, so that no clustered read brings both in. */
static void a_failed_read_is_eio_and_the_next_access_succeeds(void **st)
{
	(void)st;
	sec_env_t v = sec_env(8, 0, false);
	ntmm_process_t *p = sec_process(v.e);
	mapped_t m = map_file(&v, p, "data", 4 * MiB, 71, NTMM_PAGE_READWRITE);
	const uint64_t dirty = 3 * MiB, far = 1 * MiB, far2 = 2 * MiB;
	assert_int_equal(sec_write(p, m.base + dirty, dirty, PG, 72), 0);
	/* a read fault */
	assert_int_equal(ntmm__section_fail_io(m.s, 1, 0), 0);
	char buf[PG];
	assert_int_equal(ntmm_read(p, m.base + far, buf, PG), NTMM_EIO);
	assert_int_equal(ntmm_read(p, m.base + far, buf, PG), 0);
	assert_int_equal(sec_diff(buf, far, PG, 71), -1);
	/* a translate, then a write fault (it reads the page first) */
	void *h;
	assert_int_equal(ntmm__section_fail_io(m.s, 1, 0), 0);
	ntmm_access_begin(v.e);
	assert_int_equal(ntmm_translate(p, m.base, NTMM_ACCESS_READ, &h), NTMM_EIO);
	assert_int_equal(ntmm_translate(p, m.base, NTMM_ACCESS_READ, &h), 0);
	assert_int_equal(sec_diff(h, 0, PG, 71), -1);
	ntmm_access_end(v.e);
	assert_int_equal(ntmm__section_fail_io(m.s, 1, 0), 0);
	/* (part of a page: the rest must come from the file) */
	assert_int_equal(sec_write(p, m.base + far2, far2, 100, 73), NTMM_EIO);
	assert_int_equal(sec_write(p, m.base + far2, far2, 100, 73), 0);
	/* nothing lost, in the view and in the file */
	assert_int_equal(sec_check(p, m.base + dirty, dirty, PG, 72), 0);
	assert_int_equal(sec_check(p, m.base + far2, far2, 100, 73), 0);
	assert_int_equal(sec_check(p, m.base + far2 + 100, far2 + 100, PG - 100, 71), 0);
	assert_int_equal(ntmm_audit(v.e), 0);
	assert_int_equal(ntmm_flush_view(p, m.base, 0), 0);
	assert_true(sec_file_is(m.fd, dirty, PG, 72));
	assert_true(sec_file_is(m.fd, far2, 100, 73));
	assert_true(sec_file_is(m.fd, far2 + 100, PG - 100, 71));
	assert_true(sec_file_is(m.fd, far, PG, 71));
	unmap_file(p, &m);
	assert_int_equal(ntmm_process_destroy(p), 0);
	sec_env_done(&v);
}

/* A failed read in another process's fault leaves the page to be read by
   the next one: the shared page is not left half-made. */
static void a_failed_read_is_retried_by_the_next_process(void **st)
{
	(void)st;
	sec_env_t v = sec_env(8, 0, false);
	ntmm_process_t *p = sec_process(v.e), *q = sec_process(v.e);
	mapped_t m = map_file(&v, p, "data", 4 * GRAN, 74, NTMM_PAGE_READONLY);
	uint64_t bq = sec_map(m.s, q, 0, 0, NTMM_PAGE_READONLY);
	assert_int_equal(ntmm__section_fail_io(m.s, 1, 0), 0);
	char c;
	assert_int_equal(ntmm_read(p, m.base + GRAN, &c, 1), NTMM_EIO);
	assert_int_equal(sec_check(q, bq + GRAN, GRAN, GRAN, 74), 0);
	assert_int_equal(sec_check(p, m.base, 0, 4 * GRAN, 74), 0);
	assert_int_equal(ntmm_unmap_view(q, bq), 0);
	unmap_file(p, &m);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(ntmm_process_destroy(q), 0);
	sec_env_done(&v);
}

/* The next file write fails: ntmm_flush_view returns NTMM_EIO, the pages
   stay dirty and intact, and a second flush writes them. */
static void a_failed_write_makes_flush_eio_and_the_next_flush_writes(void **st)
{
	(void)st;
	sec_env_t v = sec_env(8, 0, false);
	ntmm_process_t *p = sec_process(v.e);
	mapped_t m = map_file(&v, p, "data", 1 * MiB, 75, NTMM_PAGE_READWRITE);
	assert_int_equal(sec_write(p, m.base, 0, 1 * MiB, 76), 0);
	assert_int_equal(ntmm__section_fail_io(m.s, 0, 1), 0);
	assert_int_equal(ntmm_flush_view(p, m.base, 0), NTMM_EIO);
	assert_int_equal(sec_check(p, m.base, 0, 1 * MiB, 76), 0);
	assert_int_equal(ntmm_audit(v.e), 0);
	assert_int_equal(ntmm_flush_view(p, m.base, 0), 0);
	assert_true(sec_file_is(m.fd, 0, 1 * MiB, 76));
	/* once more, with the pages trimmed first (they wait on the mapped
	   writer's list, not in the working set) */
	assert_int_equal(sec_write(p, m.base + GRAN, GRAN, GRAN, 77), 0);
	assert_int_equal(ntmm_ws_empty(p), 0);
	assert_int_equal(ntmm__section_fail_io(m.s, 0, 1), 0);
	assert_int_equal(ntmm_flush_view(p, m.base, 0), NTMM_EIO);
	assert_int_equal(ntmm_flush_view(p, m.base, 0), 0);
	assert_true(sec_file_is(m.fd, GRAN, GRAN, 77));
	assert_int_equal(sec_check(p, m.base + GRAN, GRAN, GRAN, 77), 0);
	unmap_file(p, &m);
	assert_int_equal(ntmm_process_destroy(p), 0);
	sec_env_done(&v);
}

/* A write that fails when no view is left to report it to (the mapped
   page writer's, after the unmap and close, or at destroy) leaves the
   pages dirty, and they are written again: the data reaches the file by
   the time the engine is destroyed. */
static void a_failed_write_after_unmap_is_written_again(void **st)
{
	(void)st;
	sec_env_t v = sec_env(8, 0, false);
	ntmm_process_t *p = sec_process(v.e);
	mapped_t m = map_file(&v, p, "data", 4 * GRAN, 78, NTMM_PAGE_READWRITE);
	assert_int_equal(sec_write(p, m.base, 0, 4 * GRAN, 79), 0);
	assert_int_equal(ntmm__section_fail_io(m.s, 0, 1), 0);
	int fd = m.fd;
	m.fd = -1;
	unmap_file(p, &m);
	assert_int_equal(ntmm_process_destroy(p), 0);
	sec_env_done(&v);
	assert_true(sec_file_is(fd, 0, 4 * GRAN, 79));
	close(fd);
}

/* The hook refuses what is not a live file section. */
static void the_fault_hook_refuses_paging_file_sections(void **st)
{
	(void)st;
	sec_env_t v = sec_env(8, 8, false);
	ntmm_section_t *s = sec_create(v.e, -1, GRAN, NTMM_PAGE_READWRITE, 0);
	assert_int_equal(ntmm__section_fail_io(s, 1, 0), NTMM_EINVAL);
	assert_int_equal(ntmm__section_fail_io(NULL, 1, 0), NTMM_EINVAL);
	assert_int_equal(ntmm_section_close(s), 0);
	sec_env_done(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(a_view_reads_what_pread_reads),
	    cmocka_unit_test(writes_reach_the_file_after_flush),
	    cmocka_unit_test(a_readonly_view_leaves_the_file_alone),
	    cmocka_unit_test(flush_then_sigkill_of_a_forked_child_keeps_the_data),
	    cmocka_unit_test(flush_then_sigkill_with_system_threads_keeps_the_data),
	    cmocka_unit_test(a_file_four_times_the_pool_round_trips_through_one_view),
	    cmocka_unit_test(a_file_four_times_the_pool_round_trips_with_system_threads),
	    cmocka_unit_test(two_sections_of_one_file_share_its_pages),
	    cmocka_unit_test(the_tail_past_the_end_of_file_reads_zero),
	    cmocka_unit_test(a_section_smaller_than_its_file_maps_only_its_size),
	    cmocka_unit_test(unmap_close_and_destroy_lose_nothing),
	    cmocka_unit_test(unmap_close_and_destroy_lose_nothing_with_system_threads),
	    cmocka_unit_test(a_new_section_after_close_sees_the_unflushed_data),
	    cmocka_unit_test(a_failed_read_is_eio_and_the_next_access_succeeds),
	    cmocka_unit_test(a_failed_read_is_retried_by_the_next_process),
	    cmocka_unit_test(a_failed_write_makes_flush_eio_and_the_next_flush_writes),
	    cmocka_unit_test(a_failed_write_after_unmap_is_written_again),
	    cmocka_unit_test(the_fault_hook_refuses_paging_file_sections),
	};
	if (getenv("NTMM_TEST_FILTER"))
		cmocka_set_test_filter(getenv("NTMM_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
