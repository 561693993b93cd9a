/*
 * Batched page I/O: many requests (each a vector of host buffers at one file
 * offset — a cluster of pages) in one submission, with a result per request.
 *
 * Backends: io_uring (liburing) when io_uring_queue_init works and is not
 * disabled by configuration, else preadv/pwritev one request at a time. The
 * pool records which one it got and why (backend, why).
 *
 * Which batches use the ring (uring_min_batch[write]): with NTMM__IO_URING
 * every batch does. With NTMM__IO_AUTO only read batches of two or more
 * requests do; single requests and all writes use preadv/pwritev. A single
 * request is one syscall either way. Buffered writes only reach the page
 * cache, and where the file system cannot do them asynchronously (ext4)
 * io_uring hands them to its worker threads, which costs more than the
 * syscalls it saves. Reads are kept on the ring because a hard-fault
 * cluster of non-adjacent slots that missed the page cache then waits for
 * the device once, not once per request; from the page cache they cost a
 * little more than preads. Measured on this project's machine (kernel
 * 6.18, ext4, data in the page cache), 8 random 4 KiB requests per batch:
 * pread 4.6-5.0 us, io_uring read 5.5-6.5 us; pwrite 6.5-8.5 us, io_uring
 * write 21-82 us.
 *
 * Thread-safety: any number of threads may call ntmm__ioring_submit at
 * once. The pool holds several rings, each guarded by its own mutex; a
 * caller starts at the ring of the CPU it runs on and takes the first ring
 * whose mutex is free (trylock), and only if every ring is busy does it
 * block on its own CPU's ring. A ring's mutex is held from submission to the
 * last completion of that batch, so completions never need routing between
 * threads. Blocking is in the kernel (the mutex's futex), never a spin.
 */
#ifndef NTMM_IO_IORING_H
#define NTMM_IO_IORING_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "debug.h"

enum ntmm__io_backend {
	NTMM__IO_AUTO = 0,  /* io_uring if it initializes, else sync */
	NTMM__IO_URING = 1, /* io_uring or fail */
	NTMM__IO_SYNC = 2,  /* preadv/pwritev */
};

/* One request. The caller fills fd..len; submit fills res. */
typedef struct ntmm__ioreq {
	int fd;
	bool write;              /* true: pwritev semantics; false: preadv */
	uint64_t offset;         /* bytes */
	const struct iovec *iov; /* host buffers, in file order */
	unsigned iovcnt;
	size_t len;  /* sum of iov lengths */
	ssize_t res; /* out: bytes moved (len = complete; less = short) or -errno */
} ntmm__ioreq_t;

struct io_uring;

typedef struct ntmm__ioring {
	pthread_mutex_t lock;  /* held by the submitting thread until its batch completes */
	struct io_uring *ring; /* NULL for the sync backend */
	uint64_t batches;      /* under lock: batches submitted through io_uring */
	_Atomic bool dead;     /* set under lock (relaxed): the kernel refused a submission; not
	                      used again. Read without the lock by ntmm_engine_io_backend */
} NTMM__ALIGNED_CL ntmm__ioring_t;

/*
 * Invariants: backend is fixed after init; rings[0..nrings) are initialized
 * (each ring's io_uring exists iff backend == NTMM__IO_URING).
 */
typedef struct ntmm__ioring_pool {
	int backend;                 /* NTMM__IO_URING or NTMM__IO_SYNC: what is in use */
	unsigned nrings;             /* rings in the pool */
	unsigned depth;              /* submission-queue entries per ring */
	unsigned uring_min_batch[2]; /* [write]: batches smaller than this use
					preadv/pwritev even with io_uring (see above);
					set before use, not while I/O runs */
	ntmm__ioring_t *rings;       /* [nrings], cache-line aligned */
	char why[128];               /* why this backend (e.g. io_uring_queue_init's error) */
} ntmm__ioring_pool_t;

/* want: enum ntmm__io_backend. nrings 0 = one per CPU (at least 2).
   Errors: NTMM_ENOMEM; NTMM_ENOTSUP if want is NTMM__IO_URING and io_uring
   cannot be set up; NTMM_EINVAL for an unknown want. */
int ntmm__ioring_pool_init(ntmm__ioring_pool_t *pool, int want, unsigned nrings);
void ntmm__ioring_pool_fini(ntmm__ioring_pool_t *pool);
/* Batches that went through io_uring so far (takes each ring's lock). */
uint64_t ntmm__ioring_batches(ntmm__ioring_pool_t *pool);

/*
 * Performs every request and returns when all are complete. Requests are
 * independent (no ordering between them); with io_uring up to `depth` of
 * them go in one submission (a batch below uring_min_batch is done with
 * preadv/pwritev; a batch with any write counts as a write batch). A short transfer is continued synchronously
 * until it completes, fails, or meets end of file (reads), so res < len means
 * the store really gave less. Returns 0 if every request moved len bytes,
 * else NTMM_EIO (look at each res). Thread-safe; blocks.
 */
int ntmm__ioring_submit(ntmm__ioring_pool_t *pool, ntmm__ioreq_t *reqs, unsigned n);

/* Synchronous preadv/pwritev of one request (continues short transfers);
   sets req->res. Used by the sync backend and by drivers that bypass rings. */
void ntmm__ioreq_sync(ntmm__ioreq_t *req);

/* Whether ntmm__ioring_submit serves a lone request with the system call
   (true unless the backend is io_uring for every request). */
bool ntmm__ioring_single_sync(const ntmm__ioring_pool_t *pool, bool write);

/* pread/pwrite entered directly. glibc's wrappers are thread-cancellation
   points: in a multi-threaded process each call switches asynchronous
   cancellation on and off around the system call, about 10 ns of a 4 KiB
   page-cache read (1.7% of a hard fault in a profile). The engine's threads
   are never cancelled, so that only costs. -1 with errno on failure. */
static inline ssize_t ntmm__io_sys_rw(bool write, int fd, void *buf, size_t len, off_t off)
{
	return syscall(write ? SYS_pwrite64 : SYS_pread64, fd, buf, len, off);
}

const char *ntmm__io_backend_name(int backend);

#endif
