/*
 * Helpers for the io-layer tests: a scratch directory per test program,
 * page-sized buffers, and page patterns that name their owner so a page
 * read back from the wrong slot (or a torn page) is caught.
 */
#ifndef NTMM_TEST_IOTEST_H
#define NTMM_TEST_IOTEST_H

#include "testutil.h"

#include <dirent.h>
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

/* This process's descriptor on the file (dev, ino), or -1. Borrowed: do
   not close it. */
static inline int io_fd_on(uint64_t dev, uint64_t ino)
{
	DIR *d = opendir("/proc/self/fd");
	int found = -1;
	for (struct dirent *de; d && found < 0 && (de = readdir(d));) {
		int fd = atoi(de->d_name);
		struct stat st;
		if (de->d_name[0] != '.' && fd != dirfd(d) && fstat(fd, &st) == 0 &&
		    (uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino)
			found = fd;
	}
	if (d)
		closedir(d);
	return found;
}

/* The io layer's descriptor of paging file idx (found by the store's
   device and inode: the file has no name to look it up by), or -1. */
static inline int pf_fd(ntmm__io_t *io, unsigned idx)
{
	ntmm__pagefile_t *pf = atomic_load(&io->files[idx]);
	return pf && pf->has_id ? io_fd_on(pf->dev, pf->ino) : -1;
}

/* The size of paging file idx's store, or -1. */
static inline off_t pf_size(ntmm__io_t *io, unsigned idx)
{
	struct stat st;
	int fd = pf_fd(io, idx);
	return fd >= 0 && fstat(fd, &st) == 0 ? st.st_size : -1;
}

/* Names in dir other than . and .. (-1 if it cannot be read). */
static inline int dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	for (struct dirent *de; (de = readdir(d));)
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

#endif
