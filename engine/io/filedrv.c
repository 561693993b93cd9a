/*
 * The file driver: a paging file's store is a regular file, created anew or
 * reused only when it is empty or an earlier engine's paging file (marked
 * with an extended attribute; anything else is refused, never truncated),
 * locked against a second engine (flock), extended with real allocated space
 * (posix_fallocate, so a full disk shows up as ENOSPC when the file grows,
 * not as a failed write later), cut with ftruncate, and deleted when the
 * paging file is removed. Page I/O goes through the engine's ring pool.
 */
#include "io/io.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/xattr.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct filestore {
	int fd;
	char *path; /* deleted on close */
} filestore_t;

/* The extended attribute that marks a file as one of our paging files: an
   existing file is reused (truncated) only if it is empty or carries it,
   so a mistyped path never destroys a user's data. */
#define PAGEFILE_XATTR "user.ntmm.pagefile"

/* Whether an existing, already locked file may be truncated and reused. */
static int reusable(int fd, const struct stat *st)
{
	if (st->st_size == 0)
		return 0;                                /* nothing in it to lose */
	if (fgetxattr(fd, PAGEFILE_XATTR, NULL, 0) >= 0) /* present, any value */
		return 0; /* a paging file an engine left behind (it crashed) */
	return errno == ENODATA || errno == ENOTSUP ? -EEXIST : -errno;
}

static int file_open(ntmm__bsdriver_t *d, ntmm__io_t *io, const char *path, void **store)
{
	filestore_t *fs = calloc(1, sizeof(*fs));
	if (!fs || !(fs->path = strdup(path))) {
		free(fs);
		return -ENOMEM;
	}
	bool created = true, locked = false;
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST) {
		created = false;
		fd = open(path, O_RDWR | O_CLOEXEC);
	}
	int err = 0;
	struct stat st;
	if (fd < 0)
		err = -errno;
	else if (fstat(fd, &st) < 0)
		err = -errno;
	else if (!S_ISREG(st.st_mode))
		err = -EINVAL; /* a device or fifo is no place for a paging file */
	else if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		err = errno == EWOULDBLOCK ? -EBUSY : -errno;
	else {
		locked = true;
		if (!created)
			err = reusable(fd, &st);
		if (!err && ftruncate(fd, 0) < 0)
			err = -errno;
	}
	if (!err) {
		/* the mark (best effort: a file system without user extended
		   attributes only loses the reuse of a file left behind) */
		(void)fsetxattr(fd, PAGEFILE_XATTR, "1", 1, 0);
		/* No access-time updates: a paging file's atime means nothing,
		   and every read would otherwise check it (touch_atime: about 1%
		   of a hard fault in a profile). Only the file's owner may set
		   the flag; a file someone else owns is still used without it. */
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0)
			(void)fcntl(fd, F_SETFL, fl | O_NOATIME);
	}
	if (err) {
		if (fd >= 0) {
			/* ours and empty: leave nothing behind. Not without the
			   lock: another engine may have opened our new file by
			   name, taken the lock first and be using it */
			if (created && locked)
				unlink(path);
			close(fd);
		}
		free(fs->path);
		free(fs);
		return err;
	}
	fs->fd = fd;
	*store = fs;
	return 0;
}

static void file_close(ntmm__bsdriver_t *d, void *store)
{
	filestore_t *fs = store;
	unlink(fs->path); /* while still locked: no other engine has it open */
	close(fs->fd);
	free(fs->path);
	free(fs);
}

static int file_rw(ntmm__bsdriver_t *d, void *store, ntmm__ioreq_t *reqs, unsigned n)
{
	filestore_t *fs = store;
	ntmm__io_t *io = d->arg;
	for (unsigned i = 0; i < n; i++)
		reqs[i].fd = fs->fd;
	return ntmm__ioring_submit(&io->rings, reqs, n) ? -EIO : 0;
}

static int file_flush(ntmm__bsdriver_t *d, void *store)
{
	filestore_t *fs = store;
	return fdatasync(fs->fd) < 0 ? -errno : 0;
}

static int file_grow(ntmm__bsdriver_t *d, void *store, uint64_t bytes)
{
	filestore_t *fs = store;
	int r = posix_fallocate(fs->fd, 0, (off_t)bytes);
	if (r) {
		/* a partial allocation may remain past the old size; it is never
		   used (the size is not published) and the next grow reuses it */
		return -r;
	}
	return 0;
}

static int file_shrink(ntmm__bsdriver_t *d, void *store, uint64_t bytes)
{
	filestore_t *fs = store;
	return ftruncate(fs->fd, (off_t)bytes) < 0 ? -errno : 0;
}

static int file_direct_fd(ntmm__bsdriver_t *d, void *store, bool write)
{
	filestore_t *fs = store;
	ntmm__io_t *io = d->arg;
	/* single requests go to the system call unless every request takes
	   the ring (the io_uring-only backend) */
	return ntmm__ioring_single_sync(&io->rings, write) ? fs->fd : -1;
}

const ntmm__bsdriver_ops_t ntmm__filedrv_ops = {
    .open = file_open,
    .close = file_close,
    .read = file_rw,
    .write = file_rw,
    .flush = file_flush,
    .grow = file_grow,
    .shrink = file_shrink,
    .direct_fd = file_direct_fd,
};
