/*
 * Shared pages under concurrency: several processes map one paging-file
 * section and one file section; more threads than cores fault, read and
 * write (each thread its own word of every page, so every value can be
 * checked), while a trimmer empties the working sets and the system
 * threads (modified and mapped page writers, balance set manager) run
 * under a pool smaller than the sections. Then every word is checked,
 * through the views and in the file after a flush, and the audit runs.
 */
#include "paging_testutil.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define NPROC    3
#define NTHREADS 6     /* 2 per process, 3 × the cores */
#define NPAGES   2048u /* 8 MiB per section, 16 MiB of both on an 8 MiB pool */

typedef struct worker {
	ntmm_process_t *p;
	uint64_t base[2]; /* the process's view of each section */
	unsigned id;
	long rounds;
	uint64_t last[2][NPAGES]; /* the value this thread last wrote */
} worker_t;

static atomic_bool stop;

static void *work(void *arg)
{
	worker_t *w = arg;
	uint64_t seed = 0x9e3779b97f4a7c15ull * (w->id + 1);
	ntmm_engine_t *e = NULL;
	(void)e;
	for (long r = 0; r < w->rounds; r++) {
		unsigned sec = (unsigned)(test_rand(&seed) & 1);
		unsigned pg = (unsigned)(test_rand(&seed) % NPAGES);
		uint64_t va = w->base[sec] + (uint64_t)pg * PG + w->id * 8;
		uint64_t v = 0;
		int err = ntmm_read(w->p, va, &v, sizeof(v));
		WORKER_CHECK(err == 0);
		WORKER_CHECK(v == w->last[sec][pg]);
		if (v != w->last[sec][pg] && test_failures < 10)
			fprintf(stderr, "thread %u sec %u page %u: %#llx, wrote %#llx\n", w->id,
			        sec, pg, (unsigned long long)v,
			        (unsigned long long)w->last[sec][pg]);
		v = ((uint64_t)w->id << 56) | (uint64_t)r;
		err = ntmm_write(w->p, va, &v, sizeof(v));
		WORKER_CHECK(err == 0);
		if (!err)
			w->last[sec][pg] = v;
	}
	return NULL;
}

static void *trimmer(void *arg)
{
	ntmm_process_t **ps = arg;
	unsigned i = 0;
	while (!atomic_load(&stop)) {
		WORKER_CHECK(ntmm_ws_empty(ps[i++ % NPROC]) == 0);
		usleep(2000);
	}
	return NULL;
}

static void shared_pages_under_faults_trims_and_writers(void **state)
{
	paging_env_t env = paging_env(8, 32, 64, true, false);
	char *path = io_path(env.dir, "stress.dat");
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	free(path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, NPAGES * PG), 0);
	ntmm_section_t *s[2];
	assert_int_equal(ntmm_section_create(env.e, -1, NPAGES * PG, NTMM_PAGE_READWRITE, 0, &s[0]),
	                 0);
	assert_int_equal(ntmm_section_create(env.e, fd, 0, NTMM_PAGE_READWRITE, 0, &s[1]), 0);
	ntmm_process_t *ps[NPROC];
	worker_t *w = calloc(NTHREADS, sizeof(*w));
	for (int i = 0; i < NPROC; i++) {
		assert_int_equal(ntmm_process_create(env.e, &ps[i]), 0);
		uint64_t b[2] = {0, 0};
		for (int k = 0; k < 2; k++)
			assert_int_equal(
			    ntmm_map_view(s[k], ps[i], &b[k], 0, 0, NTMM_PAGE_READWRITE), 0);
		for (int t = 0; t < NTHREADS / NPROC; t++) {
			worker_t *x = &w[i * (NTHREADS / NPROC) + t];
			x->p = ps[i];
			x->base[0] = b[0];
			x->base[1] = b[1];
			x->id = (unsigned)(i * (NTHREADS / NPROC) + t);
			x->rounds = scaled(50000);
		}
	}
	atomic_store(&stop, false);
	pthread_t tt;
	assert_int_equal(pthread_create(&tt, NULL, trimmer, ps), 0);
	run_threads(NTHREADS, work, w, sizeof(*w));
	atomic_store(&stop, true);
	pthread_join(tt, NULL);
	assert_int_equal(test_failures, 0);
	ntmm_stats_t st;
	assert_int_equal(ntmm_stats_get(env.e, &st), 0);
	/* the pool is half the sections: pages left memory and came back */
	assert_true(st.hard_faults > 0);
	assert_true(st.mapped_pages_written > 0);
	assert_true(st.pages_written > 0);
	/* every word, through another process's view */
	for (int t = 0; t < NTHREADS; t++)
		for (int k = 0; k < 2; k++)
			for (unsigned pg = 0; pg < NPAGES; pg++) {
				uint64_t v = 0;
				ntmm_process_t *q = ps[(t / (NTHREADS / NPROC) + 1) % NPROC];
				uint64_t base =
				    w[(t / (NTHREADS / NPROC) + 1) % NPROC * (NTHREADS / NPROC)]
				        .base[k];
				assert_int_equal(
				    ntmm_read(q, base + pg * PG + (uint64_t)t * 8, &v, 8), 0);
				assert_int_equal(v, w[t].last[k][pg]);
			}
	assert_int_equal(ntmm_flush_view(ps[0], w[0].base[1], 0), 0);
	for (int t = 0; t < NTHREADS; t++)
		for (unsigned pg = 0; pg < NPAGES; pg++) {
			uint64_t v = 0;
			assert_int_equal(pread(fd, &v, 8, (off_t)(pg * PG + (uint64_t)t * 8)), 8);
			assert_int_equal(v, w[t].last[1][pg]);
		}
	assert_int_equal(ntmm_audit(env.e), 0);
	for (int i = 0; i < NPROC; i++)
		assert_int_equal(ntmm_process_destroy(ps[i]), 0);
	assert_int_equal(ntmm_section_close(s[0]), 0);
	assert_int_equal(ntmm_section_close(s[1]), 0);
	assert_int_equal(ntmm_audit(env.e), 0);
	free(w);
	paging_env_done(&env);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(shared_pages_under_faults_trims_and_writers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
