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

static uint64_t pat(unsigned who, uint64_t pg)
{
	return ((uint64_t)who << 48) ^ (pg * 0x9e3779b97f4a7c15ull);
}

static void check_all(ntmm_process_t *p, uint64_t base, size_t n, unsigned who)
{
	for (uint64_t pg = 0; pg < n; pg++) {
		uint64_t v = 0;
		assert_int_equal(ntmm_read(p, base + pg * PG + 40, &v, 8), 0);
		if (v != pat(who, pg))
			fail_msg("page %llu: %#llx, want %#llx (writer %u)", (unsigned long long)pg,
			         (unsigned long long)v, (unsigned long long)pat(who, pg), who);
	}
}

/* parent_first: which side is destroyed first */
static void clone_copy_on_write_both_ways(bool parent_first)
{
	const size_t n = 512;
	ntmm_process_t *p;
	assert_int_equal(ntmm_process_create(env.e, &p), 0);
	uint64_t base = 0;
	assert_int_equal(ntmm_allocate(p, &base, n * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT,
	                               NTMM_PAGE_READWRITE),
	                 0);
	for (uint64_t pg = 0; pg < n; pg++) {
		uint64_t v = pat(1, pg);
		assert_int_equal(ntmm_write(p, base + pg * PG + 40, &v, 8), 0);
	}
	/* some pages out of the working set first: Standby, Modified and
	   paging-file pages are cloned too */
	assert_int_equal(ntmm_ws_empty(p), 0);
	ntmm__paging_write_batch(env.e, 64, true, NULL, NULL);
	for (uint64_t pg = 0; pg < n; pg += 2) {
		uint64_t v;
		assert_int_equal(ntmm_read(p, base + pg * PG + 40, &v, 8), 0);
	}
	ntmm_process_info_t pi;
	assert_int_equal(ntmm_process_info(p, &pi), 0);
	ntmm_process_t *c;
	assert_int_equal(ntmm_process_clone(p, &c), 0);
	ntmm_process_info_t ci;
	assert_int_equal(ntmm_process_info(c, &ci), 0);
	assert_int_equal(ci.commit_pages, pi.commit_pages);
	assert_int_equal(ntmm_audit(env.e), 0);
	check_all(c, base, n, 1);
	check_all(p, base, n, 1);
	/* the parent writes the first half: the child keeps the old data */
	for (uint64_t pg = 0; pg < n / 2; pg++) {
		uint64_t v = pat(2, pg);
		assert_int_equal(ntmm_write(p, base + pg * PG + 40, &v, 8), 0);
		if (pg == 0)
			assert_int_equal(ntmm_last_fault_kind(), NTMM_FAULT_COPY_ON_WRITE);
	}
	/* the child writes the second half: the parent keeps its data */
	for (uint64_t pg = n / 2; pg < n; pg++) {
		uint64_t v = pat(3, pg);
		assert_int_equal(ntmm_write(c, base + pg * PG + 40, &v, 8), 0);
	}
	assert_int_equal(ntmm_audit(env.e), 0);
	for (uint64_t pg = 0; pg < n; pg++) {
		uint64_t vp = 0, vc = 0;
		assert_int_equal(ntmm_read(p, base + pg * PG + 40, &vp, 8), 0);
		assert_int_equal(ntmm_read(c, base + pg * PG + 40, &vc, 8), 0);
		assert_int_equal(vp, pg < n / 2 ? pat(2, pg) : pat(1, pg));
		assert_int_equal(vc, pg < n / 2 ? pat(1, pg) : pat(3, pg));
	}
	/* everything out of memory and back */
	assert_int_equal(ntmm_ws_empty(p), 0);
	assert_int_equal(ntmm_ws_empty(c), 0);
	while (ntmm__paging_write_batch(env.e, NTMM__WRITE_BATCH, true, NULL, NULL))
		;
	repurpose_all(env.e);
	assert_int_equal(ntmm_audit(env.e), 0);
	ntmm_process_t *first = parent_first ? p : c, *second = parent_first ? c : p;
	assert_int_equal(ntmm_process_destroy(first), 0);
	assert_int_equal(ntmm_audit(env.e), 0);
	for (uint64_t pg = 0; pg < n; pg++) {
		uint64_t v = 0;
		assert_int_equal(ntmm_read(second, base + pg * PG + 40, &v, 8), 0);
		uint64_t want = parent_first ? (pg < n / 2 ? pat(1, pg) : pat(3, pg))
		                             : (pg < n / 2 ? pat(2, pg) : pat(1, pg));
		assert_int_equal(v, want);
	}
	/* the survivor writes what it shared: its own copy now */
	uint64_t v = 77;
	assert_int_equal(ntmm_write(second, base + (parent_first ? 0 : n - 1) * PG + 40, &v, 8), 0);
	assert_int_equal(ntmm_audit(env.e), 0);
	assert_int_equal(ntmm_process_destroy(second), 0);
	assert_int_equal(ntmm_audit(env.e), 0);
}

static void clone_then_destroy_the_parent_first(void **state)
{
	clone_copy_on_write_both_ways(true);
}

static void clone_then_destroy_the_child_first(void **state)
{
	clone_copy_on_write_both_ways(false);
}

static void clone_maps_views_again(void **state)
{
	ntmm_section_t *s;
	assert_int_equal(ntmm_section_create(env.e, -1, 1 << 20, NTMM_PAGE_READWRITE, 0, &s), 0);
	ntmm_process_t *p, *c;
	assert_int_equal(ntmm_process_create(env.e, &p), 0);
	uint64_t va = 0;
	assert_int_equal(ntmm_map_view(s, p, &va, 0, 0, NTMM_PAGE_READWRITE), 0);
	uint64_t v = 42;
	assert_int_equal(ntmm_write(p, va + 3 * PG, &v, 8), 0);
	assert_int_equal(ntmm_process_clone(p, &c), 0);
	assert_int_equal(ntmm_section_close(s), 0);
	v = 0;
	assert_int_equal(ntmm_read(c, va + 3 * PG, &v, 8), 0);
	assert_int_equal(v, 42);
	v = 43; /* shared: the parent sees the child's write */
	assert_int_equal(ntmm_write(c, va + 3 * PG, &v, 8), 0);
	assert_int_equal(ntmm_read(p, va + 3 * PG, &v, 8), 0);
	assert_int_equal(v, 43);
	ntmm_region_info_t ri;
	assert_int_equal(ntmm_query(c, va, &ri), 0);
	assert_int_equal(ri.type, NTMM_MEM_MAPPED);
	assert_int_equal(ntmm_audit(env.e), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(ntmm_read(c, va + 3 * PG, &v, 8), 0);
	assert_int_equal(v, 43);
	assert_int_equal(ntmm_process_destroy(c), 0);
	assert_int_equal(ntmm_audit(env.e), 0);
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
	    cmocka_unit_test_setup_teardown(clone_then_destroy_the_parent_first, setup, teardown),
	    cmocka_unit_test_setup_teardown(clone_then_destroy_the_child_first, setup, teardown),
	    cmocka_unit_test_setup_teardown(clone_maps_views_again, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
