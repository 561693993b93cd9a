/*
 * Paging-file I/O benchmarks and their peers. ntmm's io path —
 * BM_pagefile_read_4k (one 4 KiB slot read by location) and
 * BM_pagefile_write_cluster (allocate 16 contiguous slots, write 64 KiB in
 * one vectored request, free) — beside what a user would otherwise do:
 * BM_peer_pread_4k (random 4 KiB pread from a file of the same size),
 * BM_peer_pwrite_seq (sequential 64 KiB pwrites; items are 4 KiB pages) and
 * BM_peer_userfaultfd_fault (the umap mechanism: a missing-page fault on an
 * anonymous region served by a handler thread with pread + UFFDIO_COPY).
 * The hard-fault and modified-writer benchmarks build on the first two.
 *
 * Files live in a fresh directory under $TMPDIR (default /tmp), the same
 * file system for every benchmark; nothing is dropped from the page cache,
 * so reads measure the software path over cached data for all of them.
 * Plain names use the default (auto) policy — preadv/pwritev for single
 * requests and writes, io_uring for read batches; the _uring variants put
 * every request through io_uring and BM_pagefile_read_batch_sync none (see
 * engine/io/ioring.h for the measurements behind the policy). All are timed by
 * the wall clock (real_time): part of the work runs on other threads
 * (io_uring workers, the userfaultfd handler), which CPU time would hide.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "io/io.h"
#include "shim.h"
#include "sync/rcu.h"

#define PAGE       4096u
#define DATA_PAGES 16384u /* 64 MiB: the paging-file data and the peers' files */
#define CLUSTER    16u    /* 64 KiB writes */
#define UFFD_PAGES 4096u  /* 16 MiB userfaultfd region */

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static char *bench_dir(void)
{
	const char *base = getenv("TMPDIR");
	char *p = malloc(512);
	snprintf(p, 512, "%s/ntmm-bench-io-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(p)) {
		free(p);
		return NULL;
	}
	return p;
}

static void fill_page(void *page, uint64_t tag)
{
	uint64_t *w = page;
	for (unsigned i = 0; i < PAGE / 8; i++)
		w[i] = tag * 0x9e3779b97f4a7c15ULL + i;
}

/* ------------------------------------------------------------ raw files */

typedef struct rawfile {
	char *dir, path[600];
	int fd;
	void *buf; /* CLUSTER pages */
	uint64_t seed, next;
	const char *skip;
} rawfile_t;

/* A file of DATA_PAGES pages, each written with its own pattern. */
static rawfile_t *raw_setup(void)
{
	rawfile_t *r = calloc(1, sizeof(*r));
	r->seed = 0x12345;
	r->buf = aligned_alloc(PAGE, CLUSTER * PAGE);
	r->dir = bench_dir();
	if (!r->dir) {
		r->skip = "cannot create a temporary directory";
		return r;
	}
	snprintf(r->path, sizeof(r->path), "%s/data", r->dir);
	r->fd = open(r->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (r->fd < 0) {
		r->skip = "cannot create the data file";
		return r;
	}
	for (unsigned p = 0; p < DATA_PAGES; p += CLUSTER) {
		for (unsigned k = 0; k < CLUSTER; k++)
			fill_page((char *)r->buf + k * PAGE, p + k);
		if (pwrite(r->fd, r->buf, CLUSTER * PAGE, (off_t)p * PAGE) != CLUSTER * PAGE) {
			r->skip = "cannot write the data file";
			return r;
		}
	}
	return r;
}

static void raw_teardown(void *ctx)
{
	rawfile_t *r = ctx;
	if (r->fd > 0)
		close(r->fd);
	if (r->dir) {
		unlink(r->path);
		rmdir(r->dir);
	}
	free(r->dir);
	free(r->buf);
	free(r);
}

static void *pread_setup(int threads)
{
	return raw_setup();
}

static void run_peer_pread_4k(ntmm_bench_state_t *st, void *ctx)
{
	rawfile_t *r = ctx;
	if (r->skip) {
		ntmm_bench_skip(st, r->skip);
		return;
	}
	while (ntmm_bench_keep_running_batch(st, 64))
		for (int i = 0; i < 64; i++) {
			uint64_t p = rnd(&r->seed) % DATA_PAGES;
			if (pread(r->fd, r->buf, PAGE, (off_t)(p * PAGE)) != PAGE)
				abort();
		}
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st));
	ntmm_bench_set_bytes(st, (int64_t)ntmm_bench_iterations(st) * PAGE);
}
NTMM_BENCH(BM_peer_pread_4k, .run = run_peer_pread_4k, .setup = pread_setup,
           .teardown = raw_teardown, .real_time = 1)

static void run_peer_pwrite_seq(ntmm_bench_state_t *st, void *ctx)
{
	rawfile_t *r = ctx;
	if (r->skip) {
		ntmm_bench_skip(st, r->skip);
		return;
	}
	while (ntmm_bench_keep_running(st)) {
		if (pwrite(r->fd, r->buf, CLUSTER * PAGE, (off_t)(r->next * PAGE)) !=
		    CLUSTER * PAGE)
			abort();
		r->next = (r->next + CLUSTER) % DATA_PAGES;
	}
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st) * CLUSTER);
	ntmm_bench_set_bytes(st, (int64_t)ntmm_bench_iterations(st) * CLUSTER * PAGE);
}
NTMM_BENCH(BM_peer_pwrite_seq, .run = run_peer_pwrite_seq, .setup = pread_setup,
           .teardown = raw_teardown, .real_time = 1)

/* ------------------------------------------------------------ ntmm's io */

typedef struct pfbench {
	char *dir, path[600];
	ntmm__stats_t stats;
	ntmm__io_t io;
	int io_ok;
	void *buf; /* CLUSTER pages */
	void *pv[CLUSTER];
	uint64_t seed;
	unsigned index;
	const char *skip;
} pfbench_t;

/* A paging file of DATA_PAGES slots (slot 0 reserved), every usable slot
   written, on the given backend. */
static pfbench_t *pf_setup(int backend, int fill)
{
	pfbench_t *b = calloc(1, sizeof(*b));
	b->seed = 0x6789;
	b->buf = aligned_alloc(PAGE, CLUSTER * PAGE);
	for (unsigned k = 0; k < CLUSTER; k++)
		b->pv[k] = (char *)b->buf + k * PAGE;
	b->dir = bench_dir();
	if (!b->dir || ntmm__stats_init(&b->stats, 64) ||
	    ntmm__io_setup(&b->io, &b->stats, backend, 0)) {
		b->skip = "io setup failed";
		return b;
	}
	b->io_ok = 1;
	snprintf(b->path, sizeof(b->path), "%s/pagefile", b->dir);
	size_t bytes = (size_t)DATA_PAGES * PAGE;
	if (ntmm__pagefile_add(&b->io, b->path, bytes, bytes, NULL, &b->index)) {
		b->skip = "cannot add the paging file";
		return b;
	}
	if (!fill)
		return b;
	ntmm__rcu_thread_online();
	for (;;) {
		ntmm__pfloc_t loc;
		size_t got;
		if (ntmm__pagefile_alloc_nogrow(&b->io, CLUSTER, 1, &loc, &got))
			break;
		for (unsigned k = 0; k < got; k++)
			fill_page(b->pv[k], ntmm__pfloc_slot(loc) + k);
		if (ntmm__pagefile_write(&b->io, loc, b->pv, got)) {
			b->skip = "cannot fill the paging file";
			break;
		}
	}
	ntmm__rcu_thread_offline();
	return b;
}

static void pf_teardown(void *ctx)
{
	pfbench_t *b = ctx;
	if (b->io_ok) {
		ntmm__io_teardown(&b->io);
		ntmm__stats_fini(&b->stats);
	}
	if (b->dir)
		rmdir(b->dir);
	free(b->dir);
	free(b->buf);
	free(b);
}

static void run_pagefile_read_4k(ntmm_bench_state_t *st, void *ctx)
{
	pfbench_t *b = ctx;
	if (b->skip) {
		ntmm_bench_skip(st, b->skip);
		return;
	}
	while (ntmm_bench_keep_running_batch(st, 64))
		for (int i = 0; i < 64; i++) {
			uint64_t slot = 1 + rnd(&b->seed) % (DATA_PAGES - 1);
			if (ntmm__pagefile_read(&b->io, ntmm__pfloc_make(b->index, slot), b->pv, 1))
				abort();
		}
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st));
	ntmm_bench_set_bytes(st, (int64_t)ntmm_bench_iterations(st) * PAGE);
}

static void *read_setup(int threads)
{
	return pf_setup(NTMM__IO_AUTO, 1);
}
static void *read_setup_sync(int threads)
{
	return pf_setup(NTMM__IO_SYNC, 1);
}
static void *read_setup_uring(int threads)
{
	return pf_setup(NTMM__IO_URING, 1);
}
NTMM_BENCH(BM_pagefile_read_4k, .run = run_pagefile_read_4k, .setup = read_setup,
           .teardown = pf_teardown, .real_time = 1)
NTMM_BENCH(BM_pagefile_read_4k_uring, .run = run_pagefile_read_4k, .setup = read_setup_uring,
           .teardown = pf_teardown, .real_time = 1)

/* The modified page writer's unit of work: take 16 contiguous slots, write
   a 64 KiB cluster there in one request, give the slots back (next-fit
   makes successive clusters sequential in the file). */
static void run_pagefile_write_cluster(ntmm_bench_state_t *st, void *ctx)
{
	pfbench_t *b = ctx;
	if (b->skip) {
		ntmm_bench_skip(st, b->skip);
		return;
	}
	ntmm__rcu_thread_online();
	while (ntmm_bench_keep_running(st)) {
		ntmm__pfloc_t loc;
		size_t got;
		if (ntmm__pagefile_alloc_nogrow(&b->io, CLUSTER, CLUSTER, &loc, &got) ||
		    ntmm__pagefile_write(&b->io, loc, b->pv, CLUSTER))
			abort();
		ntmm__pagefile_free(&b->io, loc, CLUSTER);
	}
	ntmm__rcu_thread_offline();
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st) * CLUSTER);
	ntmm_bench_set_bytes(st, (int64_t)ntmm_bench_iterations(st) * CLUSTER * PAGE);
}

static void *write_setup(int threads)
{
	return pf_setup(NTMM__IO_AUTO, 0);
}
static void *write_setup_uring(int threads)
{
	return pf_setup(NTMM__IO_URING, 0);
}
NTMM_BENCH(BM_pagefile_write_cluster, .run = run_pagefile_write_cluster, .setup = write_setup,
           .teardown = pf_teardown, .real_time = 1)
NTMM_BENCH(BM_pagefile_write_cluster_uring, .run = run_pagefile_write_cluster,
           .setup = write_setup_uring, .teardown = pf_teardown, .real_time = 1)

/* What the writer does with a full batch: 8 clusters of 16 pages in one
   call (one io_uring submission, or 8 pwritev calls on the sync backend). */
#define BATCH 8u
static void run_pagefile_write_batch(ntmm_bench_state_t *st, void *ctx)
{
	pfbench_t *b = ctx;
	if (b->skip) {
		ntmm_bench_skip(st, b->skip);
		return;
	}
	ntmm__rcu_thread_online();
	ntmm__pfio_t v[BATCH];
	while (ntmm_bench_keep_running(st)) {
		for (unsigned i = 0; i < BATCH; i++) {
			size_t got;
			if (ntmm__pagefile_alloc_nogrow(&b->io, CLUSTER, CLUSTER, &v[i].loc, &got))
				abort();
			v[i].pages = b->pv;
			v[i].npages = CLUSTER;
		}
		if (ntmm__pagefile_io(&b->io, true, v, BATCH))
			abort();
		for (unsigned i = 0; i < BATCH; i++)
			ntmm__pagefile_free(&b->io, v[i].loc, CLUSTER);
	}
	ntmm__rcu_thread_offline();
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st) * CLUSTER * BATCH);
	ntmm_bench_set_bytes(st, (int64_t)ntmm_bench_iterations(st) * CLUSTER * BATCH * PAGE);
}
NTMM_BENCH(BM_pagefile_write_batch, .run = run_pagefile_write_batch, .setup = write_setup,
           .teardown = pf_teardown, .real_time = 1)
NTMM_BENCH(BM_pagefile_write_batch_uring, .run = run_pagefile_write_batch,
           .setup = write_setup_uring, .teardown = pf_teardown, .real_time = 1)

/* A batch of 8 single-page reads at random slots in one call (one io_uring
   submission, or 8 preads on the sync backend). */
static void run_pagefile_read_batch(ntmm_bench_state_t *st, void *ctx)
{
	pfbench_t *b = ctx;
	if (b->skip) {
		ntmm_bench_skip(st, b->skip);
		return;
	}
	ntmm__pfio_t v[BATCH];
	while (ntmm_bench_keep_running(st)) {
		for (unsigned i = 0; i < BATCH; i++) {
			uint64_t slot = 1 + rnd(&b->seed) % (DATA_PAGES - 1);
			v[i].loc = ntmm__pfloc_make(b->index, slot);
			v[i].pages = &b->pv[i];
			v[i].npages = 1;
		}
		if (ntmm__pagefile_io(&b->io, false, v, BATCH))
			abort();
	}
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st) * BATCH);
	ntmm_bench_set_bytes(st, (int64_t)ntmm_bench_iterations(st) * BATCH * PAGE);
}
NTMM_BENCH(BM_pagefile_read_batch, .run = run_pagefile_read_batch, .setup = read_setup,
           .teardown = pf_teardown, .real_time = 1)
NTMM_BENCH(BM_pagefile_read_batch_sync, .run = run_pagefile_read_batch, .setup = read_setup_sync,
           .teardown = pf_teardown, .real_time = 1)

/* ------------------------------------------------------- userfaultfd peer */

typedef struct uffd_bench {
	rawfile_t *raw; /* the data file the handler reads */
	int uffd, stopfd;
	char *region;
	void *page; /* the handler's bounce buffer */
	pthread_t handler;
	int handler_started;
	uint32_t *order; /* a random permutation of the region's pages */
	const char *skip;
	char why[160];
} uffd_bench_t;

static void *uffd_handler(void *arg)
{
	uffd_bench_t *u = arg;
	struct pollfd pf[2] = {{.fd = u->uffd, .events = POLLIN},
	                       {.fd = u->stopfd, .events = POLLIN}};
	for (;;) {
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[1].revents)
			break;
		struct uffd_msg msg;
		ssize_t n = read(u->uffd, &msg, sizeof(msg));
		if (n != sizeof(msg) || msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		uint64_t addr = msg.arg.pagefault.address & ~(uint64_t)(PAGE - 1);
		uint64_t off = addr - (uint64_t)(uintptr_t)u->region;
		if (pread(u->raw->fd, u->page, PAGE, (off_t)off) != PAGE)
			abort();
		struct uffdio_copy copy = {
		    .dst = addr, .src = (uint64_t)(uintptr_t)u->page, .len = PAGE};
		if (ioctl(u->uffd, UFFDIO_COPY, &copy) < 0 && errno != EEXIST)
			abort();
	}
	return NULL;
}

static void *uffd_setup(int threads)
{
	uffd_bench_t *u = calloc(1, sizeof(*u));
	u->uffd = u->stopfd = -1;
	u->raw = raw_setup();
	if (u->raw->skip) {
		u->skip = u->raw->skip;
		return u;
	}
	u->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (u->uffd < 0) {
		snprintf(u->why, sizeof(u->why), "userfaultfd unavailable: %s", strerror(errno));
		u->skip = u->why;
		return u;
	}
	struct uffdio_api api = {.api = UFFD_API};
	if (ioctl(u->uffd, UFFDIO_API, &api) < 0) {
		snprintf(u->why, sizeof(u->why), "UFFDIO_API: %s", strerror(errno));
		u->skip = u->why;
		return u;
	}
	u->region = mmap(NULL, (size_t)UFFD_PAGES * PAGE, PROT_READ | PROT_WRITE,
	                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (u->region == MAP_FAILED) {
		u->region = NULL;
		u->skip = "mmap failed";
		return u;
	}
	/* 4 KiB faults, as the page-granular peers */
	madvise(u->region, (size_t)UFFD_PAGES * PAGE, MADV_NOHUGEPAGE);
	struct uffdio_register reg = {
	    .range = {.start = (uint64_t)(uintptr_t)u->region, .len = (uint64_t)UFFD_PAGES * PAGE},
	    .mode = UFFDIO_REGISTER_MODE_MISSING};
	if (ioctl(u->uffd, UFFDIO_REGISTER, &reg) < 0) {
		snprintf(u->why, sizeof(u->why), "UFFDIO_REGISTER: %s", strerror(errno));
		u->skip = u->why;
		return u;
	}
	u->page = aligned_alloc(PAGE, PAGE);
	u->stopfd = eventfd(0, EFD_CLOEXEC);
	u->order = malloc(UFFD_PAGES * sizeof(*u->order));
	for (uint32_t i = 0; i < UFFD_PAGES; i++)
		u->order[i] = i;
	uint64_t s = 0xabc;
	for (uint32_t i = UFFD_PAGES - 1; i > 0; i--) {
		uint32_t j = (uint32_t)(rnd(&s) % (i + 1)), t = u->order[i];
		u->order[i] = u->order[j];
		u->order[j] = t;
	}
	if (pthread_create(&u->handler, NULL, uffd_handler, u)) {
		u->skip = "cannot start the handler thread";
		return u;
	}
	u->handler_started = 1;
	/* the mechanism really serves the file's data */
	uint64_t *w = (uint64_t *)(u->region + 7 * PAGE);
	if (w[3] != 7 * 0x9e3779b97f4a7c15ULL + 3)
		u->skip = "userfaultfd served wrong data";
	madvise(u->region, (size_t)UFFD_PAGES * PAGE, MADV_DONTNEED);
	return u;
}

static void uffd_teardown(void *ctx)
{
	uffd_bench_t *u = ctx;
	if (u->handler_started) {
		uint64_t one = 1;
		if (write(u->stopfd, &one, sizeof(one)) != sizeof(one))
			abort();
		pthread_join(u->handler, NULL);
	}
	if (u->region)
		munmap(u->region, (size_t)UFFD_PAGES * PAGE);
	if (u->uffd >= 0)
		close(u->uffd);
	if (u->stopfd >= 0)
		close(u->stopfd);
	raw_teardown(u->raw);
	free(u->page);
	free(u->order);
	free(u);
}

static void run_peer_userfaultfd_fault(ntmm_bench_state_t *st, void *ctx)
{
	uffd_bench_t *u = ctx;
	if (u->skip) {
		ntmm_bench_skip(st, u->skip);
		return;
	}
	uint32_t i = 0;
	uint64_t sum = 0;
	while (ntmm_bench_keep_running(st)) {
		if (i == UFFD_PAGES) {
			ntmm_bench_pause(st);
			madvise(u->region, (size_t)UFFD_PAGES * PAGE, MADV_DONTNEED);
			i = 0;
			ntmm_bench_resume(st);
		}
		sum += *(volatile uint64_t *)(u->region + (size_t)u->order[i++] * PAGE);
	}
	ntmm_bench_escape(&sum);
	ntmm_bench_set_items(st, (int64_t)ntmm_bench_iterations(st));
	/* leave the region empty for the next run */
	madvise(u->region, (size_t)UFFD_PAGES * PAGE, MADV_DONTNEED);
}
NTMM_BENCH(BM_peer_userfaultfd_fault, .run = run_peer_userfaultfd_fault, .setup = uffd_setup,
           .teardown = uffd_teardown, .real_time = 1)
