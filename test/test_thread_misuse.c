/*
 * The thread and access contract under misuse: a thread nobody registered
 * reads exactly what was written while its pages are trimmed and their
 * frames reused; threads that exit registered, even inside an access
 * section, leave the engine usable; and the programming errors ntmm.h says
 * abort (destroy inside an access section; unpin twice or after destroy,
 * in debug builds) abort with a message naming the misuse instead of
 * hanging or corrupting. Aborts are observed in a child (this binary
 * re-executed with --misuse NAME) with its stderr on a pipe and a bounded
 * wait: a hang fails the test instead of hanging ctest.
 */
#include "wsm_testutil.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>

/* ------------------------------------------- an unregistered reader (item) */

typedef struct reuse {
	ntmm_engine_t *e;
	ntmm_process_t *p;
	uint64_t base;
	size_t npages;
	atomic_int *lock;  /* per page: 1 while one thread reads or writes it */
	uint64_t *gen;     /* per page: the generation written last (under lock) */
	long reads;        /* per reader */
	atomic_int stop;   /* set when both readers are done */
	atomic_long bad;   /* pages read with a wrong word */
	atomic_long errs;  /* calls that failed */
	atomic_long done;  /* pages read and checked */
	atomic_long trims; /* ntmm_ws_empty calls */
} reuse_t;

static bool page_trylock(reuse_t *r, size_t i)
{
	int z = 0;
	/* acquire: pairs with page_unlock's release (gen and the page bytes) */
	return atomic_compare_exchange_strong_explicit(&r->lock[i], &z, 1, memory_order_acquire,
	                                               memory_order_relaxed);
}

static void page_unlock(reuse_t *r, size_t i)
{
	atomic_store_explicit(&r->lock[i], 0, memory_order_release);
}

static void fill_page(uint64_t *buf, uint64_t gen, size_t i)
{
	for (size_t w = 0; w < PG / 8; w++)
		buf[w] = wsm_pattern(gen, i, w);
}

/* true if every word of the page is page i's pattern of generation gen */
static bool page_ok(const volatile uint64_t *h, uint64_t gen, size_t i)
{
	for (size_t w = 0; w < PG / 8; w++)
		if (h[w] != wsm_pattern(gen, i, w))
			return false;
	return true;
}

static void *rewriter(void *arg)
{
	reuse_t *r = arg;
	WORKER_CHECK(ntmm_thread_register(r->e) == 0);
	uint64_t seed = 0x1234567, buf[PG / 8];
	while (!atomic_load(&r->stop)) {
		size_t i = (size_t)(test_rand(&seed) % r->npages);
		if (!page_trylock(r, i))
			continue;
		fill_page(buf, ++r->gen[i], i);
		if (ntmm_write(r->p, r->base + i * PG, buf, PG) != 0)
			atomic_fetch_add(&r->errs, 1);
		page_unlock(r, i);
	}
	ntmm_thread_unregister(r->e);
	return NULL;
}

static void *trimmer(void *arg)
{
	reuse_t *r = arg;
	WORKER_CHECK(ntmm_thread_register(r->e) == 0);
	while (!atomic_load(&r->stop)) {
		if (ntmm_ws_empty(r->p) != 0)
			atomic_fetch_add(&r->errs, 1);
		atomic_fetch_add(&r->trims, 1);
		sched_yield();
	}
	ntmm_thread_unregister(r->e);
	return NULL;
}

/* Never registered: ntmm_read copies each page. */
static void *reader_copy(void *arg)
{
	reuse_t *r = arg;
	uint64_t seed = 0xabcdef, buf[PG / 8];
	for (long n = 0; n < r->reads;) {
		size_t i = (size_t)(test_rand(&seed) % r->npages);
		if (!page_trylock(r, i))
			continue;
		n++;
		if (ntmm_read(r->p, r->base + i * PG, buf, PG) != 0)
			atomic_fetch_add(&r->errs, 1);
		else if (!page_ok(buf, r->gen[i], i))
			atomic_fetch_add(&r->bad, 1);
		page_unlock(r, i);
		atomic_fetch_add(&r->done, 1);
	}
	return NULL;
}

/* Never registered: holds translate's host pointer across a yield inside
   its access section, the window in which a trim that does not wait for
   the section would hand the frame on. */
static void *reader_section(void *arg)
{
	reuse_t *r = arg;
	uint64_t seed = 0x7777;
	for (long n = 0; n < r->reads;) {
		size_t i = (size_t)(test_rand(&seed) % r->npages);
		if (!page_trylock(r, i))
			continue;
		n++;
		const volatile uint64_t *h;
		ntmm_access_begin(r->e);
		if (ntmm_translate(r->p, r->base + i * PG, NTMM_ACCESS_READ, (void **)&h) != 0) {
			atomic_fetch_add(&r->errs, 1);
		} else {
			bool ok = page_ok(h, r->gen[i], i);
			sched_yield();
			ok = ok && page_ok(h, r->gen[i], i);
			if (!ok)
				atomic_fetch_add(&r->bad, 1);
		}
		ntmm_access_end(r->e);
		page_unlock(r, i);
		atomic_fetch_add(&r->done, 1);
	}
	return NULL;
}

static void unregistered_threads_read_correct_bytes_while_pages_are_trimmed_and_reused(void **s)
{
	(void)s;
	char *pf = wsm_tmp_path("reuse.sys");
	/* 12 MiB of pages in 8 MiB of frames: every trim sends pages to the
	   writer and Standby, and faults keep repurposing the frames */
	wsm_opts_t o = {
	    .mib = 8, .threads = true, .pagefile = pf, .pf_initial = 48 * MiB, .pf_max = 48 * MiB};
	reuse_t r = {0};
	r.e = wsm_engine(&o);
	r.npages = 3072;
	r.reads = scaled(20000);
	r.p = wsm_process(r.e, r.npages, &r.base);
	r.lock = calloc(r.npages, sizeof(*r.lock));
	r.gen = calloc(r.npages, sizeof(*r.gen));
	assert_non_null(r.lock);
	assert_non_null(r.gen);
	uint64_t buf[PG / 8];
	for (size_t i = 0; i < r.npages; i++) {
		fill_page(buf, 0, i);
		assert_int_equal(ntmm_write(r.p, r.base + i * PG, buf, PG), 0);
	}

	ntmm_stats_t st0 = wsm_stats(r.e);
	pthread_t rw, tr, rc, rs;
	assert_int_equal(pthread_create(&rw, NULL, rewriter, &r), 0);
	assert_int_equal(pthread_create(&tr, NULL, trimmer, &r), 0);
	assert_int_equal(pthread_create(&rc, NULL, reader_copy, &r), 0);
	assert_int_equal(pthread_create(&rs, NULL, reader_section, &r), 0);
	pthread_join(rc, NULL);
	pthread_join(rs, NULL);
	atomic_store(&r.stop, 1);
	pthread_join(rw, NULL);
	pthread_join(tr, NULL);

	ntmm_stats_t st1 = wsm_stats(r.e);
	uint64_t reused = st1.standby_repurposed - st0.standby_repurposed;
	print_message("%ld pages read, %ld trims, %llu frames repurposed, %ld wrong, %ld errors\n",
	              atomic_load(&r.done), atomic_load(&r.trims), (unsigned long long)reused,
	              atomic_load(&r.bad), atomic_load(&r.errs));
	assert_true(reused > 0); /* the frames under the readers did move on */
	assert_int_equal(atomic_load(&r.bad), 0);
	assert_int_equal(atomic_load(&r.errs), 0);
	assert_int_equal(atomic_load(&r.done), 2 * r.reads);
	assert_int_equal(atomic_load(&test_failures), 0);
	for (size_t i = 0; i < r.npages; i++) /* and every page holds its last write */
		assert_int_equal(wsm_check(r.p, r.base, r.gen[i], i, 1), 0);
	assert_int_equal(ntmm_process_destroy(r.p), 0);
	wsm_engine_done(r.e);
	free(r.lock);
	free(r.gen);
	free(pf);
}

/* ------------------------------------- threads that exit registered (item) */

#define EXIT_PAGES 256

typedef struct exiter {
	ntmm_engine_t *e, *other; /* other: a second engine, destroyed before we exit */
	ntmm_process_t *p, *other_p;
	uint64_t base, other_base;
	int kind;
	pthread_barrier_t *other_done; /* NULL unless kind uses `other` */
} exiter_t;

enum {
	EXIT_REGISTERED,         /* register, leave */
	EXIT_REGISTERED_TWICE,   /* nested register, leave */
	EXIT_IN_SECTION,         /* register, access_begin, translate, leave */
	EXIT_IN_NESTED_SECTIONS, /* register, access_begin twice, leave */
	EXIT_ADOPTED_IN_SECTION, /* never registered: access_begin, leave */
	EXIT_AFTER_OTHER_ENGINE, /* registered with two engines; one is destroyed first */
	EXIT_KINDS
};

static void read_one(ntmm_process_t *p, uint64_t base, size_t i)
{
	const volatile uint64_t *h;
	WORKER_CHECK(ntmm_translate(p, base + i * PG, NTMM_ACCESS_READ, (void **)&h) == 0);
	WORKER_CHECK(h[0] == wsm_pattern(1, i, 0));
}

static void *exiter(void *arg)
{
	exiter_t *x = arg;
	size_t i = (size_t)x->kind * 7 % EXIT_PAGES;
	switch (x->kind) {
	case EXIT_REGISTERED:
		WORKER_CHECK(ntmm_thread_register(x->e) == 0);
		break;
	case EXIT_REGISTERED_TWICE:
		WORKER_CHECK(ntmm_thread_register(x->e) == 0);
		WORKER_CHECK(ntmm_thread_register(x->e) == 0);
		break;
	case EXIT_IN_SECTION:
		WORKER_CHECK(ntmm_thread_register(x->e) == 0);
		ntmm_access_begin(x->e);
		read_one(x->p, x->base, i);
		break;
	case EXIT_IN_NESTED_SECTIONS:
		WORKER_CHECK(ntmm_thread_register(x->e) == 0);
		ntmm_access_begin(x->e);
		ntmm_access_begin(x->e);
		read_one(x->p, x->base, i);
		break;
	case EXIT_ADOPTED_IN_SECTION:
		ntmm_access_begin(x->e);
		read_one(x->p, x->base, i);
		break;
	case EXIT_AFTER_OTHER_ENGINE:
		WORKER_CHECK(ntmm_thread_register(x->other) == 0);
		WORKER_CHECK(ntmm_thread_register(x->e) == 0);
		uint64_t v = 0;
		WORKER_CHECK(ntmm_read(x->other_p, x->other_base, &v, sizeof(v)) == 0);
		pthread_barrier_wait(x->other_done); /* we are out of the other engine */
		pthread_barrier_wait(x->other_done); /* the other engine is destroyed */
		ntmm_access_begin(x->e);
		read_one(x->p, x->base, i);
		break;
	}
	return NULL; /* no access_end, no unregister */
}

static void threads_that_exit_registered_or_inside_a_section_leave_the_engine_usable(void **s)
{
	(void)s;
	wsm_opts_t o = {.mib = 16, .threads = true};
	ntmm_engine_t *e = wsm_engine(&o);
	uint64_t base;
	ntmm_process_t *p = wsm_process(e, EXIT_PAGES, &base);
	wsm_fill(p, base, 1, 0, EXIT_PAGES);

	/* the watchdog: a grace period waiting for a dead thread is a hang */
	alarm(600);
	int rounds = (int)scaled(12);
	enum { PER_ROUND = 3 * EXIT_KINDS }; /* more threads than cores */
	for (int r = 0; r < rounds; r++) {
		ntmm_engine_t *other = wsm_engine(&(wsm_opts_t){.mib = 4});
		uint64_t other_base;
		ntmm_process_t *other_p = wsm_process(other, 16, &other_base);
		pthread_barrier_t bar;
		int with_other = PER_ROUND / EXIT_KINDS;
		pthread_barrier_init(&bar, NULL, (unsigned)with_other + 1);
		exiter_t x[PER_ROUND];
		pthread_t t[PER_ROUND];
		for (int i = 0; i < PER_ROUND; i++) {
			x[i] = (exiter_t){.e = e,
			                  .other = other,
			                  .p = p,
			                  .other_p = other_p,
			                  .base = base,
			                  .other_base = other_base,
			                  .kind = i % EXIT_KINDS,
			                  .other_done = &bar};
			assert_int_equal(pthread_create(&t[i], NULL, exiter, &x[i]), 0);
		}
		pthread_barrier_wait(&bar);
		assert_int_equal(ntmm_process_destroy(other_p), 0);
		ntmm_thread_unregister(other);
		ntmm_engine_destroy(other);
		pthread_barrier_wait(&bar);
		for (int i = 0; i < PER_ROUND; i++)
			pthread_join(t[i], NULL);
		pthread_barrier_destroy(&bar);

		/* each of these waits for a grace period */
		unsigned old;
		assert_int_equal(ntmm_protect(p, base, EXIT_PAGES * PG, NTMM_PAGE_READONLY, &old),
		                 0);
		assert_int_equal(old, NTMM_PAGE_READWRITE);
		assert_int_equal(ntmm_protect(p, base, EXIT_PAGES * PG, NTMM_PAGE_READWRITE, &old),
		                 0);
		assert_int_equal(ntmm_ws_empty(p), 0);
		assert_int_equal(wsm_check(p, base, 1, 0, EXIT_PAGES), 0);
	}
	assert_int_equal(ntmm_free(p, base + 16 * PG, 16 * PG, NTMM_MEM_DECOMMIT), 0);
	assert_int_equal(ntmm_free(p, base, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(atomic_load(&test_failures), 0);
	wsm_engine_done(e);
	alarm(0);
}

/* ------------------------------------------------ aborts, in a child (item) */

#define CHILD_WAIT_NS (20ull * 1000000000ull)

/* Runs this binary with --misuse name; returns its wait status and its
   stderr in err. Kills it and fails after CHILD_WAIT_NS. */
static int run_misuse_child(const char *name, char *err, size_t errlen)
{
	int fd[2];
	assert_int_equal(pipe(fd), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fd[1], 2);
		close(fd[0]);
		close(fd[1]);
		execl("/proc/self/exe", "test_thread_misuse", "--misuse", name, (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	fcntl(fd[0], F_SETFL, O_NONBLOCK);
	size_t len = 0;
	int status = 0;
	bool exited = false, eof = false;
	uint64_t t0 = test_now_ns();
	while (!exited || !eof) {
		if (test_now_ns() - t0 > CHILD_WAIT_NS) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			close(fd[0]);
			err[len] = 0;
			fail_msg("--misuse %s: still running after 20 s (a hang); stderr: %s", name,
			         err);
		}
		struct pollfd pf = {.fd = fd[0], .events = POLLIN};
		if (!eof && poll(&pf, 1, 50) > 0) {
			char tmp[512];
			ssize_t n = read(fd[0], tmp, sizeof(tmp));
			if (n == 0)
				eof = true;
			for (ssize_t k = 0; k < n && len + 1 < errlen; k++)
				err[len++] = tmp[k];
		} else if (eof) {
			usleep(10000);
		}
		if (!exited && waitpid(pid, &status, WNOHANG) == pid)
			exited = true;
	}
	close(fd[0]);
	err[len] = 0;
	return status;
}

static void assert_aborted_with(const char *name, const char *message)
{
	char err[8192];
	int status = run_misuse_child(name, err, sizeof(err));
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
		fail_msg("--misuse %s: not killed by SIGABRT (status %#x); stderr: %s", name,
		         status, err);
	if (!strstr(err, message))
		fail_msg("--misuse %s: stderr lacks \"%s\": %s", name, message, err);
}

static void destroy_inside_an_access_section_aborts_with_a_message(void **s)
{
	(void)s;
	assert_aborted_with("destroy-in-section",
	                    "ntmm_engine_destroy(0x"); /* names the call ... */
	assert_aborted_with("destroy-in-section", "called inside an access section");
	/* the engine's threads running make no difference */
	assert_aborted_with("destroy-in-section-threads", "called inside an access section");
}

static void unpin_twice_aborts_with_a_message_in_debug_builds(void **s)
{
	(void)s;
#if NTMM_DEBUG >= 1
	assert_aborted_with("unpin-twice", "unpinned twice");
#else
	skip();
#endif
}

static void unpin_after_engine_destroy_aborts_with_a_message_in_debug_builds(void **s)
{
	(void)s;
#if NTMM_DEBUG >= 1
	assert_aborted_with("unpin-after-destroy", "unpin after ntmm_engine_destroy");
#else
	skip();
#endif
}

/* The child's side: each misuse, then a return the parent reports. */
static int misuse(const char *name)
{
	bool threads = strcmp(name, "destroy-in-section-threads") == 0;
	ntmm_config_t c;
	ntmm_config_init(&c);
	c.physical_bytes = 8 * MiB;
	c.start_threads = threads;
	c.pagefile_path = NULL;
	ntmm_engine_t *e;
	ntmm_process_t *p;
	uint64_t base = 0;
	if (ntmm_engine_create(&c, &e) || ntmm_thread_register(e) || ntmm_process_create(e, &p) ||
	    ntmm_allocate(p, &base, 16 * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT,
	                  NTMM_PAGE_READWRITE)) {
		fprintf(stderr, "setup failed: %s\n", ntmm_error_detail());
		return 3;
	}
	if (strncmp(name, "destroy-in-section", 18) == 0) {
		void *h;
		ntmm_access_begin(e);
		if (ntmm_translate(p, base, NTMM_ACCESS_WRITE, &h))
			return 3;
		ntmm_engine_destroy(e);
	} else if (strcmp(name, "unpin-twice") == 0) {
		ntmm_pin_t *pin;
		if (ntmm_pin(p, base, 2 * PG, NTMM_ACCESS_WRITE, &pin))
			return 3;
		ntmm_unpin(pin);
		ntmm_unpin(pin);
	} else if (strcmp(name, "unpin-after-destroy") == 0) {
		ntmm_pin_t *pin;
		if (ntmm_pin(p, base, 2 * PG, NTMM_ACCESS_WRITE, &pin))
			return 3;
		ntmm_process_destroy(p);
		ntmm_thread_unregister(e);
		ntmm_engine_destroy(e);
		ntmm_unpin(pin);
	} else {
		fprintf(stderr, "unknown misuse %s\n", name);
		return 2;
	}
	fprintf(stderr, "misuse %s: returned\n", name);
	return 4;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--misuse") == 0)
		return misuse(argv[2]);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(destroy_inside_an_access_section_aborts_with_a_message),
	    cmocka_unit_test(unpin_twice_aborts_with_a_message_in_debug_builds),
	    cmocka_unit_test(unpin_after_engine_destroy_aborts_with_a_message_in_debug_builds),
	    cmocka_unit_test(
	        unregistered_threads_read_correct_bytes_while_pages_are_trimmed_and_reused),
	    cmocka_unit_test(
	        threads_that_exit_registered_or_inside_a_section_leave_the_engine_usable),
	};
	if (argc == 2) /* one test by name (a glob) */
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
