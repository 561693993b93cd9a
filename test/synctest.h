/*
 * Helpers for the synchronization tests: bounded waits for a condition
 * another thread makes true (the bound only keeps a broken lock from
 * hanging the run — it is never a speed assertion), a watchdog for long
 * stress runs, and a check that a debug assertion fires (in a child).
 */
#ifndef NTMM_TEST_SYNCTEST_H
#define NTMM_TEST_SYNCTEST_H

#include "testutil.h"

#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sync/event.h"

/* Generous: a correct lock makes the condition true in microseconds, a
   broken one never; a loaded TSan run on two cores must not trip it. */
#define SYNCTEST_PATIENCE_NS (120ull * 1000000000ull)

/* Yields until cond() or the patience runs out; false = never seen. */
#define WAIT_UNTIL(cond)                                                      \
	({                                                                    \
		uint64_t wu_deadline_ = test_now_ns() + SYNCTEST_PATIENCE_NS; \
		bool wu_ok_ = true;                                           \
		while (!(cond)) {                                             \
			if (test_now_ns() > wu_deadline_) {                   \
				wu_ok_ = false;                               \
				break;                                        \
			}                                                     \
			sched_yield();                                        \
		}                                                             \
		wu_ok_;                                                       \
	})

/*
 * Starts n threads on fn and waits for all of them to finish, with a
 * watchdog: if they have not all finished within the patience (a lost
 * wake-up leaves a thread asleep for ever), report and abort instead of
 * hanging until the ctest timeout. `done` is incremented by the helper.
 */
typedef struct synctest_run {
	test_thread_fn fn;
	void *arg;
	atomic_int *done;
	ntmm__event_t *ev;
} synctest_run_t;

static void *synctest_trampoline(void *p)
{
	synctest_run_t *r = p;
	r->fn(r->arg);
	atomic_fetch_add_explicit(r->done, 1, memory_order_release);
	ntmm__event_signal(r->ev);
	return NULL;
}

static inline void run_threads_watched(int n, test_thread_fn fn, void *args, size_t arg_size,
                                       const char *what, void (*on_hang)(void *), void *hang_arg)
{
	pthread_t *t = calloc((size_t)n, sizeof(*t));
	synctest_run_t *r = calloc((size_t)n, sizeof(*r));
	atomic_int done = 0;
	ntmm__event_t ev;
	ntmm__event_init(&ev);
	for (int i = 0; i < n; i++) {
		r[i] = (synctest_run_t){fn, (char *)args + (size_t)i * arg_size, &done, &ev};
		assert_int_equal(pthread_create(&t[i], NULL, synctest_trampoline, &r[i]), 0);
	}
	uint64_t deadline = test_now_ns() + SYNCTEST_PATIENCE_NS;
	for (;;) {
		uint32_t key = ntmm__event_prepare(&ev);
		if (atomic_load_explicit(&done, memory_order_acquire) == n)
			break;
		uint64_t now = test_now_ns();
		if (now >= deadline) {
			fprintf(stderr, "%s: only %d of %d threads finished: a lost wake-up?\n",
			        what, atomic_load(&done), n);
			if (on_hang)
				on_hang(hang_arg);
			abort(); /* the threads still use this frame: no longjmp */
		}
		ntmm__event_wait(&ev, key, (int64_t)(deadline - now));
	}
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	free(t);
	free(r);
}

/* Runs fn(arg) in a child process; true if the child died of SIGABRT
   (an ntmm__assert firing). The child's stderr goes to /dev/null. */
static inline bool aborts_in_child(void (*fn)(void *), void *arg)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		if (!freopen("/dev/null", "w", stderr))
			_exit(3);
		fn(arg);
		_exit(0);
	}
	int status = 0;
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return false;
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

#endif
