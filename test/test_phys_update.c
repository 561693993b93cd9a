/* The PFN update helper (ntmm__pfn_update) and the expensive per-step
   check (ntmm__pfn_step_ok): the helper returns the word it replaced,
   leaves the word alone when next() declines, retries with the new word
   after a lost race, and loses no change when threads race; the step check
   refuses what the legality check lets through (a count borrowing from its
   neighbour, I/O flags where no I/O can be), and in the debug preset
   (NTMM_DEBUG 2) a transition it refuses aborts. */
#include "phys_testutil.h"

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#define L(x)     NTMM__LOC_##x
#define FAKE_PTE 0x7000u /* a PTE address for the entry's pte field */

static uint64_t w(unsigned loc, unsigned shares, unsigned refs, uint64_t flags, uint64_t gen)
{
	return loc | (uint64_t)shares << NTMM__PFN_SHARE_SHIFT |
	       (uint64_t)refs << NTMM__PFN_REF_SHIFT | flags | gen << NTMM__PFN_GEN_SHIFT;
}

static void entry_init(ntmm__pfn_entry_t *p, uint64_t s, uint64_t pte)
{
	memset(p, 0, sizeof(*p));
	atomic_init(&p->state, s);
	atomic_init(&p->pte, pte);
}

/* ------------------------------------------------------------ step check */

static void the_page_life_steps_pass_the_step_check(void **state)
{
	ntmm__pfn_entry_t p;
	entry_init(&p, 0, FAKE_PTE);
	const uint64_t RIP = NTMM__PFN_READ_IN_PROGRESS, WIP = NTMM__PFN_WRITE_IN_PROGRESS;
	/* unmap of the last share: ACTIVE → TRANSITION with the grace ref */
	assert_true(ntmm__pfn_step_ok(&p, w(L(ACTIVE), 1, 0, 0, 3), w(L(TRANSITION), 0, 1, 0, 4)));
	/* soft fault: TRANSITION → ACTIVE share 1, the grace ref kept */
	assert_true(ntmm__pfn_step_ok(&p, w(L(TRANSITION), 0, 1, 0, 4), w(L(ACTIVE), 1, 1, 0, 5)));
	/* hard fault: read begin and done */
	assert_true(
	    ntmm__pfn_step_ok(&p, w(L(ACTIVE), 1, 0, 0, 1), w(L(TRANSITION), 0, 1, RIP, 2)));
	assert_true(
	    ntmm__pfn_step_ok(&p, w(L(TRANSITION), 0, 1, RIP, 2), w(L(ACTIVE), 1, 0, 0, 3)));
	/* a failed read */
	assert_true(ntmm__pfn_step_ok(
	    &p, w(L(TRANSITION), 0, 1, RIP, 2),
	    w(L(TRANSITION), 0, 1, NTMM__PFN_DELETED | NTMM__PFN_IN_PAGE_ERROR, 2)));
	/* the writer: Modified → TRANSITION in write, reclaimed for reading */
	assert_true(ntmm__pfn_step_ok(&p, w(L(MODIFIED), 0, 0, NTMM__PFN_MODIFIED, 6),
	                              w(L(TRANSITION), 0, 1, WIP, 7)));
	assert_true(
	    ntmm__pfn_step_ok(&p, w(L(TRANSITION), 0, 1, WIP, 7), w(L(ACTIVE), 1, 1, WIP, 8)));
	/* the last reference dropped: TRANSITION → Standby */
	assert_true(
	    ntmm__pfn_step_ok(&p, w(L(TRANSITION), 0, 1, 0, 9), w(L(STANDBY), 0, 0, 0, 10)));
}

static void the_step_check_refuses_what_legality_lets_through(void **state)
{
	ntmm__pfn_entry_t p;
	entry_init(&p, 0, FAKE_PTE);
	uint64_t from, to;

	/* a reference dropped that was not there: the ref field borrows from
	   the share field (share 2 ref 0 → share 1 ref 0xffff) */
	from = w(L(ACTIVE), 2, 0, 0, 1);
	to = from - NTMM__PFN_REF_ONE;
	assert_true(ntmm__pfn_legal(from, to));
	assert_false(ntmm__pfn_step_ok(&p, from, to));

	/* READ_IN_PROGRESS on an ACTIVE frame */
	from = w(L(ACTIVE), 1, 1, 0, 1);
	to = from | NTMM__PFN_READ_IN_PROGRESS;
	assert_true(ntmm__pfn_legal(from, to));
	assert_false(ntmm__pfn_step_ok(&p, from, to));

	/* WRITE_IN_PROGRESS without the I/O reference */
	from = w(L(ACTIVE), 1, 0, 0, 1);
	to = from | NTMM__PFN_WRITE_IN_PROGRESS;
	assert_true(ntmm__pfn_legal(from, to));
	assert_false(ntmm__pfn_step_ok(&p, from, to));

	/* both I/O flags at once */
	from = w(L(TRANSITION), 0, 1, NTMM__PFN_READ_IN_PROGRESS, 1);
	to = from | NTMM__PFN_WRITE_IN_PROGRESS;
	assert_true(ntmm__pfn_legal(from, to));
	assert_false(ntmm__pfn_step_ok(&p, from, to));

	/* IN_PAGE_ERROR on a frame that is not DELETED */
	from = w(L(TRANSITION), 0, 1, 0, 1);
	to = from | NTMM__PFN_IN_PAGE_ERROR;
	assert_true(ntmm__pfn_legal(from, to));
	assert_false(ntmm__pfn_step_ok(&p, from, to));

	/* a word some path wrote unchecked (TRANSITION with no reference):
	   caught at the next change, although that change is legal */
	from = w(L(TRANSITION), 0, 0, 0, 1);
	to = w(L(ACTIVE), 1, 0, 0, 2);
	assert_true(ntmm__pfn_legal(from, to));
	assert_false(ntmm__pfn_step_ok(&p, from, to));

	/* a read in progress on an entry that names no PTE */
	entry_init(&p, 0, 0);
	from = w(L(ACTIVE), 1, 0, 0, 1);
	to = w(L(TRANSITION), 0, 1, NTMM__PFN_READ_IN_PROGRESS, 2);
	assert_true(ntmm__pfn_legal(from, to));
	assert_false(ntmm__pfn_step_ok(&p, from, to));
}

/* --------------------------------------------------------------- helper */

static uint64_t set_modified(uint64_t s, void *arg)
{
	(void)arg;
	return (s & NTMM__PFN_MODIFIED) ? NTMM__PFN_DECLINE : s | NTMM__PFN_MODIFIED;
}

static void update_returns_the_word_it_replaced(void **state)
{
	ntmm__pfn_entry_t p;
	uint64_t s0 = w(L(ACTIVE), 1, 0, 0, 5);
	entry_init(&p, s0, FAKE_PTE);
	assert_int_equal(ntmm__pfn_update(&p, set_modified, NULL), s0);
	assert_int_equal(atomic_load(&p.state), s0 | NTMM__PFN_MODIFIED);
	/* the sc form changes the word the same way */
	entry_init(&p, s0, FAKE_PTE);
	assert_int_equal(ntmm__pfn_update_sc(&p, set_modified, NULL), s0);
	assert_int_equal(atomic_load(&p.state), s0 | NTMM__PFN_MODIFIED);
}

static void a_declined_update_changes_nothing(void **state)
{
	ntmm__pfn_entry_t p;
	uint64_t s0 = w(L(ACTIVE), 1, 0, NTMM__PFN_MODIFIED, 5);
	entry_init(&p, s0, FAKE_PTE);
	assert_true(ntmm__pfn_update(&p, set_modified, NULL) == NTMM__PFN_DECLINE);
	assert_int_equal(atomic_load(&p.state), s0);
	/* the sentinel is never a state word */
	assert_false(ntmm__pfn_word_ok(NTMM__PFN_DECLINE));
}

/* next() that, on its first call, lets "another thread" add a share
   behind its back, so the first CAS loses and the step is recomputed */
typedef struct racer {
	ntmm__pfn_entry_t *p;
	unsigned calls;
	uint64_t seen[4];
} racer_t;

static uint64_t set_modified_racing(uint64_t s, void *arg)
{
	racer_t *r = arg;
	if (r->calls < 4)
		r->seen[r->calls] = s;
	if (r->calls++ == 0)
		atomic_store(&r->p->state, s + NTMM__PFN_SHARE_ONE);
	return s | NTMM__PFN_MODIFIED;
}

static void a_lost_race_recomputes_from_the_new_word(void **state)
{
	ntmm__pfn_entry_t p;
	uint64_t s0 = w(L(ACTIVE), 1, 0, 0, 5);
	entry_init(&p, s0, FAKE_PTE);
	racer_t r = {.p = &p};
	uint64_t was = ntmm__pfn_update(&p, set_modified_racing, &r);
	assert_int_equal(r.calls, 2);
	assert_int_equal(r.seen[0], s0);
	assert_int_equal(r.seen[1], s0 + NTMM__PFN_SHARE_ONE);
	assert_int_equal(was, s0 + NTMM__PFN_SHARE_ONE);
	assert_int_equal(atomic_load(&p.state), s0 + NTMM__PFN_SHARE_ONE + NTMM__PFN_MODIFIED);
}

/* Threads racing reference and priority updates on one entry lose none. */
#define RACE_THREADS 2
#define RACE_ROUNDS  50000

static uint64_t ref_up(uint64_t s, void *arg)
{
	(void)arg;
	return s + NTMM__PFN_REF_ONE;
}
static uint64_t ref_down(uint64_t s, void *arg)
{
	(void)arg;
	return s - NTMM__PFN_REF_ONE;
}
static uint64_t set_prio(uint64_t s, void *arg)
{
	uint64_t next = (s & ~NTMM__PFN_PRIO_MASK) | *(const uint64_t *)arg;
	return next == s ? NTMM__PFN_DECLINE : next;
}

typedef struct race_arg {
	ntmm__pfn_entry_t *p;
	unsigned id;
	uint64_t refs_added;
} race_arg_t;

static void *race_thread(void *arg)
{
	race_arg_t *a = arg;
	for (unsigned i = 0; i < RACE_ROUNDS; i++) {
		ntmm__pfn_update(a->p, ref_up, NULL);
		uint64_t prio = (uint64_t)((i + a->id) & 7) << NTMM__PFN_PRIO_SHIFT;
		ntmm__pfn_update(a->p, set_prio, &prio);
		if (i % 4 != 3)
			ntmm__pfn_update(a->p, ref_down, NULL);
		else
			a->refs_added++;
	}
	return NULL;
}

static void racing_updates_lose_no_change(void **state)
{
	ntmm__pfn_entry_t p;
	uint64_t s0 = w(L(ACTIVE), 1, 0, 0, 5);
	entry_init(&p, s0, FAKE_PTE);
	pthread_t t[RACE_THREADS];
	race_arg_t a[RACE_THREADS];
	for (unsigned i = 0; i < RACE_THREADS; i++) {
		a[i] = (race_arg_t){.p = &p, .id = i};
		assert_int_equal(pthread_create(&t[i], NULL, race_thread, &a[i]), 0);
	}
	uint64_t kept = 0;
	for (unsigned i = 0; i < RACE_THREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		kept += a[i].refs_added;
	}
	uint64_t s = atomic_load(&p.state);
	assert_int_equal(ntmm__pfn_loc(s), L(ACTIVE));
	assert_int_equal(ntmm__pfn_shares(s), 1);
	assert_int_equal(ntmm__pfn_refs(s), kept);
	assert_int_equal(kept, RACE_THREADS * (RACE_ROUNDS / 4));
	assert_int_equal(s >> NTMM__PFN_GEN_SHIFT, 5); /* no location change */
}

/* ------------------------------------------------------ the abort (debug) */

/* In the debug preset a step the expensive check refuses aborts, naming
   the check: here an unref of a frame with no reference. */
static void a_refused_step_aborts_in_the_debug_preset(void **state)
{
#if NTMM_DEBUG >= 2
	int fd[2];
	assert_int_equal(pipe(fd), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fd[1], 2);
		close(fd[0]);
		close(fd[1]);
		ntmm__pfn_entry_t p;
		entry_init(&p, w(L(ACTIVE), 2, 0, 0, 1), FAKE_PTE);
		ntmm__pfn_update(&p, ref_down, NULL);
		_exit(0);
	}
	close(fd[1]);
	char err[4096];
	size_t len = 0;
	ssize_t n;
	while ((n = read(fd[0], err + len, sizeof(err) - 1 - len)) > 0)
		len += (size_t)n;
	err[len] = 0;
	close(fd[0]);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
		fail_msg("not killed by SIGABRT (status %#x); stderr: %s", status, err);
	assert_non_null(strstr(err, "ntmm__pfn_step_ok"));
#else
	skip();
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(the_page_life_steps_pass_the_step_check),
	    cmocka_unit_test(the_step_check_refuses_what_legality_lets_through),
	    cmocka_unit_test(update_returns_the_word_it_replaced),
	    cmocka_unit_test(a_declined_update_changes_nothing),
	    cmocka_unit_test(a_lost_race_recomputes_from_the_new_word),
	    cmocka_unit_test(racing_updates_lose_no_change),
	    cmocka_unit_test(a_refused_step_aborts_in_the_debug_preset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
