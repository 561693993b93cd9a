/*
 * Page-list primitives: doubly-linked lists of frames threaded through the
 * PFN entries' next/prev indices, and the per-colour Free/Zeroed lists with
 * their non-empty-colour masks, counts and per-chunk `listed` tallies.
 * Every function here runs with the owning node lock held (phys.h says
 * which; debug builds assert it); none of them touches the state word.
 */
#include "engine.h"

#if NTMM__LOCKDEP
/* The lock that guards list l: every list lives in a node, the Free,
   Zeroed and Bad lists in its free_lock group, the Standby and Modified
   lists in its standby_lock group (phys.h). */
static pthread_mutex_t *list_lock(ntmm__phys_t *ph, const ntmm__plist_t *l)
{
	for (unsigned i = 0; i < ph->nnodes; i++) {
		ntmm__node_t *n = &ph->nodes[i];
		const char *a = (const char *)l;
		if (a < (const char *)n || a >= (const char *)(n + 1))
			continue;
		return a < (const char *)&n->standby_lock ? &n->free_lock : &n->standby_lock;
	}
	ntmm__assert(!"a page list outside every node");
	return NULL;
}
#endif

void ntmm__plist_push_head(ntmm__phys_t *ph, ntmm__plist_t *l, ntmm__pfn_t pfn)
{
	ntmm__assert_mutex_held(list_lock(ph, l));
	ntmm__pfn_entry_t *p = ntmm__pfe(ph, pfn);
	p->prev = NTMM__PFN_NONE;
	p->next = l->head;
	if (l->head != NTMM__PFN_NONE)
		ntmm__pfe(ph, l->head)->prev = pfn;
	else
		l->tail = pfn;
	l->head = pfn;
	l->count++;
}

void ntmm__plist_push_tail(ntmm__phys_t *ph, ntmm__plist_t *l, ntmm__pfn_t pfn)
{
	ntmm__assert_mutex_held(list_lock(ph, l));
	ntmm__pfn_entry_t *p = ntmm__pfe(ph, pfn);
	p->next = NTMM__PFN_NONE;
	p->prev = l->tail;
	if (l->tail != NTMM__PFN_NONE)
		ntmm__pfe(ph, l->tail)->next = pfn;
	else
		l->head = pfn;
	l->tail = pfn;
	l->count++;
}

void ntmm__plist_unlink(ntmm__phys_t *ph, ntmm__plist_t *l, ntmm__pfn_t pfn)
{
	ntmm__assert_mutex_held(list_lock(ph, l));
	ntmm__pfn_entry_t *p = ntmm__pfe(ph, pfn);
	ntmm__assert(l->count > 0);
	if (p->prev != NTMM__PFN_NONE)
		ntmm__pfe(ph, p->prev)->next = p->next;
	else {
		ntmm__assert(l->head == pfn);
		l->head = p->next;
	}
	if (p->next != NTMM__PFN_NONE)
		ntmm__pfe(ph, p->next)->prev = p->prev;
	else {
		ntmm__assert(l->tail == pfn);
		l->tail = p->prev;
	}
	p->next = p->prev = NTMM__PFN_NONE;
	l->count--;
}

ntmm__pfn_t ntmm__plist_pop_head(ntmm__phys_t *ph, ntmm__plist_t *l)
{
	ntmm__assert_mutex_held(list_lock(ph, l));
	ntmm__pfn_t pfn = l->head;
	if (pfn != NTMM__PFN_NONE)
		ntmm__plist_unlink(ph, l, pfn);
	return pfn;
}

void ntmm__node_pub_free(ntmm__node_t *n)
{
	ntmm__assert_mutex_held(&n->free_lock);
	/* relaxed: approximate mirrors for unlocked readers (gauges, wake tests) */
	atomic_store_explicit(&n->zeroed_pub, n->zeroed_count, memory_order_relaxed);
	atomic_store_explicit(&n->free_pub, n->free_count, memory_order_relaxed);
	atomic_store_explicit(&n->bad_pub, n->bad.count, memory_order_relaxed);
}

void ntmm__node_pub_standby(ntmm__node_t *n)
{
	ntmm__assert_mutex_held(&n->standby_lock);
	/* relaxed: as above */
	for (unsigned p = 0; p < NTMM__STANDBY_PRIOS; p++)
		atomic_store_explicit(&n->standby_pub[p], n->standby[p].count,
		                      memory_order_relaxed);
	atomic_store_explicit(&n->modified_pub, n->modified.count, memory_order_relaxed);
	atomic_store_explicit(&n->modified_mapped_pub, n->modified_mapped.count,
	                      memory_order_relaxed);
	atomic_store_explicit(&n->modified_nowrite_pub, n->modified_nowrite.count,
	                      memory_order_relaxed);
}

void ntmm__freelist_put(ntmm__phys_t *ph, ntmm__node_t *n, bool zeroed, ntmm__pfn_t pfn)
{
	ntmm__assert_mutex_held(&n->free_lock);
	unsigned c = ntmm__pfn_colour(ph, pfn);
	ntmm__plist_t *l = zeroed ? &n->zeroed[c] : &n->free_[c];
	/* Last in, first out: a frame freed a moment ago is likely still in
	   this CPU's cache, and the next allocation (a hard fault's read, a
	   copy) writes all of it. A Zeroed frame's contents were written with
	   non-temporal stores, but its PFN entry was written by the zeroing
	   (state and links) and the newest is the likeliest to be cached:
	   demand-zero fault 105 → 97 ns against first in, first out. */
	ntmm__plist_push_head(ph, l, pfn);
	if (zeroed) {
		n->zeroed_mask |= 1ull << c;
		n->zeroed_count++;
	} else {
		n->free_mask |= 1ull << c;
		n->free_count++;
	}
	ph->chunks[pfn / NTMM__CHUNK_FRAMES].listed++;
}

void ntmm__freelist_remove(ntmm__phys_t *ph, ntmm__node_t *n, bool zeroed, ntmm__pfn_t pfn)
{
	ntmm__assert_mutex_held(&n->free_lock);
	unsigned c = ntmm__pfn_colour(ph, pfn);
	ntmm__plist_t *l = zeroed ? &n->zeroed[c] : &n->free_[c];
	ntmm__plist_unlink(ph, l, pfn);
	if (zeroed) {
		n->zeroed_count--;
		if (!l->count)
			n->zeroed_mask &= ~(1ull << c);
	} else {
		n->free_count--;
		if (!l->count)
			n->free_mask &= ~(1ull << c);
	}
	ph->chunks[pfn / NTMM__CHUNK_FRAMES].listed--;
}

/* The colour to take from: c if it has frames, else the first non-empty
   colour at or after the round-robin cursor. mask is non-zero. */
static unsigned pick_colour(ntmm__phys_t *ph, ntmm__node_t *n, uint64_t mask, unsigned c)
{
	if (c < ph->ncolours && (mask & (1ull << c)))
		return c;
	/* rotate the mask right by the cursor within ncolours bits */
	unsigned nc = ph->ncolours, start = n->colour_cursor & ph->colour_mask;
	uint64_t all = nc == 64 ? ~0ull : (1ull << nc) - 1;
	uint64_t rot = start ? ((mask >> start) | (mask << (nc - start))) & all : mask;
	c = (start + (unsigned)__builtin_ctzll(rot)) & ph->colour_mask;
	n->colour_cursor = c + 1;
	return c;
}

ntmm__pfn_t ntmm__freelist_take(ntmm__phys_t *ph, ntmm__node_t *n, bool zeroed, unsigned c)
{
	ntmm__assert_mutex_held(&n->free_lock);
	uint64_t mask = zeroed ? n->zeroed_mask : n->free_mask;
	if (!mask)
		return NTMM__PFN_NONE;
	c = pick_colour(ph, n, mask, c);
	ntmm__pfn_t pfn = zeroed ? n->zeroed[c].head : n->free_[c].head;
	ntmm__freelist_remove(ph, n, zeroed, pfn);
	return pfn;
}

ntmm__pfn_t ntmm__freelist_take_cold(ntmm__phys_t *ph, ntmm__node_t *n)
{
	ntmm__assert_mutex_held(&n->free_lock);
	if (!n->free_mask)
		return NTMM__PFN_NONE;
	unsigned c = pick_colour(ph, n, n->free_mask, NTMM__MAX_COLOURS);
	ntmm__pfn_t pfn = n->free_[c].tail;
	ntmm__freelist_remove(ph, n, false, pfn);
	return pfn;
}

ntmm__plist_t *ntmm__node_list_of(ntmm__node_t *n, uint64_t s)
{
	if (ntmm__pfn_loc(s) == NTMM__LOC_MODIFIED && (s & NTMM__PFN_MAPPED))
		return &n->modified_mapped;
	return ntmm__node_list(n, ntmm__pfn_loc(s), ntmm__pfn_prio(s));
}

ntmm__plist_t *ntmm__node_list(ntmm__node_t *n, unsigned loc, unsigned prio)
{
	switch (loc) {
	case NTMM__LOC_STANDBY:
		return &n->standby[prio & 7];
	case NTMM__LOC_MODIFIED:
		return &n->modified;
	case NTMM__LOC_MODIFIED_NOWRITE:
		return &n->modified_nowrite;
	case NTMM__LOC_BAD:
		return &n->bad;
	default:
		ntmm__assert(!"not a linked list location");
		return NULL;
	}
}
