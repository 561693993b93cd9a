/*
 * The working set manager's policy, driven pass by pass with the system
 * threads off (ntmm__wsm_run is what the balance set manager calls each
 * tick): a set above its maximum is trimmed to it, oldest pages first; a
 * set between its limits is left alone while memory is plentiful and
 * trimmed toward its minimum under pressure, sparing pages accessed since
 * the last aging; pinned pages are never trimmed; trimmed pages come back
 * intact. Standby priorities: trimmed pages carry their process's priority
 * and repurposing takes the lowest priority first.
 */
#include "wsm_testutil.h"
#include "fixture.h"

/* The engine of each test that needs one comes from its setup; the
   teardown destroys it even after a failed assert. */
static struct {
	ntmm_engine_t *e;
} fx;

static int setup_32mib(void **state)
{
	wsm_opts_t o = {.mib = 32};
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
static int setup_8mib(void **state)
{
	wsm_opts_t o = {.mib = 8};
	fx.e = wsm_engine(&o);
	*state = fx.e;
	return 0;
}
static int teardown(void **state)
{
	fixture_engine_release(fx.e);
	fx.e = NULL;
	return 0;
}

static size_t faults_of(ntmm_process_t *p)
{
	return wsm_info(p).page_faults;
}

static void a_set_above_its_maximum_is_trimmed_to_it_oldest_first(void **state)
{
	ntmm_engine_t *e = *state;
	uint64_t base;
	ntmm_process_t *p = wsm_process(e, 400, &base);
	assert_int_equal(ntmm_ws_set_limits(p, 50, 300), 0);
	wsm_fill(p, base, 1, 0, 400);
	assert_int_equal(wsm_info(p).ws_pages, 400);
	/* two agings with no access: every page is at least age 1 */
	ntmm__wsm_age(p, NULL);
	ntmm__wsm_age(p, NULL);
	wsm_touch(p, base, 0, 100); /* recent: Accessed set again */

	ntmm__wsm_result_t r;
	ntmm__wsm_run(e, &r);
	ntmm__wsm_marks_t m;
	ntmm__wsm_marks(e, &m);
	assert_true(r.available + r.modified >= m.plenty); /* not pressure: max rule only */
	assert_int_equal(r.trimmed_max, 100);
	assert_int_equal(r.trimmed_pressure, 0);
	assert_int_equal(wsm_info(p).ws_pages, 300);

	/* the 100 recently accessed pages survived: reading them faults not */
	size_t f0 = faults_of(p);
	wsm_touch(p, base, 0, 100);
	assert_int_equal(faults_of(p), f0);
	/* everything is intact, trimmed pages come back by soft faults */
	assert_int_equal(wsm_check(p, base, 1, 0, 400), 0);
	assert_int_equal(faults_of(p), f0 + 100);
	assert_true(wsm_stats(e).pages_trimmed >= 100);
	assert_int_equal(ntmm_audit(e), 0);
}

/* A pass trims every set above its maximum and ends with one grace period
   for all of them (and releases each process's trim_lock afterwards: an
   ntmm_free on every process works right after the pass). Every trimmed
   page still comes back intact. */
static void one_pass_trims_every_set_with_one_grace_period(void **state)
{
	ntmm_engine_t *e = *state;
	enum { P = 3 };
	ntmm_process_t *p[P];
	uint64_t base[P];
	for (unsigned i = 0; i < P; i++) {
		p[i] = wsm_process(e, 300, &base[i]);
		assert_int_equal(ntmm_ws_set_limits(p[i], 50, 200), 0);
		wsm_fill(p[i], base[i], i + 1, 0, 300);
	}
	uint64_t gp0 = wsm_stats(e).rcu_shootdowns;
	ntmm__wsm_result_t r;
	ntmm__wsm_run(e, &r);
	assert_int_equal(r.trimmed_max, P * 100);
	assert_int_equal(wsm_stats(e).rcu_shootdowns, gp0 + 1);
	for (unsigned i = 0; i < P; i++) {
		assert_int_equal(wsm_info(p[i]).ws_pages, 200);
		assert_int_equal(wsm_check(p[i], base[i], i + 1, 0, 300), 0);
		assert_int_equal(ntmm_free(p[i], base[i], 0, NTMM_MEM_RELEASE), 0);
		assert_int_equal(ntmm_process_destroy(p[i]), 0);
	}
	assert_int_equal(ntmm_audit(e), 0);
}

static void a_set_within_its_limits_is_trimmed_only_under_pressure(void **state)
{
	(void)state;
	/* 8 MiB = 2048 frames: minimum mark 64, plenty 256 */
	wsm_opts_t o = {.mib = 8};
	ntmm_engine_t *e = wsm_engine(&o);
	ntmm__wsm_marks_t m;
	ntmm__wsm_marks(e, &m);
	size_t n = 2000;
	uint64_t base;
	ntmm_process_t *p = wsm_process(e, n, &base);
	assert_int_equal(ntmm_ws_set_limits(p, 100, 4000), 0);

	/* plenty of memory: passes age nothing away */
	wsm_fill(p, base, 2, 0, 500);
	ntmm__wsm_result_t r;
	for (int i = 0; i < 3; i++) {
		ntmm__wsm_run(e, &r);
		assert_true(r.available + r.modified >= m.plenty);
		assert_int_equal(r.trimmed_max + r.trimmed_pressure, 0);
	}
	assert_int_equal(wsm_info(p).ws_pages, 500);

	/* fill the pool: available falls below the minimum mark */
	wsm_fill(p, base, 2, 500, n - 500);
	ntmm__wsm_run(e, &r);
	assert_true(r.available < m.minimum);
	/* every page was just accessed: age 0 pages are spared */
	assert_int_equal(r.trimmed_pressure, 0);
	assert_int_equal(wsm_info(p).ws_pages, n);

	wsm_touch(p, base, 0, 200); /* these stay young */
	ntmm__wsm_run(e, &r);
	assert_true(r.available < m.minimum);
	assert_int_equal(r.trimmed_pressure, n - 200);
	assert_int_equal(wsm_info(p).ws_pages, 200);
	size_t f0 = faults_of(p);
	wsm_touch(p, base, 0, 200);
	assert_int_equal(faults_of(p), f0);
	assert_int_equal(wsm_check(p, base, 2, 0, n), 0);
	assert_int_equal(wsm_info(p).ws_pages, n);
	wsm_engine_done(e);
}

static void pinned_pages_are_never_trimmed(void **state)
{
	ntmm_engine_t *e = *state;
	uint64_t base;
	ntmm_process_t *p = wsm_process(e, 400, &base);
	wsm_fill(p, base, 3, 0, 400);
	ntmm_pin_t *pin;
	assert_int_equal(ntmm_pin(p, base, 350 * PG, NTMM_ACCESS_READ, &pin), 0);
	assert_int_equal(ntmm_ws_set_limits(p, 10, 100), 0);
	ntmm__wsm_age(p, NULL);
	ntmm__wsm_result_t r;
	ntmm__wsm_run(e, &r);
	assert_int_equal(r.trimmed_max, 50); /* only the unpinned ones */
	assert_int_equal(wsm_info(p).ws_pages, 350);
	/* the swapper's out-swap spares them too */
	ntmm__wsm_swap_out(p);
	assert_int_equal(wsm_info(p).ws_pages, 350);
	for (size_t i = 0; i < 350; i++) {
		const uint64_t *w = ntmm_pin_page(pin, i);
		assert_true(w[7] == wsm_pattern(3, i, 7));
	}
	ntmm_unpin(pin);
	assert_int_equal(wsm_check(p, base, 3, 0, 400), 0);
	assert_int_equal(wsm_info(p).swap_ins, 1);
	assert_int_equal(ntmm_audit(e), 0);
}

static void out_swap_and_in_swap_count_once_each(void **state)
{
	ntmm_engine_t *e = *state;
	uint64_t base;
	ntmm_process_t *p = wsm_process(e, 64, &base);
	wsm_fill(p, base, 4, 0, 64);
	assert_int_equal(ntmm__wsm_swap_out(p), 64);
	assert_int_equal(wsm_info(p).ws_pages, 0);
	assert_int_equal(wsm_info(p).swap_outs, 1);
	assert_int_equal(wsm_info(p).swap_ins, 0);
	assert_int_equal(wsm_check(p, base, 4, 0, 64), 0); /* 64 faults, one in-swap */
	assert_int_equal(wsm_info(p).swap_ins, 1);
	ntmm_stats_t st = wsm_stats(e);
	assert_int_equal(st.swap_outs, 1);
	assert_int_equal(st.swap_ins, 1);
	assert_int_equal(ntmm_audit(e), 0);
}

/* The swapper's idle test: accesses through valid PTEs take no fault, but
   aging finds their Accessed bits and records the time. */
static void aging_notes_accesses_that_took_no_fault(void **state)
{
	ntmm_engine_t *e = *state;
	uint64_t base;
	ntmm_process_t *p = wsm_process(e, 32, &base);
	wsm_fill(p, base, 5, 0, 32);
	assert_int_equal(ntmm__wsm_age(p, NULL), 32);
	assert_int_equal(ntmm__wsm_age(p, NULL), 0); /* nothing since */
	uint64_t t0 = atomic_load(&p->wsm.active_ns);
	size_t f0 = faults_of(p);
	usleep(1000);
	wsm_touch(p, base, 3, 2);
	assert_int_equal(faults_of(p), f0); /* resident: no fault */
	size_t hist[8];
	assert_int_equal(ntmm__wsm_age(p, hist), 2);
	assert_true(atomic_load(&p->wsm.active_ns) > t0);
	assert_int_equal(hist[0], 2);
	assert_int_equal(hist[2], 30);
	assert_int_equal(ntmm_audit(e), 0);
}

static void page_priority_rejects_bad_input(void **state)
{
	ntmm_engine_t *e = *state;
	uint64_t base;
	ntmm_process_t *p = wsm_process(e, 1, &base);
	assert_int_equal(ntmm_process_set_page_priority(p, 8), NTMM_EINVAL);
	assert_int_equal(ntmm_process_set_page_priority(NULL, 1), NTMM_EINVAL);
	for (unsigned prio = 0; prio <= 7; prio++)
		assert_int_equal(ntmm_process_set_page_priority(p, prio), 0);
	assert_int_equal(ntmm_audit(e), 0);
}

/* Pages trimmed clean land on their process's standby priority list. */
static void trimmed_pages_carry_the_process_priority(void **state)
{
	ntmm_engine_t *e = *state;
	uint64_t a_base, b_base;
	ntmm_process_t *a = wsm_process(e, 100, &a_base);
	ntmm_process_t *b = wsm_process(e, 60, &b_base);
	assert_int_equal(ntmm_process_set_page_priority(a, 2), 0);
	assert_int_equal(ntmm_process_set_page_priority(b, 7), 0);
	wsm_touch(a, a_base, 0, 100); /* read faults: clean pages */
	wsm_touch(b, b_base, 0, 60);
	assert_int_equal(ntmm_ws_empty(a), 0);
	assert_int_equal(ntmm_ws_empty(b), 0);
	ntmm_stats_t st = wsm_stats(e);
	assert_int_equal(st.standby_by_priority[2], 100);
	assert_int_equal(st.standby_by_priority[7], 60);
	assert_int_equal(st.standby_pages, 160);
	assert_int_equal(ntmm_audit(e), 0);
}

/* Repurposing drains the lowest standby priority before touching a higher
   one. */
static void repurposing_takes_the_lowest_priority_first(void **state)
{
	(void)state;
	char *pf = wsm_tmp_path("prio.pf");
	/* the paging file only raises the commit limit: nothing is written */
	wsm_opts_t o = {.mib = 8, .pagefile = pf, .pf_initial = 1 * MiB, .pf_max = 64 * MiB};
	ntmm_engine_t *e = wsm_engine(&o);
	size_t n = 400;
	uint64_t lo_base, hi_base, c_base;
	ntmm_process_t *lo = wsm_process(e, n, &lo_base);
	ntmm_process_t *hi = wsm_process(e, n, &hi_base);
	assert_int_equal(ntmm_process_set_page_priority(lo, 1), 0);
	assert_int_equal(ntmm_process_set_page_priority(hi, 6), 0);
	/* hi is trimmed first, so priority, not age, decides */
	wsm_touch(hi, hi_base, 0, n);
	assert_int_equal(ntmm_ws_empty(hi), 0);
	wsm_touch(lo, lo_base, 0, n);
	assert_int_equal(ntmm_ws_empty(lo), 0);
	ntmm_stats_t st = wsm_stats(e);
	assert_int_equal(st.standby_by_priority[1], n);
	assert_int_equal(st.standby_by_priority[6], n);

	size_t cn = 2048;
	ntmm_process_t *c = wsm_process(e, cn, &c_base);
	assert_int_equal(ntmm_ws_set_limits(c, 1, 4096), 0);
	size_t i = 0;
	/* consume Free/Zeroed, then standby: priority 1 goes first, all of it */
	for (; i < cn; i++) {
		wsm_touch(c, c_base, i, 1);
		st = wsm_stats(e);
		assert_int_equal(st.standby_by_priority[6], n);
		if (st.standby_by_priority[1] == 0)
			break;
	}
	assert_true(i < cn);
	assert_true(st.standby_repurposed >= n);
	/* only then priority 6 */
	size_t j = i + 1;
	for (; j < cn && wsm_stats(e).standby_by_priority[6] == n; j++)
		wsm_touch(c, c_base, j, 1);
	assert_true(j < cn);
	assert_true(wsm_stats(e).standby_by_priority[6] < n);
	wsm_engine_done(e);
	unlink(pf);
	free(pf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(a_set_above_its_maximum_is_trimmed_to_it_oldest_first,
	                                    setup_32mib, teardown),
	    cmocka_unit_test_setup_teardown(one_pass_trims_every_set_with_one_grace_period,
	                                    setup_32mib, teardown),
	    cmocka_unit_test(a_set_within_its_limits_is_trimmed_only_under_pressure),
	    cmocka_unit_test_setup_teardown(pinned_pages_are_never_trimmed, setup_32mib, teardown),
	    cmocka_unit_test_setup_teardown(out_swap_and_in_swap_count_once_each, setup_16mib,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(aging_notes_accesses_that_took_no_fault, setup_16mib,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(page_priority_rejects_bad_input, setup_8mib, teardown),
	    cmocka_unit_test_setup_teardown(trimmed_pages_carry_the_process_priority, setup_16mib,
	                                    teardown),
	    cmocka_unit_test(repurposing_takes_the_lowest_priority_first),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
