/*
 * The balance set manager, the swapper and the segment dereference thread
 * running for real (short ticks through cfg.balance_tick_ms): each one's
 * trigger wakes it, the swapper out-swaps an idle process and its next
 * access in-swaps it with every byte intact, the segment dereference
 * thread grows and shrinks a paging file and gives free chunks back to the
 * OS, deferred items all run (also those left at destruction), each thread
 * reports the policy it got, and the real-time threads (SCHED_FIFO
 * wherever the process may have it) do not starve an overcommitted
 * workload on a 2-core machine while each of them does real work, and
 * block once idle. Every test ends with the audit.
 *
 * Waits are liveness watchdogs (a minute without progress fails), never
 * timing assertions.
 */
#include "wsm_testutil.h"

#include <sched.h>

static void the_balance_set_manager_ticks_and_wakes_the_swapper_every_4th(void **state)
{
	(void)state;
	wsm_opts_t o = {.mib = 16, .threads = true, .tick_ms = 5};
	ntmm_engine_t *e = wsm_engine(&o);
	ntmm__balance_thread_t *b = &e->systhreads.balance;
	ntmm__swapper_thread_t *s = &e->systhreads.swapper;
	WSM_WAIT_UNTIL(wsm_load(&b->ticks) >= 9 && wsm_load(&b->swapper_wakes) >= 2);
	/* acquire: the ticks and passes before this wake are visible */
	uint64_t wakes = atomic_load_explicit(&b->swapper_wakes, memory_order_acquire);
	uint64_t ticks = wsm_load(&b->ticks);
	assert_true(wakes * 4 <= ticks);
	WSM_WAIT_UNTIL(wsm_load(&s->passes) >= 1);
	assert_true(wsm_load(&b->wsm_runs) >= wakes * 4);
	assert_int_equal(wsm_load(&b->lowmem_wakes), 0); /* nothing allocated */
	wsm_engine_done(e);
}

static void the_low_memory_event_wakes_the_balance_set_manager(void **state)
{
	(void)state;
	/* a tick of a minute, but nothing below depends on it not firing: on a
	   loaded machine the test can outlast it */
	wsm_opts_t o = {.mib = 8, .threads = true, .tick_ms = 60000};
	ntmm_engine_t *e = wsm_engine(&o);
	ntmm__balance_thread_t *b = &e->systhreads.balance;
	size_t n = 2000; /* of 2048 frames: available falls below the 64 mark */
	uint64_t base;
	ntmm_process_t *p = wsm_process(e, n, &base); /* default limits: 50..345 */
	wsm_fill(p, base, 7, 0, n);
	/* the event's own counter: a tick never adds to it (filling the pages
	   took available memory below the mark, whatever a tick did first) */
	WSM_WAIT_UNTIL(wsm_load(&b->lowmem_wakes) >= 1);
	/* the woken thread runs a pass (counted after the wake), which trims
	   the set toward its maximum */
	WSM_WAIT_UNTIL(wsm_load(&b->wsm_runs) >= 1);
	WSM_WAIT_UNTIL(wsm_load(&b->trimmed) >= 1);
	assert_int_equal(wsm_check(p, base, 7, 0, n), 0);
	wsm_engine_done(e);
}

static void the_swapper_out_swaps_an_idle_process_and_its_access_in_swaps_it(void **state)
{
	(void)state;
	wsm_opts_t o = {.mib = 16, .threads = true, .tick_ms = 5, .idle_ms = 40};
	ntmm_engine_t *e = wsm_engine(&o);
	size_t n = 64;
	uint64_t base;
	ntmm_process_t *p = wsm_process(e, n, &base);
	wsm_fill(p, base, 9, 0, n);
	WSM_WAIT_UNTIL(wsm_info(p).swap_outs >= 1);
	/* the swapper counts its own out-swap after the process's */
	WSM_WAIT_UNTIL(wsm_load(&e->systhreads.swapper.swap_outs) >= 1);
	assert_int_equal(wsm_info(p).swap_ins, 0); /* nothing touched it since */
	assert_int_equal(wsm_info(p).ws_pages, 0);
	/* the next access in-swaps it; every byte is there */
	assert_int_equal(wsm_check(p, base, 9, 0, n), 0);
	assert_true(wsm_info(p).swap_ins >= 1);
	ntmm_stats_t st = wsm_stats(e);
	assert_true(st.swap_outs >= 1 && st.swap_ins >= 1);
	wsm_engine_done(e);
}

static void the_segment_dereference_thread_grows_and_shrinks_a_paging_file(void **state)
{
	(void)state;
	char *pf = wsm_tmp_path("segderef.pf");
	wsm_opts_t o = {.mib = 8,
	                .threads = true,
	                .tick_ms = 5,
	                .pagefile = pf,
	                .pf_initial = 1 * MiB,
	                .pf_max = 32 * MiB};
	ntmm_engine_t *e = wsm_engine(&o);
	ntmm__segderef_thread_t *s = &e->systhreads.segderef;
	uint64_t size0 = wsm_stats(e).pagefile_size_pages;
	ntmm__segderef_request_grow(e, 0, 2048);
	WSM_WAIT_UNTIL(wsm_load(&s->grows) >= 1);
	/* nothing is stored in the new space: later passes cut it off again */
	WSM_WAIT_UNTIL(wsm_stats(e).pagefile_size_pages == size0);
	/* counted once the shrink (which already set the size) returns */
	WSM_WAIT_UNTIL(wsm_load(&s->shrunk_pages) >= 2048);
	wsm_engine_done(e);
	unlink(pf);
	free(pf);
}

static void free_chunks_go_back_to_the_os_and_rss_drops(void **state)
{
	(void)state;
	wsm_opts_t o = {.mib = 64, .threads = true, .tick_ms = 5, .backing = NTMM_BACKING_4K};
	ntmm_engine_t *e = wsm_engine(&o);
	size_t n = 48 * MiB / PG;
	uint64_t base;
	ntmm_process_t *p = wsm_process(e, n, &base);
	assert_int_equal(ntmm_ws_set_limits(p, 50, 64 * MiB / PG), 0);
	wsm_touch(p, base, 0, n); /* read faults map zeroed frames: committed chunks */
	size_t rss1 = wsm_rss();
	ntmm__segderef_thread_t *s = &e->systhreads.segderef;
	uint64_t rel0 = wsm_load(&s->chunks_released);
	assert_int_equal(ntmm_process_destroy(p), 0);
	/* 48 MiB free: everything above the 4 MiB reserve may go, 32 MiB at
	   least. The thread's count grows only after its release call has
	   given every chunk of it back to the OS (the engine-wide
	   chunk_releases counts each chunk as it goes, so it can reach 16
	   while the RSS has dropped by barely 32 MiB). */
	WSM_WAIT_UNTIL(wsm_load(&s->chunks_released) >= rel0 + 16);
	size_t rss2 = wsm_rss();
	fprintf(stderr, "RSS %zu MiB in use → %zu MiB after %llu chunks released\n", rss1 >> 20,
	        rss2 >> 20, (unsigned long long)(wsm_load(&s->chunks_released) - rel0));
#if defined(__SANITIZE_THREAD__)
	/* TSan's shadow of the touched pool stays resident: only part of the
	   drop shows */
	assert_true(rss2 + 12 * MiB <= rss1);
#else
	assert_true(rss2 + 32 * MiB <= rss1);
#endif
	assert_true(wsm_stats(e).committed_chunk_frames <= 32 * MiB / PG);
	wsm_engine_done(e);
}

typedef struct deferred_item {
	ntmm__deferred_t d;
	_Atomic long *ran;
} deferred_item_t;

static void deferred_fn(ntmm_engine_t *e, ntmm__deferred_t *d)
{
	(void)e;
	deferred_item_t *it = caa_container_of(d, deferred_item_t, d);
	atomic_fetch_add_explicit(it->ran, 1, memory_order_relaxed);
	free(it);
}

typedef struct poster {
	ntmm_engine_t *e;
	_Atomic long *ran;
	long n;
} poster_t;

static void *post_items(void *arg)
{
	poster_t *ps = arg;
	for (long i = 0; i < ps->n; i++) {
		deferred_item_t *it = malloc(sizeof(*it));
		it->d.fn = deferred_fn;
		it->ran = ps->ran;
		ntmm__deferred_post(ps->e, &it->d);
	}
	return NULL;
}

static void deferred_items_all_run_also_those_left_at_destruction(void **state)
{
	(void)state;
	wsm_opts_t o = {.mib = 8, .threads = true, .tick_ms = 5};
	ntmm_engine_t *e = wsm_engine(&o);
	_Atomic long ran = 0;
	enum { POSTERS = 6 };
	poster_t ps[POSTERS];
	long per = scaled(5000);
	for (int i = 0; i < POSTERS; i++)
		ps[i] = (poster_t){e, &ran, per};
	run_threads(POSTERS, post_items, ps, sizeof(ps[0]));
	WSM_WAIT_UNTIL(atomic_load(&ran) == POSTERS * per);
	/* counted after the drain that ran the last of them returns */
	WSM_WAIT_UNTIL(wsm_load(&e->systhreads.segderef.deferred_run) >= 1);
	/* more, then destroy at once: the destroyer runs what is left */
	ps[0].n = 1000;
	post_items(&ps[0]);
	assert_int_equal(ntmm_audit(e), 0);
	ntmm_thread_unregister(e);
	ntmm_engine_destroy(e);
	assert_int_equal(atomic_load(&ran), POSTERS * per + 1000);
}

static void check_policy(const ntmm__thread_t *t, int nt)
{
	char buf[64];
	assert_int_equal(t->nt_priority, nt);
	int pol = sched_getscheduler(t->tid_os);
	fprintf(stderr, "%-15s NT %2d → %s%s%s\n", t->name, nt,
	        ntmm__thread_policy_str(t, buf, sizeof(buf)), t->degraded ? " degraded: " : "",
	        t->degraded ? t->degraded_reason : "");
	if (t->policy == NTMM__SCHED_FIFO) {
		assert_int_equal(pol, SCHED_FIFO);
		assert_int_equal(t->rt_priority, nt - 15);
	} else {
		assert_int_equal(t->policy, NTMM__SCHED_OTHER);
		assert_int_equal(pol, SCHED_OTHER);
		assert_true(t->degraded && t->degraded_reason[0]);
	}
}

static void each_thread_runs_with_its_configured_priority_and_pin(void **state)
{
	(void)state;
	ntmm_config_t c;
	ntmm_config_init(&c);
	c.physical_bytes = 8 * MiB;
	c.balance_tick_ms = 5;
	c.thread_priority[NTMM_THREAD_BALANCE_SET] = 16;
	c.thread_priority[NTMM_THREAD_SWAPPER] = 23;
	c.thread_priority[NTMM_THREAD_SEGMENT_DEREF] = 18;
	c.thread_cpu[NTMM_THREAD_SWAPPER] = 0;
	c.thread_cpu[NTMM_THREAD_SEGMENT_DEREF] = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 1 : 0;
	ntmm_engine_t *e = NULL;
	assert_int_equal(ntmm_engine_create(&c, &e), 0);
	ntmm__systhreads_t *st = &e->systhreads;
	check_policy(&st->balance.t, 16);
	check_policy(&st->swapper.t, 23);
	check_policy(&st->segderef.t, 18);
	assert_int_equal(st->balance.t.cpu, -1);
	assert_int_equal(st->swapper.t.cpu, 0);
	assert_int_equal(st->segderef.t.cpu, c.thread_cpu[NTMM_THREAD_SEGMENT_DEREF]);
	assert_string_equal(st->balance.t.name, "ntmm-balance");
	assert_int_equal(ntmm_audit(e), 0);
	ntmm_engine_destroy(e);
	/* bad priority: creation fails cleanly, nothing left running */
	c.thread_priority[NTMM_THREAD_SWAPPER] = 32;
	assert_int_equal(ntmm_engine_create(&c, &e), NTMM_EINVAL);
}

/* Create/destroy cycles with the threads mid-pass and live processes:
   destroy stops them cleanly and (under ASan) nothing leaks. */
static void engines_come_and_go_with_their_threads_running(void **state)
{
	(void)state;
	for (long i = 0; i < scaled(12); i++) {
		wsm_opts_t o = {.mib = 8, .threads = true, .tick_ms = 1, .idle_ms = 1};
		ntmm_engine_t *e = wsm_engine(&o);
		uint64_t base;
		ntmm_process_t *p = wsm_process(e, 600, &base);
		wsm_fill(p, base, (uint64_t)i, 0, 600);
		usleep(2000);
		if (i % 2)
			assert_int_equal(ntmm_process_destroy(p), 0);
		ntmm_thread_unregister(e);
		ntmm_engine_destroy(e);
	}
}

typedef struct worker {
	ntmm_engine_t *e;
	ntmm_process_t *p;
	uint64_t base;
	size_t pages;
	long rounds;
	uint64_t tag;
} worker_t;

#define RECOMMIT_EVERY 256 /* rounds between decommit/recommit of a range */
#define RECOMMIT_PAGES 16

/* Random pages written and read back (the pages exceed the frames, so
   most accesses fault hard and the writer must make room); now and then a
   range is decommitted and committed again, which frees frames for the
   zero page thread and takes zeroed ones for the demand-zero faults. */
static void *workload(void *arg)
{
	worker_t *w = arg;
	WORKER_CHECK(ntmm_thread_register(w->e) == 0);
	uint64_t seed = w->tag * 77 + 1;
	for (long r = 0; r < w->rounds; r++) {
		size_t i = test_rand(&seed) % w->pages;
		uint64_t v[2] = {wsm_pattern(w->tag, i, 0), (uint64_t)r};
		uint64_t got[2];
		WORKER_CHECK(ntmm_write(w->p, w->base + i * PG, v, sizeof(v)) == 0);
		WORKER_CHECK(ntmm_read(w->p, w->base + i * PG, got, sizeof(got)) == 0);
		WORKER_CHECK(got[0] == v[0] && got[1] == v[1]);
		if (r % RECOMMIT_EVERY == RECOMMIT_EVERY - 1) {
			uint64_t a = w->base + (i & ~(size_t)(RECOMMIT_PAGES - 1)) * PG;
			WORKER_CHECK(ntmm_free(w->p, a, RECOMMIT_PAGES * PG, NTMM_MEM_DECOMMIT) ==
			             0);
			WORKER_CHECK(ntmm_allocate(w->p, &a, RECOMMIT_PAGES * PG, NTMM_MEM_COMMIT,
			                           NTMM_PAGE_READWRITE) == 0);
		}
		if (r % 64 == 0)
			sched_yield();
	}
	ntmm_thread_unregister(w->e);
	return NULL;
}

static void *fifo_probe_thread(void *arg)
{
	return arg;
}

/* Whether this process may run a thread under SCHED_FIFO: 0, or the
   errno of a trial thread created with it. */
static int fifo_permitted(void)
{
	pthread_attr_t a;
	struct sched_param sp = {.sched_priority = sched_get_priority_min(SCHED_FIFO)};
	assert_int_equal(pthread_attr_init(&a), 0);
	assert_int_equal(pthread_attr_setinheritsched(&a, PTHREAD_EXPLICIT_SCHED), 0);
	assert_int_equal(pthread_attr_setschedpolicy(&a, SCHED_FIFO), 0);
	assert_int_equal(pthread_attr_setschedparam(&a, &sp), 0);
	pthread_t t;
	int err = pthread_create(&t, &a, fifo_probe_thread, NULL);
	if (err == 0)
		pthread_join(t, NULL);
	pthread_attr_destroy(&a);
	return err;
}

/* CPU time a thread has used, ns. */
static uint64_t thread_cpu_ns(pthread_t t)
{
	clockid_t c;
	struct timespec ts;
	assert_int_equal(pthread_getcpuclockid(t, &c), 0);
	assert_int_equal(clock_gettime(c, &ts), 0);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define IDLE_WINDOW_MS 200
#define IDLE_WINDOWS   25 /* 5 s for the last writes and out-swaps to end */

static void real_time_threads_do_not_starve_the_workload(void **state)
{
	(void)state;
	/* a 1 ms tick, out-swapping after 3 ms idle, a pool of 4096 frames
	   under twice as many pages written at random and a paging file to
	   hold the rest: the system threads run as often as they ever will,
	   and the writer, the trimmer and the zero page thread all work */
	char *pf = wsm_tmp_path("rt-starve.pf");
	wsm_opts_t o = {.mib = 16,
	                .threads = true,
	                .tick_ms = 1,
	                .idle_ms = 3,
	                .pagefile = pf,
	                .pf_initial = 16 * MiB,
	                .pf_max = 64 * MiB};
	int fifo_err = fifo_permitted();
	ntmm_engine_t *e = wsm_engine(&o);

	/* what each system thread obtained; the real-time ones (NT 16..31)
	   have SCHED_FIFO wherever the process may use it */
	ntmm__systhread_ref_t th[16];
	size_t nth = ntmm__systhreads_list(e, th, 16);
	assert_true(nth >= 6 && nth <= 16);
	size_t rt = 0;
	for (size_t i = 0; i < nth; i++) {
		const ntmm__thread_t *t = th[i].t;
		char buf[64];
		fprintf(stderr, "%-21s NT %2d -> %s%s%s\n", th[i].role, t->nt_priority,
		        ntmm__thread_policy_str(t, buf, sizeof(buf)),
		        t->degraded ? ", degraded: " : "", t->degraded ? t->degraded_reason : "");
		if (t->nt_priority < 16)
			continue;
		rt++;
		if (fifo_err == 0) {
			assert_int_equal(t->policy, NTMM__SCHED_FIFO);
			assert_int_equal(sched_getscheduler(t->tid_os), SCHED_FIFO);
			assert_int_equal(t->rt_priority, t->nt_priority - 15);
		} else {
			assert_int_equal(t->policy, NTMM__SCHED_OTHER);
			assert_true(t->degraded && t->degraded_reason[0]);
		}
	}
	assert_true(rt >= 1);
	if (fifo_err)
		fprintf(stderr,
		        "SCHED_FIFO is not available to this process (%s): the %zu real-time "
		        "threads run degraded under SCHED_OTHER (checked above)\n",
		        strerror(fifo_err), rt);

	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int workers = ncpu > 1 ? (int)(3 * ncpu) : 6;
	if (workers < 6)
		workers = 6;
	if (workers > 32)
		workers = 32;
	size_t frames = o.mib * MiB / PG;
	worker_t *w = calloc((size_t)workers, sizeof(*w));
	for (int i = 0; i < workers; i++) {
		w[i] = (worker_t){.e = e,
		                  .pages =
		                      2 * frames / (size_t)workers & ~(size_t)(RECOMMIT_PAGES - 1),
		                  .rounds = scaled(60000),
		                  .tag = (uint64_t)i + 1};
		w[i].p = wsm_process(e, w[i].pages, &w[i].base);
	}
	assert_true(workers > ncpu); /* more runnable workload threads than CPUs */

	ntmm__balance_thread_t *b = &e->systhreads.balance;
	ntmm__mpw_t *mpw = &e->systhreads.mpw;
	ntmm_stats_t st0 = wsm_stats(e);
	uint64_t written0 = wsm_load(&mpw->pages), trimmed0 = wsm_load(&b->trimmed);
	uint64_t runs0 = wsm_load(&b->wsm_runs), t0 = test_now_ns();
	run_threads(workers, workload, w, sizeof(w[0]));
	uint64_t t1 = test_now_ns();
	ntmm_stats_t st1 = wsm_stats(e);
	uint64_t written = wsm_load(&mpw->pages) - written0;
	uint64_t trimmed = wsm_load(&b->trimmed) - trimmed0, runs = wsm_load(&b->wsm_runs) - runs0;
	uint64_t zeroed = (st1.frames_zeroed - st1.frames_zeroed_inline) -
	                  (st0.frames_zeroed - st0.frames_zeroed_inline);
	uint64_t hard = st1.hard_faults - st0.hard_faults;
	assert_int_equal(atomic_load(&test_failures), 0);
	fprintf(stderr,
	        "%d workers on %ld CPUs: %.2f s; hard faults %llu, pages written by the "
	        "modified writer %llu, working set passes %llu trimming %llu pages, zeroed by "
	        "the zero page thread %llu, swap-outs %llu\n",
	        workers, ncpu, (double)(t1 - t0) / 1e9, (unsigned long long)hard,
	        (unsigned long long)written, (unsigned long long)runs, (unsigned long long)trimmed,
	        (unsigned long long)zeroed, (unsigned long long)(st1.swap_outs - st0.swap_outs));
	/* while the workload ran, each system thread did real work */
	assert_true(hard > 0);
	assert_true(written > 0);
	assert_true(runs > 0 && trimmed > 0);
	assert_true(zeroed > 0);

	/* the workload is done: once their work is, the system threads block
	   (a spinning one would use the whole of every window) */
	bool quiet = false;
	for (int win = 0; win < IDLE_WINDOWS && !quiet; win++) {
		uint64_t cpu0[16], w0 = test_now_ns();
		for (size_t i = 0; i < nth; i++)
			cpu0[i] = thread_cpu_ns(th[i].t->tid);
		usleep(IDLE_WINDOW_MS * 1000);
		uint64_t window = test_now_ns() - w0, busiest = 0;
		size_t bi = 0;
		for (size_t i = 0; i < nth; i++) {
			uint64_t used = thread_cpu_ns(th[i].t->tid) - cpu0[i];
			if (used >= busiest)
				busiest = used, bi = i;
		}
		fprintf(stderr, "idle window %d: busiest %s at %.1f%% of a CPU\n", win, th[bi].role,
		        100.0 * (double)busiest / (double)window);
		quiet = busiest < window / 2;
	}
	assert_true(quiet);
	for (int i = 0; i < workers; i++)
		assert_int_equal(ntmm_process_destroy(w[i].p), 0);
	free(w);
	wsm_engine_done(e);
	unlink(pf);
	free(pf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(the_balance_set_manager_ticks_and_wakes_the_swapper_every_4th),
	    cmocka_unit_test(the_low_memory_event_wakes_the_balance_set_manager),
	    cmocka_unit_test(the_swapper_out_swaps_an_idle_process_and_its_access_in_swaps_it),
	    cmocka_unit_test(the_segment_dereference_thread_grows_and_shrinks_a_paging_file),
	    cmocka_unit_test(free_chunks_go_back_to_the_os_and_rss_drops),
	    cmocka_unit_test(deferred_items_all_run_also_those_left_at_destruction),
	    cmocka_unit_test(each_thread_runs_with_its_configured_priority_and_pin),
	    cmocka_unit_test(engines_come_and_go_with_their_threads_running),
	    cmocka_unit_test(real_time_threads_do_not_starve_the_workload),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
