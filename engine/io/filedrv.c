/*
 * The file driver: a paging file's store is a regular file with no name.
 * It is created unnamed in the paging file's directory (O_TMPFILE), or,
 * where the file system cannot do that, created at the paging file's name,
 * locked (flock) and unlinked at once; either way nothing on disk names it
 * while the engine runs, so neither a removal nor a crash (kill -9) leaves
 * a file behind, and closing it is all the cleanup there is. A file found
 * at the name is taken over only when nothing in it can be lost: an empty
 * file, or one an engine left behind (marked with an extended attribute,
 * or the fallback's empty file) — locked, unlinked and truncated; one that
 * another engine holds locked is refused (EBUSY), and anything else is
 * refused (EEXIST) and left exactly as it was. Every name lookup and the
 * unlink are relative to a descriptor of the directory, and a name is
 * unlinked only while it still names the file we hold (same device and
 * inode). The store is extended with real allocated space (posix_fallocate,
 * so a full disk shows up as ENOSPC when the file grows, not as a failed
 * write later) and cut with ftruncate. Page I/O goes through the engine's
 * ring pool.
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
#include <time.h>
#include <unistd.h>

typedef struct filestore {
	int fd;    /* the unnamed file; holds its flock until closed */
	dev_t dev; /* its identity (fstat at open) */
	ino_t ino;
} filestore_t;

/* The extended attribute that marks a file as a paging file an engine left
   behind (engines that kept their paging file's name set it): a non-empty
   file found at the name is taken over only if it carries it, so a
   mistyped path never destroys a user's data. */
#define PAGEFILE_XATTR "user.ntmm.pagefile"

/* How often open looks at the name again when what it found there changed
   under it or was locked (another engine between its create and its
   unlink), waiting LOCKED_WAIT_NS after each locked find, before it
   reports EBUSY. */
#define OPEN_TRIES     20u
#define LOCKED_WAIT_NS 1000000L

/* Whether an existing file may be taken over (and truncated). */
static int reusable(int fd, const struct stat *st)
{
	if (st->st_size == 0)
		return 0;                                /* nothing in it to lose */
	if (fgetxattr(fd, PAGEFILE_XATTR, NULL, 0) >= 0) /* present, any value */
		return 0; /* a paging file an engine left behind (it crashed) */
	return errno == ENODATA || errno == ENOTSUP ? -EEXIST : -errno;
}

/* Unlinks name in dirfd if it still names the file st describes (the
   file we hold locked). -ESTALE when it names another file or nothing.
   Between the check and the unlink only someone renaming another file onto
   the name (not an engine: they take the lock first) could slip in. */
static int unlink_ours(int dirfd, const char *name, const struct stat *st)
{
	struct stat now;
	if (fstatat(dirfd, name, &now, AT_SYMLINK_NOFOLLOW) < 0 || now.st_dev != st->st_dev ||
	    now.st_ino != st->st_ino)
		return -ESTALE;
	return unlinkat(dirfd, name, 0) < 0 ? -errno : 0;
}

/* Takes over the existing file fd found at name: 0 (it is ours, locked
   and no longer named there), -EAGAIN (it changed under us: look again),
   -EBUSY (locked by another engine), -EEXIST (somebody's data), -EINVAL
   (not a regular file) or the system's error. */
static int take_existing(int dirfd, const char *name, int fd, struct stat *st)
{
	if (fstat(fd, st) < 0)
		return -errno;
	if (!S_ISREG(st->st_mode))
		return -EINVAL; /* a device or fifo is no place for a paging file */
	int r = reusable(fd, st);
	if (r)
		return r;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	/* locked: look again, nobody else can change it now */
	if (fstat(fd, st) < 0)
		return -errno;
	if ((r = reusable(fd, st)))
		return r;
	r = unlink_ours(dirfd, name, st);
	return r == -ESTALE ? -EAGAIN : r;
}

/* Creates the store in dirfd with no name at all (O_EXCL: it can never
   be given one). -EOPNOTSUPP when the file system (or the kernel) cannot. */
static int create_tmpfile(int dirfd, struct stat *st)
{
	int fd = openat(dirfd, ".", O_TMPFILE | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL ? -EOPNOTSUPP
		                                                                 : -errno;
	/* the lock keeps a second engine out should the file ever be reached
	   (through /proc/PID/fd) */
	if (fstat(fd, st) < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* Creates the store in dirfd where a file system has no O_TMPFILE: at
   name, locked, then unlinked. -EAGAIN when the name was taken meanwhile. */
static int create_named(int dirfd, const char *name, struct stat *st)
{
	int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return errno == EEXIST ? -EAGAIN : -errno;
	int r = fstat(fd, st) < 0 ? -errno : 0;
	if (!r && flock(fd, LOCK_EX | LOCK_NB) < 0) {
		/* another engine opened our new, empty file by name and locked
		   it first: it is taking it over (and unlinks it); not ours */
		r = errno == EWOULDBLOCK ? -EAGAIN : -errno;
		close(fd);
		return r;
	}
	if (!r) {
		r = unlink_ours(dirfd, name, st);
		if (r == -ESTALE)
			r = 0; /* someone removed or replaced the name: ours has none */
	}
	if (r) {
		close(fd);
		return r;
	}
	return fd;
}

/* Opens (creates or takes over) the unnamed, locked store for name in
   dirfd; the descriptor, or a negative errno. */
static int open_unnamed(ntmm__io_t *io, int dirfd, const char *name, struct stat *st)
{
	bool busy = false;
	for (unsigned tries = 0; tries < OPEN_TRIES; tries++) {
		int fd = openat(dirfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0) {
			int r = take_existing(dirfd, name, fd, st);
			if (r) {
				close(fd);
				if (r == -EBUSY) {
					busy = true;
					struct timespec ts = {0, LOCKED_WAIT_NS};
					nanosleep(&ts, NULL);
				}
				if (r == -EBUSY || r == -EAGAIN)
					continue;
				return r;
			}
		} else if (errno != ENOENT) {
			return -errno;
		} else {
			fd = io->filedrv_named ? -EOPNOTSUPP : create_tmpfile(dirfd, st);
			if (fd == -EOPNOTSUPP)
				fd = create_named(dirfd, name, st);
			if (fd == -EAGAIN)
				continue;
			if (fd < 0)
				return fd;
		}
		/* a second name (a hard link elsewhere) would outlive us: leave
		   that file to its other names and look again */
		struct stat now;
		if (fstat(fd, &now) == 0 && now.st_nlink == 0) {
			*st = now;
			return fd;
		}
		close(fd);
	}
	return busy ? -EBUSY : -EAGAIN;
}

/* path: absolute (the io layer resolved it). */
static int file_open(ntmm__bsdriver_t *d, ntmm__io_t *io, const char *path, void **store)
{
	const char *slash = strrchr(path, '/');
	if (!slash || !slash[1])
		return -EINVAL;
	char *dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
	filestore_t *fs = calloc(1, sizeof(*fs));
	if (!dir || !fs) {
		free(dir);
		free(fs);
		return -ENOMEM;
	}
	int dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	struct stat st;
	int fd = dirfd < 0 ? -errno : open_unnamed(io, dirfd, slash + 1, &st);
	if (dirfd >= 0)
		close(dirfd);
	if (fd < 0) {
		free(fs);
		return fd;
	}
	/* what an engine left behind is of no use; ours starts empty */
	if (st.st_size && ftruncate(fd, 0) < 0) {
		int r = -errno;
		close(fd);
		free(fs);
		return r;
	}
	/* No access-time updates: a paging file's atime means nothing, and
	   every read would otherwise check it (touch_atime: about 1% of a hard
	   fault in a profile). Only the file's owner may set the flag; a file
	   someone else owns is still used without it. */
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		(void)fcntl(fd, F_SETFL, fl | O_NOATIME);
	fs->fd = fd;
	fs->dev = st.st_dev;
	fs->ino = st.st_ino;
	*store = fs;
	return 0;
}

static void file_close(ntmm__bsdriver_t *d, void *store)
{
	filestore_t *fs = store;
	close(fs->fd); /* the file has no name: this frees its space */
	free(fs);
}

static int file_identify(ntmm__bsdriver_t *d, void *store, uint64_t *dev, uint64_t *ino)
{
	filestore_t *fs = store;
	*dev = (uint64_t)fs->dev;
	*ino = (uint64_t)fs->ino;
	return 0;
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
    .identify = file_identify,
};
