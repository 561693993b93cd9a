/*
 * The page operations the layers above drive on frames they own or find
 * through a PTE (page.h): unmap into TRANSITION, release after the grace
 * period, soft-fault reclaim, teardown of transition frames, pin and I/O
 * references, the Modified flag and standby priority, the modified page
 * writer's take/done, and retiring bad frames.
 *
 * ACTIVE and TRANSITION words change by CAS from any thread, through
 * ntmm__pfn_update: each operation is a next() step saying what the word
 * becomes. A move onto a list happens with that list's lock held (the CAS
 * decides against racing reclaims and references, and on failure the loop
 * re-reads and retries, keeping or letting go of the lock): drop_refs keeps
 * that loop itself.
 */
#include "engine.h"

static inline bool on_standby_lists(unsigned loc)
{
	return loc == NTMM__LOC_STANDBY || loc == NTMM__LOC_MODIFIED ||
	       loc == NTMM__LOC_MODIFIED_NOWRITE;
}

static inline uint64_t load_state(ntmm__pfn_entry_t *p)
{
	/* acquire: pairs with the release of the last change (CAS or store),
	   so pte/original_pte written before it are seen */
	return atomic_load_explicit(&p->state, memory_order_acquire);
}

/* A frame whose state word already says FREE, with n->free_lock held:
   drops its owner fields and lists it. Returns the OriginalPte it had (its
   paging-file slot is released by `freed`, after the unlock) and whether
   the zero page thread should be woken. */
static uint64_t free_put_locked(ntmm__phys_t *ph, ntmm__node_t *n, ntmm__pfn_entry_t *p,
                                ntmm__pfn_t pfn, bool *wake)
{
	ntmm__assert_mutex_held(&n->free_lock);
	/* relaxed: the frame is FREE and held under free_lock */
	uint64_t orig = atomic_load_explicit(&p->original_pte, memory_order_relaxed);
	atomic_store_explicit(&p->pte, 0, memory_order_relaxed);
	atomic_store_explicit(&p->original_pte, 0, memory_order_relaxed);
	ntmm__freelist_put(ph, n, false, pfn);
	*wake = n->zeroed_count < n->zero_high;
	ntmm__node_pub_free(n);
	return orig;
}

/* The rest of a free, outside the list locks: the counter, the old
   OriginalPte's paging-file slot, the zero page thread. */
static void freed(ntmm_engine_t *e, ntmm__node_t *n, uint64_t orig, bool wake)
{
	NTMM__STAT_ADD(&e->stats, frame_frees, 1);
	if (orig && e->phys.original_gone)
		e->phys.original_gone(e, orig);
	if (wake)
		ntmm__zero_wake(n);
}

/* Pages a batched drop lists under one hold of a node's standby lock: long
   enough to share the lock's cost, short enough that an allocation waiting
   to repurpose a Standby page is not held up behind a whole writer batch. */
#define DROP_HOLD 32u

/* Drops one reference from each page of a batch. A page left with none
   moves on: TRANSITION and DELETED → Free; TRANSITION → Modified (dirty) or
   Standby (front, or tail when `tail`: written pages go repurposed last).
   Pages that go to Standby or Modified are listed with the node's standby
   lock taken (and the list counts published) once per run of up to
   DROP_HOLD pages of that node, not once per page. */
static void drop_refs(ntmm_engine_t *e, const ntmm__pfn_t *pfns, size_t count, bool tail)
{
	ntmm__phys_t *ph = &e->phys;
	ntmm__node_t *held = NULL;
	unsigned listed = 0;
	bool wake_writer = false;
	for (size_t i = 0; i < count; i++) {
		ntmm__pfn_t pfn = pfns[i];
		ntmm__pfn_entry_t *p = ntmm__pfe(ph, pfn);
		ntmm__node_t *n = &ph->nodes[ntmm__pfn_node(ph, pfn)];
		uint64_t s = load_state(p);
		for (;;) {
			unsigned loc = ntmm__pfn_loc(s);
			ntmm__assert((loc == NTMM__LOC_ACTIVE || loc == NTMM__LOC_TRANSITION) &&
			             ntmm__pfn_refs(s) > 0);
			if (loc != NTMM__LOC_TRANSITION || ntmm__pfn_refs(s) > 1) {
				if (ntmm__pfn_cas(p, &s, s - NTMM__PFN_REF_ONE))
					break;
				continue;
			}
			if ((s & NTMM__PFN_DELETED) || (held != n && held)) {
				/* to Free (another lock), or another node: let go first */
				if (held) {
					ntmm__node_pub_standby(held);
					pthread_mutex_unlock(&held->standby_lock);
					held = NULL;
				}
				if (s & NTMM__PFN_DELETED) {
					/* DELETED: straight to Free */
					uint64_t next = ntmm__pfn_listed(s, NTMM__LOC_FREE);
					pthread_mutex_lock(&n->free_lock);
					if (!ntmm__pfn_cas(p, &s, next)) {
						pthread_mutex_unlock(&n->free_lock);
						continue;
					}
					bool wake;
					uint64_t orig = free_put_locked(ph, n, p, pfn, &wake);
					pthread_mutex_unlock(&n->free_lock);
					freed(e, n, orig, wake);
					break;
				}
			}
			if (!held) {
				pthread_mutex_lock(&n->standby_lock);
				held = n;
				listed = 0;
			}
			bool dirty = s & NTMM__PFN_MODIFIED;
			uint64_t next =
			    ntmm__pfn_listed(s, dirty ? NTMM__LOC_MODIFIED : NTMM__LOC_STANDBY);
			if (dirty)
				next |= NTMM__PFN_MODIFIED;
			if (!ntmm__pfn_cas(p, &s, next))
				continue; /* s reloaded; the lock stays ours */
			ntmm__plist_t *l = !dirty                   ? &n->standby[ntmm__pfn_prio(s)]
			                   : (s & NTMM__PFN_MAPPED) ? &n->modified_mapped
			                                            : &n->modified;
			if (tail || dirty)
				ntmm__plist_push_tail(ph, l, pfn);
			else
				ntmm__plist_push_head(ph, l, pfn);
			wake_writer |=
			    dirty && l->count == atomic_load_explicit(&ph->modified_high,
			                                              memory_order_relaxed);
			if (++listed == DROP_HOLD) {
				ntmm__node_pub_standby(n);
				pthread_mutex_unlock(&n->standby_lock);
				held = NULL;
			}
			break;
		}
	}
	if (held) {
		ntmm__node_pub_standby(held);
		pthread_mutex_unlock(&held->standby_lock);
	}
	if (wake_writer)
		ntmm__writer_wake(ph);
}

static void drop_ref(ntmm_engine_t *e, ntmm__pfn_t pfn, bool tail)
{
	drop_refs(e, &pfn, 1, tail);
}

/* arg: the flags (MODIFIED, DELETED) the unmap adds */
static uint64_t unmap_next(uint64_t s, void *arg)
{
	ntmm__assert(ntmm__pfn_loc(s) == NTMM__LOC_ACTIVE && ntmm__pfn_shares(s) > 0);
	uint64_t next = (s - NTMM__PFN_SHARE_ONE) | *(const uint64_t *)arg;
	if (ntmm__pfn_shares(next) == 0) /* TRANSITION with the grace reference */
		next = ntmm__pfn_relocate(next, NTMM__LOC_TRANSITION) + NTMM__PFN_REF_ONE;
	return next;
}

bool ntmm__page_unmap(ntmm_engine_t *e, ntmm__pfn_t pfn, bool dirty, bool deleted)
{
	uint64_t add = (dirty ? NTMM__PFN_MODIFIED : 0) | (deleted ? NTMM__PFN_DELETED : 0);
	uint64_t was = ntmm__pfn_update(ntmm__pfe(&e->phys, pfn), unmap_next, &add);
	return ntmm__pfn_shares(was) == 1;
}

void ntmm__page_release_batch(ntmm_engine_t *e, const ntmm__pfn_t *pfns, size_t n)
{
	drop_refs(e, pfns, n, false);
}

/* For the owner of a listed (Standby/Modified) page: takes the node's
   standby lock and re-checks, under it, that the state word is still `s`
   and the page still belongs to pte_addr. LISTED_OWNED returns with the
   lock held; the other answers return with it released. */
enum { LISTED_OWNED, LISTED_CHANGED, LISTED_NOT_OWNER };
static int standby_lock_owned(ntmm__node_t *n, ntmm__pfn_entry_t *p, uint64_t s, uint64_t pte_addr)
{
	pthread_mutex_lock(&n->standby_lock);
	/* acquire: as load_state; re-check under the list lock */
	if (atomic_load_explicit(&p->state, memory_order_acquire) != s) {
		pthread_mutex_unlock(&n->standby_lock);
		return LISTED_CHANGED;
	}
	if (atomic_load_explicit(&p->pte, memory_order_relaxed) != pte_addr) {
		pthread_mutex_unlock(&n->standby_lock);
		return LISTED_NOT_OWNER;
	}
	return LISTED_OWNED;
}

/* An owner's step on a TRANSITION frame (reclaim, delete_transition):
   next() declines unless the word is TRANSITION, not DELETED and the frame
   still names the owner's PTE; `seen` is the word it last looked at and
   `why` why it declined. */
enum { OWNED_NOT_TRANSITION, OWNED_NOT_OWNER, OWNED_BUSY };
typedef struct owned_step {
	const ntmm__pfn_entry_t *p;
	uint64_t pte_addr;
	bool write;
	int why;
	uint64_t seen;
} owned_step_t;

static inline bool transition_owned(uint64_t s, owned_step_t *c)
{
	c->seen = s;
	if (ntmm__pfn_loc(s) != NTMM__LOC_TRANSITION) {
		c->why = OWNED_NOT_TRANSITION;
		return false;
	}
	/* relaxed: the acquire load of the word orders the owner's pte write */
	if ((s & NTMM__PFN_DELETED) ||
	    atomic_load_explicit(&c->p->pte, memory_order_relaxed) != c->pte_addr) {
		c->why = OWNED_NOT_OWNER;
		return false;
	}
	return true;
}

/* TRANSITION → ACTIVE share 1, unless in I/O a soft fault cannot share */
static uint64_t reclaim_next(uint64_t s, void *arg)
{
	owned_step_t *c = arg;
	if (!transition_owned(s, c))
		return NTMM__PFN_DECLINE;
	if ((s & NTMM__PFN_READ_IN_PROGRESS) || (c->write && (s & NTMM__PFN_WRITE_IN_PROGRESS))) {
		c->why = OWNED_BUSY;
		return NTMM__PFN_DECLINE;
	}
	return ntmm__pfn_relocate(s, NTMM__LOC_ACTIVE) + NTMM__PFN_SHARE_ONE;
}

int ntmm__page_reclaim(ntmm_engine_t *e, ntmm__pfn_t pfn, uint64_t pte_addr, bool write)
{
	ntmm__phys_t *ph = &e->phys;
	ntmm__pfn_entry_t *p = ntmm__pfe(ph, pfn);
	for (;;) {
		owned_step_t c = {.p = p, .pte_addr = pte_addr, .write = write};
		if (ntmm__pfn_update(p, reclaim_next, &c) != NTMM__PFN_DECLINE)
			return 0;
		if (c.why == OWNED_NOT_OWNER)
			return NTMM_ECONFLICT;
		if (c.why == OWNED_BUSY)
			return NTMM_EBUSY;
		uint64_t s = c.seen;
		unsigned loc = ntmm__pfn_loc(s);
		if (!on_standby_lists(loc))
			return NTMM_ECONFLICT;
		ntmm__node_t *n = &ph->nodes[ntmm__pfn_node(ph, pfn)];
		int own = standby_lock_owned(n, p, s, pte_addr);
		if (own == LISTED_CHANGED)
			continue;
		if (own == LISTED_NOT_OWNER)
			return NTMM_ECONFLICT;
		ntmm__plist_unlink(ph, ntmm__node_list_of(n, s), pfn);
		uint64_t next = ntmm__pfn_relocate(s, NTMM__LOC_ACTIVE) + NTMM__PFN_SHARE_ONE;
		if (loc != NTMM__LOC_STANDBY)
			next |= NTMM__PFN_MODIFIED;
		ntmm__pfn_store(p, s, next);
		ntmm__node_pub_standby(n);
		pthread_mutex_unlock(&n->standby_lock);
		return 0;
	}
}

/* TRANSITION (referenced: grace, pin or I/O) → DELETED: the last drop
   frees it */
static uint64_t delete_next(uint64_t s, void *arg)
{
	return transition_owned(s, arg) ? s | NTMM__PFN_DELETED : NTMM__PFN_DECLINE;
}

bool ntmm__page_delete_transition(ntmm_engine_t *e, ntmm__pfn_t pfn, uint64_t pte_addr)
{
	ntmm__phys_t *ph = &e->phys;
	ntmm__pfn_entry_t *p = ntmm__pfe(ph, pfn);
	for (;;) {
		owned_step_t c = {.p = p, .pte_addr = pte_addr};
		if (ntmm__pfn_update(p, delete_next, &c) != NTMM__PFN_DECLINE)
			return true;
		if (c.why == OWNED_NOT_OWNER)
			return false;
		uint64_t s = c.seen;
		unsigned loc = ntmm__pfn_loc(s);
		if (!on_standby_lists(loc))
			return false;
		ntmm__node_t *n = &ph->nodes[ntmm__pfn_node(ph, pfn)];
		int own = standby_lock_owned(n, p, s, pte_addr);
		if (own == LISTED_CHANGED)
			continue;
		if (own == LISTED_NOT_OWNER)
			return false;
		ntmm__plist_unlink(ph, ntmm__node_list_of(n, s), pfn);
		ntmm__node_pub_standby(n);
		pthread_mutex_lock(&n->free_lock); /* order: standby_lock → free_lock */
		ntmm__pfn_store(p, s, ntmm__pfn_listed(s, NTMM__LOC_FREE));
		bool wake;
		uint64_t orig = free_put_locked(ph, n, p, pfn, &wake);
		pthread_mutex_unlock(&n->free_lock);
		pthread_mutex_unlock(&n->standby_lock);
		freed(e, n, orig, wake);
		return true;
	}
}

static uint64_t ref_next(uint64_t s, void *arg)
{
	(void)arg;
	ntmm__assert(
	    (ntmm__pfn_loc(s) == NTMM__LOC_ACTIVE || ntmm__pfn_loc(s) == NTMM__LOC_TRANSITION) &&
	    ntmm__pfn_refs(s) < 0xffff);
	return s + NTMM__PFN_REF_ONE;
}

void ntmm__page_ref(ntmm_engine_t *e, ntmm__pfn_t pfn)
{
	ntmm__pfn_update(ntmm__pfe(&e->phys, pfn), ref_next, NULL);
}

void ntmm__page_unref(ntmm_engine_t *e, ntmm__pfn_t pfn)
{
	drop_ref(e, pfn, false);
}

static uint64_t set_mapped_next(uint64_t s, void *arg)
{
	(void)arg;
	if (s & NTMM__PFN_MAPPED)
		return NTMM__PFN_DECLINE;
	ntmm__assert(ntmm__pfn_loc(s) == NTMM__LOC_ACTIVE ||
	             ntmm__pfn_loc(s) == NTMM__LOC_TRANSITION);
	return s | NTMM__PFN_MAPPED;
}

void ntmm__page_set_mapped(ntmm_engine_t *e, ntmm__pfn_t pfn)
{
	ntmm__pfn_update(ntmm__pfe(&e->phys, pfn), set_mapped_next, NULL);
}

static uint64_t set_modified_next(uint64_t s, void *arg)
{
	(void)arg;
	if (s & NTMM__PFN_MODIFIED)
		return NTMM__PFN_DECLINE;
	ntmm__assert(ntmm__pfn_loc(s) == NTMM__LOC_ACTIVE);
	return s | NTMM__PFN_MODIFIED;
}

void ntmm__page_set_modified(ntmm_engine_t *e, ntmm__pfn_t pfn)
{
	ntmm__pfn_update(ntmm__pfe(&e->phys, pfn), set_modified_next, NULL);
}

/* arg: the priority, in place (NTMM__PFN_PRIO_MASK bits) */
static uint64_t set_priority_next(uint64_t s, void *arg)
{
	unsigned loc = ntmm__pfn_loc(s);
	if (loc != NTMM__LOC_ACTIVE && loc != NTMM__LOC_TRANSITION)
		return NTMM__PFN_DECLINE;
	uint64_t next = (s & ~NTMM__PFN_PRIO_MASK) | *(const uint64_t *)arg;
	return next == s ? NTMM__PFN_DECLINE : next;
}

void ntmm__page_set_priority(ntmm_engine_t *e, ntmm__pfn_t pfn, unsigned prio)
{
	uint64_t bits = (uint64_t)(prio & 7) << NTMM__PFN_PRIO_SHIFT;
	ntmm__pfn_update(ntmm__pfe(&e->phys, pfn), set_priority_next, &bits);
}

static size_t writer_take(ntmm_engine_t *e, int node, ntmm__pfn_t *pfns, size_t max, bool mapped);

size_t ntmm__page_writer_take(ntmm_engine_t *e, int node, ntmm__pfn_t *pfns, size_t max)
{
	return writer_take(e, node, pfns, max, false);
}

size_t ntmm__page_mapped_take(ntmm_engine_t *e, int node, ntmm__pfn_t *pfns, size_t max)
{
	return writer_take(e, node, pfns, max, true);
}

static size_t writer_take(ntmm_engine_t *e, int node, ntmm__pfn_t *pfns, size_t max, bool mapped)
{
	ntmm__phys_t *ph = &e->phys;
	size_t k = 0;
	for (unsigned i = 0; i < ph->nnodes && k < max; i++) {
		if (node != NTMM__ALLOC_NODE_ANY && (unsigned)node != i)
			continue;
		ntmm__node_t *n = &ph->nodes[i];
		pthread_mutex_lock(&n->standby_lock);
		while (k < max) {
			ntmm__pfn_t pfn =
			    ntmm__plist_pop_head(ph, mapped ? &n->modified_mapped : &n->modified);
			if (pfn == NTMM__PFN_NONE)
				break;
			ntmm__pfn_entry_t *p = ntmm__pfe(ph, pfn);
			uint64_t s = atomic_load_explicit(&p->state, memory_order_relaxed);
			uint64_t next = ntmm__pfn_relocate((s & ~NTMM__PFN_MODIFIED) |
			                                       NTMM__PFN_WRITE_IN_PROGRESS,
			                                   NTMM__LOC_TRANSITION) +
			                NTMM__PFN_REF_ONE;
			ntmm__pfn_store(p, s, next);
			pfns[k++] = pfn;
		}
		ntmm__node_pub_standby(n);
		pthread_mutex_unlock(&n->standby_lock);
	}
	return k;
}

/* arg: the flags the write's end adds (MODIFIED if it failed) */
static uint64_t write_end_next(uint64_t s, void *arg)
{
	ntmm__assert(s & NTMM__PFN_WRITE_IN_PROGRESS);
	return (s & ~NTMM__PFN_WRITE_IN_PROGRESS) | *(const uint64_t *)arg;
}

void ntmm__page_writer_done(ntmm_engine_t *e, const ntmm__pfn_t *pfns, const uint64_t *new_original,
                            size_t n, bool ok)
{
	uint64_t add = ok ? 0 : NTMM__PFN_MODIFIED;
	for (size_t i = 0; i < n; i++) {
		ntmm__pfn_entry_t *p = ntmm__pfe(&e->phys, pfns[i]);
		if (ok && new_original)
			/* relaxed: published by the release CAS of the update */
			atomic_store_explicit(&p->original_pte, new_original[i],
			                      memory_order_relaxed);
		ntmm__pfn_update(p, write_end_next, &add);
	}
	drop_refs(e, pfns, n, true);
}

void ntmm__page_read_begin(ntmm_engine_t *e, ntmm__pfn_t pfn, uint64_t pte_addr,
                           uint64_t original_pte)
{
	ntmm__pfn_entry_t *p = ntmm__pfe(&e->phys, pfn);
	/* relaxed: published by the release CAS below */
	atomic_store_explicit(&p->pte, pte_addr, memory_order_relaxed);
	atomic_store_explicit(&p->original_pte, original_pte, memory_order_relaxed);
	uint64_t s = load_state(p);
	ntmm__assert(ntmm__pfn_loc(s) == NTMM__LOC_ACTIVE && ntmm__pfn_shares(s) == 1 &&
	             ntmm__pfn_refs(s) == 0);
	/* a store, not a CAS: the frame is fresh from the allocator and not
	   yet named by any PTE, so no other thread writes its state word
	   (the release publishes pte/original_pte with it) */
	ntmm__pfn_store(p, s,
	                ntmm__pfn_relocate((s & ~NTMM__PFN_SHARE_MASK) | NTMM__PFN_READ_IN_PROGRESS,
	                                   NTMM__LOC_TRANSITION) +
	                    NTMM__PFN_REF_ONE);
}

/* arg: whether the read succeeded */
static uint64_t read_end_next(uint64_t s, void *arg)
{
	bool ok = *(const bool *)arg;
	ntmm__assert(ntmm__pfn_loc(s) == NTMM__LOC_TRANSITION && (s & NTMM__PFN_READ_IN_PROGRESS));
	uint64_t cleared = s & ~NTMM__PFN_READ_IN_PROGRESS;
	if (ok && !(s & NTMM__PFN_DELETED)) /* the I/O reference becomes the share */
		return ntmm__pfn_relocate(cleared, NTMM__LOC_ACTIVE) - NTMM__PFN_REF_ONE +
		       NTMM__PFN_SHARE_ONE;
	return cleared | NTMM__PFN_DELETED | (ok ? 0 : NTMM__PFN_IN_PAGE_ERROR);
}

int ntmm__page_read_done(ntmm_engine_t *e, ntmm__pfn_t pfn, bool ok)
{
	/* seq_cst: the fault skips the in-page signal when no waiter is
	   counted (ntmm__inpage_wait) */
	uint64_t was = ntmm__pfn_update_sc(ntmm__pfe(&e->phys, pfn), read_end_next, &ok);
	if (ok && !(was & NTMM__PFN_DELETED))
		return 0;
	drop_ref(e, pfn, false); /* frees it unless someone still holds a reference */
	return ok ? NTMM_ECONFLICT : NTMM_EIO;
}

int ntmm__page_hold_write(ntmm_engine_t *e, ntmm__pfn_t pfn, bool hold)
{
	ntmm__phys_t *ph = &e->phys;
	ntmm__node_t *n = &ph->nodes[ntmm__pfn_node(ph, pfn)];
	ntmm__pfn_entry_t *p = ntmm__pfe(ph, pfn);
	unsigned from = hold ? NTMM__LOC_MODIFIED : NTMM__LOC_MODIFIED_NOWRITE;
	unsigned to = hold ? NTMM__LOC_MODIFIED_NOWRITE : NTMM__LOC_MODIFIED;
	int err = NTMM_EBUSY;
	pthread_mutex_lock(&n->standby_lock);
	/* acquire: as load_state */
	uint64_t s = atomic_load_explicit(&p->state, memory_order_acquire);
	if (ntmm__pfn_loc(s) == from) {
		ntmm__plist_unlink(ph, ntmm__node_list(n, from, 0), pfn);
		ntmm__pfn_store(p, s, ntmm__pfn_relocate(s, to));
		ntmm__plist_push_tail(ph, ntmm__node_list(n, to, 0), pfn);
		ntmm__node_pub_standby(n);
		err = 0;
	}
	pthread_mutex_unlock(&n->standby_lock);
	return err;
}

int ntmm__page_mark_bad(ntmm_engine_t *e, ntmm__pfn_t pfn)
{
	ntmm__phys_t *ph = &e->phys;
	if (pfn >= ph->nframes)
		return ntmm__error(NTMM_EINVAL, "pfn %u outside the pool", pfn);
	if (!ntmm__pfn_populated(ph, pfn))
		return ntmm__error(NTMM_EBUSY, "pfn %u: its chunk was never committed", pfn);
	ntmm__node_t *n = &ph->nodes[ntmm__pfn_node(ph, pfn)];
	ntmm__pfn_entry_t *p = ntmm__pfe(ph, pfn);
	int err = NTMM_EBUSY;
	pthread_mutex_lock(&n->free_lock);
	/* acquire: the links were last written by whoever held the frame
	   before; its release of the state word orders them before our read */
	uint64_t s = atomic_load_explicit(&p->state, memory_order_acquire);
	unsigned loc = ntmm__pfn_loc(s);
	if (loc == NTMM__LOC_ZEROED || loc == NTMM__LOC_FREE) {
		bool zeroed = loc == NTMM__LOC_ZEROED;
		ntmm__plist_t *l = zeroed ? &n->zeroed[ntmm__pfn_colour(ph, pfn)]
		                          : &n->free_[ntmm__pfn_colour(ph, pfn)];
		/* on the list (not in a magazine or the zero batch): linked or head */
		if (p->prev != NTMM__PFN_NONE || l->head == pfn) {
			ntmm__freelist_remove(ph, n, zeroed, pfn);
			ntmm__pfn_store(p, s, ntmm__pfn_listed(s, NTMM__LOC_BAD));
			ntmm__plist_push_tail(ph, &n->bad, pfn);
			ntmm__node_pub_free(n);
			err = 0;
		}
	}
	pthread_mutex_unlock(&n->free_lock);
	return err;
}
