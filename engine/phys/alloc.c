/*
 * Frame allocation and free: the NT allocation order, local node first and
 * then by distance, and the per-CPU caches (magazines) in front of the node
 * lists.
 *
 * The per-CPU path: take the CPU's slot with one uncontended exchange, pop
 * a frame from its Zeroed or Free magazine (refilled from the node lists,
 * colour-interleaved, NTMM__MAG_BATCH at a time), give the slot back, and
 * store the frame's new state word — the frame is ours alone, so no CAS.
 * Frees push onto the Free magazine and drain the oldest half to the node
 * lists when it is full. A busy slot (another thread got the same CPU
 * number) is never waited for: the node lists serve instead. Only when the
 * lists, the pool and Standby are all empty and a busy slot's cache holds
 * frames does an allocation (never a prefetch) wait for that slot.
 */
#include "engine.h"
#include "sync/backoff.h"
#include "sync/cpu.h"

#include <sched.h>
#include <time.h>

#include <string.h>

/* The CPU slot (the rseq CPU number, read inline): it is below the
   configured CPU count, so the modulo (a division on the hot path) is only
   a fallback. */
static inline unsigned cpu_slot(const ntmm__phys_t *ph)
{
	return ntmm__cpu_current(ph->ncpus);
}

static inline bool slot_try(ntmm__pcpu_t *s)
{
	/* acquire: pairs with slot_put's release, so the magazine contents the
	   previous holder wrote are visible */
	return atomic_exchange_explicit(&s->busy, 1, memory_order_acquire) == 0;
}

static inline void slot_put(ntmm__pcpu_t *s)
{
	/* release: publishes our magazine writes to the next holder */
	atomic_store_explicit(&s->busy, 0, memory_order_release);
}

static inline uint64_t active_word(uint64_t s)
{
	uint64_t gen = (s & ~((1ull << NTMM__PFN_GEN_SHIFT) - 1)) + NTMM__PFN_GEN_ONE;
	return gen | NTMM__LOC_ACTIVE | NTMM__PFN_SHARE_ONE |
	       ((uint64_t)NTMM__PFN_PRIO_DEFAULT << NTMM__PFN_PRIO_SHIFT);
}

static inline uint32_t cnt_get(_Atomic uint32_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}
static inline void cnt_set(_Atomic uint32_t *c, uint32_t v)
{
	/* relaxed: only the slot holder writes; gauges read it approximately */
	atomic_store_explicit(c, v, memory_order_relaxed);
}

/* Pops from a magazine, preferring colour (searching NTMM__MAG_SCAN entries
   down from the top). Slot held. */
static inline ntmm__pfn_t mag_pop(const ntmm__phys_t *ph, ntmm__pfn_t *mag, _Atomic uint32_t *cnt,
                                  uint32_t colour)
{
	uint32_t n = cnt_get(cnt);
	if (!n)
		return NTMM__PFN_NONE;
	uint32_t top = n - 1;
	if (colour != NTMM__COLOUR_ANY) {
		uint32_t want = colour & ph->colour_mask;
		uint32_t lim = n > NTMM__MAG_SCAN ? n - NTMM__MAG_SCAN : 0;
		for (uint32_t i = n; i-- > lim;) {
			if ((mag[i] & ph->colour_mask) == want) {
				ntmm__pfn_t t = mag[i];
				mag[i] = mag[top];
				mag[top] = t;
				break;
			}
		}
	}
	cnt_set(cnt, top);
	if (top > 5) {
		/* Six pops ahead: the PFN entry and first frame line, for writing:
		   frames in magazines are usually cold (zeroed with
		   non-temporal stores), so a stream of faults otherwise takes
		   two cache misses each. Two ahead (one fault, ~120 ns) was too
		   close for memory on this machine: demand-zero fault 123 ns
		   at two, 118 at four, 115 at six and eight. A hint only; it
		   changes nothing. */
		__builtin_prefetch(ntmm__pfe(ph, mag[top - 6]), 1, 3);
		__builtin_prefetch(ntmm__frame(ph, mag[top - 6]), 1, 3);
	}
	return mag[top];
}

/* Available frames (NT: MmAvailablePages): frames an allocation can have
   without writing anything — Zeroed, Free and Standby on the node lists,
   the Zeroed and Free frames in the per-CPU caches (the allocator's last
   resort flushes and takes them), and the frames of uncommitted chunks
   (the pool grows into them). The one definition every threshold uses
   (the low-memory event, the working set manager's marks, the swapper's
   in-swap). relaxed loads of the published mirrors: approximate by
   design, never a lock. */
static size_t available(const ntmm__phys_t *ph)
{
	size_t n = 0;
	for (unsigned i = 0; i < ph->nnodes; i++) {
		const ntmm__node_t *nd = &ph->nodes[i];
		n += atomic_load_explicit(&nd->zeroed_pub, memory_order_relaxed) +
		     atomic_load_explicit(&nd->free_pub, memory_order_relaxed);
		for (unsigned p = 0; p < NTMM__STANDBY_PRIOS; p++)
			n += atomic_load_explicit(&nd->standby_pub[p], memory_order_relaxed);
		size_t committed =
		    (size_t)atomic_load_explicit(&nd->committed_chunks, memory_order_relaxed) *
		    NTMM__CHUNK_FRAMES;
		n += nd->nframes > committed ? nd->nframes - committed : 0;
	}
	for (unsigned c = 0; c < ph->ncpus; c++)
		n += atomic_load_explicit(&ph->pcpu[c].nzero, memory_order_relaxed) +
		     atomic_load_explicit(&ph->pcpu[c].nfree, memory_order_relaxed);
	return n;
}

/* Whether the allocator should wake the modified page writer: Standby
   (every priority, every node) below 1/64 of the frames, and at least a
   writer's batch worth of Modified pages to turn into Standby — waking it
   for less only makes it sleep again, and the next allocation would wake it
   once more. relaxed loads of the published mirrors: approximate by design. */
static bool standby_low(const ntmm__phys_t *ph)
{
	size_t standby = 0, modified = 0, mark = ph->nframes / 64;
	if (mark < NTMM__MAG_BATCH)
		mark = NTMM__MAG_BATCH;
	for (unsigned i = 0; i < ph->nnodes; i++) {
		const ntmm__node_t *n = &ph->nodes[i];
		for (unsigned p = 0; p < NTMM__STANDBY_PRIOS; p++)
			standby += atomic_load_explicit(&n->standby_pub[p], memory_order_relaxed);
		modified += atomic_load_explicit(&n->modified_pub, memory_order_relaxed);
	}
	return standby < mark && modified >= NTMM__MAG_BATCH;
}

size_t ntmm__phys_available(ntmm_engine_t *e)
{
	return available(&e->phys);
}

/* The low-memory hook: on the refill and slow paths only (once per
   NTMM__MAG_BATCH allocations at most), a handful of relaxed loads. */
static void lowmem_check(ntmm__phys_t *ph)
{
	size_t mark = atomic_load_explicit(&ph->lowmem_mark, memory_order_relaxed);
	if (!mark || !atomic_load_explicit(&ph->lowmem_armed, memory_order_relaxed) ||
	    available(ph) >= mark)
		return;
	/* relaxed: the exchange only picks the one sender */
	if (!atomic_exchange_explicit(&ph->lowmem_armed, false, memory_order_relaxed))
		return;
	/* acquire: pairs with the release in ntmm__phys_set_lowmem_wake */
	ntmm__event_t *ev = atomic_load_explicit(&ph->lowmem_wake, memory_order_acquire);
	if (ev)
		ntmm__event_signal(ev);
}

void ntmm__phys_set_lowmem_wake(ntmm_engine_t *e, ntmm__event_t *ev, size_t mark)
{
	ntmm__phys_t *ph = &e->phys;
	atomic_store_explicit(&ph->lowmem_mark, ev ? mark : 0, memory_order_relaxed);
	/* release: the event is initialised before a signaller loads it */
	atomic_store_explicit(&ph->lowmem_wake, ev, memory_order_release);
	atomic_store_explicit(&ph->lowmem_armed, ev != NULL, memory_order_relaxed);
}

void ntmm__phys_lowmem_rearm(ntmm_engine_t *e)
{
	atomic_store_explicit(&e->phys.lowmem_armed, true, memory_order_relaxed);
}

/* Refills an empty magazine from the node lists. Slot held. */
static uint32_t mag_refill(ntmm__phys_t *ph, ntmm__node_t *n, ntmm__pfn_t *mag,
                           _Atomic uint32_t *cnt, bool zeroed)
{
	uint32_t have = cnt_get(cnt), k = 0;
	ntmm__pfn_t got[NTMM__MAG_BATCH];
	pthread_mutex_lock(&n->free_lock);
	while (k < NTMM__MAG_BATCH && have + k < NTMM__MAG) {
		ntmm__pfn_t pfn = ntmm__freelist_take(ph, n, zeroed, NTMM__MAX_COLOURS);
		if (pfn == NTMM__PFN_NONE)
			break;
		got[k++] = pfn;
	}
	ntmm__node_pub_free(n);
	pthread_mutex_unlock(&n->free_lock);
	/* reversed, so that pops (from the top) follow the colour round-robin */
	for (uint32_t i = 0; i < k; i++)
		mag[have + i] = got[k - 1 - i];
	cnt_set(cnt, have + k);
	lowmem_check(ph);
	return k;
}

void ntmm__zero_wake(ntmm__node_t *n)
{
	/* acquire: pairs with the release in ntmm__phys_set_zero_wake, so the
	   event is initialised before we signal it */
	ntmm__event_t *ev = atomic_load_explicit(&n->zero_wake, memory_order_acquire);
	if (ev)
		ntmm__event_signal(ev);
}

/* Moves frames [0, k) of a magazine to the node lists and slides the rest
   down. Slot held. */
void ntmm__writer_wake(ntmm__phys_t *ph)
{
	/* acquire: pairs with the release store that installed the event */
	ntmm__event_t *ev = atomic_load_explicit(&ph->writer_wake, memory_order_acquire);
	if (ev)
		ntmm__event_signal(ev);
	/* the mapped page writer only when it has something to write: a
	   real-time thread woken for nothing takes a core from the faults */
	ev = atomic_load_explicit(&ph->mapped_wake, memory_order_acquire);
	if (ev) {
		size_t mapped = 0;
		for (unsigned n = 0; n < ph->nnodes && !mapped; n++)
			mapped = atomic_load_explicit(&ph->nodes[n].modified_mapped_pub,
			                              memory_order_relaxed);
		if (mapped)
			ntmm__event_signal(ev);
	}
}

static void mag_drain(ntmm__phys_t *ph, ntmm__node_t *n, ntmm__pfn_t *mag, _Atomic uint32_t *cnt,
                      uint32_t k, bool zeroed)
{
	uint32_t have = cnt_get(cnt);
	if (k > have)
		k = have;
	pthread_mutex_lock(&n->free_lock);
	for (uint32_t i = 0; i < k; i++)
		ntmm__freelist_put(ph, n, zeroed, mag[i]);
	bool wake = !zeroed && n->zeroed_count < n->zero_high;
	ntmm__node_pub_free(n);
	pthread_mutex_unlock(&n->free_lock);
	memmove(mag, mag + k, (have - k) * sizeof(*mag));
	cnt_set(cnt, have - k);
	if (wake)
		ntmm__zero_wake(n);
}

static void flush_slot(ntmm__phys_t *ph, ntmm__pcpu_t *s)
{
	ntmm__node_t *n = &ph->nodes[s->node];
	mag_drain(ph, n, s->zmag, &s->nzero, NTMM__MAG, true);
	mag_drain(ph, n, s->fmag, &s->nfree, NTMM__MAG, false);
}

unsigned ntmm__phys_flush_caches(ntmm_engine_t *e, int node)
{
	ntmm__phys_t *ph = &e->phys;
	unsigned busy = 0;
	for (unsigned c = 0; c < ph->ncpus; c++) {
		ntmm__pcpu_t *s = &ph->pcpu[c];
		if (node != NTMM__ALLOC_NODE_ANY && s->node != (unsigned)node)
			continue;
		if (!cnt_get(&s->nzero) && !cnt_get(&s->nfree))
			continue;
		if (!slot_try(s)) {
			busy++; /* in use right now: it will be flushed another time */
			continue;
		}
		flush_slot(ph, s);
		slot_put(s);
	}
	return busy;
}

/* Takes one frame off node n's lists in the NT order for `zero`. */
static ntmm__pfn_t take_node(ntmm__phys_t *ph, unsigned node, bool zero, uint32_t colour,
                             bool *from_free)
{
	ntmm__node_t *n = &ph->nodes[node];
	unsigned c = colour == NTMM__COLOUR_ANY ? NTMM__MAX_COLOURS : (colour & ph->colour_mask);
	pthread_mutex_lock(&n->free_lock);
	ntmm__pfn_t pfn = ntmm__freelist_take(ph, n, zero, c);
	*from_free = !zero;
	if (pfn == NTMM__PFN_NONE) {
		pfn = ntmm__freelist_take(ph, n, !zero, c);
		*from_free = zero;
	}
	ntmm__node_pub_free(n);
	pthread_mutex_unlock(&n->free_lock);
	return pfn;
}

/* Repurposes the oldest frame of the lowest Standby priority of node. */
static ntmm__pfn_t take_standby(ntmm_engine_t *e, unsigned node)
{
	ntmm__phys_t *ph = &e->phys;
	ntmm__node_t *n = &ph->nodes[node];
	ntmm__pfn_t pfn = NTMM__PFN_NONE;
	uint64_t pte = 0, orig = 0;
	pthread_mutex_lock(&n->standby_lock);
	for (unsigned prio = 0; prio < NTMM__STANDBY_PRIOS && pfn == NTMM__PFN_NONE; prio++)
		pfn = ntmm__plist_pop_head(ph, &n->standby[prio]);
	if (pfn != NTMM__PFN_NONE) {
		ntmm__pfn_entry_t *p = ntmm__pfe(ph, pfn);
		uint64_t s = atomic_load_explicit(&p->state, memory_order_relaxed);
		ntmm__pfn_store(p, s, active_word(s));
		pte = atomic_load_explicit(&p->pte, memory_order_relaxed);
		orig = atomic_load_explicit(&p->original_pte, memory_order_relaxed);
		ntmm__node_pub_standby(n);
	}
	pthread_mutex_unlock(&n->standby_lock);
	if (pfn == NTMM__PFN_NONE)
		return pfn;
	/* outside the lock: the callback takes the old owner's locks */
	if (ph->repurpose && pte)
		ph->repurpose(e, pfn, pte, orig);
	ntmm__pfn_entry_t *p = ntmm__pfe(ph, pfn);
	/* relaxed: the frame is ours; the new owner publishes by its own means */
	atomic_store_explicit(&p->pte, 0, memory_order_relaxed);
	atomic_store_explicit(&p->original_pte, 0, memory_order_relaxed);
	NTMM__STAT_ADD(&e->stats, standby_repurposed, 1);
	return pfn;
}

/* Whether a zeroing pass holds frames off the lists (in its zbatch). */
static bool zeroing_in_flight(ntmm__phys_t *ph)
{
	for (unsigned i = 0; i < ph->nnodes; i++) {
		ntmm__node_t *n = &ph->nodes[i];
		pthread_mutex_lock(&n->free_lock);
		unsigned k = n->zbatch_n;
		pthread_mutex_unlock(&n->free_lock);
		if (k)
			return true;
	}
	return false;
}

static int alloc_slow(ntmm_engine_t *e, unsigned flags, unsigned home, uint32_t colour,
                      ntmm__pfn_t *out)
{
	ntmm__phys_t *ph = &e->phys;
	bool zero = flags & NTMM__ALLOC_ZERO, from_free = false;
	ntmm__pfn_t pfn = NTMM__PFN_NONE;
	lowmem_check(ph);
	ntmm__backoff_t bo = NTMM__BACKOFF_INIT, busy_bo = NTMM__BACKOFF_INIT;
	bool repurposed = false;
	for (;;) {
		unsigned busy = 0;
		for (int pass = 0; pass < 2 && pfn == NTMM__PFN_NONE; pass++) {
			if (pass == 1) /* last resort */
				busy = ntmm__phys_flush_caches(e, NTMM__ALLOC_NODE_ANY);
			for (unsigned i = 0; i < ph->nnodes && pfn == NTMM__PFN_NONE; i++) {
				unsigned node = ph->topo.order[home][i];
				for (int tries = 0; tries < 8; tries++) {
					pfn = take_node(ph, node, zero, colour, &from_free);
					if (pfn != NTMM__PFN_NONE || !ntmm__pool_grow(e, node))
						break;
				}
			}
		}
		if (pfn != NTMM__PFN_NONE)
			break;
		if (zeroing_in_flight(ph)) {
			/* the zero page thread has Free frames off the lists while
			   it clears them: they are coming back as Zeroed, so this is
			   no reason to repurpose Standby or to fail */
			ntmm__backoff(&bo);
			continue;
		}
		if (flags & NTMM__ALLOC_NO_STANDBY)
			break; /* a prefetch: never waits */
		for (unsigned i = 0; i < ph->nnodes && pfn == NTMM__PFN_NONE; i++)
			pfn = take_standby(e, ph->topo.order[home][i]);
		if (pfn != NTMM__PFN_NONE) {
			repurposed = true;
			break;
		}
		if (!busy)
			break;
		/* Nothing anywhere but in a per-CPU cache the flush could not
		   take: a thread holds its slot (preempted inside an allocation
		   or a free, with more threads than CPUs) and gives it back
		   within its fast path. Failing now would be a false ENOMEM.
		   Wait for it, sleeping once the spin budget is spent: a
		   real-time caller's yield would not let a preempted holder on
		   its own CPU run (the audit's lock_slot does the same). */
		if (!ntmm__backoff_spin_bounded(&busy_bo))
			nanosleep(&(struct timespec){0, 50000}, NULL);
	}
	if (pfn != NTMM__PFN_NONE && !repurposed) {
		ntmm__pfn_entry_t *p = ntmm__pfe(ph, pfn);
		uint64_t s = atomic_load_explicit(&p->state, memory_order_relaxed);
		ntmm__pfn_store(p, s, active_word(s));
	} else if (repurposed) {
		from_free = zero; /* a repurposed frame holds its old owner's bytes */
		/* Standby running low: let the writer refill it. Not on every
		   repurpose: under pressure this path is every allocation, and a
		   wake is a futex syscall (and, at the writer's real-time
		   priority, often a preemption) charged to the faulting thread,
		   which would dominate the demand-zero fault's tail. While the
		   writer works, the signal is two atomics. */
		if (standby_low(ph))
			ntmm__writer_wake(ph);
	}
	if (pfn == NTMM__PFN_NONE) {
		ntmm__writer_wake(ph);
		NTMM__STAT_ADD(&e->stats, frame_alloc_fails, 1);
		return NTMM_ENOMEM;
	}
	if (zero && from_free) {
		memset(ntmm__frame(ph, pfn), 0, 4096);
		NTMM__STAT_ADD(&e->stats, frames_zeroed_inline, 1);
		NTMM__STAT_ADD(&e->stats, frames_zeroed, 1);
	}
	NTMM__STAT_ADD(&e->stats, frame_allocs, 1);
	*out = pfn;
	return 0;
}

int ntmm__page_alloc(ntmm_engine_t *e, unsigned flags, int node, uint32_t colour_hint,
                     ntmm__pfn_t *out)
{
	ntmm__phys_t *ph = &e->phys;
	unsigned cpu = cpu_slot(ph);
	ntmm__pcpu_t *s = &ph->pcpu[cpu];
	unsigned home;
	if (node == NTMM__ALLOC_NODE_ANY)
		home = s->node;
	else if (node < 0 || (unsigned)node >= ph->nnodes)
		return ntmm__error(NTMM_EINVAL, "node %d outside the topology (%u nodes)", node,
		                   ph->nnodes);
	else
		home = (unsigned)node;

	bool zero = flags & NTMM__ALLOC_ZERO, from_free = false;
	ntmm__pfn_t pfn = NTMM__PFN_NONE;
	if (s->node == home && slot_try(s)) {
		ntmm__node_t *n = &ph->nodes[home];
		if (zero) {
			pfn = mag_pop(ph, s->zmag, &s->nzero, colour_hint);
			if (pfn == NTMM__PFN_NONE && mag_refill(ph, n, s->zmag, &s->nzero, true))
				pfn = mag_pop(ph, s->zmag, &s->nzero, colour_hint);
			if (pfn == NTMM__PFN_NONE) {
				pfn = mag_pop(ph, s->fmag, &s->nfree, colour_hint);
				if (pfn == NTMM__PFN_NONE &&
				    mag_refill(ph, n, s->fmag, &s->nfree, false))
					pfn = mag_pop(ph, s->fmag, &s->nfree, colour_hint);
				from_free = true;
			}
		} else {
			pfn = mag_pop(ph, s->fmag, &s->nfree, colour_hint);
			if (pfn == NTMM__PFN_NONE && mag_refill(ph, n, s->fmag, &s->nfree, false))
				pfn = mag_pop(ph, s->fmag, &s->nfree, colour_hint);
			if (pfn == NTMM__PFN_NONE) {
				pfn = mag_pop(ph, s->zmag, &s->nzero, colour_hint);
				if (pfn == NTMM__PFN_NONE &&
				    mag_refill(ph, n, s->zmag, &s->nzero, true))
					pfn = mag_pop(ph, s->zmag, &s->nzero, colour_hint);
			}
		}
		if (pfn != NTMM__PFN_NONE)
			/* relaxed: only the slot holder writes; summed by the gauges */
			atomic_store_explicit(
			    &s->allocs, atomic_load_explicit(&s->allocs, memory_order_relaxed) + 1,
			    memory_order_relaxed);
		slot_put(s);
	}
	if (pfn == NTMM__PFN_NONE)
		return alloc_slow(e, flags, home, colour_hint, out);

	ntmm__pfn_entry_t *p = ntmm__pfe(ph, pfn);
	uint64_t st = atomic_load_explicit(&p->state, memory_order_relaxed);
	ntmm__pfn_store(p, st, active_word(st));
	if (zero && from_free) {
		memset(ntmm__frame(ph, pfn), 0, 4096);
		NTMM__STAT_ADD(&e->stats, frames_zeroed_inline, 1);
		NTMM__STAT_ADD(&e->stats, frames_zeroed, 1);
	}
	*out = pfn;
	return 0;
}

void ntmm__free_to_node(ntmm_engine_t *e, ntmm__pfn_t pfn, uint64_t s)
{
	ntmm__phys_t *ph = &e->phys;
	ntmm__node_t *n = &ph->nodes[ntmm__pfn_node(ph, pfn)];
	(void)s;
	pthread_mutex_lock(&n->free_lock);
	ntmm__freelist_put(ph, n, false, pfn);
	bool wake = n->zeroed_count < n->zero_high;
	ntmm__node_pub_free(n);
	pthread_mutex_unlock(&n->free_lock);
	NTMM__STAT_ADD(&e->stats, frame_frees, 1);
	if (wake)
		ntmm__zero_wake(n);
}

/* A referenced frame being freed: still referenced (pinned or in I/O), it
   becomes TRANSITION and DELETED, so the last unref frees it; if the last
   reference went meanwhile, straight to Free. */
static uint64_t free_referenced_next(uint64_t s, void *arg)
{
	(void)arg;
	if (ntmm__pfn_refs(s) == 0)
		return ntmm__pfn_listed(s, NTMM__LOC_FREE);
	return ntmm__pfn_relocate((s & ~NTMM__PFN_SHARE_MASK) | NTMM__PFN_DELETED,
	                          NTMM__LOC_TRANSITION);
}

void ntmm__page_free(ntmm_engine_t *e, ntmm__pfn_t pfn)
{
	ntmm__phys_t *ph = &e->phys;
	ntmm__pfn_entry_t *p = ntmm__pfe(ph, pfn);
	/* acquire: pairs with the release of the frame's last change, so the
	   owner's (and pinners') writes are ordered before we free it */
	uint64_t s = atomic_load_explicit(&p->state, memory_order_acquire), next;
	ntmm__assert(ntmm__pfn_loc(s) == NTMM__LOC_ACTIVE && ntmm__pfn_shares(s) <= 1);
	if (ntmm__likely(ntmm__pfn_refs(s) == 0)) {
		/* No reference: by the contract no other thread can reach the
		   frame any more (no PTE, no pin, past the grace period), so no
		   one else writes this word and a store replaces the CAS. */
		next = ntmm__pfn_listed(s, NTMM__LOC_FREE);
		ntmm__pfn_store(p, s, next);
	} else {
		s = ntmm__pfn_update(p, free_referenced_next, NULL);
		if (ntmm__pfn_refs(s) > 0)
			return; /* the last unref frees it */
		next = ntmm__pfn_listed(s, NTMM__LOC_FREE);
	}
	/* relaxed: the frame is FREE and ours until it is on a list or in a
	   magazine, whose lock/flag publishes these stores */
	atomic_store_explicit(&p->pte, 0, memory_order_relaxed);
	atomic_store_explicit(&p->original_pte, 0, memory_order_relaxed);

	unsigned node = ntmm__pfn_node(ph, pfn);
	ntmm__pcpu_t *sl = &ph->pcpu[cpu_slot(ph)];
	if (sl->node == node && slot_try(sl)) {
		uint32_t k = cnt_get(&sl->nfree);
		if (k == NTMM__MAG) {
			mag_drain(ph, &ph->nodes[node], sl->fmag, &sl->nfree, NTMM__MAG_BATCH,
			          false);
			k = cnt_get(&sl->nfree);
		}
		sl->fmag[k] = pfn;
		cnt_set(&sl->nfree, k + 1);
		/* relaxed: holder-only counter, as allocs */
		atomic_store_explicit(&sl->frees,
		                      atomic_load_explicit(&sl->frees, memory_order_relaxed) + 1,
		                      memory_order_relaxed);
		slot_put(sl);
		return;
	}
	ntmm__free_to_node(e, pfn, next);
}
