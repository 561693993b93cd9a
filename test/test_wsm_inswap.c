/*
 * The swapper's in-swap (engine/threads/swapper.c, virt/wsmgr.c): an
 * out-swap records the working set, the process's next access queues it,
 * and the swapper thread brings the recorded pages back — from Standby
 * and Modified (soft faults) and from the paging file (clustered hard
 * faults) — after which touching the whole set takes no fault and every
 * byte is intact. A destroy never waits for a queued in-swap and stops a
 * running one; under memory pressure the in-swap stops early. Every test
 * ends with the audit.
 *
 * The system threads run with idle swapping off (cfg.swap_idle_ms 0): the
 * tests out-swap with ntmm__wsm_swap_out themselves, so no idle scan
 * out-swaps a process again in the middle of a check. Waits are liveness
 * watchdogs (a minute without progress fails), never timing assertions.
 */
#include "wsm_testutil.h"

#include "paging_testutil.h"

#include <pthread.h>
#include "fixture.h"

/* The engine of each test that needs one comes from its setup; the
   teardown destroys it even after a failed assert. */
static struct {
	ntmm_engine_t *e;
	bool quiet_held; /* the body holds e->systhreads.quiet */
} fx;

static int setup_16mib_threads_tick5(void **state)
{
	wsm_opts_t o = {.mib = 16, .threads = true, .tick_ms = 5};
	fx.e = wsm_engine(&o);
	*state = fx.e;
	return 0;
}
static int setup_16mib(void **state)
{
	wsm_opts_t o = {.mib = 16};
	fx.e = wsm_engine(&o);
	*state = fx.e;
	return 0;
}
static int teardown(void **state)
{
	if (fx.quiet_held) /* the destroy would wait for the paused threads */
		pthread_mutex_unlock(&fx.e->systhreads.quiet);
	fx.quiet_held = false;
	fixture_engine_release(fx.e);
	fx.e = NULL;
	return 0;
}

/* An engine with the system threads (5 ms ticks), 16 MiB of frames and a
   paging file of 8..32 MiB named `name` in the test directory (*pf). */
static ntmm_engine_t *paged_engine(const char *name, char **pf)
{
	*pf = wsm_tmp_path(name);
	wsm_opts_t o = {.mib = 16,
	                .threads = true,
	                .tick_ms = 5,
	                .pagefile = *pf,
	                .pf_initial = 8 * MiB,
	                .pf_max = 32 * MiB};
	return wsm_engine(&o);
}

static void paged_done(ntmm_engine_t *e, char *pf)
{
	wsm_engine_done(e);
	unlink(pf);
	free(pf);
}

static uint64_t inswaps(ntmm_engine_t *e)
{
	/* acquire: pairs with the swapper's release count after an in-swap
	   ended, so its pages and counters are visible */
	return atomic_load_explicit(&e->systhreads.swapper.inswaps, memory_order_acquire);
}

static bool pte_is_transition(uint64_t v)
{
	return !ntmm__pte_is_valid(v) && ntmm__pte_is_transition(v);
}

static bool pte_is_paged_out(uint64_t v)
{
	return !ntmm__pte_is_valid(v) && ntmm__pte_is_pagefile(v);
}

/* Pages of [base, base + n pages) whose PTE satisfies pred. */
static size_t count_ptes(ntmm_process_t *p, uint64_t base, size_t n, bool (*pred)(uint64_t))
{
	size_t c = 0;
	ntmm_access_begin(p->e);
	for (size_t i = 0; i < n; i++) {
		_Atomic uint64_t *pte = ntmm__pt_lookup(p, base + i * PG);
		if (pred(pte ? atomic_load_explicit(pte, memory_order_acquire) : 0))
			c++;
	}
	ntmm_access_end(p->e);
	return c;
}

/* Reads one word of each page of [first, first + n) and checks it is 0. */
static size_t nonzero_pages(ntmm_process_t *p, uint64_t base, size_t first, size_t n)
{
	size_t bad = 0;
	for (size_t i = first; i < first + n; i++) {
		uint64_t w = 1;
		assert_int_equal(ntmm_read(p, base + i * PG + 8 * (i % 512), &w, 8), 0);
		bad += w != 0;
	}
	return bad;
}

/* Every Modified page written and on Standby: the writer thread's batch
   in flight too (write_all_modified returns when the list is empty, maybe
   while the thread still writes pages it took off it). */
static void write_all_and_settle(ntmm_engine_t *e)
{
	write_all_modified(e);
	WSM_WAIT_UNTIL(wsm_stats(e).modified_pages == 0 && wsm_stats(e).transition_pages == 0);
}

static size_t available(ntmm_engine_t *e)
{
	size_t avail, mod;
	ntmm__wsm_gauges(e, &avail, &mod);
	return avail;
}

static size_t record_len(ntmm_process_t *p)
{
	ntmm__wsm_rec_t *r = atomic_load_explicit(&p->wsm.rec, memory_order_acquire);
	return r ? r->n : 0;
}

static void an_in_swap_brings_the_working_set_back_from_standby_and_modified(void **state)
{
	ntmm_engine_t *e = *state;
	size_t n = 300, written = 200; /* within the default maximum of 345 */
	uint64_t base;
	ntmm_process_t *p = wsm_process(e, n, &base);
	wsm_fill(p, base, 11, 0, written);        /* dirty: trimmed to Modified */
	wsm_touch(p, base, written, n - written); /* clean zero pages: to Standby */
	assert_int_equal(ntmm__wsm_swap_out(p), n);
	assert_int_equal(wsm_info(p).ws_pages, 0);
	assert_int_equal(record_len(p), n);
	assert_int_equal(count_ptes(p, base, n, pte_is_transition), n);

	uint64_t done0 = inswaps(e);
	uint64_t st0 = wsm_stats(e).swap_in_pages;
	uint8_t b;
	assert_int_equal(ntmm_read(p, base + 7 * PG, &b, 1), 0); /* the one access */
	WSM_WAIT_UNTIL(inswaps(e) > done0);
	assert_int_equal(wsm_info(p).ws_pages, n);
	assert_int_equal(record_len(p), 0); /* consumed */
	/* everything but the page the access brought back itself (the
	   swapper may have been first there too) */
	uint64_t got = wsm_stats(e).swap_in_pages - st0;
	assert_true(got == n - 1 || got == n);
	assert_int_equal(atomic_load(&p->wsm.swap_in_pages), got);
	assert_int_equal(wsm_info(p).swap_in_pages, got);
	assert_int_equal(wsm_info(p).swap_ins, 1);
	assert_int_equal(wsm_load(&e->systhreads.swapper.inswap_cut), 0);

	/* the whole set is resident: no fault anywhere, every byte intact */
	size_t f0 = wsm_info(p).page_faults;
	uint64_t sf0 = wsm_stats(e).page_faults;
	assert_int_equal(wsm_check(p, base, 11, 0, written), 0);
	assert_int_equal(nonzero_pages(p, base, written, n - written), 0);
	assert_int_equal(wsm_info(p).page_faults, f0);
	assert_int_equal(wsm_stats(e).page_faults, sf0);
	assert_int_equal(ntmm_audit(e), 0);
}

static void an_in_swap_reads_paged_out_pages_back_in_clusters(void **state)
{
	(void)state;
	char *pf;
	ntmm_engine_t *e = paged_engine("inswap-hard.pf", &pf);
	size_t n = 300;
	uint64_t base;
	ntmm_process_t *p = wsm_process(e, n, &base);
	wsm_fill(p, base, 12, 0, n);
	assert_int_equal(ntmm__wsm_swap_out(p), n);
	/* to the paging file, then every frame taken for something else: the
	   PTEs are pagefile PTEs, the next access to each is a hard fault */
	write_all_and_settle(e);
	repurpose_all(e);
	assert_int_equal(count_ptes(p, base, n, pte_is_paged_out), n);

	ntmm__swapper_thread_t *s = &e->systhreads.swapper;
	uint64_t done0 = inswaps(e), hard0 = wsm_info(p).hard_faults;
	uint64_t pages0 = wsm_load(&s->inswap_pages), reads0 = wsm_load(&s->inswap_hard);
	uint8_t b;
	assert_int_equal(ntmm_read(p, base, &b, 1), 0); /* a hard fault, and the in-swap */
	WSM_WAIT_UNTIL(inswaps(e) > done0);
	assert_int_equal(wsm_info(p).ws_pages, n);
	assert_int_equal(wsm_load(&s->inswap_cut), 0);
	uint64_t pages = wsm_load(&s->inswap_pages) - pages0;
	uint64_t reads = wsm_load(&s->inswap_hard) - reads0;
	fprintf(stderr, "in-swap: %llu pages, %llu of them by a read; process hard faults %llu\n",
	        (unsigned long long)pages, (unsigned long long)reads,
	        (unsigned long long)(wsm_info(p).hard_faults - hard0));
	assert_true(pages >= n - 16 && pages <= n); /* the access read the first cluster */
	assert_true(reads >= 1);
	/* the hard fault's read clustering did the work: the pages were
	   written in runs and the in-swap walks them in address order */
	assert_true(reads * 2 <= pages);

	size_t f0 = wsm_info(p).page_faults;
	assert_int_equal(wsm_check(p, base, 12, 0, n), 0);
	assert_int_equal(wsm_info(p).page_faults, f0);
	paged_done(e, pf);
}

/* A process out-swapped with n written pages. */
static ntmm_process_t *swapped_process(ntmm_engine_t *e, size_t n, uint64_t tag, uint64_t *base)
{
	ntmm_process_t *p = wsm_process(e, n, base);
	wsm_fill(p, *base, tag, 0, n);
	assert_int_equal(ntmm__wsm_swap_out(p), n);
	return p;
}

static bool is_queued(ntmm_engine_t *e, ntmm_process_t *p)
{
	ntmm__pushlock_acquire_exclusive(&e->virt.inswap.lock);
	bool q = p->wsm.queued;
	ntmm__pushlock_release_exclusive(&e->virt.inswap.lock);
	return q;
}

static void *destroy_thread(void *arg)
{
	ntmm_process_t *p = arg;
	ntmm_engine_t *e = p->e;
	WORKER_CHECK(ntmm_thread_register(e) == 0);
	WORKER_CHECK(ntmm_process_destroy(p) == 0);
	ntmm_thread_unregister(e);
	return NULL;
}

static void destroy_never_waits_for_a_queued_in_swap_and_stops_a_running_one(void **state)
{
	ntmm_engine_t *e = *state;
	ntmm__swapper_thread_t *s = &e->systhreads.swapper;
	uint64_t b1, b2;
	ntmm_process_t *p1 = swapped_process(e, 200, 21, &b1);
	ntmm_process_t *p2 = swapped_process(e, 200, 22, &b2);
	uint64_t done0 = inswaps(e), pages0 = wsm_load(&s->inswap_pages);
	uint64_t cut0 = wsm_load(&s->inswap_cut);

	/* holding `quiet` holds the swapper at its first in-swap step (and
	   keeps the other passes, which hold it around their visits, from
	   taking process references) */
	pthread_mutex_lock(&e->systhreads.quiet);
	fx.quiet_held = true;
	uint8_t b;
	assert_int_equal(ntmm_read(p1, b1, &b, 1), 0);
	/* claimed: the swapper's reference is the only one */
	WSM_WAIT_UNTIL(atomic_load(&p1->users) == 1 && !is_queued(e, p1));
	assert_int_equal(ntmm_read(p2, b2, &b, 1), 0);
	assert_true(is_queued(e, p2)); /* the swapper is busy with p1 */

	/* a queued in-swap holds nothing: destroy returns with the swapper
	   still stopped, and nothing of p2 is left (ASan) */
	assert_int_equal(ntmm_process_destroy(p2), 0);

	/* the running one: destroy waits for it, and it stops at its next
	   step without bringing anything back */
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, destroy_thread, p1), 0);
	/* p1 cannot be freed while the swapper holds its reference */
	WSM_WAIT_UNTIL(atomic_load(&p1->wsm.dying) != 0);
	fx.quiet_held = false;
	pthread_mutex_unlock(&e->systhreads.quiet);
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&test_failures), 0);
	WSM_WAIT_UNTIL(inswaps(e) > done0);
	assert_int_equal(inswaps(e), done0 + 1); /* p2's never ran */
	assert_int_equal(wsm_load(&s->inswap_cut), cut0 + 1);
	assert_int_equal(wsm_load(&s->inswap_pages), pages0);
	assert_int_equal(wsm_stats(e).processes, 0);
	assert_int_equal(ntmm_audit(e), 0);
}

/* Destroys racing in-swaps at every point of their life (queued, between
   steps, inside a hard fault's read); then an engine destroyed with one
   in-swap running and one queued. ASan finds a record or process leaked
   or used after free; the audit finds anything left inconsistent. */
static void destroy_races_in_swaps_at_any_point(void **state)
{
	(void)state;
	char *pf;
	ntmm_engine_t *e = paged_engine("inswap-race.pf", &pf);
	uint64_t seed = 5;
	for (long i = 0; i < scaled(40); i++) {
		uint64_t base;
		ntmm_process_t *p = swapped_process(e, 300, (uint64_t)i, &base);
		if (i % 2) { /* paged out: the in-swap reads */
			write_all_and_settle(e);
			repurpose_all(e);
		}
		uint8_t b;
		assert_int_equal(ntmm_read(p, base + 9 * PG, &b, 1), 0);
		uint64_t r = test_rand(&seed);
		if (r % 4) /* else at once: most likely still queued */
			usleep((useconds_t)(r % 400));
		assert_int_equal(ntmm_process_destroy(p), 0);
	}
	ntmm__swapper_thread_t *s = &e->systhreads.swapper;
	fprintf(stderr, "%ld destroys: %llu in-swaps ran (%llu cut short), %llu pages back\n",
	        scaled(40), (unsigned long long)inswaps(e),
	        (unsigned long long)wsm_load(&s->inswap_cut),
	        (unsigned long long)wsm_load(&s->inswap_pages));
	assert_int_equal(ntmm_audit(e), 0);
	assert_int_equal(wsm_stats(e).processes, 0);

	uint64_t b1, b2;
	ntmm_process_t *p1 = swapped_process(e, 300, 31, &b1);
	ntmm_process_t *p2 = swapped_process(e, 300, 32, &b2);
	pthread_mutex_lock(&e->systhreads.quiet);
	uint8_t b;
	assert_int_equal(ntmm_read(p1, b1, &b, 1), 0);
	WSM_WAIT_UNTIL(atomic_load(&p1->users) == 1 && !is_queued(e, p1));
	assert_int_equal(ntmm_read(p2, b2, &b, 1), 0);
	assert_true(is_queued(e, p2));
	pthread_mutex_unlock(&e->systhreads.quiet);
	assert_int_equal(ntmm_audit(e), 0);
	ntmm_thread_unregister(e);
	ntmm_engine_destroy(e); /* stops the swapper mid-in-swap, drops p2's */
	unlink(pf);
	free(pf);
}

static void under_pressure_the_in_swap_stops_early(void **state)
{
	(void)state;
	char *pf;
	ntmm_engine_t *e = paged_engine("inswap-pressure.pf", &pf);
	ntmm__swapper_thread_t *s = &e->systhreads.swapper;
	ntmm__wsm_marks_t m;
	ntmm__wsm_marks(e, &m);
	size_t n = 300;
	uint64_t base;
	ntmm_process_t *p = swapped_process(e, n, 41, &base);
	write_all_and_settle(e); /* p's pages: clean, on Standby */

	/* another process takes memory until about 40 frames stay above the
	   minimum mark; its limits keep the working set manager off it */
	size_t avail = available(e);
	assert_true(avail > m.minimum + 40 + 64);
	size_t k = avail - m.minimum - 40;
	uint64_t qbase;
	ntmm_process_t *q = wsm_process(e, k, &qbase);
	assert_int_equal(ntmm_ws_set_limits(q, k + 64, k + 64), 0);
	wsm_touch(q, qbase, 0, k);
	size_t avail2 = available(e); /* less the page tables q needed */
	fprintf(stderr, "minimum %zu, available %zu before the in-swap\n", m.minimum, avail2);
	assert_true(avail2 >= m.minimum + 8 && avail2 < m.minimum + n / 2);

	uint64_t done0 = inswaps(e), pages0 = wsm_load(&s->inswap_pages);
	uint64_t pressure0 = wsm_load(&s->inswap_pressure);
	uint8_t b;
	assert_int_equal(ntmm_read(p, base, &b, 1), 0);
	WSM_WAIT_UNTIL(inswaps(e) > done0);
	uint64_t pages = wsm_load(&s->inswap_pages) - pages0;
	size_t avail3 = available(e);
	fprintf(stderr, "in-swap stopped after %llu of %zu pages, available %zu\n",
	        (unsigned long long)pages, n - 1, avail3);
	assert_int_equal(wsm_load(&s->inswap_pressure), pressure0 + 1);
	/* each page back takes one available frame and the check comes
	   before each page: it stops within the headroom there was (the
	   gauges are approximate by a few frames in per-CPU caches) */
	assert_true(pages + m.minimum <= avail2 + 4);
	assert_true(pages < n - 1);
	assert_true(wsm_info(p).ws_pages < n);
	assert_true(avail3 + 4 >= m.minimum);
	assert_int_equal(ntmm_audit(e), 0);

	/* what it left behind comes back by faults, intact */
	assert_int_equal(ntmm_process_destroy(q), 0);
	assert_int_equal(wsm_check(p, base, 41, 0, n), 0);
	paged_done(e, pf);
}

/* An out-swap that overtakes an in-swap wins: the in-swap stops (it
   would undo the out-swap), and the next access in-swaps the process from
   the newest record — also when that record was the one the stopped
   in-swap had claimed (it goes back to the process). */
static void an_out_swap_overtaking_an_in_swap_wins_and_the_next_access_in_swaps(void **state)
{
	(void)state;
	char *pf;
	ntmm_engine_t *e = paged_engine("inswap-overtake.pf", &pf);
	ntmm__swapper_thread_t *s = &e->systhreads.swapper;
	size_t n = 200;
	uint64_t b0, b1;
	ntmm_process_t *p0 = swapped_process(e, n, 61, &b0);
	ntmm_process_t *p = swapped_process(e, n, 62, &b1);
	/* clean, with their copies in the paging file: the modified page
	   writer, which holds a reference on the pages it writes (and the
	   trim skips referenced pages), has nothing of theirs to take */
	write_all_and_settle(e);
	uint64_t done0 = inswaps(e), cut0 = wsm_load(&s->inswap_cut);
	uint8_t b;

	/* claimed, then (the process having faulted its set back itself)
	   out-swapped again before the in-swap's first step: the stopped
	   in-swap's record is dropped, the new one stays */
	pthread_mutex_lock(&e->systhreads.quiet);
	assert_int_equal(ntmm_read(p, b1, &b, 1), 0);
	WSM_WAIT_UNTIL(atomic_load(&p->users) == 1 && !is_queued(e, p));
	wsm_touch(p, b1, 0, n);
	assert_int_equal(ntmm__wsm_swap_out(p), n);
	pthread_mutex_unlock(&e->systhreads.quiet);
	WSM_WAIT_UNTIL(inswaps(e) == done0 + 1);
	assert_int_equal(wsm_load(&s->inswap_cut), cut0 + 1);
	assert_int_equal(wsm_info(p).ws_pages, 0);
	assert_int_equal(record_len(p), n);

	/* queued behind another in-swap, then out-swapped again: the claim
	   takes the newest record, stops at once, and hands it back */
	pthread_mutex_lock(&e->systhreads.quiet);
	assert_int_equal(ntmm_read(p0, b0, &b, 1), 0);
	WSM_WAIT_UNTIL(atomic_load(&p0->users) == 1 && !is_queued(e, p0));
	assert_int_equal(ntmm_read(p, b1, &b, 1), 0);
	assert_true(is_queued(e, p));
	wsm_touch(p, b1, 0, n);
	assert_int_equal(ntmm__wsm_swap_out(p), n);
	pthread_mutex_unlock(&e->systhreads.quiet);
	WSM_WAIT_UNTIL(inswaps(e) == done0 + 3);
	assert_int_equal(wsm_load(&s->inswap_cut), cut0 + 2);
	assert_int_equal(wsm_info(p0).ws_pages, n);
	assert_int_equal(wsm_info(p).ws_pages, 0);
	assert_int_equal(record_len(p), n); /* handed back */

	/* the next access brings the whole set back */
	assert_int_equal(ntmm_read(p, b1, &b, 1), 0);
	WSM_WAIT_UNTIL(inswaps(e) == done0 + 4);
	assert_int_equal(wsm_info(p).ws_pages, n);
	assert_int_equal(wsm_load(&s->inswap_cut), cut0 + 2);
	assert_int_equal(wsm_check(p, b1, 62, 0, n), 0);
	assert_int_equal(wsm_check(p0, b0, 61, 0, n), 0);
	paged_done(e, pf);
}

/* Without the swapper thread nothing is recorded or queued: the pages
   come back one fault at a time, as before. */
static void without_a_swapper_the_faults_bring_the_pages_back(void **state)
{
	ntmm_engine_t *e = *state;
	uint64_t base;
	ntmm_process_t *p = swapped_process(e, 64, 51, &base);
	assert_int_equal(record_len(p), 0);
	size_t f0 = wsm_info(p).page_faults;
	assert_int_equal(wsm_check(p, base, 51, 0, 64), 0);
	assert_int_equal(wsm_info(p).page_faults, f0 + 64);
	assert_int_equal(wsm_stats(e).swap_in_pages, 0);
	assert_int_equal(wsm_info(p).swap_ins, 1);
	assert_int_equal(ntmm_audit(e), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        an_in_swap_brings_the_working_set_back_from_standby_and_modified,
	        setup_16mib_threads_tick5, teardown),
	    cmocka_unit_test(an_in_swap_reads_paged_out_pages_back_in_clusters),
	    cmocka_unit_test_setup_teardown(
	        destroy_never_waits_for_a_queued_in_swap_and_stops_a_running_one,
	        setup_16mib_threads_tick5, teardown),
	    cmocka_unit_test(destroy_races_in_swaps_at_any_point),
	    cmocka_unit_test(under_pressure_the_in_swap_stops_early),
	    cmocka_unit_test(an_out_swap_overtaking_an_in_swap_wins_and_the_next_access_in_swaps),
	    cmocka_unit_test_setup_teardown(without_a_swapper_the_faults_bring_the_pages_back,
	                                    setup_16mib, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
