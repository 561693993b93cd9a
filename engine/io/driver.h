/*
 * Backing-store drivers — ntmm's "list of loaded drivers" (NTMM-REFERENCE.md
 * §7). A paging file is opened through a driver, and every read, write,
 * flush, growth and shrink of its store goes through the driver's ops. The
 * file driver (filedrv.c) keeps a store in a real file and moves pages with
 * the io ring pool; the fault-injecting driver (faultdrv.c) wraps another
 * driver and makes chosen operations fail, for tests.
 *
 * Registry: io->drivers is a singly linked list. Readers walk it inside an
 * RCU read-side section (acquire loads of the links); writers (register,
 * unregister) hold io->lock, publish with release stores, and unregister
 * waits a grace period before it returns, so the caller may then free the
 * driver. A driver with open stores (users > 0) cannot be unregistered.
 *
 * Conventions: ops return 0 or a negative errno (the file system's own
 * answer, so callers can tell ENOSPC from EIO); read/write fill each
 * request's res and return 0 only if all requests moved all their bytes.
 * The io layer turns errno values into NTMM_EIO with ntmm__error detail.
 * A failed or short write may have changed the slots it was writing, and
 * nothing else: data in other slots is never touched.
 */
#ifndef NTMM_IO_DRIVER_H
#define NTMM_IO_DRIVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "io/ioring.h"

typedef struct ntmm__io ntmm__io_t;
typedef struct ntmm__bsdriver ntmm__bsdriver_t;

typedef struct ntmm__bsdriver_ops {
	/* Creates the store for path (absolute: the io layer resolved it
	   once, at add), empty; *store is the driver's handle. -EBUSY: the
	   store is in use by another engine; -EEXIST: something that is not a
	   paging file is there (left as it was). The file driver keeps no
	   name on disk for it (filedrv.c). */
	int (*open)(ntmm__bsdriver_t *d, ntmm__io_t *io, const char *path, void **store);
	/* Closes the store and frees its space (paging files are scratch
	   space; nothing of them outlives close). */
	void (*close)(ntmm__bsdriver_t *d, void *store);
	/* Batches of requests; the driver sets each request's fd. */
	int (*read)(ntmm__bsdriver_t *d, void *store, ntmm__ioreq_t *reqs, unsigned n);
	int (*write)(ntmm__bsdriver_t *d, void *store, ntmm__ioreq_t *reqs, unsigned n);
	/* Makes every completed write durable. */
	int (*flush)(ntmm__bsdriver_t *d, void *store);
	/* Makes the store `bytes` long with the space really allocated
	   (-ENOSPC when the disk is full); bytes > current size. */
	int (*grow)(ntmm__bsdriver_t *d, void *store, uint64_t bytes);
	/* Cuts the store to `bytes`; bytes < current size. */
	int (*shrink)(ntmm__bsdriver_t *d, void *store, uint64_t bytes);
	/* Optional: a file descriptor the io layer may move one page with by
	   itself (pread/pwrite) when a request for one page would only have
	   been passed down to those calls anyway; -1 or NULL: always go
	   through read/write (a driver that changes the data or the errors,
	   like the fault-injecting one, leaves it NULL). */
	int (*direct_fd)(ntmm__bsdriver_t *d, void *store, bool write);
	/* Optional: the store's file identity (device and inode), so a path
	   that names the same file is recognized; NULL or a negative errno:
	   the store is known by its path only. */
	int (*identify)(ntmm__bsdriver_t *d, void *store, uint64_t *dev, uint64_t *ino);
} ntmm__bsdriver_ops_t;

/*
 * A registered driver. name, ops and arg are fixed once registered; next is
 * the registry link (RCU, see above); users counts open stores (relaxed:
 * only unregister reads it, under io->lock, after the stores that matter
 * have been opened or closed under the same lock).
 */
struct ntmm__bsdriver {
	const char *name;
	const ntmm__bsdriver_ops_t *ops;
	void *arg; /* the driver's own data */
	_Atomic unsigned users;
	_Atomic(ntmm__bsdriver_t *) next;
};

/* Registry. Errors: NTMM_EINVAL (no name/ops), NTMM_EBUSY (name taken). */
int ntmm__io_driver_register(ntmm__io_t *io, ntmm__bsdriver_t *d);
/* Errors: NTMM_EINVAL (not registered), NTMM_EBUSY (stores still open).
   Waits for a grace period: afterwards d may be freed. */
int ntmm__io_driver_unregister(ntmm__io_t *io, ntmm__bsdriver_t *d);
/* Call inside an RCU read-side section, or hold io->lock. */
ntmm__bsdriver_t *ntmm__io_driver_find(ntmm__io_t *io, const char *name);

/* The file driver: one per io (io->file_driver), registered as "file". */
extern const ntmm__bsdriver_ops_t ntmm__filedrv_ops;

/*
 * The fault-injecting driver: wraps `lower` and, per its settings, fails or
 * shortens operations. Counting is per operation kind over the driver's
 * life: the first read request is read #1. Settings may change at any time
 * (relaxed atomics: a change applies to requests that start after it is
 * seen). A failed request does no I/O at all; a short one moves only the
 * first half of its bytes (at least one byte short).
 */
typedef struct ntmm__faultdrv {
	ntmm__bsdriver_t drv; /* register this */
	ntmm__bsdriver_t *lower;
	_Atomic uint64_t reads, writes;                 /* requests seen so far */
	_Atomic uint64_t fail_read_at, fail_write_at;   /* request number to fail; 0 = none */
	_Atomic uint64_t short_read_at, short_write_at; /* request number to shorten */
	_Atomic uint32_t fail_read_ppm, fail_write_ppm; /* random failures, per million */
	_Atomic int error;                              /* errno for failures (default EIO) */
	_Atomic bool grow_enospc;                       /* grow fails with ENOSPC */
	_Atomic uint64_t seed;                          /* for the random failures */
	_Atomic uint64_t injected;                      /* failures and short I/Os injected */
} ntmm__faultdrv_t;

/* Initializes f as a driver called `name` over `lower`, injecting nothing. */
void ntmm__faultdrv_init(ntmm__faultdrv_t *f, const char *name, ntmm__bsdriver_t *lower);
/* Arranges for the k-th read/write request from now (k >= 1) to fail. */
void ntmm__faultdrv_fail_read_in(ntmm__faultdrv_t *f, uint64_t k);
void ntmm__faultdrv_fail_write_in(ntmm__faultdrv_t *f, uint64_t k);
void ntmm__faultdrv_short_read_in(ntmm__faultdrv_t *f, uint64_t k);
void ntmm__faultdrv_short_write_in(ntmm__faultdrv_t *f, uint64_t k);

#endif
