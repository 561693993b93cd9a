/* The frame pool: each backing (hugetlb, THP, 4 KiB) works when this
   machine can give it and is skipped with the reason printed when not; a
   forced backing the machine cannot give is a clear error; chunks go back
   to the OS after a large free, and RSS shows it. */
#include "phys_testutil.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include "fixture.h"

/* The engine of each test that needs one comes from its setup; the
   teardown destroys it even after a failed assert. */
static struct {
	ntmm_engine_t *e;
} fx;

static int setup_8mib_4k(void **state)
{
	fx.e = phys_engine(8, NULL, NTMM_BACKING_4K, 0);
	*state = fx.e;
	return 0;
}
static int setup_4mib(void **state)
{
	fx.e = phys_engine(4, NULL, NTMM_BACKING_AUTO, 0);
	*state = fx.e;
	return 0;
}
static int teardown(void **state)
{
	fixture_engine_destroy(fx.e);
	fx.e = NULL;
	return 0;
}

static long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

#define HP "/sys/kernel/mm/hugepages/hugepages-2048kB/"

static long huge_available(void)
{
	long fr = read_long(HP "free_hugepages"), rs = read_long(HP "resv_hugepages");
	return fr < 0 ? 0 : fr - (rs > 0 ? rs : 0);
}

static size_t rss_bytes(void)
{
	long size, resident;
	FILE *f = fopen("/proc/self/statm", "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%ld %ld", &size, &resident), 2);
	fclose(f);
	return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

static bool thp_enabled(void)
{
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	char buf[128] = "";
	if (!f)
		return false;
	bool ok = fgets(buf, sizeof(buf), f) && !strstr(buf, "[never]");
	fclose(f);
	return ok;
}

/* must_alloc, except that with the hugetlb backing a chunk released to
   the OS gave its huge page back to the system, and another process may
   hold it now: while none is free, wait (two minutes at most) for one. */
static ntmm__pfn_t alloc_frame(ntmm_engine_t *e, unsigned flags)
{
	ntmm__pfn_t pfn = NTMM__PFN_NONE;
	uint64_t t0 = test_now_ns();
	int misses = 0;
	for (;;) {
		int err = ntmm__page_alloc(e, flags, NTMM__ALLOC_NODE_ANY, NTMM__COLOUR_ANY, &pfn);
		if (err == NTMM_ENOMEM && e->phys.backing == NTMM_BACKING_HUGETLB &&
		    test_now_ns() - t0 < 120ull * 1000000000ull) {
			/* failing with huge pages free is the engine's fault (a
			   few such misses: they may have come free just now) */
			if (huge_available() > 0)
				assert_true(++misses < 20);
			usleep(10000);
			continue;
		}
		assert_int_equal(err, 0);
		return pfn;
	}
}

/* Allocates every frame zeroed, writes, checks, frees, releases. */
static void exercise(ntmm_engine_t *e)
{
	size_t n = e->phys.nframes;
	ntmm__pfn_t *f = calloc(n, sizeof(*f));
	for (size_t i = 0; i < n; i++) {
		f[i] = alloc_frame(e, NTMM__ALLOC_ZERO);
		assert_true(frame_is(e, f[i], 0));
		memset(ntmm__pfn_host(e, f[i]), (int)(i & 0xff), 4096);
	}
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(((uint8_t *)ntmm__pfn_host(e, f[i]))[4095], i & 0xff);
		ntmm__page_free(e, f[i]);
	}
	assert_int_equal(ntmm__phys_release_chunks(e, NTMM__ALLOC_NODE_ANY, 0), e->phys.nchunks);
	ntmm_stats_t s;
	ntmm_stats_get(e, &s);
	assert_int_equal(s.committed_chunk_frames, 0);
	assert_int_equal(s.chunk_releases, e->phys.nchunks);
	assert_int_equal(ntmm_audit(e), 0);
	/* recommitted chunks come back zero */
	for (size_t i = 0; i < n; i++) {
		f[i] = alloc_frame(e, 0);
		assert_true(frame_is(e, f[i], 0));
	}
	for (size_t i = 0; i < n; i++)
		ntmm__page_free(e, f[i]);
	assert_int_equal(ntmm_audit(e), 0);
	free(f);
}

static void backing_4k_works(void **state)
{
	ntmm_engine_t *e = *state;
	assert_int_equal(e->phys.backing, NTMM_BACKING_4K);
	exercise(e);
}

static void backing_thp_works(void **state)
{
	if (!thp_enabled()) {
		fprintf(stderr, "skipped: transparent huge pages are disabled on this machine\n");
		skip();
	}
	ntmm_engine_t *e = phys_engine(8, NULL, NTMM_BACKING_THP, 0);
	assert_int_equal(e->phys.backing, NTMM_BACKING_THP);
	exercise(e);
	ntmm_engine_destroy(e);
}

/* Other processes (tests of other presets, other engines with the auto
   backing) take and give back hugetlb pages all the time, so the free count
   can fall between the check and the engine's own. A creation that failed
   while the pages were really gone is retried (for up to two minutes: those
   engines are short-lived); one that failed with the pages there fails the
   test. */
static void backing_hugetlb_works(void **state)
{
	enum { PAGES = 4 };
	long old = read_long(HP "nr_hugepages");
	bool raised = false;
	if (huge_available() < PAGES && old >= 0) {
		/* as root, reserve a few for this test and give them back after */
		FILE *f = fopen(HP "nr_hugepages", "w");
		if (f) {
			fprintf(f, "%ld\n", old + PAGES);
			raised = fclose(f) == 0;
		}
	}
	ntmm_config_t c;
	ntmm_config_init(&c);
	c.physical_bytes = (size_t)PAGES << 21;
	c.backing = NTMM_BACKING_HUGETLB;
	c.start_threads = 0; /* as phys_engine: exercise() counts every frame */
	ntmm_engine_t *e = NULL;
	int err = 0, misses = 0;
	uint64_t t0 = test_now_ns();
	for (;;) {
		if (huge_available() >= PAGES) {
			err = ntmm_engine_create(&c, &e);
			if (err == 0)
				break;
			fprintf(stderr, "engine create: %s (%s)\n", ntmm_strerror(err),
			        ntmm_error_detail());
			assert_true(err == NTMM_ENOTSUP || err == NTMM_ENOMEM);
			/* taken by someone else meanwhile, or a real failure? */
			if (huge_available() >= PAGES)
				assert_true(++misses < 20);
		}
		/* none configured: nothing to wait for */
		if (read_long(HP "nr_hugepages") < PAGES ||
		    test_now_ns() - t0 > 120ull * 1000000000ull)
			break;
		usleep(10000);
	}
	if (!e) {
		fprintf(stderr,
		        "skipped: fewer than %d free 2 MiB hugetlb pages (none configured, or all "
		        "in use for two minutes) and none could be reserved "
		        "(/proc/sys/vm/nr_hugepages)\n",
		        PAGES);
		skip();
	}
	assert_int_equal(e->phys.backing, NTMM_BACKING_HUGETLB);
	assert_true(e->phys.memfd >= 0);
	exercise(e);
	ntmm_engine_destroy(e);
	if (raised) {
		/* give back what this test added (others may have changed it since) */
		long now = read_long(HP "nr_hugepages");
		FILE *f = now >= PAGES ? fopen(HP "nr_hugepages", "w") : NULL;
		if (f) {
			fprintf(f, "%ld\n", now - PAGES);
			fclose(f);
		}
	}
}

static void forced_hugetlb_beyond_reservation_is_a_clear_error(void **state)
{
	ntmm_config_t c;
	ntmm_config_init(&c);
	long avail = huge_available(), total = read_long(HP "nr_hugepages");
	/* more than the machine's whole hugetlb pool (not just what is free
	   now: other processes free theirs at any moment) */
	c.physical_bytes = (size_t)((total > avail ? total : avail) + 256) << 21;
	c.backing = NTMM_BACKING_HUGETLB;
	ntmm_engine_t *e = (ntmm_engine_t *)1;
	int err = ntmm_engine_create(&c, &e);
	fprintf(stderr, "%ld huge pages free: %s (%s)\n", avail, ntmm_strerror(err),
	        ntmm_error_detail());
	/* none at all: NTMM_ENOTSUP; some but too few: NTMM_ENOMEM */
	assert_true(err == NTMM_ENOTSUP || err == NTMM_ENOMEM);
	assert_null(e);
	assert_non_null(strstr(ntmm_error_detail(), "huge"));
}

static void auto_backing_is_reported(void **state)
{
	ntmm_engine_t *e = *state;
	assert_true(e->phys.backing >= NTMM_BACKING_HUGETLB && e->phys.backing <= NTMM_BACKING_4K);
	assert_true(strlen(e->phys.backing_note) > 0);
	fprintf(stderr, "auto chose %s: %s\n", ntmm__backing_name(e->phys.backing),
	        e->phys.backing_note);
}

static void rss_follows_use(int backing)
{
	size_t mib = 64;
	ntmm_engine_t *e = phys_engine(mib, NULL, backing, 0);
	size_t n = e->phys.nframes;
	ntmm__pfn_t *f = calloc(n, sizeof(*f));
	size_t rss0 = rss_bytes();
	for (size_t i = 0; i < n; i++) {
		f[i] = must_alloc(e, 0);
		((volatile uint8_t *)ntmm__pfn_host(e, f[i]))[100] = 1;
	}
	size_t rss1 = rss_bytes();
	for (size_t i = 0; i < n; i++)
		ntmm__page_free(e, f[i]);
	/* keep 8 MiB for reuse, give the rest back */
	size_t released = ntmm__phys_release_chunks(e, NTMM__ALLOC_NODE_ANY, 2048);
	size_t rss2 = rss_bytes();
	fprintf(stderr, "%s: RSS %zu MiB → %zu MiB in use → %zu MiB after releasing %zu chunks\n",
	        ntmm__backing_name(backing), rss0 >> 20, rss1 >> 20, rss2 >> 20, released);
	assert_true(rss1 >= rss0 + ((mib - 8) << 20));
	assert_int_equal(released, (mib - 8) / 2);
	assert_true(rss2 + ((mib - 16) << 20) <= rss1);
	assert_int_equal(ntmm_audit(e), 0);
	free(f);
	ntmm_engine_destroy(e);
}

static void rss_drops_after_a_large_free_4k(void **state)
{
	rss_follows_use(NTMM_BACKING_4K);
}

static void rss_drops_after_a_large_free_thp(void **state)
{
	if (!thp_enabled()) {
		fprintf(stderr, "skipped: transparent huge pages are disabled on this machine\n");
		skip();
	}
	rss_follows_use(NTMM_BACKING_THP);
}

static void release_keeps_chunks_in_use(void **state)
{
	ntmm_engine_t *e = *state;
	ntmm__pfn_t *f = calloc(e->phys.nframes, sizeof(*f));
	for (size_t i = 0; i < e->phys.nframes; i++)
		f[i] = must_alloc(e, 0);
	/* one frame of each chunk stays in use: nothing can be released */
	for (size_t i = 0; i < e->phys.nframes; i++)
		if (f[i] % NTMM__CHUNK_FRAMES != 17)
			ntmm__page_free(e, f[i]);
	assert_int_equal(ntmm__phys_release_chunks(e, NTMM__ALLOC_NODE_ANY, 0), 0);
	assert_int_equal(ntmm_audit(e), 0);
	for (size_t i = 0; i < e->phys.nframes; i++)
		if (f[i] % NTMM__CHUNK_FRAMES == 17)
			ntmm__page_free(e, f[i]);
	assert_int_equal(ntmm__phys_release_chunks(e, NTMM__ALLOC_NODE_ANY, 0), 4);
	assert_int_equal(ntmm_audit(e), 0);
	free(f);
}

/* A chunk released to the OS while allocators run: every allocation still
   succeeds (the pool commits the chunk again), because an allocator that
   finds the lists emptied by a release also sees the release's lowered
   chunk count. The releaser runs flat out on a one-chunk pool; the workers
   hand all their frames back and flush their caches, meet at a barrier (so
   the chunk is wholly free for a moment), then allocate again, racing the
   release. They go on until enough releases happened (a minute at most:
   liveness, not speed). */
#define RACE_THREADS  3
#define RACE_RELEASES 50ul
typedef struct race {
	ntmm_engine_t *e;
	pthread_barrier_t bar;
	_Atomic int stop, done;
	_Atomic unsigned long releases, enomem;
	uint64_t deadline;
} race_t;

static void *race_releaser(void *arg)
{
	race_t *r = arg;
	while (!atomic_load(&r->stop))
		atomic_fetch_add(&r->releases,
		                 ntmm__phys_release_chunks(r->e, NTMM__ALLOC_NODE_ANY, 0));
	return NULL;
}

static void *race_worker(void *arg)
{
	race_t *r = arg;
	ntmm__pfn_t f[64];
	for (unsigned round = 0;; round++) {
		/* one thread decides for all (between two barriers), so every
		   worker leaves in the same round and the barrier counts match */
		if (pthread_barrier_wait(&r->bar) == PTHREAD_BARRIER_SERIAL_THREAD)
			atomic_store(&r->done, atomic_load(&r->releases) >= RACE_RELEASES ||
			                           test_now_ns() > r->deadline);
		pthread_barrier_wait(&r->bar);
		if (atomic_load(&r->done))
			break;
		int got = 0;
		for (; got < 64; got++) {
			int err = ntmm__page_alloc(r->e, (round & 1) ? NTMM__ALLOC_ZERO : 0,
			                           NTMM__ALLOC_NODE_ANY, NTMM__COLOUR_ANY, &f[got]);
			if (err) {
				WORKER_CHECK(err == NTMM_ENOMEM);
				atomic_fetch_add(&r->enomem, 1);
				break;
			}
		}
		for (int i = 0; i < got; i++)
			ntmm__page_free(r->e, f[i]);
		ntmm__phys_flush_caches(r->e, NTMM__ALLOC_NODE_ANY);
	}
	return NULL;
}

static void release_races_allocation_without_enomem(void **state)
{
	/* 3 x 64 frames in use at most, of 512: never really out of memory */
	race_t r = {.e = phys_engine(2, NULL, NTMM_BACKING_4K, 0)};
	r.deadline = test_now_ns() + 60ull * 1000000000u;
	assert_int_equal(pthread_barrier_init(&r.bar, NULL, RACE_THREADS), 0);
	atomic_store(&test_failures, 0);
	pthread_t rel, w[RACE_THREADS];
	assert_int_equal(pthread_create(&rel, NULL, race_releaser, &r), 0);
	for (int i = 0; i < RACE_THREADS; i++)
		assert_int_equal(pthread_create(&w[i], NULL, race_worker, &r), 0);
	for (int i = 0; i < RACE_THREADS; i++)
		pthread_join(w[i], NULL);
	atomic_store(&r.stop, 1);
	pthread_join(rel, NULL);
	pthread_barrier_destroy(&r.bar);
	fprintf(stderr, "%lu chunk releases during the race, %lu ENOMEM\n",
	        atomic_load(&r.releases), atomic_load(&r.enomem));
	assert_int_equal(atomic_load(&test_failures), 0);
	assert_true(atomic_load(&r.releases) >= RACE_RELEASES);
	assert_int_equal(atomic_load(&r.enomem), 0);
	assert_int_equal(ntmm_audit(r.e), 0);
	ntmm_engine_destroy(r.e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(backing_4k_works, setup_8mib_4k, teardown),
	    cmocka_unit_test(backing_thp_works),
	    cmocka_unit_test(backing_hugetlb_works),
	    cmocka_unit_test(forced_hugetlb_beyond_reservation_is_a_clear_error),
	    cmocka_unit_test_setup_teardown(auto_backing_is_reported, setup_4mib, teardown),
	    cmocka_unit_test(rss_drops_after_a_large_free_4k),
	    cmocka_unit_test(rss_drops_after_a_large_free_thp),
	    cmocka_unit_test_setup_teardown(release_keeps_chunks_in_use, setup_8mib_4k, teardown),
	    cmocka_unit_test(release_races_allocation_without_enomem),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
