/* Zeroing: the pass moves Free frames to Zeroed up to the high-water mark
   and clears them; the zero page thread does it in the background with its
   configured priority and then sleeps; a frame freed by one owner and
   taken zeroed by another is all zero. */
#include "phys_testutil.h"

#include <dirent.h>
#include <unistd.h>
#include "fixture.h"

/* The engine of each test that needs one comes from its setup; the
   teardown destroys it even after a failed assert. */
static struct {
	ntmm_engine_t *e;
} fx;

static int setup_2mib(void **state)
{
	fx.e = phys_engine(2, NULL, NTMM_BACKING_AUTO, 0);
	*state = fx.e;
	return 0;
}
static int setup_2mib_threads(void **state)
{
	fx.e = phys_engine(2, NULL, NTMM_BACKING_AUTO, 1);
	*state = fx.e;
	return 0;
}
static int setup_8mib_4node_threads(void **state)
{
	fx.e = phys_engine(8, "pack:2 numa:2 core:1 pu:1", NTMM_BACKING_AUTO, 1);
	*state = fx.e;
	return 0;
}
static int teardown(void **state)
{
	fixture_engine_destroy(fx.e);
	fx.e = NULL;
	return 0;
}

static void dirty_free_all(ntmm_engine_t *e, ntmm__pfn_t *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		f[i] = must_alloc(e, 0);
		memset(ntmm__pfn_host(e, f[i]), 0xc3, 4096);
	}
	for (size_t i = 0; i < n; i++)
		ntmm__page_free(e, f[i]);
	ntmm__phys_flush_caches(e, NTMM__ALLOC_NODE_ANY);
}

static void zero_pass_fills_zeroed_up_to_the_high_water_mark(void **state)
{
	ntmm_engine_t *e = *state;
	size_t n = e->phys.nframes, high = e->phys.nodes[0].zero_high;
	ntmm__pfn_t *f = calloc(n, sizeof(*f));
	dirty_free_all(e, f, n);
	ntmm_stats_t s;
	ntmm_stats_get(e, &s);
	assert_int_equal(s.free_pages, n);
	assert_int_equal(s.zeroed_pages, 0);
	assert_true(ntmm__phys_zero_wanted(e, 0));
	bool more = true;
	size_t total = 0;
	while (more)
		total += ntmm__phys_zero_pass(e, 0, 40, &more);
	assert_true(total >= high && total < high + NTMM__ZERO_BATCH);
	assert_false(ntmm__phys_zero_wanted(e, 0));
	ntmm_stats_get(e, &s);
	assert_int_equal(s.zeroed_pages, total);
	assert_int_equal(s.frames_zeroed, total);
	/* every frame on the Zeroed lists is zero */
	ntmm__node_t *nd = &e->phys.nodes[0];
	size_t checked = 0;
	for (unsigned c = 0; c < e->phys.ncolours; c++)
		for (ntmm__pfn_t p = nd->zeroed[c].head; p != NTMM__PFN_NONE;
		     p = ntmm__pfn(e, p)->next, checked++)
			assert_true(frame_is(e, p, 0));
	assert_int_equal(checked, total);
	assert_int_equal(ntmm_audit(e), 0);
	free(f);
}

static void zero_pass_with_nothing_free_does_nothing(void **state)
{
	ntmm_engine_t *e = *state;
	bool more = true;
	assert_int_equal(ntmm__phys_zero_pass(e, 0, 64, &more), 0);
	assert_false(more);
}

static char thread_state(pid_t tid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return '?';
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	return p && p[1] ? p[2] : '?';
}

static void zero_thread_zeroes_in_background_then_sleeps(void **state)
{
	ntmm_engine_t *e = *state;
	assert_int_equal(e->systhreads.nzero, 1);
	ntmm__thread_t *t = &e->systhreads.zero[0].t;
	size_t n = e->phys.nframes, high = e->phys.nodes[0].zero_high;
	ntmm__pfn_t *f = calloc(n, sizeof(*f));
	dirty_free_all(e, f, n);
	/* liveness, not speed: wait (generously) for the thread to reach the mark */
	ntmm_stats_t s;
	for (int i = 0; i < 30000; i++) {
		ntmm_stats_get(e, &s);
		if (s.zeroed_pages >= high)
			break;
		usleep(1000);
	}
	assert_true(s.zeroed_pages >= high);
	/* then it blocks on its event rather than spinning */
	char c = '?';
	for (int i = 0; i < 5000 && c != 'S'; i++) {
		c = thread_state(t->tid_os);
		if (c != 'S')
			usleep(1000);
	}
	assert_int_equal(c, 'S');
	uint64_t wakeups = atomic_load(&t->wakeups);
	usleep(20000);
	assert_int_equal(thread_state(t->tid_os), 'S');
	assert_int_equal(atomic_load(&t->wakeups), wakeups);
	/* zero requests now get the thread's frames: no inline zeroing */
	ntmm_stats_t before;
	ntmm_stats_get(e, &before);
	for (size_t i = 0; i < high / 2; i++) {
		f[i] = must_alloc(e, NTMM__ALLOC_ZERO);
		assert_true(frame_is(e, f[i], 0));
	}
	ntmm_stats_get(e, &s);
	assert_int_equal(s.frames_zeroed_inline, before.frames_zeroed_inline);
	for (size_t i = 0; i < high / 2; i++)
		ntmm__page_free(e, f[i]);
	assert_int_equal(ntmm_audit(e), 0);
	free(f);
}

static void zero_thread_gets_its_configured_priority(void **state)
{
	ntmm_config_t c;
	ntmm_config_init(&c);
	c.physical_bytes = 2u << 20;
	c.thread_priority[NTMM_THREAD_ZERO_PAGE] = 0;
	ntmm_engine_t *e = NULL;
	assert_int_equal(ntmm_engine_create(&c, &e), 0);
	ntmm__thread_t *t = &e->systhreads.zero[0].t;
	assert_int_equal(t->nt_priority, 0);
	assert_int_equal(t->policy, NTMM__SCHED_IDLE);
	ntmm_engine_destroy(e);

	ntmm_config_init(&c);
	c.physical_bytes = 2u << 20;
	c.thread_priority[NTMM_THREAD_ZERO_PAGE] = 23;
	assert_int_equal(ntmm_engine_create(&c, &e), 0);
	t = &e->systhreads.zero[0].t;
	char buf[64];
	fprintf(stderr, "zero page thread at NT 23: %s %s\n", ntmm__thread_policy_str(t, buf, 64),
	        t->degraded ? t->degraded_reason : "");
	if (t->degraded)
		assert_true(strlen(t->degraded_reason) > 0);
	else {
		assert_int_equal(t->policy, NTMM__SCHED_FIFO);
		assert_int_equal(t->rt_priority, 8);
	}
	ntmm_engine_destroy(e);
}

static void one_zero_thread_per_node(void **state)
{
	ntmm_engine_t *e = *state;
	assert_int_equal(e->systhreads.nzero, 4);
	assert_string_equal(e->systhreads.zero[3].t.name, "ntmm-zero/3");
}

typedef struct handoff {
	ntmm_engine_t *e;
	_Atomic int phase;
	ntmm__pfn_t pfns[64];
} handoff_t;

static void *first_owner(void *arg)
{
	handoff_t *h = arg;
	for (int i = 0; i < 64; i++) {
		WORKER_CHECK(ntmm__page_alloc(h->e, 0, NTMM__ALLOC_NODE_ANY, NTMM__COLOUR_ANY,
		                              &h->pfns[i]) == 0);
		memset(ntmm__pfn_host(h->e, h->pfns[i]), 0x5e, 4096);
	}
	for (int i = 0; i < 64; i++)
		ntmm__page_free(h->e, h->pfns[i]);
	return NULL;
}

static void frame_freed_by_one_owner_is_zero_for_the_next(void **state)
{
	/* 2 MiB, every frame used once by the first owner, so the second owner
	   can only get frames the first one dirtied */
	ntmm_engine_t *e = phys_engine(2, NULL, NTMM_BACKING_AUTO, 1);
	size_t n = e->phys.nframes;
	ntmm__pfn_t *f = calloc(n, sizeof(*f));
	for (int round = 0; round < 3; round++) {
		handoff_t h = {.e = e};
		atomic_store(&test_failures, 0);
		run_threads(1, first_owner, &h, sizeof(h));
		dirty_free_all(e, f, n); /* all frames dirty now */
		for (size_t i = 0; i < n; i++) {
			f[i] = must_alloc(e, NTMM__ALLOC_ZERO);
			assert_true(frame_is(e, f[i], 0));
		}
		for (size_t i = 0; i < n; i++)
			ntmm__page_free(e, f[i]);
		assert_int_equal(atomic_load(&test_failures), 0);
	}
	assert_int_equal(ntmm_audit(e), 0);
	free(f);
	ntmm_engine_destroy(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(zero_pass_fills_zeroed_up_to_the_high_water_mark,
	                                    setup_2mib, teardown),
	    cmocka_unit_test_setup_teardown(zero_pass_with_nothing_free_does_nothing, setup_2mib,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(zero_thread_zeroes_in_background_then_sleeps,
	                                    setup_2mib_threads, teardown),
	    cmocka_unit_test(zero_thread_gets_its_configured_priority),
	    cmocka_unit_test_setup_teardown(one_zero_thread_per_node, setup_8mib_4node_threads,
	                                    teardown),
	    cmocka_unit_test(frame_freed_by_one_owner_is_zero_for_the_next),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
