/*
 * The fault-injecting driver (driver.h): sits on another driver and turns
 * chosen requests into failures (no I/O done, res = -error) or short
 * transfers (only the first half of the bytes moved), and can make growth
 * fail with ENOSPC — a full disk on demand. Tests use it to show that a
 * failed write or read is reported as NTMM_EIO and loses nothing stored.
 */
#include "io/io.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define FAULT(d) ((ntmm__faultdrv_t *)((char *)(d)-offsetof(ntmm__faultdrv_t, drv)))

enum action { PASS, FAIL, SHORT };

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	return x ^ (x >> 33);
}

/* Decides what happens to the next request of one kind. The one-shot
   settings are consumed with a CAS so exactly one request takes each. */
static enum action decide(ntmm__faultdrv_t *f, bool write)
{
	uint64_t k =
	    atomic_fetch_add_explicit(write ? &f->writes : &f->reads, 1, memory_order_relaxed) + 1;
	_Atomic uint64_t *fail_at = write ? &f->fail_write_at : &f->fail_read_at;
	_Atomic uint64_t *short_at = write ? &f->short_write_at : &f->short_read_at;
	uint64_t want = k;
	if (atomic_load_explicit(fail_at, memory_order_relaxed) == k &&
	    atomic_compare_exchange_strong_explicit(fail_at, &want, 0, memory_order_relaxed,
	                                            memory_order_relaxed))
		return FAIL;
	want = k;
	if (atomic_load_explicit(short_at, memory_order_relaxed) == k &&
	    atomic_compare_exchange_strong_explicit(short_at, &want, 0, memory_order_relaxed,
	                                            memory_order_relaxed))
		return SHORT;
	uint32_t ppm = atomic_load_explicit(write ? &f->fail_write_ppm : &f->fail_read_ppm,
	                                    memory_order_relaxed);
	if (ppm) {
		uint64_t seed = atomic_load_explicit(&f->seed, memory_order_relaxed);
		if (mix(seed ^ (k * 2 + write) * 0x9e3779b97f4a7c15ULL) % 1000000u < ppm)
			return FAIL;
	}
	return PASS;
}

/* Builds in `out` an iovec list covering the first half of q's bytes. */
static unsigned half_iov(const ntmm__ioreq_t *q, struct iovec *out, size_t *len)
{
	size_t want = q->len / 2, have = 0;
	unsigned k = 0;
	for (unsigned i = 0; i < q->iovcnt && have < want; i++) {
		out[k] = q->iov[i];
		if (out[k].iov_len > want - have)
			out[k].iov_len = want - have;
		have += out[k].iov_len;
		k++;
	}
	*len = have;
	return k;
}

static int fault_rw(ntmm__bsdriver_t *d, void *store, ntmm__ioreq_t *reqs, unsigned n, bool write)
{
	ntmm__faultdrv_t *f = FAULT(d);
	int error = atomic_load_explicit(&f->error, memory_order_relaxed);
	ntmm__ioreq_t *pass = malloc(n * sizeof(*pass));
	unsigned *back = malloc(n * sizeof(*back));
	struct iovec *halves = malloc(n * NTMM__PF_MAX_CLUSTER * sizeof(*halves));
	if (!pass || !back || !halves) {
		free(pass), free(back), free(halves);
		for (unsigned i = 0; i < n; i++)
			reqs[i].res = -ENOMEM;
		return -ENOMEM;
	}
	unsigned np = 0, injected = 0;
	for (unsigned i = 0; i < n; i++) {
		enum action a = decide(f, write);
		if (a == FAIL) {
			reqs[i].res = -(error ? error : EIO);
			injected++;
			continue;
		}
		pass[np] = reqs[i];
		if (a == SHORT) {
			ntmm__assert(reqs[i].iovcnt <= NTMM__PF_MAX_CLUSTER);
			struct iovec *h = &halves[(size_t)np * NTMM__PF_MAX_CLUSTER];
			pass[np].iovcnt = half_iov(&reqs[i], h, &pass[np].len);
			pass[np].iov = h;
			injected++;
		}
		back[np++] = i;
	}
	if (np) {
		/* the lower driver may fail some; its per-request results count */
		if (write)
			f->lower->ops->write(f->lower, store, pass, np);
		else
			f->lower->ops->read(f->lower, store, pass, np);
	}
	for (unsigned j = 0; j < np; j++)
		reqs[back[j]].res = pass[j].len ? pass[j].res : 0;
	atomic_fetch_add_explicit(&f->injected, injected, memory_order_relaxed);
	free(pass), free(back), free(halves);
	for (unsigned i = 0; i < n; i++)
		if (reqs[i].res < 0 || (size_t)reqs[i].res != reqs[i].len)
			return -EIO;
	return 0;
}

static int fault_read(ntmm__bsdriver_t *d, void *store, ntmm__ioreq_t *reqs, unsigned n)
{
	return fault_rw(d, store, reqs, n, false);
}

static int fault_write(ntmm__bsdriver_t *d, void *store, ntmm__ioreq_t *reqs, unsigned n)
{
	return fault_rw(d, store, reqs, n, true);
}

static int fault_open(ntmm__bsdriver_t *d, ntmm__io_t *io, const char *path, void **store)
{
	ntmm__faultdrv_t *f = FAULT(d);
	return f->lower->ops->open(f->lower, io, path, store);
}

static void fault_close(ntmm__bsdriver_t *d, void *store)
{
	ntmm__faultdrv_t *f = FAULT(d);
	f->lower->ops->close(f->lower, store);
}

static int fault_flush(ntmm__bsdriver_t *d, void *store)
{
	ntmm__faultdrv_t *f = FAULT(d);
	return f->lower->ops->flush(f->lower, store);
}

static int fault_grow(ntmm__bsdriver_t *d, void *store, uint64_t bytes)
{
	ntmm__faultdrv_t *f = FAULT(d);
	if (atomic_load_explicit(&f->grow_enospc, memory_order_relaxed)) {
		atomic_fetch_add_explicit(&f->injected, 1, memory_order_relaxed);
		return -ENOSPC;
	}
	return f->lower->ops->grow(f->lower, store, bytes);
}

static int fault_shrink(ntmm__bsdriver_t *d, void *store, uint64_t bytes)
{
	ntmm__faultdrv_t *f = FAULT(d);
	return f->lower->ops->shrink(f->lower, store, bytes);
}

static const ntmm__bsdriver_ops_t fault_ops = {
    .open = fault_open,
    .close = fault_close,
    .read = fault_read,
    .write = fault_write,
    .flush = fault_flush,
    .grow = fault_grow,
    .shrink = fault_shrink,
};

void ntmm__faultdrv_init(ntmm__faultdrv_t *f, const char *name, ntmm__bsdriver_t *lower)
{
	memset(f, 0, sizeof(*f));
	f->drv.name = name;
	f->drv.ops = &fault_ops;
	f->drv.arg = f;
	f->lower = lower;
	atomic_store_explicit(&f->error, EIO, memory_order_relaxed);
	atomic_store_explicit(&f->seed, 0x5eed, memory_order_relaxed);
}

static void arm(_Atomic uint64_t *at, _Atomic uint64_t *count, uint64_t k)
{
	atomic_store_explicit(at, atomic_load_explicit(count, memory_order_relaxed) + k,
	                      memory_order_relaxed);
}

void ntmm__faultdrv_fail_read_in(ntmm__faultdrv_t *f, uint64_t k)
{
	arm(&f->fail_read_at, &f->reads, k);
}
void ntmm__faultdrv_fail_write_in(ntmm__faultdrv_t *f, uint64_t k)
{
	arm(&f->fail_write_at, &f->writes, k);
}
void ntmm__faultdrv_short_read_in(ntmm__faultdrv_t *f, uint64_t k)
{
	arm(&f->short_read_at, &f->reads, k);
}
void ntmm__faultdrv_short_write_in(ntmm__faultdrv_t *f, uint64_t k)
{
	arm(&f->short_write_at, &f->writes, k);
}
