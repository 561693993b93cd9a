/*
 * ntmm_engine_io_backend: the user-visible answer to "which paging I/O
 * backend is in use, for which requests, and why". The ring pool (ioring.c)
 * records the backend it set up, its reason and the batch sizes that go to
 * the ring; this file only reads those and words them, so tools can print
 * the line without reaching into engine internals.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>

#include "engine.h"

/* Appends to buf[0..len) at *at like snprintf; *at stops at len - 1 once
   the buffer is full, so the result is always NUL-terminated. */
static void put(char *buf, size_t len, size_t *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void put(char *buf, size_t len, size_t *at, const char *fmt, ...)
{
	if (*at >= len - 1)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf + *at, len - *at, fmt, ap);
	va_end(ap);
	if (n > 0)
		*at = (size_t)n < len - *at ? *at + (size_t)n : len - 1;
}

/* The requests of one direction that io_uring serves, given the smallest
   batch that goes to the ring (1: all, UINT_MAX: none). */
static void put_ring_part(char *buf, size_t len, size_t *at, unsigned min, const char *dir)
{
	if (min <= 1)
		put(buf, len, at, "all %ss", dir);
	else
		put(buf, len, at, "%s batches of >= %u requests", dir, min);
}

/* The requests of one direction left to preadv/pwritev. */
static void put_sync_part(char *buf, size_t len, size_t *at, unsigned min, const char *dir)
{
	if (min == UINT_MAX)
		put(buf, len, at, "all %ss", dir);
	else if (min == 2)
		put(buf, len, at, "single %ss", dir);
	else
		put(buf, len, at, "%s batches of < %u requests", dir, min);
}

int ntmm_engine_io_backend(ntmm_engine_t *e, char *buf, size_t len)
{
	if (!e || !buf || !len)
		return ntmm__error(NTMM_EINVAL, "io backend query: %s",
		                   !e     ? "engine is NULL"
		                   : !buf ? "buffer is NULL"
		                          : "length 0");
	ntmm__ioring_pool_t *pool = &e->io.rings;
	size_t at = 0;
	buf[0] = '\0';

	if (pool->backend != NTMM__IO_URING) {
		if (e->cfg.io_backend == NTMM__IO_SYNC)
			put(buf, len, &at,
			    "%s for all reads and writes: configured (io_backend=%d)",
			    ntmm__io_backend_name(NTMM__IO_SYNC), NTMM__IO_SYNC);
		else
			put(buf, len, &at, "%s for all reads and writes: io_uring unavailable: %s",
			    ntmm__io_backend_name(NTMM__IO_SYNC), pool->why);
		return 0;
	}

	/* rings retired after the kernel refused a submission serve no more
	   batches (ntmm__ioring_submit does theirs with preadv/pwritev) */
	unsigned dead = 0;
	for (unsigned i = 0; i < pool->nrings; i++)
		/* relaxed, without the ring's lock (held for a whole batch): the
		   flag only ever goes from false to true */
		dead += atomic_load_explicit(&pool->rings[i].dead, memory_order_relaxed);
	if (dead == pool->nrings) {
		put(buf, len, &at,
		    "%s for all reads and writes: the kernel refused io_uring submissions "
		    "on all %u rings",
		    ntmm__io_backend_name(NTMM__IO_SYNC), pool->nrings);
		return 0;
	}

	/* uring_min_batch is fixed before I/O starts (ioring.h) */
	unsigned rmin = pool->uring_min_batch[0], wmin = pool->uring_min_batch[1];
	bool rring = rmin != UINT_MAX, wring = wmin != UINT_MAX;
	bool rsync = rmin > 1, wsync = wmin > 1;
	if (!rring && !wring) {
		put(buf, len, &at, "%s for all reads and writes: io_uring set up but not used (%s)",
		    ntmm__io_backend_name(NTMM__IO_SYNC), pool->why);
		return 0;
	}
	put(buf, len, &at, "%s for ", ntmm__io_backend_name(NTMM__IO_URING));
	if (rring)
		put_ring_part(buf, len, &at, rmin, "read");
	if (rring && wring)
		put(buf, len, &at, " and ");
	if (wring)
		put_ring_part(buf, len, &at, wmin, "write");
	if (rsync || wsync) {
		put(buf, len, &at, "; %s for ", ntmm__io_backend_name(NTMM__IO_SYNC));
		if (rsync)
			put_sync_part(buf, len, &at, rmin, "read");
		if (rsync && wsync)
			put(buf, len, &at, " and ");
		if (wsync)
			put_sync_part(buf, len, &at, wmin, "write");
	}
	put(buf, len, &at, " (%s%s)", e->cfg.io_backend == NTMM__IO_URING ? "configured; " : "",
	    pool->why);
	if (dead)
		put(buf, len, &at,
		    "; %u of %u rings retired after the kernel refused a submission "
		    "(their batches use %s)",
		    dead, pool->nrings, ntmm__io_backend_name(NTMM__IO_SYNC));
	return 0;
}
