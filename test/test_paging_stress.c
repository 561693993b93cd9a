/*
 * Paging under pressure with the system threads running: several processes
 * whose commit totals 4x the frames write page-unique patterns and read them
 * back, round after round, emptying their working sets as they go, so every
 * page is trimmed, written by the modified page writer, repurposed and
 * hard-faulted back; every byte is checked, then the audit, and no paging-
 * file slot may outlive the processes. The same again through the
 * fault-injecting driver (reads and writes failing at random): nothing is
 * lost, failed reads come back as NTMM_EIO and a retry succeeds. Also: the
 * writer's trigger wakes it, both writers report their policy, and
 * shutdown with a write held in flight (a gating driver) over create/
 * destroy cycles: the write completes inside destroy and no paging-file
 * store or file descriptor outlives an engine (other leaks: ASan).
 *
 * The writers run at their seed priorities (17, SCHED_FIFO where
 * permitted): the workload finishing on a 2-core machine is the check that
 * they do not starve it.
 */
#include "paging_testutil.h"

#include <dirent.h>
#include <errno.h>
#include "fixture.h"

/* The engine (and paging file) of each test that needs one comes from
   its setup; the teardown destroys it even after a failed assert. */
static paging_env_t fx;

static int setup_16_16_64_threads(void **state)
{
	fx = paging_env(16, 16, 64, true, false);
	*state = &fx;
	return 0;
}
static int setup_8_8_32_threads(void **state)
{
	fx = paging_env(8, 8, 32, true, false);
	*state = &fx;
	return 0;
}
static int setup_8_4_8_threads(void **state)
{
	fx = paging_env(8, 4, 8, true, false);
	*state = &fx;
	return 0;
}
static int teardown(void **state)
{
	if (fx.e) {
		fixture_close_sections(fx.e);
		paging_env_done(&fx);
	}
	fx = (paging_env_t){0};
	return 0;
}

#define NPROC 4

typedef struct worker {
	ntmm_engine_t *e;
	ntmm_process_t *p;
	uint64_t a;
	size_t n;
	uint64_t tag;
	int rounds;
	long eio, enomem;
} worker_t;

/* One access with the retries a program under memory pressure makes. */
static int access_retry(worker_t *w, uint64_t va, void *buf, bool write)
{
	for (int tries = 0; tries < 100000; tries++) {
		int err = write ? ntmm_write(w->p, va, buf, PG) : ntmm_read(w->p, va, buf, PG);
		if (err == 0)
			return 0;
		if (err == NTMM_EIO) {
			w->eio++;
			continue;
		}
		if (err == NTMM_ENOMEM) {
			w->enomem++;
			ntmm_ws_empty(w->p);
			continue;
		}
		return err;
	}
	return NTMM_EBUSY;
}

static void *worker_main(void *arg)
{
	worker_t *w = arg;
	WORKER_CHECK(ntmm_thread_register(w->e) == 0);
	void *buf = aligned_alloc(4096, 4096);
	for (int r = 0; r < w->rounds; r++) {
		for (size_t i = 0; i < w->n; i++) {
			page_fill(buf, w->tag + i, (uint64_t)r);
			WORKER_CHECK(access_retry(w, w->a + i * PG, buf, true) == 0);
			if (i % 64 == 63)
				ntmm_ws_empty(w->p);
		}
		ntmm_ws_empty(w->p);
		for (size_t i = 0; i < w->n; i++) {
			WORKER_CHECK(access_retry(w, w->a + i * PG, buf, false) == 0);
			WORKER_CHECK(page_check(buf, w->tag + i, (uint64_t)r));
			if (i % 64 == 63)
				ntmm_ws_empty(w->p);
		}
	}
	free(buf);
	ntmm_thread_unregister(w->e);
	return NULL;
}

static void overcommit_run(bool faulty)
{
	size_t pool_mib = test_scale() >= 1 ? 16 : 8;
	size_t frames = pool_mib * MiB / PG;
	/* commit 4x the frames: the paging file must hold the other 3x */
	paging_env_t v = paging_env(pool_mib, pool_mib, pool_mib * 5, true, faulty);
	if (faulty) {
		atomic_store(&v.fd->fail_read_ppm, 20000);  /* 2% of read requests */
		atomic_store(&v.fd->fail_write_ppm, 20000); /* 2% of write requests */
	}
	worker_t w[NPROC];
	pthread_t t[NPROC];
	size_t per = 4 * frames / NPROC;
	for (int i = 0; i < NPROC; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].e = v.e;
		assert_int_equal(ntmm_process_create(v.e, &w[i].p), 0);
		w[i].a = commit_pages(w[i].p, per);
		w[i].n = per;
		w[i].tag = (uint64_t)(i + 1) << 32;
		w[i].rounds = 2;
	}
	assert_true(PSTAT(v.e, commit_pages) >= 4 * frames);
	for (int i = 0; i < NPROC; i++)
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	for (int i = 0; i < NPROC; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&test_failures), 0);

	/* every page went out and came back: the totals say so */
	uint64_t total = 4 * frames;
	long eio0 = 0, enomem = 0;
	for (int i = 0; i < NPROC; i++) {
		eio0 += w[i].eio;
		enomem += w[i].enomem;
	}
	fprintf(stderr,
	        "%s: %llu pages committed; written %llu, hard faults %llu, soft %llu, "
	        "repurposed %llu, io errors %llu, EIO seen %ld, ENOMEM retried %ld\n",
	        faulty ? "faulty" : "clean", (unsigned long long)total,
	        (unsigned long long)PSTAT(v.e, pages_written),
	        (unsigned long long)PSTAT(v.e, hard_faults),
	        (unsigned long long)PSTAT(v.e, soft_faults),
	        (unsigned long long)PSTAT(v.e, standby_repurposed),
	        (unsigned long long)PSTAT(v.e, io_errors), eio0, enomem);
	assert_true(PSTAT(v.e, pages_written) >= total);
	assert_true(PSTAT(v.e, hard_faults) >= total);
	assert_true(PSTAT(v.e, standby_repurposed) >= total);
	long eio = 0;
	for (int i = 0; i < NPROC; i++)
		eio += w[i].eio;
	if (faulty) {
		assert_true(eio > 0);
		assert_true(PSTAT(v.e, io_errors) > 0);
	} else {
		assert_int_equal(eio, 0);
	}
	assert_int_equal(ntmm_audit(v.e), 0);
	for (int i = 0; i < NPROC; i++)
		assert_int_equal(ntmm_process_destroy(w[i].p), 0);
	/* a write still in flight for a destroyed page frees its slot on
	   completion */
	assert_true(WAIT_UNTIL(PSTAT(v.e, pagefile_pages) == 0, 60));
	assert_int_equal(PSTAT(v.e, commit_pages), 0);
	assert_int_equal(ntmm_audit(v.e), 0);
	paging_env_done(&v);
}

static void integrity_under_4x_overcommit(void **s)
{
	overcommit_run(false);
}

static void integrity_under_4x_overcommit_with_io_errors(void **s)
{
	overcommit_run(true);
}

static void modified_list_mark_wakes_the_writer(void **s)
{
	paging_env_t v = *(paging_env_t *)*s; /* the fixture's handles */
	ntmm__mpw_t *mpw = &v.e->systhreads.mpw;
	size_t n = atomic_load(&v.e->phys.modified_high) * 2;
	ntmm_process_t *p;
	assert_int_equal(ntmm_process_create(v.e, &p), 0);
	uint64_t a = commit_pages(p, n);
	char c = 1;
	for (size_t i = 0; i < n; i++)
		assert_int_equal(ntmm_write(p, a + i * PG, &c, 1), 0);
	uint64_t wakes0 = atomic_load(&mpw->trigger_wakes);
	/* plenty of free frames: only the Modified mark can wake it */
	assert_int_equal(ntmm_ws_empty(p), 0);
	/* it writes at least down below the mark (what is left under the mark
	   waits for a short allocator or the next crossing, as in NT) */
	size_t high = atomic_load(&v.e->phys.modified_high);
	assert_true(
	    WAIT_UNTIL(atomic_load(&mpw->pages) >= high && PSTAT(v.e, modified_pages) < high, 60));
	assert_true(atomic_load(&mpw->trigger_wakes) > wakes0);
	assert_true(PSTAT(v.e, pagefile_pages) >= high);
	assert_int_equal(ntmm_audit(v.e), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	/* a batch in flight frees its slots when it completes */
	assert_true(WAIT_UNTIL(PSTAT(v.e, pagefile_pages) == 0, 60));
}

/* With the Modified mark out of reach, only the allocator running short
   can wake the writer: a fault that finds every frame Modified waits for
   it and then succeeds. */
static void short_allocator_wakes_the_writer(void **s)
{
	paging_env_t v = *(paging_env_t *)*s;             /* the fixture's handles */
	atomic_store(&v.e->phys.modified_high, SIZE_MAX); /* the mark never triggers */
	ntmm__mpw_t *mpw = &v.e->systhreads.mpw;
	size_t frames = v.e->phys.nframes;
	ntmm_process_t *p1, *p2;
	assert_int_equal(ntmm_process_create(v.e, &p1), 0);
	assert_int_equal(ntmm_process_create(v.e, &p2), 0);
	size_t n1 = frames * 3 / 4, n2 = frames / 2;
	uint64_t a1 = commit_pages(p1, n1), a2 = commit_pages(p2, n2);
	static _Alignas(4096) char buf[4096];
	for (size_t i = 0; i < n1; i++) {
		page_fill(buf, 77000 + i, 1);
		assert_int_equal(ntmm_write(p1, a1 + i * PG, buf, PG), 0);
	}
	assert_int_equal(ntmm_ws_empty(p1), 0);
	uint64_t written0 = atomic_load(&mpw->pages);
	char c = 9;
	for (size_t i = 0; i < n2; i++)
		assert_int_equal(ntmm_write(p2, a2 + i * PG, &c, 1), 0);
	assert_true(atomic_load(&mpw->pages) > written0);
	/* no working set manager here: make room by hand while reading back */
	assert_int_equal(ntmm_ws_empty(p2), 0);
	for (size_t i = 0; i < n1; i++) {
		if (i % 256 == 255)
			assert_int_equal(ntmm_ws_empty(p1), 0);
		assert_int_equal(ntmm_read(p1, a1 + i * PG, buf, PG), 0);
		assert_true(page_check(buf, 77000 + i, 1));
	}
	assert_int_equal(ntmm_audit(v.e), 0);
}

static int ran;
static void mark_ran(ntmm_engine_t *e, ntmm__mapped_work_t *w)
{
	(void)e;
	(void)w;
	__atomic_store_n(&ran, 1, __ATOMIC_RELEASE);
}

static void writers_report_their_policy_and_mapped_queue_runs(void **s)
{
	paging_env_t v = *(paging_env_t *)*s; /* the fixture's handles */
	ntmm__systhreads_t *st = &v.e->systhreads;
	assert_true(st->mpw.t.policy != 0);
	assert_true(st->mapped.t.policy != 0);
	assert_int_equal(st->mpw.t.nt_priority,
	                 v.e->cfg.thread_priority[NTMM_THREAD_MODIFIED_WRITER]);
	assert_int_equal(st->mapped.t.nt_priority,
	                 v.e->cfg.thread_priority[NTMM_THREAD_MAPPED_WRITER]);
	char buf[64];
	assert_non_null(ntmm__thread_policy_str(&st->mpw.t, buf, sizeof(buf)));
	ntmm__mapped_work_t w = {.fn = mark_ran};
	ntmm__mapped_writer_queue(&st->mapped, &w);
	assert_true(WAIT_UNTIL(__atomic_load_n(&ran, __ATOMIC_ACQUIRE), 60));
}

/* A backing-store driver over the file driver whose writes can be held at
   a gate: while the gate is closed a write that enters stays in flight
   (entered, not returned) until the test opens it. Everything else passes
   straight through; it counts the stores opened and closed. */
typedef struct gatedrv {
	ntmm__bsdriver_t drv; /* registered as "gated" */
	ntmm__bsdriver_t *lower;
	pthread_mutex_t lock;
	pthread_cond_t opened;
	bool closed;                 /* lock: entering writes wait while set */
	atomic_int in_flight;        /* writes inside write() now */
	atomic_long held;            /* writes that waited at the closed gate */
	atomic_bool destroying;      /* the test is destroying the engine */
	atomic_long done_in_destroy; /* writes that returned after that began */
	atomic_long opens, closes;
} gatedrv_t;

#define GATE(d)        ((gatedrv_t *)(d)->arg)
#define GATE_HOLD_MAX  30 /* s a write may be held: beyond it the test failed */
#define GATE_WAIT_STOP 10 /* s to wait for destroy to stop the writer */

static int gate_open_store(ntmm__bsdriver_t *d, ntmm__io_t *io, const char *path, void **store)
{
	gatedrv_t *g = GATE(d);
	int r = g->lower->ops->open(g->lower, io, path, store);
	if (r == 0)
		atomic_fetch_add(&g->opens, 1);
	return r;
}

static void gate_close_store(ntmm__bsdriver_t *d, void *store)
{
	gatedrv_t *g = GATE(d);
	g->lower->ops->close(g->lower, store);
	atomic_fetch_add(&g->closes, 1);
}

static int gate_read(ntmm__bsdriver_t *d, void *store, ntmm__ioreq_t *reqs, unsigned n)
{
	gatedrv_t *g = GATE(d);
	return g->lower->ops->read(g->lower, store, reqs, n);
}

static int gate_write(ntmm__bsdriver_t *d, void *store, ntmm__ioreq_t *reqs, unsigned n)
{
	gatedrv_t *g = GATE(d);
	atomic_fetch_add(&g->in_flight, 1);
	pthread_mutex_lock(&g->lock);
	if (g->closed) {
		atomic_fetch_add(&g->held, 1);
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += GATE_HOLD_MAX;
		int r = 0;
		while (g->closed && r != ETIMEDOUT)
			r = pthread_cond_timedwait(&g->opened, &g->lock, &until);
		WORKER_CHECK(r != ETIMEDOUT); /* nobody opened it: a hang */
	}
	pthread_mutex_unlock(&g->lock);
	int r = g->lower->ops->write(g->lower, store, reqs, n);
	if (atomic_load(&g->destroying))
		atomic_fetch_add(&g->done_in_destroy, 1);
	atomic_fetch_sub(&g->in_flight, 1);
	return r;
}

static int gate_flush(ntmm__bsdriver_t *d, void *store)
{
	gatedrv_t *g = GATE(d);
	return g->lower->ops->flush(g->lower, store);
}

static int gate_grow(ntmm__bsdriver_t *d, void *store, uint64_t bytes)
{
	gatedrv_t *g = GATE(d);
	return g->lower->ops->grow(g->lower, store, bytes);
}

static int gate_shrink(ntmm__bsdriver_t *d, void *store, uint64_t bytes)
{
	gatedrv_t *g = GATE(d);
	return g->lower->ops->shrink(g->lower, store, bytes);
}

/* no direct_fd: every write goes through gate_write */
static const ntmm__bsdriver_ops_t gate_ops = {
    .open = gate_open_store,
    .close = gate_close_store,
    .read = gate_read,
    .write = gate_write,
    .flush = gate_flush,
    .grow = gate_grow,
    .shrink = gate_shrink,
};

static void gate_set(gatedrv_t *g, bool closed)
{
	pthread_mutex_lock(&g->lock);
	g->closed = closed;
	pthread_cond_broadcast(&g->opened);
	pthread_mutex_unlock(&g->lock);
}

/* Opens the gate once the engine's destroy has asked the modified page
   writer to stop (the writer is then still inside its held write), or
   after GATE_WAIT_STOP s; the engine cannot be freed before the gate
   opens (destroy joins the writer), so reading its stop flag is safe. */
typedef struct releaser {
	gatedrv_t *g;
	ntmm__thread_t *writer;
	bool saw_stop;
} releaser_t;

static void *release_on_stop(void *arg)
{
	releaser_t *r = arg;
	uint64_t end = test_now_ns() + GATE_WAIT_STOP * 1000000000ull;
	while (!(r->saw_stop = ntmm__thread_should_stop(r->writer)) && test_now_ns() < end) {
		struct timespec ts = {0, 100000};
		nanosleep(&ts, NULL);
	}
	gate_set(r->g, false);
	return NULL;
}

static size_t open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	size_t n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Destroy the engine (processes alive) while the modified page writer has
   a write in flight; then again, a few times. The in-flight write
   completes inside destroy, the paging file is closed and deleted, and no
   file descriptor outlives an engine (ASan reports any other leak, TSan
   any race). */
static void shutdown_with_writes_in_flight_and_cycles(void **s)
{
	size_t fds0 = open_fds();
	for (int cycle = 0; cycle < 3; cycle++) {
		gatedrv_t g = {.drv = {.name = "gated", .ops = &gate_ops}};
		g.drv.arg = &g;
		pthread_mutex_init(&g.lock, NULL);
		pthread_cond_init(&g.opened, NULL);
		char *dir = io_tmpdir(), *path = io_path(dir, "pagefile.sys");
		ntmm_config_t c;
		ntmm_config_init(&c);
		c.physical_bytes = 8 * MiB;
		c.start_threads = true;
		c.pagefile_path = NULL; /* added below, through the gated driver */
		c.pagefile_initial = 8 * MiB;
		c.pagefile_maximum = 32 * MiB;
		ntmm_engine_t *e;
		assert_int_equal(ntmm_engine_create(&c, &e), 0);
		assert_int_equal(ntmm_thread_register(e), 0);
		g.lower = &e->io.file_driver;
		assert_int_equal(ntmm__io_driver_register(&e->io, &g.drv), 0);
		assert_int_equal(ntmm__pagefile_add(&e->io, path, 8 * MiB, 32 * MiB, "gated", NULL),
		                 0);
		/* 3072 pages on 2048 frames: the writer works during the fill */
		ntmm_process_t *p[2];
		size_t n = 1536;
		for (int i = 0; i < 2; i++) {
			assert_int_equal(ntmm_process_create(e, &p[i]), 0);
			uint64_t a = commit_pages(p[i], n);
			char ch = (char)i;
			for (size_t k = 0; k < n; k++)
				assert_int_equal(ntmm_write(p[i], a + k * PG, &ch, 1), 0);
			if (i == 1)
				gate_set(&g, true); /* the next write is held */
			assert_int_equal(ntmm_ws_empty(p[i]), 0);
		}
		ntmm__paging_wake_writer(e);
		assert_true(WAIT_UNTIL(atomic_load(&g.held) >= 1, GATE_WAIT_STOP));
		assert_int_equal(atomic_load(&g.in_flight), 1);
		assert_true(PSTAT(e, modified_pages) + PSTAT(e, transition_pages) > 0);

		releaser_t r = {&g, &e->systhreads.mpw.t, false};
		pthread_t rt;
		assert_int_equal(pthread_create(&rt, NULL, release_on_stop, &r), 0);
		atomic_store(&g.destroying, true);
		ntmm_thread_unregister(e);
		ntmm_engine_destroy(e);
		pthread_join(rt, NULL);
		assert_int_equal(atomic_load(&test_failures), 0);
		/* destroy began with the write held; it completed inside destroy */
		assert_true(r.saw_stop);
		assert_true(atomic_load(&g.done_in_destroy) >= 1);
		assert_int_equal(atomic_load(&g.in_flight), 0);
		/* the store was closed (and deleted) all the same */
		assert_int_equal(atomic_load(&g.opens), 1);
		assert_int_equal(atomic_load(&g.closes), 1);
		assert_int_equal(file_size(path), -1);
		assert_int_equal(open_fds(), fds0);
		pthread_cond_destroy(&g.opened);
		pthread_mutex_destroy(&g.lock);
		free(path);
		io_rmtree(dir);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(integrity_under_4x_overcommit),
	    cmocka_unit_test(integrity_under_4x_overcommit_with_io_errors),
	    cmocka_unit_test_setup_teardown(modified_list_mark_wakes_the_writer,
	                                    setup_16_16_64_threads, teardown),
	    cmocka_unit_test_setup_teardown(short_allocator_wakes_the_writer, setup_8_8_32_threads,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(writers_report_their_policy_and_mapped_queue_runs,
	                                    setup_8_4_8_threads, teardown),
	    cmocka_unit_test(shutdown_with_writes_in_flight_and_cycles),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
