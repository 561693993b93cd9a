/*
 * Helpers for the section tests (sections, views, copy-on-write, clone),
 * written against the public API of include/ntmm.h: an engine with a small
 * frame pool, an optional paging file and data files in a scratch
 * directory, byte patterns that name their file offset and a tag (so a
 * byte read from the wrong offset, the wrong version or the wrong file is
 * caught), and a public way to push pages out of memory: another
 * process's private pages beyond the pool, which the engine must make
 * room for by trimming, writing and repurposing.
 */
#ifndef NTMM_TEST_SECTION_TESTUTIL_H
#define NTMM_TEST_SECTION_TESTUTIL_H

#include "testutil.h"

#include <ntmm/stats.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine.h" /* ntmm__error: the sentinel detail of assert_refused */

#define KiB  (1024ull)
#define MiB  (1024ull * 1024)
#define PG   4096ull
#define GRAN 65536ull

typedef struct sec_env {
	ntmm_engine_t *e;
	char dir[512]; /* scratch directory: the paging file, data files */
} sec_env_t;

/* The configuration sec_env uses: pool_mib of frames; a paging file of
   pf_mib (initial = maximum, so the commit limit does not move) in dir,
   none if pf_mib is 0; the system threads if `threads`. */
static inline ntmm_config_t sec_config(const char *dir, size_t pool_mib, size_t pf_mib,
                                       bool threads, char *pf_path, size_t pf_path_len)
{
	ntmm_config_t c;
	ntmm_config_init(&c);
	c.physical_bytes = pool_mib * MiB;
	c.start_threads = threads;
	c.aslr_seed = 0;
	c.pagefile_path = NULL;
	if (pf_mib) {
		snprintf(pf_path, pf_path_len, "%s/pagefile.sys", dir);
		c.pagefile_path = pf_path;
		c.pagefile_initial = pf_mib * MiB;
		c.pagefile_maximum = pf_mib * MiB;
	}
	return c;
}

static inline void sec_mkdtemp(char *dir, size_t len)
{
	const char *base = getenv("NTMM_TEST_TMPDIR");
	snprintf(dir, len, "%s/ntmm-sec-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		abort();
	}
}

static inline sec_env_t sec_env(size_t pool_mib, size_t pf_mib, bool threads)
{
	sec_env_t v = {0};
	sec_mkdtemp(v.dir, sizeof(v.dir));
	char pf[600];
	ntmm_config_t c = sec_config(v.dir, pool_mib, pf_mib, threads, pf, sizeof(pf));
	assert_int_equal(ntmm_engine_create(&c, &v.e), 0);
	assert_int_equal(ntmm_thread_register(v.e), 0);
	return v;
}

static int sec_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

/* Destroys the engine (if still there) and removes the scratch directory. */
static inline void sec_env_free(sec_env_t *v)
{
	if (v->e) {
		ntmm_thread_unregister(v->e);
		ntmm_engine_destroy(v->e);
		v->e = NULL;
	}
	nftw(v->dir, sec_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Audits, then as sec_env_free. */
static inline void sec_env_done(sec_env_t *v)
{
	assert_int_equal(ntmm_audit(v->e), 0);
	sec_env_free(v);
}

static inline ntmm_process_t *sec_process(ntmm_engine_t *e)
{
	ntmm_process_t *p = NULL;
	assert_int_equal(ntmm_process_create(e, &p), 0);
	assert_non_null(p);
	return p;
}

static inline uint64_t sec_stat(ntmm_engine_t *e, size_t offset)
{
	ntmm_stats_t st;
	assert_int_equal(ntmm_stats_get(e, &st), 0);
	return *(uint64_t *)((char *)&st + offset);
}
#define SEC_STAT(e, field) sec_stat((e), offsetof(ntmm_stats_t, field))

static inline ntmm_process_info_t sec_info(ntmm_process_t *p)
{
	ntmm_process_info_t in;
	assert_int_equal(ntmm_process_info(p, &in), 0);
	return in;
}

/* ------------------------------------------------------------- patterns */

/* The 8 bytes at file offsets [8 * word, 8 * word + 8) of pattern `tag`. */
static inline uint64_t sec_word(uint64_t tag, uint64_t word)
{
	uint64_t x = (tag + 1) * 0x9e3779b97f4a7c15ull ^ (word * 0xbf58476d1ce4e5b9ull);
	x ^= x >> 31;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 29);
}

static inline uint8_t sec_byte(uint64_t tag, uint64_t off)
{
	return (uint8_t)(sec_word(tag, off >> 3) >> ((off & 7) * 8));
}

/* buf = pattern `tag` at file offsets [off, off + len). */
static inline void sec_fill(void *buf, uint64_t off, size_t len, uint64_t tag)
{
	uint8_t *b = buf;
	size_t i = 0;
	for (; i < len && ((off + i) & 7); i++)
		b[i] = sec_byte(tag, off + i);
	for (; i + 8 <= len; i += 8) {
		uint64_t w = sec_word(tag, (off + i) >> 3);
		memcpy(b + i, &w, 8);
	}
	for (; i < len; i++)
		b[i] = sec_byte(tag, off + i);
}

/* Index of the first byte of buf that is not pattern `tag` at [off, off +
   len), or -1 if all are. */
static inline long sec_diff(const void *buf, uint64_t off, size_t len, uint64_t tag)
{
	const uint8_t *b = buf;
	for (size_t i = 0; i < len; i++)
		if (b[i] != sec_byte(tag, off + i))
			return (long)i;
	return -1;
}

static inline bool sec_all_zero(const void *buf, size_t len)
{
	const uint8_t *b = buf;
	for (size_t i = 0; i < len; i++)
		if (b[i])
			return false;
	return true;
}

/* ------------------------------------------------------------ data files */

/* Creates (truncating) dir/name of `bytes` bytes holding pattern `tag`;
   returns a descriptor opened O_RDWR on it. */
static inline int sec_file(const sec_env_t *v, const char *name, uint64_t bytes, uint64_t tag)
{
	char path[700];
	snprintf(path, sizeof(path), "%s/%s", v->dir, name);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	const size_t cap = 256 * 1024;
	char *buf = malloc(cap);
	for (uint64_t off = 0; off < bytes;) {
		size_t n = bytes - off < cap ? (size_t)(bytes - off) : cap;
		sec_fill(buf, off, n, tag);
		assert_int_equal(pwrite(fd, buf, n, (off_t)off), (ssize_t)n);
		off += n;
	}
	free(buf);
	return fd;
}

/* Opens dir/name again with `flags`. */
static inline int sec_reopen(const sec_env_t *v, const char *name, int flags)
{
	char path[700];
	snprintf(path, sizeof(path), "%s/%s", v->dir, name);
	int fd = open(path, flags);
	assert_true(fd >= 0);
	return fd;
}

static inline uint64_t sec_fsize(int fd)
{
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	return (uint64_t)st.st_size;
}

/* Whether the file's bytes [off, off + len) are pattern `tag` (pread). */
static inline bool sec_file_is(int fd, uint64_t off, uint64_t len, uint64_t tag)
{
	const size_t cap = 256 * 1024;
	char *buf = malloc(cap);
	bool same = true;
	while (same && len) {
		size_t n = len < cap ? (size_t)len : cap;
		long d = -1;
		if (pread(fd, buf, n, (off_t)off) != (ssize_t)n) {
			fprintf(stderr, "pread at %llu: short or failed\n",
			        (unsigned long long)off);
			same = false;
		} else if ((d = sec_diff(buf, off, n, tag)) >= 0) {
			fprintf(stderr, "file byte %llu is not pattern %llu\n",
			        (unsigned long long)(off + (uint64_t)d), (unsigned long long)tag);
			same = false;
		}
		off += n, len -= n;
	}
	free(buf);
	return same;
}

/* ------------------------------------------------------- views, accesses */

static inline ntmm_section_t *sec_create(ntmm_engine_t *e, int fd, uint64_t size, unsigned prot,
                                         unsigned flags)
{
	ntmm_section_t *s = NULL;
	int r = ntmm_section_create(e, fd, size, prot, flags, &s);
	if (r)
		fail_msg("ntmm_section_create: %s (%s)", ntmm_strerror(r), ntmm_error_detail());
	assert_non_null(s);
	return s;
}

/* Maps [offset, offset + size) of s into p at an engine-chosen base. */
static inline uint64_t sec_map(ntmm_section_t *s, ntmm_process_t *p, uint64_t offset, size_t size,
                               unsigned prot)
{
	uint64_t base = 0;
	int r = ntmm_map_view(s, p, &base, offset, size, prot);
	if (r)
		fail_msg("ntmm_map_view: %s (%s)", ntmm_strerror(r), ntmm_error_detail());
	assert_true(base != 0 && base % GRAN == 0);
	return base;
}

/* Writes pattern `tag` for offsets [off, off + len) at va in p, 64 KiB at
   a time; 0 or the first error. */
static inline int sec_write(ntmm_process_t *p, uint64_t va, uint64_t off, uint64_t len,
                            uint64_t tag)
{
	const size_t cap = 64 * 1024;
	char *buf = malloc(cap);
	int r = 0;
	while (!r && len) {
		size_t n = len < cap ? (size_t)len : cap;
		sec_fill(buf, off, n, tag);
		r = ntmm_write(p, va, buf, n);
		va += n, off += n, len -= n;
	}
	free(buf);
	return r;
}

/* 0 if the bytes at va in p are pattern `tag` for offsets [off, off +
   len); the first access error; or 1 for a wrong byte (printed). */
static inline int sec_check(ntmm_process_t *p, uint64_t va, uint64_t off, uint64_t len,
                            uint64_t tag)
{
	const size_t cap = 64 * 1024;
	char *buf = malloc(cap);
	int r = 0;
	while (!r && len) {
		size_t n = len < cap ? (size_t)len : cap;
		long d = -1;
		r = ntmm_read(p, va, buf, n);
		if (!r && (d = sec_diff(buf, off, n, tag)) >= 0) {
			fprintf(stderr, "byte at %#llx (offset %llu) is not pattern %llu\n",
			        (unsigned long long)(va + (uint64_t)d),
			        (unsigned long long)(off + (uint64_t)d), (unsigned long long)tag);
			r = 1;
		}
		va += n, off += n, len -= n;
	}
	free(buf);
	return r;
}

static inline ntmm_region_info_t sec_query(ntmm_process_t *p, uint64_t va)
{
	ntmm_region_info_t i;
	assert_int_equal(ntmm_query(p, va, &i), 0);
	return i;
}

/* Pushes pages out of memory through the public API: a process of its
   own commits `pages` private pages (the pool's frames and more), writes
   one word in each and is destroyed. The engine makes room for them by
   trimming working sets and writing and repurposing their pages. */
static inline void sec_push_out(ntmm_engine_t *e, size_t pages)
{
	ntmm_process_t *q = sec_process(e);
	uint64_t a = 0;
	assert_int_equal(ntmm_allocate(q, &a, pages * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT,
	                               NTMM_PAGE_READWRITE),
	                 0);
	for (size_t i = 0; i < pages; i++) {
		uint64_t w = i + 1;
		assert_int_equal(ntmm_write(q, a + i * PG, &w, sizeof(w)), 0);
	}
	assert_int_equal(ntmm_process_destroy(q), 0);
}

/* r == code, and the call wrote an error detail of its own: the detail is
   set to a sentinel before the call (as test_error_detail does) and must
   be neither empty nor the sentinel after it. */
#define SEC_SENTINEL "sentinel: detail of an earlier call"
#define assert_refused(call, code)                                                     \
	do {                                                                           \
		ntmm__error(0, SEC_SENTINEL);                                          \
		int r_ = (call);                                                       \
		if (r_ != (code))                                                      \
			fail_msg("%s: %s (%s), expected %s", #call, ntmm_strerror(r_), \
			         ntmm_error_detail(), ntmm_strerror(code));            \
		assert_true(ntmm_error_detail()[0] != '\0');                           \
		if (!strcmp(ntmm_error_detail(), SEC_SENTINEL))                        \
			fail_msg("%s: %s without a detail of its own", #call,          \
			         ntmm_strerror(code));                                 \
	} while (0)

#endif
