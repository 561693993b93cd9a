/*
 * The section layer's own paths, white-box where it helps: prototype PTE
 * states (valid, transition, paging file, file), share counts across
 * processes, the mapped Modified list and the mapped page writer's batch,
 * copy-on-write, SEC_RESERVE commits, and the audit after each.
 */
#include "paging_testutil.h"
#include "section/section.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static paging_env_t env;

static int setup(void **state)
{
	env = paging_env(16, 16, 64, false, false);
	return 0;
}

static int teardown(void **state)
{
	paging_env_done(&env);
	return 0;
}

static int tmpfile_of(size_t bytes, uint8_t seed)
{
	char *path = io_path(env.dir, "mapped.dat");
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	free(path);
	assert_true(fd >= 0);
	uint8_t *buf = malloc(bytes);
	for (size_t i = 0; i < bytes; i++)
		buf[i] = (uint8_t)(seed + i * 7 + i / 4096);
	assert_int_equal(pwrite(fd, buf, bytes, 0), (ssize_t)bytes);
	free(buf);
	return fd;
}

static uint8_t file_byte(uint8_t seed, size_t i)
{
	return (uint8_t)(seed + i * 7 + i / 4096);
}

static void shared_memory_between_processes(void **state)
{
	ntmm_section_t *s;
	assert_int_equal(ntmm_section_create(env.e, -1, 1 << 20, NTMM_PAGE_READWRITE, 0, &s), 0);
	ntmm_process_t *a, *b;
	assert_int_equal(ntmm_process_create(env.e, &a), 0);
	assert_int_equal(ntmm_process_create(env.e, &b), 0);
	uint64_t va = 0, vb = 0;
	assert_int_equal(ntmm_map_view(s, a, &va, 0, 0, NTMM_PAGE_READWRITE), 0);
	assert_int_equal(ntmm_map_view(s, b, &vb, 0, 0, NTMM_PAGE_READWRITE), 0);
	for (uint64_t i = 0; i < 256; i++) {
		uint64_t v = 0x5ec70000 + i;
		assert_int_equal(ntmm_write(a, va + i * PG + 8, &v, sizeof(v)), 0);
	}
	for (uint64_t i = 0; i < 256; i++) {
		uint64_t v = 0;
		assert_int_equal(ntmm_read(b, vb + i * PG + 8, &v, sizeof(v)), 0);
		assert_int_equal(v, 0x5ec70000 + i);
	}
	assert_int_equal(ntmm_audit(env.e), 0);
	/* both working sets emptied: the pages go to Modified, the writer
	   puts them in the paging file, repurposing takes the frames */
	assert_int_equal(ntmm_ws_empty(a), 0);
	assert_int_equal(ntmm_ws_empty(b), 0);
	assert_int_equal(ntmm_audit(env.e), 0);
	while (ntmm__paging_write_batch(env.e, NTMM__WRITE_BATCH, true, NULL, NULL))
		;
	repurpose_all(env.e);
	assert_int_equal(ntmm_audit(env.e), 0);
	for (uint64_t i = 0; i < 256; i++) {
		uint64_t v = 0;
		assert_int_equal(ntmm_read(b, vb + i * PG + 8, &v, sizeof(v)), 0);
		assert_int_equal(v, 0x5ec70000 + i);
	}
	ntmm_region_info_t ri;
	assert_int_equal(ntmm_query(a, va + 5 * PG, &ri), 0);
	assert_int_equal(ri.type, NTMM_MEM_MAPPED);
	assert_int_equal(ri.allocation_base, va);
	assert_int_equal(ntmm_free(a, va, 0, NTMM_MEM_RELEASE), NTMM_EINVAL);
	assert_int_equal(ntmm_unmap_view(a, va + PG), NTMM_EINVAL);
	assert_int_equal(ntmm_unmap_view(a, va), 0);
	assert_int_equal(ntmm_unmap_view(a, va), NTMM_EINVAL);
	assert_int_equal(ntmm_section_close(s), 0);
	uint64_t v = 0;
	assert_int_equal(ntmm_read(b, vb + 3 * PG + 8, &v, sizeof(v)), 0);
	assert_int_equal(v, 0x5ec70003);
	assert_int_equal(ntmm_audit(env.e), 0);
	assert_int_equal(ntmm_process_destroy(b), 0);
	assert_int_equal(ntmm_process_destroy(a), 0);
	assert_int_equal(ntmm_audit(env.e), 0);
}

static void file_view_reads_and_writes_reach_the_file(void **state)
{
	const size_t bytes = 3 * 1024 * 1024 + 1000; /* partial last page */
	int fd = tmpfile_of(bytes, 3);
	ntmm_section_t *s;
	assert_int_equal(ntmm_section_create(env.e, fd, 0, NTMM_PAGE_READWRITE, 0, &s), 0);
	ntmm_process_t *p;
	assert_int_equal(ntmm_process_create(env.e, &p), 0);
	uint64_t va = 0;
	assert_int_equal(ntmm_map_view(s, p, &va, 0, 0, NTMM_PAGE_READWRITE), 0);
	uint8_t buf[4096];
	for (size_t off = 0; off < bytes; off += sizeof(buf)) {
		size_t n = bytes - off < sizeof(buf) ? bytes - off : sizeof(buf);
		assert_int_equal(ntmm_read(p, va + off, buf, n), 0);
		for (size_t i = 0; i < n; i++)
			if (buf[i] != file_byte(3, off + i))
				fail_msg("byte %zu: %u, file has %u", off + i, buf[i],
				         file_byte(3, off + i));
	}
	/* the tail of the last page past the end of the file reads as zero */
	uint8_t tail[8];
	assert_int_equal(ntmm_read(p, va + bytes, tail, sizeof(tail)), 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(tail[i], 0);
	/* write every 3rd page, flush, check with pread */
	for (size_t pg = 0; pg * PG < bytes; pg += 3) {
		uint64_t v = 0xf11e0000 + pg;
		assert_int_equal(ntmm_write(p, va + pg * PG + 16, &v, sizeof(v)), 0);
	}
	assert_int_equal(ntmm_flush_view(p, va, 0), 0);
	for (size_t pg = 0; pg * PG < bytes; pg++) {
		uint64_t v = 0;
		assert_int_equal(pread(fd, &v, sizeof(v), (off_t)(pg * PG + 16)), sizeof(v));
		if (pg % 3 == 0)
			assert_int_equal(v, 0xf11e0000 + pg);
		else
			assert_int_not_equal(v, 0xf11e0000 + pg);
	}
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, (off_t)bytes); /* the flush kept the length */
	/* dirty again, trimmed: the page goes to the mapped Modified list and
	   the mapped page writer's batch writes it */
	uint64_t v = 0xabcdef;
	assert_int_equal(ntmm_write(p, va + 7 * PG, &v, sizeof(v)), 0);
	assert_int_equal(ntmm_ws_empty(p), 0);
	ntmm_stats_t stt;
	assert_int_equal(ntmm_stats_get(env.e, &stt), 0);
	assert_true(stt.modified_mapped_pages >= 1);
	assert_int_equal(ntmm_audit(env.e), 0);
	assert_true(ntmm__section_write_batch(env.e, 256) >= 1);
	uint64_t w = 0;
	assert_int_equal(pread(fd, &w, sizeof(w), 7 * PG), sizeof(w));
	assert_int_equal(w, 0xabcdef);
	/* unmap + close + a write before: nothing lost */
	v = 0x1234;
	assert_int_equal(ntmm_write(p, va + 9 * PG, &v, sizeof(v)), 0);
	assert_int_equal(ntmm_unmap_view(p, va), 0);
	assert_int_equal(ntmm_section_close(s), 0);
	assert_int_equal(pread(fd, &w, sizeof(w), 9 * PG), sizeof(w));
	assert_int_equal(w, 0x1234);
	assert_int_equal(ntmm_audit(env.e), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	close(fd);
}

static void a_file_larger_than_the_pool(void **state)
{
	const size_t bytes = 64ull << 20; /* 4 × the 16 MiB pool */
	int fd = tmpfile_of(bytes, 11);
	ntmm_section_t *s;
	assert_int_equal(ntmm_section_create(env.e, fd, 0, NTMM_PAGE_READWRITE, 0, &s), 0);
	ntmm_process_t *p;
	assert_int_equal(ntmm_process_create(env.e, &p), 0);
	uint64_t va = 0;
	assert_int_equal(ntmm_map_view(s, p, &va, 0, 0, NTMM_PAGE_READWRITE), 0);
	for (size_t pg = 0; pg < bytes / PG; pg++) {
		uint64_t v = 0;
		assert_int_equal(ntmm_read(p, va + pg * PG + 24, &v, sizeof(v)), 0);
		uint64_t want = 0;
		for (int i = 0; i < 8; i++)
			want |= (uint64_t)file_byte(11, pg * PG + 24 + i) << (8 * i);
		assert_int_equal(v, want);
		v = pg * 977;
		assert_int_equal(ntmm_write(p, va + pg * PG + 24, &v, sizeof(v)), 0);
	}
	assert_int_equal(ntmm_flush_view(p, va, 0), 0);
	for (size_t pg = 0; pg < bytes / PG; pg++) {
		uint64_t v = 0;
		assert_int_equal(pread(fd, &v, sizeof(v), (off_t)(pg * PG + 24)), sizeof(v));
		assert_int_equal(v, pg * 977);
	}
	assert_int_equal(ntmm_audit(env.e), 0);
	assert_int_equal(ntmm_unmap_view(p, va), 0);
	assert_int_equal(ntmm_section_close(s), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(ntmm_audit(env.e), 0);
	close(fd);
}

static void writecopy_views_copy_and_leave_the_file(void **state)
{
	const size_t bytes = 1 << 20;
	int fd = tmpfile_of(bytes, 5);
	ntmm_section_t *s;
	assert_int_equal(ntmm_section_create(env.e, fd, 0, NTMM_PAGE_READWRITE, 0, &s), 0);
	ntmm_process_t *p, *q;
	assert_int_equal(ntmm_process_create(env.e, &p), 0);
	assert_int_equal(ntmm_process_create(env.e, &q), 0);
	ntmm_process_info_t pi0, pi1;
	assert_int_equal(ntmm_process_info(p, &pi0), 0);
	uint64_t va = 0, vq = 0;
	assert_int_equal(ntmm_map_view(s, p, &va, 0, 0, NTMM_PAGE_WRITECOPY), 0);
	assert_int_equal(ntmm_map_view(s, q, &vq, 0, 0, NTMM_PAGE_READONLY), 0);
	assert_int_equal(ntmm_process_info(p, &pi1), 0);
	assert_int_equal(pi1.commit_pages - pi0.commit_pages, bytes / PG);
	uint8_t b = 0;
	assert_int_equal(ntmm_read(q, vq + 5 * PG, &b, 1), 0); /* resident, shared */
	assert_int_equal(ntmm_read(p, va + 5 * PG, &b, 1), 0);
	assert_int_equal(b, file_byte(5, 5 * PG));
	uint8_t x = (uint8_t)~b;
	assert_int_equal(ntmm_write(p, va + 5 * PG, &x, 1), 0);
	assert_int_equal(ntmm_last_fault_kind(), NTMM_FAULT_COPY_ON_WRITE);
	assert_int_equal(ntmm_read(p, va + 5 * PG, &b, 1), 0);
	assert_int_equal(b, x);
	assert_int_equal(ntmm_read(q, vq + 5 * PG, &b, 1), 0);
	assert_int_equal(b, file_byte(5, 5 * PG));
	/* the private copy pages to the paging file, never to the file */
	assert_int_equal(ntmm_ws_empty(p), 0);
	while (ntmm__paging_write_batch(env.e, NTMM__WRITE_BATCH, true, NULL, NULL))
		;
	ntmm__section_write_batch(env.e, 256);
	repurpose_all(env.e);
	assert_int_equal(ntmm_read(p, va + 5 * PG, &b, 1), 0);
	assert_int_equal(b, x);
	assert_int_equal(ntmm_flush_view(p, va, 0), 0);
	assert_int_equal(pread(fd, &b, 1, 5 * PG), 1);
	assert_int_equal(b, file_byte(5, 5 * PG));
	assert_int_equal(ntmm_write(q, vq, &x, 1), NTMM_EACCESS);
	assert_int_equal(ntmm_audit(env.e), 0);
	assert_int_equal(ntmm_unmap_view(p, va), 0);
	assert_int_equal(ntmm_process_info(p, &pi1), 0);
	assert_int_equal(pi1.commit_pages, pi0.commit_pages);
	assert_int_equal(ntmm_section_close(s), 0);
	assert_int_equal(ntmm_process_destroy(q), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(ntmm_audit(env.e), 0);
	close(fd);
}

static void sec_reserve_commits_in_a_view(void **state)
{
	ntmm_process_t *p;
	assert_int_equal(ntmm_process_create(env.e, &p), 0);
	ntmm_stats_t st0, st1;
	assert_int_equal(ntmm_stats_get(env.e, &st0), 0);
	ntmm_section_t *s;
	assert_int_equal(
	    ntmm_section_create(env.e, -1, 1 << 20, NTMM_PAGE_READWRITE, NTMM_SEC_RESERVE, &s), 0);
	assert_int_equal(ntmm_stats_get(env.e, &st1), 0);
	assert_int_equal(st1.commit_pages, st0.commit_pages);
	uint64_t va = 0;
	assert_int_equal(ntmm_map_view(s, p, &va, 0, 0, NTMM_PAGE_READWRITE), 0);
	uint8_t b = 1;
	assert_int_equal(ntmm_write(p, va, &b, 1), NTMM_EACCESS);
	uint64_t base = va + 4 * PG;
	assert_int_equal(ntmm_allocate(p, &base, 2 * PG, NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE), 0);
	assert_int_equal(ntmm_write(p, va + 4 * PG, &b, 1), 0);
	assert_int_equal(ntmm_write(p, va + 5 * PG, &b, 1), 0);
	assert_int_equal(ntmm_write(p, va + 6 * PG, &b, 1), NTMM_EACCESS);
	assert_int_equal(ntmm_audit(env.e), 0);
	assert_int_equal(ntmm_unmap_view(p, va), 0);
	assert_int_equal(ntmm_section_close(s), 0);
	assert_int_equal(ntmm_stats_get(env.e, &st1), 0);
	assert_int_equal(st1.commit_pages, st0.commit_pages);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(ntmm_audit(env.e), 0);
}

static void in_page_errors_lose_nothing(void **state)
{
	int fd = tmpfile_of(1 << 20, 9);
	ntmm_section_t *s;
	assert_int_equal(ntmm_section_create(env.e, fd, 0, NTMM_PAGE_READWRITE, 0, &s), 0);
	ntmm_process_t *p;
	assert_int_equal(ntmm_process_create(env.e, &p), 0);
	uint64_t va = 0;
	assert_int_equal(ntmm_map_view(s, p, &va, 0, 0, NTMM_PAGE_READWRITE), 0);
	assert_int_equal(ntmm__section_fail_io(s, 1, 0), 0);
	uint8_t b;
	assert_int_equal(ntmm_read(p, va, &b, 1), NTMM_EIO);
	assert_int_equal(ntmm_read(p, va, &b, 1), 0);
	assert_int_equal(b, file_byte(9, 0));
	b = 0x77;
	assert_int_equal(ntmm_write(p, va + PG, &b, 1), 0);
	assert_int_equal(ntmm__section_fail_io(s, 0, 1), 0);
	assert_int_equal(ntmm_flush_view(p, va, 0), NTMM_EIO);
	assert_int_equal(ntmm_flush_view(p, va, 0), 0);
	uint8_t f;
	assert_int_equal(pread(fd, &f, 1, PG), 1);
	assert_int_equal(f, 0x77);
	assert_int_equal(ntmm_audit(env.e), 0);
	assert_int_equal(ntmm_unmap_view(p, va), 0);
	assert_int_equal(ntmm_section_close(s), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(shared_memory_between_processes, setup, teardown),
	    cmocka_unit_test_setup_teardown(file_view_reads_and_writes_reach_the_file, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(a_file_larger_than_the_pool, setup, teardown),
	    cmocka_unit_test_setup_teardown(writecopy_views_copy_and_leave_the_file, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(sec_reserve_commits_in_a_view, setup, teardown),
	    cmocka_unit_test_setup_teardown(in_page_errors_lose_nothing, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
