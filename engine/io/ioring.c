/*
 * The io_uring / preadv-pwritev engine under the backing-store drivers (see
 * ioring.h for the threading contract). Kept free of paging-file knowledge:
 * it moves bytes between host buffers and file offsets, in batches.
 */
#include "io/ioring.h"

#include <errno.h>
#include <limits.h>
#include <liburing.h>
#include <ntmm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sync/cpu.h"

#define RING_DEPTH 64u

const char *ntmm__io_backend_name(int backend)
{
	switch (backend) {
	case NTMM__IO_URING:
		return "io_uring";
	case NTMM__IO_SYNC:
		return "preadv/pwritev";
	default:
		return "auto";
	}
}

/* preadv/pwritev entered directly (see ntmm__io_sys_rw for why). They take
   the offset as two longs (low, high); on 64-bit kernels the low one holds
   all of it. */
static inline ssize_t sys_rwv(bool write, int fd, const struct iovec *iov, int cnt, off_t off)
{
	return syscall(write ? SYS_pwritev : SYS_preadv, fd, iov, cnt, (long)off,
	               (long)((uint64_t)off >> 32));
}

/* Moves the rest of req from byte `done` on with preadv/pwritev. Returns the
   bytes moved in total (done included; less than len only at end of file or
   a zero-byte write) or -errno. */
static ssize_t sync_from(const ntmm__ioreq_t *req, size_t done)
{
	if (done == 0) {
		/* the common case: everything in one call, no iovec copy */
		ssize_t r;
		do {
			if (req->iovcnt == 1)
				r = ntmm__io_sys_rw(req->write, req->fd, req->iov[0].iov_base,
				                    req->len, (off_t)req->offset);
			else
				r = sys_rwv(req->write, req->fd, req->iov, (int)req->iovcnt,
				            (off_t)req->offset);
		} while (r < 0 && errno == EINTR);
		if (r < 0)
			return -errno;
		if (r == 0 || (size_t)r == req->len)
			return r;
		done = (size_t)r;
	}
	while (done < req->len) {
		struct iovec tmp[64];
		unsigned i = 0;
		size_t skip = done;
		while (i < req->iovcnt && skip >= req->iov[i].iov_len)
			skip -= req->iov[i++].iov_len;
		unsigned k = 0;
		for (; k < 64 && i + k < req->iovcnt; k++)
			tmp[k] = req->iov[i + k];
		ntmm__assert(k > 0);
		tmp[0].iov_base = (char *)tmp[0].iov_base + skip;
		tmp[0].iov_len -= skip;
		off_t off = (off_t)(req->offset + done);
		ssize_t r = sys_rwv(req->write, req->fd, tmp, (int)k, off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

void ntmm__ioreq_sync(ntmm__ioreq_t *req)
{
	req->res = sync_from(req, 0);
}

int ntmm__ioring_pool_init(ntmm__ioring_pool_t *pool, int want, unsigned nrings)
{
	memset(pool, 0, sizeof(*pool));
	if (want != NTMM__IO_AUTO && want != NTMM__IO_URING && want != NTMM__IO_SYNC)
		return NTMM_EINVAL;
	if (nrings == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		nrings = n > 2 ? (unsigned)n : 2;
	}
	pool->depth = RING_DEPTH;
	pool->uring_min_batch[0] = want == NTMM__IO_URING ? 1 : 2;
	pool->uring_min_batch[1] = want == NTMM__IO_URING ? 1 : UINT_MAX;
	pool->rings = aligned_alloc(NTMM__CACHELINE, sizeof(*pool->rings) * nrings);
	if (!pool->rings)
		return NTMM_ENOMEM;
	memset(pool->rings, 0, sizeof(*pool->rings) * nrings);

	pool->backend = NTMM__IO_SYNC;
	snprintf(pool->why, sizeof(pool->why), "configured");
	unsigned made = 0;
	if (want != NTMM__IO_SYNC) {
		for (; made < nrings; made++) {
			struct io_uring *r = calloc(1, sizeof(*r));
			if (!r)
				break;
			int err = -EINVAL;
#ifdef IORING_SETUP_COOP_TASKRUN
			/* completions need no interrupt of the submitter: it waits for them */
			err = io_uring_queue_init(RING_DEPTH, r, IORING_SETUP_COOP_TASKRUN);
#endif
			if (err < 0)
				err = io_uring_queue_init(RING_DEPTH, r, 0);
			if (err < 0) {
				free(r);
				if (made == 0)
					snprintf(pool->why, sizeof(pool->why),
					         "io_uring_queue_init: %s", strerror(-err));
				break;
			}
			pool->rings[made].ring = r;
		}
		if (made > 0) {
			pool->backend = NTMM__IO_URING;
			snprintf(pool->why, sizeof(pool->why),
			         "io_uring_queue_init succeeded (%u rings)", made);
			nrings = made; /* fewer rings if the kernel gave fewer (memlock) */
		} else if (want == NTMM__IO_URING) {
			free(pool->rings);
			pool->rings = NULL;
			return NTMM_ENOTSUP;
		}
	}
	pool->nrings = nrings;
	for (unsigned i = 0; i < nrings; i++)
		pthread_mutex_init(&pool->rings[i].lock, NULL);
	return 0;
}

void ntmm__ioring_pool_fini(ntmm__ioring_pool_t *pool)
{
	if (!pool->rings)
		return;
	for (unsigned i = 0; i < pool->nrings; i++) {
		if (pool->rings[i].ring) {
			io_uring_queue_exit(pool->rings[i].ring);
			free(pool->rings[i].ring);
		}
		pthread_mutex_destroy(&pool->rings[i].lock);
	}
	free(pool->rings);
	pool->rings = NULL;
	pool->nrings = 0;
}

uint64_t ntmm__ioring_batches(ntmm__ioring_pool_t *pool)
{
	uint64_t sum = 0;
	for (unsigned i = 0; i < pool->nrings; i++) {
		pthread_mutex_lock(&pool->rings[i].lock);
		sum += pool->rings[i].batches;
		pthread_mutex_unlock(&pool->rings[i].lock);
	}
	return sum;
}

/* Takes a ring: the first free one starting at this CPU's, else waits for
   this CPU's. */
static ntmm__ioring_t *ring_acquire(ntmm__ioring_pool_t *pool)
{
	unsigned start = ntmm__cpu_current(pool->nrings);
	for (unsigned i = 0; i < pool->nrings; i++) {
		ntmm__ioring_t *r = &pool->rings[(start + i) % pool->nrings];
		if (pthread_mutex_trylock(&r->lock) == 0)
			return r;
	}
	ntmm__ioring_t *r = &pool->rings[start];
	pthread_mutex_lock(&r->lock);
	return r;
}

/* Takes every completion the ring holds; returns how many. */
static unsigned reap_ready(struct io_uring *r, ntmm__ioreq_t *reqs)
{
	unsigned got = 0;
	struct io_uring_cqe *cqe;
	while (io_uring_peek_cqe(r, &cqe) == 0) {
		reqs[cqe->user_data].res = cqe->res;
		io_uring_cqe_seen(r, cqe);
		got++;
	}
	return got;
}

/*
 * Submits reqs[0..n) (n <= depth) on ring r — normally one io_uring_enter
 * that submits all and waits for all — and reaps every completion of what
 * went in. Returns false if the kernel refused the submission outright: the
 * ring is then retired (never entered again, so the SQEs it still holds are
 * never run) and the requests left at -EINPROGRESS are done synchronously
 * by the caller.
 */
static bool uring_batch(struct io_uring *r, ntmm__ioreq_t *reqs, unsigned n)
{
	for (unsigned j = 0; j < n; j++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(r);
		ntmm__assert(sqe); /* the ring is empty between batches and n <= depth */
		ntmm__ioreq_t *q = &reqs[j];
		/* one buffer: plain READ/WRITE, which skip the iovec import */
		if (q->iovcnt == 1 && q->write)
			io_uring_prep_write(sqe, q->fd, q->iov[0].iov_base, (unsigned)q->len,
			                    q->offset);
		else if (q->iovcnt == 1)
			io_uring_prep_read(sqe, q->fd, q->iov[0].iov_base, (unsigned)q->len,
			                   q->offset);
		else if (q->write)
			io_uring_prep_writev(sqe, q->fd, q->iov, q->iovcnt, q->offset);
		else
			io_uring_prep_readv(sqe, q->fd, q->iov, q->iovcnt, q->offset);
		io_uring_sqe_set_data64(sqe, j);
		q->res = -EINPROGRESS;
	}
	unsigned submitted = 0, reaped = 0, stalls = 0;
	bool ok = true;
	while (submitted < n) {
		int ret = io_uring_submit_and_wait(r, submitted == 0 ? n : 0);
		if (ret > 0) {
			submitted += (unsigned)ret;
			continue;
		}
		if ((ret == 0 || ret == -EINTR || ret == -EAGAIN || ret == -EBUSY) &&
		    ++stalls < 64) {
			/* the kernel wants completions reaped (or was interrupted) */
			reaped += reap_ready(r, reqs);
			if (ret != -EINTR && reaped < submitted) {
				struct io_uring_cqe *cqe;
				if (io_uring_wait_cqe(r, &cqe) == 0) {
					reqs[cqe->user_data].res = cqe->res;
					io_uring_cqe_seen(r, cqe);
					reaped++;
				}
			}
			continue;
		}
		ok = false;
		break;
	}
	while (reaped < submitted) {
		struct io_uring_cqe *cqe;
		int ret = io_uring_wait_cqe(r, &cqe);
		if (ret == -EINTR || ret == -EAGAIN)
			continue;
		if (ret != 0) { /* cannot happen on a live ring; do not leave I/O behind */
			ntmm__assert(!"io_uring_wait_cqe failed");
			return false;
		}
		reqs[cqe->user_data].res = cqe->res;
		io_uring_cqe_seen(r, cqe);
		reaped++;
	}
	return ok;
}

bool ntmm__ioring_single_sync(const ntmm__ioring_pool_t *pool, bool write)
{
	return pool->backend != NTMM__IO_URING || pool->uring_min_batch[write] > 1;
}

int ntmm__ioring_submit(ntmm__ioring_pool_t *pool, ntmm__ioreq_t *reqs, unsigned n)
{
	bool any_write = false;
	for (unsigned i = 0; i < n && !any_write; i++)
		any_write = reqs[i].write;
	if (pool->backend == NTMM__IO_URING && n > 0 && n >= pool->uring_min_batch[any_write]) {
		ntmm__ioring_t *ring = ring_acquire(pool);
		/* a retired ring's requests stay -EINPROGRESS and go synchronous */
		for (unsigned i = 0; i < n; i++)
			reqs[i].res = -EINPROGRESS;
		for (unsigned base = 0;
		     base < n && !atomic_load_explicit(&ring->dead, memory_order_relaxed);
		     base += pool->depth) {
			unsigned chunk = n - base < pool->depth ? n - base : pool->depth;
			if (!uring_batch(ring->ring, reqs + base, chunk))
				atomic_store_explicit(&ring->dead, true, memory_order_relaxed);
			ring->batches++;
		}
		pthread_mutex_unlock(&ring->lock);
		/* finish short transfers (and anything the ring could not take) */
		for (unsigned i = 0; i < n; i++) {
			ntmm__ioreq_t *q = &reqs[i];
			if (q->res > 0 && (size_t)q->res < q->len)
				q->res = sync_from(q, (size_t)q->res);
			else if (q->res == -EINPROGRESS || q->res == -EAGAIN)
				ntmm__ioreq_sync(q);
		}
	} else {
		for (unsigned i = 0; i < n; i++)
			ntmm__ioreq_sync(&reqs[i]);
	}
	int err = 0;
	for (unsigned i = 0; i < n; i++)
		if (reqs[i].res < 0 || (size_t)reqs[i].res != reqs[i].len)
			err = NTMM_EIO;
	return err;
}
