/*
 * ntmm_audit for the physical layer: with every per-CPU slot and node lock
 * held, walk every list, magazine and zero batch, then every PFN entry, and
 * check that each frame is in exactly one place that matches its state
 * word, that list counts, masks and per-chunk tallies match, that per-node
 * totals equal the pool, that uncommitted chunks hold only OFFLINE frames
 * and that Bad frames sit on the Bad list. Chunks whose PFN entries were
 * never populated are checked as a whole (never committed, nothing listed)
 * without reading the database, so the audit of a huge pool costs what
 * the pool has used. Exact only on a quiet engine (a frame being freed
 * right now is in none of those places).
 */
#include "engine.h"
#include "sync/backoff.h"

#include <stdarg.h>
#include <stdlib.h>
#include <time.h>

typedef struct audit {
	ntmm__phys_t *ph;
	uint8_t *seen; /* per frame: 0 nowhere, else 1 + place kind */
	uint16_t *listed;
	unsigned errors;
} audit_t;

static void bad(audit_t *a, const char *fmt, ...)
{
	if (a->errors++ >= 20)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "ntmm audit: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static uint64_t state_of(audit_t *a, ntmm__pfn_t pfn)
{
	/* relaxed: the locks we hold order everything that moves frames */
	return atomic_load_explicit(&a->ph->pfndb[pfn].state, memory_order_relaxed);
}

/* Marks pfn as found in a place; checks its node and location. */
static void place(audit_t *a, ntmm__pfn_t pfn, unsigned node, unsigned loc, const char *where)
{
	if (pfn >= a->ph->nframes) {
		bad(a, "%s: pfn %u outside the pool", where, pfn);
		return;
	}
	if (!ntmm__pfn_populated(a->ph, pfn)) {
		bad(a, "%s: pfn %u in a chunk never committed", where, pfn);
		return;
	}
	if (a->seen[pfn])
		bad(a, "%s: pfn %u also found elsewhere", where, pfn);
	a->seen[pfn] = 1;
	if (ntmm__pfn_node(a->ph, pfn) != node)
		bad(a, "%s: pfn %u belongs to node %u", where, pfn, ntmm__pfn_node(a->ph, pfn));
	uint64_t s = state_of(a, pfn);
	if (ntmm__pfn_loc(s) != loc)
		bad(a, "%s: pfn %u has location %u, expected %u", where, pfn, ntmm__pfn_loc(s),
		    loc);
}

/* Walks a list: links, count, and each frame's place. colour ≥ 64: any;
   prio ≥ 8: any. */
static size_t walk(audit_t *a, ntmm__plist_t *l, unsigned node, unsigned loc, unsigned colour,
                   unsigned prio, const char *name)
{
	size_t k = 0;
	ntmm__pfn_t prev = NTMM__PFN_NONE;
	for (ntmm__pfn_t f = l->head; f != NTMM__PFN_NONE; f = a->ph->pfndb[f].next) {
		if (f >= a->ph->nframes || k > a->ph->nframes || !ntmm__pfn_populated(a->ph, f)) {
			bad(a, "%s (node %u): broken link %u", name, node, f);
			return k;
		}
		if (a->ph->pfndb[f].prev != prev)
			bad(a, "%s (node %u): pfn %u prev link %u, expected %u", name, node, f,
			    a->ph->pfndb[f].prev, prev);
		place(a, f, node, loc, name);
		if (colour < NTMM__MAX_COLOURS && ntmm__pfn_colour(a->ph, f) != colour)
			bad(a, "%s (node %u): pfn %u has colour %u, on list %u", name, node, f,
			    ntmm__pfn_colour(a->ph, f), colour);
		if (prio < 8 && ntmm__pfn_prio(state_of(a, f)) != prio)
			bad(a, "%s (node %u): pfn %u priority %u on list %u", name, node, f,
			    ntmm__pfn_prio(state_of(a, f)), prio);
		if (loc == NTMM__LOC_ZEROED || loc == NTMM__LOC_FREE)
			a->listed[f / NTMM__CHUNK_FRAMES]++;
		prev = f;
		k++;
	}
	if (l->tail != prev)
		bad(a, "%s (node %u): tail %u, last frame %u", name, node, l->tail, prev);
	if (l->count != k)
		bad(a, "%s (node %u): count %zu, %zu frames linked", name, node, l->count, k);
	return k;
}

/* Waits for a CPU slot (held only for a few instructions at a time). After
   the spin budget it sleeps rather than yields, so that a real-time caller
   lets a preempted lower-priority holder on its CPU finish. */
static void lock_slot(ntmm__pcpu_t *s)
{
	ntmm__backoff_t b = NTMM__BACKOFF_INIT;
	/* acquire: as slot_try in alloc.c */
	while (atomic_exchange_explicit(&s->busy, 1, memory_order_acquire))
		if (!ntmm__backoff_spin_bounded(&b))
			nanosleep(&(struct timespec){0, 50000}, NULL);
}

int ntmm__phys_audit(ntmm_engine_t *e)
{
	ntmm__phys_t *ph = &e->phys;
	if (!ph->ready)
		return 0;
	audit_t a = {.ph = ph};
	a.seen = calloc(ph->nframes, 1);
	a.listed = calloc(ph->nchunks, sizeof(*a.listed));
	if (!a.seen || !a.listed) {
		free(a.seen);
		free(a.listed);
		return ntmm__error(NTMM_ENOMEM, "audit bitmap");
	}
	for (unsigned c = 0; c < ph->ncpus; c++)
		lock_slot(&ph->pcpu[c]);
	for (unsigned n = 0; n < ph->nnodes; n++) {
		pthread_mutex_lock(&ph->nodes[n].standby_lock);
		pthread_mutex_lock(&ph->nodes[n].free_lock);
	}

	for (unsigned ni = 0; ni < ph->nnodes; ni++) {
		ntmm__node_t *n = &ph->nodes[ni];
		size_t z = 0, f = 0;
		for (unsigned c = 0; c < NTMM__MAX_COLOURS; c++) {
			size_t zc = walk(&a, &n->zeroed[c], ni, NTMM__LOC_ZEROED, c, 8, "Zeroed");
			size_t fc = walk(&a, &n->free_[c], ni, NTMM__LOC_FREE, c, 8, "Free");
			if (c >= ph->ncolours && (zc || fc))
				bad(&a, "node %u: frames on colour list %u ≥ %u colours", ni, c,
				    ph->ncolours);
			if (!!zc != !!(n->zeroed_mask & (1ull << c)) ||
			    !!fc != !!(n->free_mask & (1ull << c)))
				bad(&a, "node %u: colour mask bit %u disagrees with its list", ni,
				    c);
			z += zc;
			f += fc;
		}
		if (z != n->zeroed_count || f != n->free_count)
			bad(&a, "node %u: zeroed/free counts %zu/%zu, lists hold %zu/%zu", ni,
			    n->zeroed_count, n->free_count, z, f);
		walk(&a, &n->bad, ni, NTMM__LOC_BAD, 64, 8, "Bad");
		for (unsigned p = 0; p < NTMM__STANDBY_PRIOS; p++)
			walk(&a, &n->standby[p], ni, NTMM__LOC_STANDBY, 64, p, "Standby");
		walk(&a, &n->modified, ni, NTMM__LOC_MODIFIED, 64, 8, "Modified");
		walk(&a, &n->modified_mapped, ni, NTMM__LOC_MODIFIED, 64, 8, "Modified (mapped)");
		/* a mapped file's dirty pages are on their own list, and only there */
		for (int mapped = 0; mapped < 2; mapped++) {
			ntmm__plist_t *l = mapped ? &n->modified_mapped : &n->modified;
			size_t k = 0;
			for (ntmm__pfn_t x = l->head;
			     x != NTMM__PFN_NONE && x < ph->nframes && k++ < l->count;
			     x = ph->pfndb[x].next)
				if (!(state_of(&a, x) & NTMM__PFN_MAPPED) != !mapped)
					bad(&a, "Modified%s (node %u): pfn %u %s MAPPED",
					    mapped ? " (mapped)" : "", ni, x,
					    mapped ? "without" : "with");
		}
		walk(&a, &n->modified_nowrite, ni, NTMM__LOC_MODIFIED_NOWRITE, 64, 8,
		     "ModifiedNoWrite");
		for (unsigned i = 0; i < n->zbatch_n; i++)
			place(&a, n->zbatch[i], ni, NTMM__LOC_FREE, "zero batch");
		uint32_t committed = 0;
		for (uint32_t c = n->first_chunk; c < n->first_chunk + n->nchunks; c++) {
			committed += ph->chunks[c].committed;
			if (ph->chunks[c].node != ni)
				bad(&a, "chunk %u: node %u, within node %u", c, ph->chunks[c].node,
				    ni);
			if (ph->chunks[c].listed != a.listed[c])
				bad(&a, "chunk %u: listed %u, lists hold %u", c,
				    ph->chunks[c].listed, a.listed[c]);
		}
		if (committed != atomic_load_explicit(&n->committed_chunks, memory_order_relaxed))
			bad(&a, "node %u: %u chunks committed, counter says %u", ni, committed,
			    atomic_load_explicit(&n->committed_chunks, memory_order_relaxed));
	}
	for (unsigned c = 0; c < ph->ncpus; c++) {
		ntmm__pcpu_t *s = &ph->pcpu[c];
		uint32_t nz = atomic_load_explicit(&s->nzero, memory_order_relaxed);
		uint32_t nf = atomic_load_explicit(&s->nfree, memory_order_relaxed);
		if (nz > NTMM__MAG || nf > NTMM__MAG) {
			bad(&a, "CPU %u: magazine counts %u/%u", c, nz, nf);
			continue;
		}
		for (uint32_t i = 0; i < nz; i++)
			place(&a, s->zmag[i], s->node, NTMM__LOC_ZEROED, "per-CPU Zeroed");
		for (uint32_t i = 0; i < nf; i++)
			place(&a, s->fmag[i], s->node, NTMM__LOC_FREE, "per-CPU Free");
	}

	size_t per_node[NTMM__MAX_NODES] = {0};
	for (ntmm__pfn_t f = 0; f < ph->nframes; f++) {
		if (f % NTMM__CHUNK_FRAMES == 0 && !ntmm__pfn_populated(ph, f)) {
			/* no entries: the chunk was never committed (listed was
			   checked against the lists above) */
			uint32_t c = f / NTMM__CHUNK_FRAMES;
			if (ph->chunks[c].committed)
				bad(&a, "chunk %u: committed without PFN entries", c);
			per_node[ph->chunks[c].node] += NTMM__CHUNK_FRAMES;
			f += NTMM__CHUNK_FRAMES - 1;
			continue;
		}
		uint64_t s = state_of(&a, f);
		unsigned loc = ntmm__pfn_loc(s);
		bool committed = ph->chunks[f / NTMM__CHUNK_FRAMES].committed;
		per_node[ntmm__pfn_node(ph, f)]++;
		switch (loc) {
		case NTMM__LOC_ACTIVE:
		case NTMM__LOC_TRANSITION:
			if (a.seen[f])
				bad(&a, "pfn %u: %s but on a list", f,
				    loc == NTMM__LOC_ACTIVE ? "ACTIVE" : "TRANSITION");
			if (!committed)
				bad(&a, "pfn %u: in use in an uncommitted chunk", f);
			break;
		case NTMM__LOC_OFFLINE:
			if (committed)
				bad(&a, "pfn %u: OFFLINE in a committed chunk", f);
			break;
		default:
			if (loc > NTMM__LOC_OFFLINE)
				bad(&a, "pfn %u: location %u does not exist", f, loc);
			else if (!a.seen[f])
				bad(&a, "pfn %u: location %u but on no list or cache", f, loc);
			if (!committed)
				bad(&a, "pfn %u: listed in an uncommitted chunk", f);
		}
		if (!ntmm__pfn_word_ok(s))
			bad(&a, "pfn %u: state word %#llx breaks the count/flag invariants", f,
			    (unsigned long long)s);
	}
	for (unsigned ni = 0; ni < ph->nnodes; ni++)
		if (per_node[ni] != ph->nodes[ni].nframes)
			bad(&a, "node %u: %zu frames, pool gives it %zu", ni, per_node[ni],
			    ph->nodes[ni].nframes);

	for (unsigned n = ph->nnodes; n-- > 0;) {
		pthread_mutex_unlock(&ph->nodes[n].free_lock);
		pthread_mutex_unlock(&ph->nodes[n].standby_lock);
	}
	for (unsigned c = 0; c < ph->ncpus; c++)
		/* release: pairs with the next holder's acquire */
		atomic_store_explicit(&ph->pcpu[c].busy, 0, memory_order_release);
	free(a.seen);
	free(a.listed);
	if (a.errors > 20)
		fprintf(stderr, "ntmm audit: ... %u problems in all\n", a.errors);
	return a.errors ? NTMM_EINVAL : 0;
}
