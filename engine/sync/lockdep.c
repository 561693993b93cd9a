/*
 * The per-thread held-pushlock stack behind lockdep.h (debug builds only).
 * Deep enough for every nesting the engine has (address space → working
 * set → a page-table or list lock, plus a test's own); past its depth the
 * checks stop asserting for that thread rather than report falsely.
 */
#include "sync/lockdep.h"

#if NTMM__LOCKDEP
#include <unistd.h>

#define HELD_MAX 32

static __thread struct {
	const void *lock[HELD_MAX];
	unsigned char mode[HELD_MAX];
	unsigned n;        /* entries in use */
	unsigned overflow; /* acquisitions not recorded (stack full) */
} held;

void ntmm__lockdep_acquired(const void *lock, enum ntmm__held_mode mode)
{
	if (held.n == HELD_MAX) {
		held.overflow++;
		return;
	}
	held.lock[held.n] = lock;
	held.mode[held.n] = (unsigned char)mode;
	held.n++;
}

static int find(const void *lock)
{
	for (unsigned i = held.n; i-- > 0;)
		if (held.lock[i] == lock)
			return (int)i;
	return -1;
}

void ntmm__lockdep_released(const void *lock)
{
	int i = find(lock);
	if (i < 0) {
		/* released by another thread than its acquirer, or taken while
		   the stack was full */
		if (held.overflow)
			held.overflow--;
		return;
	}
	for (unsigned j = (unsigned)i; j + 1 < held.n; j++) {
		held.lock[j] = held.lock[j + 1];
		held.mode[j] = held.mode[j + 1];
	}
	held.n--;
}

void ntmm__lockdep_set_mode(const void *lock, enum ntmm__held_mode mode)
{
	int i = find(lock);
	if (i >= 0)
		held.mode[i] = (unsigned char)mode;
}

bool ntmm__lockdep_overflowed(void)
{
	return held.overflow != 0;
}

bool ntmm__lockdep_holds(const void *lock, enum ntmm__held_mode mode)
{
	for (unsigned i = 0; i < held.n; i++)
		if (held.lock[i] == lock && (held.mode[i] & mode))
			return true;
	return held.overflow != 0;
}

/* The calling thread's tid, cached (gettid is a system call). The child
   of a fork is a new thread with its parent's thread-local copy, so the
   cache is cleared there; the fork handler is registered before any
   thread fills its cache. */
static __thread pid_t tid;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void forget_tid_in_child(void)
{
	tid = 0;
}

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, forget_tid_in_child);
}

bool ntmm__lockdep_mutex_owned(pthread_mutex_t *m)
{
	if (!tid) {
		pthread_once(&atfork_once, register_atfork);
		tid = gettid();
	}
	/* glibc stores the locking thread's tid in __owner for every mutex
	   type; relaxed-enough for a debug check: only the owner itself can
	   see its own tid there */
	return __atomic_load_n(&m->__data.__owner, __ATOMIC_RELAXED) == tid;
}
#endif
