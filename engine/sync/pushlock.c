/*
 * Pushlock slow paths: waiting, waking, and the list of wait blocks.
 * The uncontended paths are inline in pushlock.h; this file is what runs
 * once a second party is involved. It follows NTMM-REFERENCE.md §5.
 *
 * THE WORD.  L = LOCKED (1), W = WAITING (2), K = WAKING (4),
 * M = MULTIPLE_SHARED (8).
 *   W clear: the word is 0 (free), L (held exclusive) or L + 16n (held by
 *            n >= 1 sharers). K and M are clear.
 *   W set:   bits 4.. are the newest wait block ("head"). L says whether
 *            the lock is held; M says it is held by more than one sharer
 *            (the count then lives in the oldest block, the "tail").
 *            K says one thread owns the list for fixing/waking.
 *
 * THE LIST.  Wait blocks live on the waiters' stacks (16-byte aligned so
 * their address leaves the four flag bits free) and are pushed at the head
 * with one CAS, so the list is newest → oldest through `next`. A block is
 * touched by others only between its push and its wake; its owner reuses
 * it only after it has been woken, and a waker reads everything it needs
 * from a block before it wakes it.
 *   - `next` is written before the push and never changes.
 *   - The tail (first waiter) has `last` = itself. Every other block is
 *     pushed with `last` = NULL. Walking from the head through `next`, the
 *     first block whose `last` is set names the tail ("the first-last rule").
 *   - `previous` (the newer neighbour) is filled in lazily, by walking from
 *     the head down to that first block with `last` set. The walker then
 *     stores the tail into head->last, so the next walk stops at once.
 *   - Only the owner of K writes `previous`, `last` of a non-new block, or
 *     removes blocks. A push only adds at the head. So the K owner sees a
 *     list that only grows at the head, and nobody else ever writes a link
 *     it reads.
 *
 * ACQUIRE (exclusive: L clear; shared: W clear and not held exclusive).
 *   Otherwise push a block. The first waiter (W was clear) moves the share
 *   count n into its block and sets M when n > 1. A later waiter that finds
 *   K clear sets K in the same CAS and, after the push, fixes the back links
 *   ("optimizes" the list) and clears K — or, if the lock was released in
 *   the meantime (its releaser saw K and left the waking to us), wakes.
 *   Then spin about 1024 times on the block's state, and sleep on it
 *   (futex) if not woken. A thread woken out of the list starts over.
 *
 * RELEASE.  Exclusive: subtract L (one atomic); if W was set and K clear,
 *   try to set K (only while W, L clear, K clear) and wake.
 *   Shared without waiters: subtract one sharer (one CAS). Shared with
 *   waiters: if M, find the tail and decrement its count; if others remain,
 *   done. The last sharer clears L and M and sets K (unless set) in one CAS,
 *   and wakes if it set K.
 *
 * WAKE (by the owner of K).  If L is set again, the new holder will wake at
 *   its release: drop K (a CAS, so that a release racing with us is seen).
 *   Otherwise fix the links and look at the oldest waiter (the tail):
 *   - a reader: detach the whole list (word := 0) and wake every block,
 *     oldest first; they all compete again;
 *   - a writer: wake it alone, but leave its block listed and pass K to it
 *     (with the wake, through the block's state word). W thus keeps new
 *     readers out while the writer is being scheduled, which on a loaded
 *     machine can take milliseconds — detaching it would let a stream of
 *     readers in for all that time. The woken writer takes the lock and
 *     unhooks itself (word := L if it was alone, else its newer neighbour
 *     becomes the tail) and drops K. There is still no hand-off: a free
 *     lock is anyone's, and if another writer took it meanwhile the woken
 *     one drops K and waits again, still the oldest.
 *
 * INVARIANTS.
 *   I1. K ⇒ W; M ⇒ L ∧ W. Only the K owner writes links of listed blocks
 *       (other than a new head's own), detaches blocks or clears W.
 *   I2. W ∧ ¬L ⇒ K is owned, except between an exclusive release's
 *       subtract and its try-wake. Whoever owns K re-checks L before
 *       dropping it and drops it only while L is set, so no waiter sleeps
 *       while the lock is free and nobody is bound to wake it.
 *   I3. Shared holders while W is set are only ever the sharers present
 *       when the first waiter pushed (their count in the tail, M if > 1) or
 *       one downgraded exclusive holder (M clear). A new shared acquire
 *       never enters while W is set, and a woken writer keeps W set until
 *       it holds the lock: readers cannot overtake a waiting writer.
 *   I4. The tail's count is decremented only while M is set, so the tail
 *       cannot be unhooked under a sharer walking to it: that needs L
 *       clear, and L stays set until the last of those sharers clears it.
 *
 * MEMORY ORDER. Every change of the word is an RMW (the single-threaded
 *   fast paths in pushlock.h store plainly, but only while no other thread
 *   exists), so the release sequence of each push reaches every later
 *   acquire of the word: a thread that loaded the word with acquire
 *   ordering sees the blocks it points to. K changes hands through acquire
 *   (set) and release (clear) on the word, or through the release/acquire
 *   pair on a woken writer's state word, which orders the link fixes of
 *   one owner before the next. The link fields
 *   are atomics accessed relaxed: walkers without K (a sharer looking for
 *   the tail) may read `last` while the K owner writes it, and either value
 *   is right (NULL only means "keep walking").
 */
#include "sync/pushlock.h"
#include "sync/backoff.h"
#include "sync/event.h"

#include <stddef.h>

#define L        NTMM__PL_LOCKED
#define W        NTMM__PL_WAITING
#define K        NTMM__PL_WAKING
#define M        NTMM__PL_MULTIPLE
#define SHARE    NTMM__PL_SHARE
#define PTR_MASK (~NTMM__PL_FLAGS)

/* A waiter's state word, and the futex it sleeps on. WOKEN: detached from
   the list, compete again. WOKEN_K: a lone exclusive waiter woken while its
   block stays listed (so W keeps readers out); it now owns K. */
enum { WB_SPINNING = 0, WB_SLEEPING = 1, WB_WOKEN = 2, WB_WOKEN_K = 3 };

/*
 * A wait block, on the waiter's stack from its push until it is woken.
 * Who writes what: the owner initialises everything before the push; then
 *   next        — never again;
 *   last        — the K owner (on the head it walked from);
 *   previous    — the K owner (while fixing links);
 *   share_count — the sharers leaving (tail only, while M is set);
 *   state       — the owner (SPINNING → SLEEPING) and the waker (→ WOKEN).
 */
typedef struct wait_block {
	_Atomic(struct wait_block *) next;     /* older neighbour, NULL at the tail */
	_Atomic(struct wait_block *) last;     /* tail, per the first-last rule */
	_Atomic(struct wait_block *) previous; /* newer neighbour, NULL at the head */
	_Atomic uintptr_t share_count;         /* tail: sharers holding when it pushed */
	bool exclusive;                        /* waits for exclusive access */
	_Atomic uint32_t state;                /* WB_*; futex word */
} __attribute__((aligned(16))) wait_block_t;

_Static_assert(_Alignof(wait_block_t) >= 16, "wait blocks must leave the flag bits free");

static inline wait_block_t *head_of(uintptr_t v)
{
	return (wait_block_t *)(v & PTR_MASK);
}

/* ---- waiting and signalling one block */

/* Waits until the block is signalled; returns WB_WOKEN or WB_WOKEN_K. */
static uint32_t block_wait(wait_block_t *wb)
{
	/* Spin about 1024 times (NTMM-REFERENCE.md §5), on our own block: the
	   line is ours until the waker writes it. acquire: pairs with the
	   release in block_signal, so the waker's reads of this block (and,
	   for WOKEN_K, its link fixes) are done before we go on. */
	uint32_t s;
	for (unsigned i = 0; i < NTMM__BACKOFF_SPIN_LIMIT; i++) {
		s = atomic_load_explicit(&wb->state, memory_order_acquire);
		if (s >= WB_WOKEN)
			return s;
		ntmm__cpu_relax();
	}
	s = WB_SPINNING;
	if (!atomic_compare_exchange_strong_explicit(&wb->state, &s, WB_SLEEPING,
	                                             memory_order_acquire, memory_order_acquire))
		return s; /* woken meanwhile */
	while ((s = atomic_load_explicit(&wb->state, memory_order_acquire)) < WB_WOKEN)
		ntmm__futex_wait(&wb->state, WB_SLEEPING, -1);
	return s;
}

/*
 * Wakes a block's owner. The caller must have read what it needs from the
 * block already: once state is WOKEN the owner may return and reuse its
 * stack. The futex wake then may hit memory that is no longer a wait block;
 * that is at worst a spurious wake of some futex there, which every futex
 * waiter tolerates (they all re-check their word).
 */
static void block_signal(wait_block_t *wb, uint32_t how)
{
	/* release: pairs with the acquire loads in block_wait */
	uint32_t old = atomic_exchange_explicit(&wb->state, how, memory_order_release);
	if (old == WB_SLEEPING)
		ntmm__futex_wake(&wb->state, 1);
}

/* ---- the list (K owner, except tail_of) */

/*
 * Walks from head to the first block with `last` set, filling in
 * `previous` on the way, caches the tail in head->last and returns it.
 * Caller owns K.
 */
static wait_block_t *fix_links(wait_block_t *head)
{
	wait_block_t *b = head, *tail;
	while ((tail = atomic_load_explicit(&b->last, memory_order_relaxed)) == NULL) {
		wait_block_t *older = atomic_load_explicit(&b->next, memory_order_relaxed);
		atomic_store_explicit(&older->previous, b, memory_order_relaxed);
		b = older;
	}
	if (b != head)
		atomic_store_explicit(&head->last, tail, memory_order_relaxed);
	return tail;
}

/* The tail, by the first-last rule, without writing (no K needed). */
static wait_block_t *tail_of(wait_block_t *head)
{
	wait_block_t *b = head, *tail;
	while ((tail = atomic_load_explicit(&b->last, memory_order_relaxed)) == NULL)
		b = atomic_load_explicit(&b->next, memory_order_relaxed);
	return tail;
}

/* Wakes every block from tail up through `previous` (a detached list). */
static void signal_all(wait_block_t *tail)
{
	for (wait_block_t *b = tail; b != NULL;) {
		wait_block_t *newer = atomic_load_explicit(&b->previous, memory_order_relaxed);
		block_signal(b, WB_WOKEN);
		b = newer;
	}
}

/*
 * The waker. Caller owns K; `old` is a word value it saw with K set.
 * Returns with K given up (or passed to a woken writer) and, if the lock
 * was free, someone woken.
 */
static void wake(ntmm__pushlock_t *pl, uintptr_t old)
{
	for (;;) {
		ntmm__assert((old & (W | K)) == (W | K));
		if (old & L) {
			/* Taken again: its holder wakes at release. A CAS, not an
			   AND, so that a release between our load and here is seen
			   (we then retry and wake). release: hands our link fixes to
			   the next K owner. */
			if (atomic_compare_exchange_weak_explicit(&pl->value, &old, old - K,
			                                          memory_order_release,
			                                          memory_order_acquire))
				return;
			continue;
		}
		wait_block_t *head = head_of(old);
		wait_block_t *tail = fix_links(head);
		if (tail->exclusive) {
			/* The oldest waiter is a writer: wake it alone, leaving its
			   block listed so that W keeps readers out until it has the
			   lock, and hand it K; it finishes the wake itself
			   (woken_with_k). Detaching it instead would let readers in
			   for as long as it takes to be scheduled. */
			block_signal(tail, WB_WOKEN_K);
			return;
		}
		/* The oldest waiter is a reader: wake all; they compete again.
		   acq_rel: release for the next users of the word; acquire so
		   that a failed CAS sees the blocks newly pushed. */
		if (!atomic_compare_exchange_weak_explicit(
		        &pl->value, &old, 0, memory_order_acq_rel, memory_order_acquire))
			continue;
		signal_all(tail);
		return;
	}
}

/*
 * After a push that set K: fix the links and give K back, or wake if the
 * lock was released meanwhile (its releaser saw K and left it to us).
 */
static void fix_or_wake(ntmm__pushlock_t *pl, uintptr_t old)
{
	for (;;) {
		if (!(old & L)) {
			wake(pl, old);
			return;
		}
		fix_links(head_of(old));
		/* release: hands the fixed links to the next K owner */
		if (atomic_compare_exchange_weak_explicit(
		        &pl->value, &old, old - K, memory_order_release, memory_order_acquire))
			return;
	}
}

/* ---- acquire */

/*
 * The oldest waiter, exclusive, woken with its block still listed and
 * owning K (see wake). Returns true with the lock taken and the block out
 * of the list; or false if a barging writer holds the lock: then K is given
 * back and the block stays the tail, to be woken again by that writer's
 * release.
 */
static bool woken_with_k(ntmm__pushlock_t *pl, wait_block_t *wb)
{
	uintptr_t old = atomic_load_explicit(&pl->value, memory_order_acquire);
	for (;;) {
		ntmm__assert((old & (W | K)) == (W | K));
		if (old & L) {
			/* Nobody signals our block while we own K: reset it first. */
			atomic_store_explicit(&wb->state, WB_SPINNING, memory_order_relaxed);
			/* release: hands K (and the links) on */
			if (atomic_compare_exchange_weak_explicit(&pl->value, &old, old - K,
			                                          memory_order_release,
			                                          memory_order_acquire))
				return false;
			continue;
		}
		wait_block_t *head = head_of(old);
		if (head == wb) {
			/* Still alone: take the lock and empty the list at once.
			   acquire: pairs with the last holder's release. */
			if (atomic_compare_exchange_weak_explicit(
			        &pl->value, &old, L, memory_order_acquire, memory_order_acquire))
				return true;
			continue;
		}
		/* Newer waiters: take the lock keeping K, then unhook ourselves
		   (we are the tail; our newer neighbour becomes it) and give K
		   back. A failed CAS means new pushes or a barging writer: look
		   again. */
		wait_block_t *tail = fix_links(head);
		ntmm__assert(tail == wb);
		(void)tail;
		/* acquire: pairs with the last holder's release */
		if (!atomic_compare_exchange_weak_explicit(
		        &pl->value, &old, old | L, memory_order_acquire, memory_order_acquire))
			continue;
		atomic_store_explicit(&head->last,
		                      atomic_load_explicit(&wb->previous, memory_order_relaxed),
		                      memory_order_relaxed);
		/* release: hands the new tail link to the next K owner */
		atomic_fetch_sub_explicit(&pl->value, K, memory_order_release);
		return true;
	}
}

static void acquire_slow(ntmm__pushlock_t *pl, bool exclusive)
{
	wait_block_t wb;
	/* acquire: a failed attempt below may push onto blocks seen here */
	uintptr_t old = atomic_load_explicit(&pl->value, memory_order_acquire);
	for (;;) {
		if (exclusive ? !(old & L) : ntmm__pushlock_shared_can_enter(old)) {
			uintptr_t want = exclusive ? old | L : ntmm__pushlock_one_sharer_more(old);
			/* acquire: pairs with the previous holder's release */
			if (atomic_compare_exchange_weak_explicit(
			        &pl->value, &old, want, memory_order_acquire, memory_order_acquire))
				return;
			continue;
		}

		/* Wait: push our block. */
		bool must_fix = false;
		uintptr_t want;
		wb.exclusive = exclusive;
		atomic_store_explicit(&wb.previous, NULL, memory_order_relaxed);
		atomic_store_explicit(&wb.state, WB_SPINNING, memory_order_relaxed);
		if (old & W) {
			atomic_store_explicit(&wb.next, head_of(old), memory_order_relaxed);
			atomic_store_explicit(&wb.last, NULL, memory_order_relaxed);
			atomic_store_explicit(&wb.share_count, 0, memory_order_relaxed);
			want = (uintptr_t)&wb | (old & (L | M | K)) | W;
			if (!(old & K)) {
				want |= K;
				must_fix = true;
			}
		} else {
			/* First waiter: the lock is held (exclusive, or n sharers);
			   the share count moves into our block, which is the tail. */
			ntmm__assert(old & L);
			uintptr_t n = old >> 4;
			atomic_store_explicit(&wb.next, NULL, memory_order_relaxed);
			atomic_store_explicit(&wb.last, &wb, memory_order_relaxed);
			atomic_store_explicit(&wb.share_count, n, memory_order_relaxed);
			want = (uintptr_t)&wb | L | W | (n > 1 ? M : 0);
		}
		/* release: publishes the block; acquire (when we set K): takes K
		   over from its previous owner, with its link fixes */
		if (!atomic_compare_exchange_weak_explicit(
		        &pl->value, &old, want, memory_order_acq_rel, memory_order_acquire))
			continue;
		if (must_fix)
			fix_or_wake(pl, want);
		while (block_wait(&wb) == WB_WOKEN_K) {
			ntmm__assert(exclusive);
			if (woken_with_k(pl, &wb))
				return;
			/* still queued, as the oldest waiter: wait again */
		}
		old = atomic_load_explicit(&pl->value, memory_order_acquire);
	}
}

void ntmm__pushlock_acquire_exclusive_slow(ntmm__pushlock_t *pl)
{
	acquire_slow(pl, true);
}

void ntmm__pushlock_acquire_shared_slow(ntmm__pushlock_t *pl)
{
	acquire_slow(pl, false);
}

/* ---- release */

void ntmm__pushlock_try_wake(ntmm__pushlock_t *pl)
{
	uintptr_t old = atomic_load_explicit(&pl->value, memory_order_relaxed);
	/* Only while there are waiters, the lock is free and nobody wakes. */
	while ((old & (W | K | L)) == W) {
		/* acquire: takes K (and the links fixed under it) over */
		if (atomic_compare_exchange_weak_explicit(
		        &pl->value, &old, old | K, memory_order_acquire, memory_order_relaxed)) {
			wake(pl, old | K);
			return;
		}
	}
}

void ntmm__pushlock_release_shared_slow(ntmm__pushlock_t *pl)
{
	/* acquire: we may walk the blocks the word points to */
	uintptr_t old = atomic_load_explicit(&pl->value, memory_order_acquire);
	while (!(old & W)) {
		/* release: as in the inline path */
		if (atomic_compare_exchange_weak_explicit(
		        &pl->value, &old, ntmm__pushlock_one_sharer_less(old), memory_order_release,
		        memory_order_acquire))
			return;
	}
	ntmm__assert((old & L) && "release_shared of an unlocked pushlock");
	if (old & M) {
		/* Several sharers were holding when the first waiter came; their
		   count is in the tail (I4: it stays put while we walk). acq_rel:
		   release our reads; acquire those of the sharers before us, so
		   the last one passes them all on through the word. */
		wait_block_t *tail = tail_of(head_of(old));
		uintptr_t n =
		    atomic_fetch_sub_explicit(&tail->share_count, 1, memory_order_acq_rel);
		ntmm__assert(n >= 1 && "release_shared: more releases than sharers");
		if (n > 1)
			return;
	}
	/* The last sharer: clear L and M, and take K unless someone has it. */
	for (;;) {
		ntmm__assert((old & (L | W)) == (L | W));
		uintptr_t want = old & ~(L | M);
		if (!(old & K))
			want |= K;
		/* release: our reads before the next holder's writes; acquire:
		   K (and its links) when we take it */
		if (atomic_compare_exchange_weak_explicit(
		        &pl->value, &old, want, memory_order_acq_rel, memory_order_acquire)) {
			if (!(old & K))
				wake(pl, want);
			return;
		}
	}
}

/* ---- downgrade */

void ntmm__pushlock_downgrade_slow(ntmm__pushlock_t *pl)
{
	uintptr_t old = atomic_load_explicit(&pl->value, memory_order_acquire);
	ntmm__backoff_t b = NTMM__BACKOFF_INIT;
	for (;;) {
		ntmm__assert((old & L) && "downgrade of an unlocked pushlock");
		if (!(old & W)) {
			ntmm__assert(old == L && "downgrade of a pushlock held shared");
			/* release: our writes before the readers that join us */
			if (atomic_compare_exchange_weak_explicit(&pl->value, &old, L + SHARE,
			                                          memory_order_release,
			                                          memory_order_acquire))
				return;
			continue;
		}
		ntmm__assert(!(old & M) && "downgrade of a pushlock held shared");
		/* With waiters, the word as it is already means "one sharer"
		   (L with M clear, I3). If the list is someone else's for a
		   moment — a new waiter fixing links after its push, or a woken
		   writer finding the lock held — wait for K: its owner sees L
		   set and gives K back without waking anyone, so returning now
		   would leave the queued readers asleep until we release. The
		   wait is short and never unbounded spinning (backoff yields). */
		if (old & K) {
			ntmm__backoff(&b);
			old = atomic_load_explicit(&pl->value, memory_order_acquire);
			continue;
		}
		/* acquire: take K over */
		if (atomic_compare_exchange_weak_explicit(
		        &pl->value, &old, old | K, memory_order_acquire, memory_order_acquire))
			break;
	}
	old |= K;
	for (;;) {
		wait_block_t *tail = fix_links(head_of(old));
		if (tail->exclusive) {
			/* A writer waits longest: readers keep waiting behind it. */
			if (atomic_compare_exchange_weak_explicit(&pl->value, &old, old - K,
			                                          memory_order_release,
			                                          memory_order_acquire))
				return;
			continue;
		}
		/* A reader waits longest: let everyone compete while we hold it
		   shared; the readers can now enter beside us. release: our
		   writes before theirs; acquire: see blocks pushed meanwhile. */
		if (atomic_compare_exchange_weak_explicit(
		        &pl->value, &old, L + SHARE, memory_order_acq_rel, memory_order_acquire)) {
			signal_all(tail);
			return;
		}
	}
}
