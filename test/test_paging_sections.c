/*
 * Faults inside access sections under overcommit, with the system threads
 * running (balance set manager, modified page writer) and nobody calling
 * ntmm_ws_empty: frames must come from the working set manager's trims and
 * the writer alone. Every access is ntmm_access_begin; ntmm_translate;
 * use the pointer; ntmm_access_end — the pattern of a buffer manager — and
 * no fault may fail: a trim hands frames on only after a grace period, so
 * a fault that waited for frames inside its section used to block the very
 * grace period it was waiting for and fail with NTMM_ENOMEM while Standby
 * was refilling behind it. Also: a section that already holds a pointer
 * keeps it valid across a later fault of the same section (the fault may
 * not leave the read side then).
 */
#include "paging_testutil.h"

#include <string.h>

#define NTHREADS 4 /* more than the cores */

typedef struct sworker {
	ntmm_engine_t *e;
	ntmm_process_t *p;
	uint64_t a;     /* the process's region */
	size_t n;       /* pages in it */
	unsigned first; /* this thread's pages: first, first + stride, ... */
	unsigned stride;
	int rounds;
	long errors;
	int first_error;
	char detail[160];
} sworker_t;

/* Stamps a page: tag, page, round at both ends. */
static void stamp(char *h, uint64_t tag, uint64_t round)
{
	uint64_t v[2] = {tag, round};
	memcpy(h, v, sizeof(v));
	memcpy(h + PG - sizeof(v), v, sizeof(v));
}

static bool stamped(const char *h, uint64_t tag, uint64_t round)
{
	uint64_t v[2] = {tag, round};
	return !memcmp(h, v, sizeof(v)) && !memcmp(h + PG - sizeof(v), v, sizeof(v));
}

static void *sworker_main(void *arg)
{
	sworker_t *w = arg;
	WORKER_CHECK(ntmm_thread_register(w->e) == 0);
	for (int r = 0; r < w->rounds; r++) {
		for (size_t i = w->first; i < w->n; i += w->stride) {
			uint64_t va = w->a + i * PG, tag = va ^ 0x5a5a0000u;
			void *h = NULL;
			ntmm_access_begin(w->e);
			int err = ntmm_translate(w->p, va, NTMM_ACCESS_WRITE, &h);
			if (err) {
				if (!w->errors++) {
					w->first_error = err;
					snprintf(w->detail, sizeof(w->detail), "%s",
					         ntmm_error_detail());
				}
			} else {
				/* round 0 is the demand-zero touch; later ones check the
				   previous round's stamp (a hard or soft fault) */
				WORKER_CHECK(r == 0 || stamped(h, tag, (uint64_t)r - 1));
				stamp(h, tag, (uint64_t)r);
			}
			ntmm_access_end(w->e);
		}
	}
	ntmm_thread_unregister(w->e);
	return NULL;
}

static void faults_in_sections_find_frames_under_4x_overcommit(void **s)
{
	(void)s;
	size_t pool_mib = test_scale() >= 1 ? 16 : 8;
	size_t frames = pool_mib * MiB / PG;
	/* two processes of 2x the frames each, two threads on each */
	paging_env_t v = paging_env(pool_mib, pool_mib, pool_mib * 5, true, false);
	ntmm_process_t *p[2];
	uint64_t a[2];
	size_t per = 2 * frames;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(ntmm_process_create(v.e, &p[i]), 0);
		a[i] = commit_pages(p[i], per);
	}
	sworker_t w[NTHREADS];
	pthread_t t[NTHREADS];
	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (sworker_t){.e = v.e,
		                   .p = p[i % 2],
		                   .a = a[i % 2],
		                   .n = per,
		                   .first = (unsigned)(i / 2),
		                   .stride = NTHREADS / 2,
		                   .rounds = 3};
		pthread_create(&t[i], NULL, sworker_main, &w[i]);
	}
	long errors = 0;
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(t[i], NULL);
		if (w[i].errors)
			fprintf(stderr, "thread %d: %ld access errors, first %s: %s\n", i,
			        w[i].errors, ntmm_strerror(w[i].first_error), w[i].detail);
		errors += w[i].errors;
	}
	fprintf(stderr,
	        "%zu pages committed over %zu frames; written %llu, hard faults %llu, "
	        "repurposed %llu, frame allocation failures %llu\n",
	        2 * per, frames, (unsigned long long)PSTAT(v.e, pages_written),
	        (unsigned long long)PSTAT(v.e, hard_faults),
	        (unsigned long long)PSTAT(v.e, standby_repurposed),
	        (unsigned long long)PSTAT(v.e, frame_alloc_fails));
	assert_int_equal(errors, 0);
	assert_int_equal(atomic_load(&test_failures), 0);
	/* the pages really went out and came back */
	assert_true(PSTAT(v.e, hard_faults) > 0);
	assert_true(PSTAT(v.e, standby_repurposed) > 0);
	assert_int_equal(ntmm_audit(v.e), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(ntmm_process_destroy(p[i]), 0);
	paging_env_done(&v);
}

/* A section that holds a pointer: a later fault of that section must not
   let the pointer's frame be repurposed, however long it waits. */
static void a_held_pointer_survives_later_faults_of_its_section(void **s)
{
	(void)s;
	size_t pool_mib = 8;
	size_t frames = pool_mib * MiB / PG;
	paging_env_t v = paging_env(pool_mib, pool_mib, pool_mib * 5, true, false);
	ntmm_process_t *p;
	assert_int_equal(ntmm_process_create(v.e, &p), 0);
	size_t n = 3 * frames;
	uint64_t a = commit_pages(p, n);
	ntmm_access_begin(v.e);
	char *first = NULL;
	assert_int_equal(ntmm_translate(p, a, NTMM_ACCESS_WRITE, (void **)&first), 0);
	stamp(first, 0xfeed, 1);
	long errors = 0;
	/* touch more pages than there are frames inside this one section: some
	   faults may fail (the section pins what the trims need), but the first
	   page's frame must keep our stamp */
	for (size_t i = 1; i < n; i += 3) {
		char *h;
		int err = ntmm_translate(p, a + i * PG, NTMM_ACCESS_WRITE, (void **)&h);
		if (err)
			errors++;
		else
			stamp(h, a + i * PG, 1);
		assert_true(stamped(first, 0xfeed, 1));
		if (i % 192 == 1) {
			/* leave the section now and then, so trims can go on */
			ntmm_access_end(v.e);
			ntmm_access_begin(v.e);
			assert_int_equal(ntmm_translate(p, a, NTMM_ACCESS_WRITE, (void **)&first),
			                 0);
			assert_true(stamped(first, 0xfeed, 1));
		}
	}
	ntmm_access_end(v.e);
	fprintf(stderr, "held pointer: %ld faults failed inside a pinned-down section\n", errors);
	assert_int_equal(ntmm_audit(v.e), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	paging_env_done(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(faults_in_sections_find_frames_under_4x_overcommit),
	    cmocka_unit_test(a_held_pointer_survives_later_faults_of_its_section),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
