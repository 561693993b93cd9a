/* The I/O ring pool: batches of vectored requests through io_uring and
   through the preadv/pwritev fallback, per-request results, concurrency. */
#include "iotest.h"

#include <errno.h>
#include <fcntl.h>

typedef struct fixture {
	char *dir, *path;
	int fd;
} fixture_t;

static int setup(void **state)
{
	fixture_t *f = calloc(1, sizeof(*f));
	f->dir = io_tmpdir();
	f->path = io_path(f->dir, "ring.dat");
	f->fd = open(f->path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(f->fd >= 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture_t *f = *state;
	close(f->fd);
	free(f->path);
	io_rmtree(f->dir);
	free(f);
	return 0;
}

/* Writes nreq clusters of 1..16 pages in one submit, reads them back into
   fresh buffers in one submit, and checks every page. */
static void write_read_batch(int backend, int fd, unsigned nreq)
{
	ntmm__ioring_pool_t pool;
	int err = ntmm__ioring_pool_init(&pool, backend, 2);
	if (err == NTMM_ENOTSUP) {
		skip();
		return;
	}
	assert_int_equal(err, 0);
	assert_int_equal(pool.backend, backend == NTMM__IO_SYNC ? NTMM__IO_SYNC : NTMM__IO_URING);

	ntmm__ioreq_t *w = calloc(nreq, sizeof(*w)), *r = calloc(nreq, sizeof(*r));
	struct iovec *wiov = calloc(nreq * 16, sizeof(*wiov)),
	             *riov = calloc(nreq * 16, sizeof(*riov));
	unsigned *len = calloc(nreq, sizeof(*len));
	uint64_t off = 0;
	for (unsigned i = 0; i < nreq; i++) {
		len[i] = 1 + i % 16;
		for (unsigned p = 0; p < len[i]; p++) {
			wiov[i * 16 + p].iov_base = page_alloc(1);
			wiov[i * 16 + p].iov_len = PAGE;
			page_fill(wiov[i * 16 + p].iov_base, i * 16 + p, (uint64_t)backend);
			riov[i * 16 + p].iov_base = page_alloc(1);
			riov[i * 16 + p].iov_len = PAGE;
		}
		w[i] = (ntmm__ioreq_t){.fd = fd,
		                       .write = true,
		                       .offset = off,
		                       .iov = &wiov[i * 16],
		                       .iovcnt = len[i],
		                       .len = (size_t)len[i] * PAGE};
		r[i] = w[i];
		r[i].write = false;
		r[i].iov = &riov[i * 16];
		off += (uint64_t)len[i] * PAGE;
	}
	assert_int_equal(ntmm__ioring_submit(&pool, w, nreq), 0);
	for (unsigned i = 0; i < nreq; i++)
		assert_int_equal(w[i].res, (ssize_t)w[i].len);
	assert_int_equal(ntmm__ioring_submit(&pool, r, nreq), 0);
	for (unsigned i = 0; i < nreq; i++) {
		assert_int_equal(r[i].res, (ssize_t)r[i].len);
		for (unsigned p = 0; p < len[i]; p++) {
			assert_true(
			    page_check(riov[i * 16 + p].iov_base, i * 16 + p, (uint64_t)backend));
			free(wiov[i * 16 + p].iov_base);
			free(riov[i * 16 + p].iov_base);
		}
	}
	/* the batches really went through the ring: one per ring-full */
	uint64_t per = (nreq + pool.depth - 1) / pool.depth;
	assert_int_equal(ntmm__ioring_batches(&pool), backend == NTMM__IO_SYNC ? 0 : 2 * per);
	free(w), free(r), free(wiov), free(riov), free(len);
	ntmm__ioring_pool_fini(&pool);
}

static void uring_batch_round_trips(void **state)
{
	write_read_batch(NTMM__IO_URING, ((fixture_t *)*state)->fd, 40);
}

static void uring_batch_larger_than_ring_depth(void **state)
{
	write_read_batch(NTMM__IO_URING, ((fixture_t *)*state)->fd, 200);
}

static void sync_batch_round_trips(void **state)
{
	write_read_batch(NTMM__IO_SYNC, ((fixture_t *)*state)->fd, 40);
}

/* Auto: single requests and writes go straight to preadv/pwritev; read
   batches go through the ring. Forced io_uring: everything does. */
static void auto_uses_the_ring_for_read_batches_only(void **state)
{
	fixture_t *f = *state;
	ntmm__ioring_pool_t pool;
	assert_int_equal(ntmm__ioring_pool_init(&pool, NTMM__IO_AUTO, 1), 0);
	if (pool.backend != NTMM__IO_URING) {
		ntmm__ioring_pool_fini(&pool);
		skip();
		return;
	}
	void *pg = page_alloc(2);
	struct iovec iov[2] = {{pg, PAGE}, {(char *)pg + PAGE, PAGE}};
	ntmm__ioreq_t q[2] = {
	    {.fd = f->fd, .write = true, .offset = 0, .iov = &iov[0], .iovcnt = 1, .len = PAGE},
	    {.fd = f->fd, .write = true, .offset = PAGE, .iov = &iov[1], .iovcnt = 1, .len = PAGE},
	};
	assert_int_equal(ntmm__ioring_submit(&pool, q, 1), 0);
	assert_int_equal(ntmm__ioring_submit(&pool, q, 2), 0);
	assert_int_equal(ntmm__ioring_batches(&pool), 0);
	q[0].write = q[1].write = false;
	assert_int_equal(ntmm__ioring_submit(&pool, q, 1), 0);
	assert_int_equal(ntmm__ioring_batches(&pool), 0);
	assert_int_equal(ntmm__ioring_submit(&pool, q, 2), 0);
	assert_int_equal(ntmm__ioring_batches(&pool), 1);
	ntmm__ioring_pool_fini(&pool);

	assert_int_equal(ntmm__ioring_pool_init(&pool, NTMM__IO_URING, 1), 0);
	q[0].write = true;
	assert_int_equal(ntmm__ioring_submit(&pool, q, 1), 0);
	assert_int_equal(ntmm__ioring_batches(&pool), 1);
	free(pg);
	ntmm__ioring_pool_fini(&pool);
}

static void auto_backend_records_what_it_chose(void **state)
{
	ntmm__ioring_pool_t pool;
	assert_int_equal(ntmm__ioring_pool_init(&pool, NTMM__IO_AUTO, 0), 0);
	assert_true(pool.backend == NTMM__IO_URING || pool.backend == NTMM__IO_SYNC);
	assert_true(strlen(pool.why) > 0);
	assert_true(pool.nrings >= 1);
	ntmm__ioring_pool_fini(&pool);
	assert_int_equal(ntmm__ioring_pool_init(&pool, 7, 0), NTMM_EINVAL);
}

/* One bad request in a batch fails alone; the others complete. */
static void each_request_gets_its_own_result(void **state)
{
	fixture_t *f = *state;
	int ro = open(f->path, O_RDONLY);
	assert_true(ro >= 0);
	for (int backend = NTMM__IO_URING; backend <= NTMM__IO_SYNC; backend++) {
		ntmm__ioring_pool_t pool;
		assert_int_equal(ntmm__ioring_pool_init(&pool, backend, 1), 0);
		void *pg = page_alloc(3);
		assert_true(backend == NTMM__IO_SYNC || pool.uring_min_batch[1] == 1);
		struct iovec iov[3] = {
		    {pg, PAGE}, {(char *)pg + PAGE, PAGE}, {(char *)pg + 2 * PAGE, PAGE}};
		ntmm__ioreq_t q[3] = {
		    {.fd = f->fd,
		     .write = true,
		     .offset = 0,
		     .iov = &iov[0],
		     .iovcnt = 1,
		     .len = PAGE},
		    {.fd = ro,
		     .write = true,
		     .offset = PAGE,
		     .iov = &iov[1],
		     .iovcnt = 1,
		     .len = PAGE},
		    {.fd = f->fd,
		     .write = true,
		     .offset = 2 * PAGE,
		     .iov = &iov[2],
		     .iovcnt = 1,
		     .len = PAGE},
		};
		assert_int_equal(ntmm__ioring_submit(&pool, q, 3), NTMM_EIO);
		assert_int_equal(q[0].res, PAGE);
		assert_int_equal(q[1].res, -EBADF);
		assert_int_equal(q[2].res, PAGE);
		free(pg);
		ntmm__ioring_pool_fini(&pool);
	}
	close(ro);
}

/* A read past the end of the file comes back short, not as success. */
static void read_past_end_is_short(void **state)
{
	fixture_t *f = *state;
	assert_int_equal(ftruncate(f->fd, PAGE + PAGE / 2), 0);
	for (int backend = NTMM__IO_URING; backend <= NTMM__IO_SYNC; backend++) {
		ntmm__ioring_pool_t pool;
		assert_int_equal(ntmm__ioring_pool_init(&pool, backend, 1), 0);
		void *pg = page_alloc(2);
		struct iovec iov[2] = {{pg, PAGE}, {(char *)pg + PAGE, PAGE}};
		ntmm__ioreq_t q = {
		    .fd = f->fd, .offset = 0, .iov = iov, .iovcnt = 2, .len = 2 * PAGE};
		assert_int_equal(ntmm__ioring_submit(&pool, &q, 1), NTMM_EIO);
		assert_int_equal(q.res, PAGE + PAGE / 2);
		free(pg);
		ntmm__ioring_pool_fini(&pool);
	}
}

/* More submitting threads than rings and cores; each owns a region. */
typedef struct worker {
	ntmm__ioring_pool_t *pool;
	int fd;
	unsigned id;
} worker_t;

#define WORKERS 6
#define REGION  32u /* pages per worker */

static void *ring_worker(void *arg)
{
	worker_t *w = arg;
	void *buf = page_alloc(REGION), *back = page_alloc(REGION);
	long rounds = scaled(60);
	for (long r = 0; r < rounds; r++) {
		ntmm__ioreq_t q[4];
		struct iovec iov[REGION], riov[REGION];
		for (unsigned p = 0; p < REGION; p++) {
			page_fill((char *)buf + p * PAGE, w->id * REGION + p, (uint64_t)r);
			iov[p] = (struct iovec){(char *)buf + p * PAGE, PAGE};
			riov[p] = (struct iovec){(char *)back + p * PAGE, PAGE};
		}
		for (unsigned k = 0; k < 4; k++)
			q[k] = (ntmm__ioreq_t){.fd = w->fd,
			                       .write = true,
			                       .offset = ((uint64_t)w->id * REGION + k * 8) * PAGE,
			                       .iov = &iov[k * 8],
			                       .iovcnt = 8,
			                       .len = 8 * PAGE};
		WORKER_CHECK(ntmm__ioring_submit(w->pool, q, 4) == 0);
		for (unsigned k = 0; k < 4; k++) {
			q[k].write = false;
			q[k].iov = &riov[k * 8];
		}
		WORKER_CHECK(ntmm__ioring_submit(w->pool, q, 4) == 0);
		for (unsigned p = 0; p < REGION; p++)
			WORKER_CHECK(
			    page_check((char *)back + p * PAGE, w->id * REGION + p, (uint64_t)r));
	}
	free(buf);
	free(back);
	return NULL;
}

static void concurrent_submitters_share_the_rings(void **state)
{
	fixture_t *f = *state;
	for (int backend = NTMM__IO_URING; backend <= NTMM__IO_SYNC; backend++) {
		ntmm__ioring_pool_t pool;
		assert_int_equal(ntmm__ioring_pool_init(&pool, backend, 2), 0);
		worker_t w[WORKERS];
		for (unsigned i = 0; i < WORKERS; i++)
			w[i] = (worker_t){&pool, f->fd, i};
		atomic_store(&test_failures, 0);
		run_threads(WORKERS, ring_worker, w, sizeof(w[0]));
		assert_int_equal(atomic_load(&test_failures), 0);
		ntmm__ioring_pool_fini(&pool);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(uring_batch_round_trips, setup, teardown),
	    cmocka_unit_test_setup_teardown(uring_batch_larger_than_ring_depth, setup, teardown),
	    cmocka_unit_test_setup_teardown(sync_batch_round_trips, setup, teardown),
	    cmocka_unit_test(auto_backend_records_what_it_chose),
	    cmocka_unit_test_setup_teardown(auto_uses_the_ring_for_read_batches_only, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(each_request_gets_its_own_result, setup, teardown),
	    cmocka_unit_test_setup_teardown(read_past_end_is_short, setup, teardown),
	    cmocka_unit_test_setup_teardown(concurrent_submitters_share_the_rings, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
