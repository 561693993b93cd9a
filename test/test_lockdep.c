/*
 * The debug builds' lock-held checks (engine/sync/lockdep.h): a pushlock is
 * seen held by the thread that took it, in the mode it took it, and not
 * after release nor by another thread; downgrade and convert change the
 * recorded mode; a mutex is seen owned only by the thread that locked it.
 * Release builds compile the checks away, so these cases need a debug or
 * sanitizer build (the test presets all are).
 */
#include "synctest.h"

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sync/lockdep.h"
#include "sync/pushlock.h"

#if NTMM__LOCKDEP
static void pushlock_is_held_by_its_acquirer_in_its_mode(void **state)
{
	ntmm__pushlock_t pl = NTMM__PUSHLOCK_INIT;
	assert_false(ntmm__lockdep_holds(&pl, NTMM__HELD_ANY));
	ntmm__pushlock_acquire_exclusive(&pl);
	assert_true(ntmm__lockdep_holds(&pl, NTMM__HELD_EXCLUSIVE));
	assert_false(ntmm__lockdep_holds(&pl, NTMM__HELD_SHARED));
	ntmm__pushlock_downgrade(&pl);
	assert_true(ntmm__lockdep_holds(&pl, NTMM__HELD_SHARED));
	assert_false(ntmm__lockdep_holds(&pl, NTMM__HELD_EXCLUSIVE));
	assert_true(ntmm__pushlock_try_convert_to_exclusive(&pl));
	assert_true(ntmm__lockdep_holds(&pl, NTMM__HELD_EXCLUSIVE));
	ntmm__pushlock_release_exclusive(&pl);
	assert_false(ntmm__lockdep_holds(&pl, NTMM__HELD_ANY));
}

static void nested_shared_holds_count_each_acquire(void **state)
{
	ntmm__pushlock_t a = NTMM__PUSHLOCK_INIT, b = NTMM__PUSHLOCK_INIT;
	ntmm__pushlock_acquire_shared(&a);
	ntmm__pushlock_acquire_shared(&a);
	assert_true(ntmm__pushlock_try_acquire_exclusive(&b));
	ntmm__pushlock_release_shared(&a);
	assert_true(ntmm__lockdep_holds(&a, NTMM__HELD_SHARED)); /* one hold left */
	ntmm__pushlock_release_shared(&a);
	assert_false(ntmm__lockdep_holds(&a, NTMM__HELD_ANY));
	assert_true(ntmm__lockdep_holds(&b, NTMM__HELD_EXCLUSIVE));
	ntmm__pushlock_release_exclusive(&b);
	assert_false(ntmm__lockdep_holds(&b, NTMM__HELD_ANY));
}

typedef struct other {
	ntmm__pushlock_t *pl;
	pthread_mutex_t *m;
	bool saw_pushlock, saw_mutex;
} other_t;

static void *look_from_another_thread(void *arg)
{
	other_t *o = arg;
	o->saw_pushlock = ntmm__lockdep_holds(o->pl, NTMM__HELD_ANY);
	o->saw_mutex = ntmm__lockdep_mutex_owned(o->m);
	return NULL;
}

static void another_thread_does_not_hold_our_locks(void **state)
{
	ntmm__pushlock_t pl = NTMM__PUSHLOCK_INIT;
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	ntmm__pushlock_acquire_exclusive(&pl);
	pthread_mutex_lock(&m);
	assert_true(ntmm__lockdep_mutex_owned(&m));
	other_t o = {&pl, &m, true, true};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, look_from_another_thread, &o), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_false(o.saw_pushlock);
	assert_false(o.saw_mutex);
	pthread_mutex_unlock(&m);
	assert_false(ntmm__lockdep_mutex_owned(&m));
	ntmm__pushlock_release_exclusive(&pl);
}

/* The child of a fork is another thread (its own tid): it owns the mutexes
   it locks, although its parent had checked ownership before the fork. */
static void a_forked_child_owns_the_mutexes_it_locks(void **state)
{
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&m);
	assert_true(ntmm__lockdep_mutex_owned(&m)); /* the parent's tid is known */
	pthread_mutex_unlock(&m);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		pthread_mutex_lock(&m);
		bool owned = ntmm__lockdep_mutex_owned(&m);
		pthread_mutex_unlock(&m);
		_exit(owned && !ntmm__lockdep_mutex_owned(&m) ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(pushlock_is_held_by_its_acquirer_in_its_mode),
	    cmocka_unit_test(nested_shared_holds_count_each_acquire),
	    cmocka_unit_test(another_thread_does_not_hold_our_locks),
	    cmocka_unit_test(a_forked_child_owns_the_mutexes_it_locks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
#else
int main(void)
{
	fprintf(stderr, "test_lockdep: this build has no lock-held checks (NTMM_DEBUG 0)\n");
	return 77; /* ctest: skipped */
}
#endif
