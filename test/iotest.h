/*
 * Helpers for the io-layer tests: a scratch directory per test program,
 * page-sized buffers, and page patterns that name their owner so a page
 * read back from the wrong slot (or a torn page) is caught.
 */
#ifndef NTMM_TEST_IOTEST_H
#define NTMM_TEST_IOTEST_H

#include "testutil.h"

#include <ftw.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io.h"
#include "sync/rcu.h"

#define PAGE 4096u

/* A fresh directory under NTMM_TEST_TMPDIR (or /tmp); removed by io_rmtree. */
static inline char *io_tmpdir(void)
{
	const char *base = getenv("NTMM_TEST_TMPDIR");
	char *p = malloc(512);
	snprintf(p, 512, "%s/ntmm-io-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(p)) {
		perror("mkdtemp");
		abort();
	}
	return p;
}

static int io_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}
static inline void io_rmtree(char *dir)
{
	nftw(dir, io_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

static inline char *io_path(const char *dir, const char *name)
{
	char *p = malloc(600);
	snprintf(p, 600, "%s/%s", dir, name);
	return p;
}

static inline void *page_alloc(size_t n)
{
	void *p = aligned_alloc(PAGE, n * PAGE);
	memset(p, 0, n * PAGE);
	return p;
}

/* Fills a page with a pattern derived from (tag, version). */
static inline void page_fill(void *page, uint64_t tag, uint64_t version)
{
	uint64_t *w = page;
	uint64_t s = tag * 0x9e3779b97f4a7c15ULL + version + 1;
	for (unsigned i = 0; i < PAGE / 8; i++)
		w[i] = test_rand(&s) ^ tag;
}
static inline bool page_check(const void *page, uint64_t tag, uint64_t version)
{
	const uint64_t *w = page;
	uint64_t s = tag * 0x9e3779b97f4a7c15ULL + version + 1;
	for (unsigned i = 0; i < PAGE / 8; i++)
		if (w[i] != (test_rand(&s) ^ tag))
			return false;
	return true;
}

static inline off_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : -1;
}

#endif
