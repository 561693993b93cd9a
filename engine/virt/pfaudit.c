/*
 * The paging-file slot audit (part of ntmm_audit): every slot a paging file
 * has in use must have exactly one owner, and no owner may name a free
 * slot. A leaked slot (allocated, never freed) only wastes space until the
 * file fills; a slot with two owners loses data (the second write or free
 * destroys the first owner's copy); an owner naming a free slot reads
 * someone else's page later. The io layer knows which slots are in use, the
 * virtual layer knows the owners (paging.h "ownership"), so the owners are
 * gathered here and the comparison is done by ntmm__pagefile_check_refs.
 *
 * Owners found:
 *   - pagefile PTEs in the page tables of every process (a full walk);
 *   - OriginalPtes of frames in memory (Active, Transition, Standby,
 *     Modified, ModifiedNoWrite), by a scan of the whole PFN database, so a
 *     frame no PTE reaches any more (deleted while pinned or in I/O) still
 *     counts. Page-table frames reuse original_pte as a used-entry count
 *     (at most 512): its offset field (bits 32..63) is 0, so it never reads
 *     as a pagefile PTE. A frame off memory (Free, Zeroed, Bad, offline)
 *     must not name a slot at all: the free path hands its OriginalPte to
 *     original_gone and clears it.
 *   - the prototype PTEs of paging-file sections and clone segments own
 *     the slots they name, as process PTEs do (ntmm__section_each_proto).
 *
 * Slots in flight, and why the audit may ignore them:
 *   - the modified page writer's batch: slots it allocated but has not yet
 *     stored in OriginalPtes, and stale copies it took out of OriginalPtes
 *     but has not yet freed. The writer does not take the systhreads'
 *     `quiet` mutex (a fault waiting for frames inside a read-side section
 *     may be waiting for it, while a balance-set pass holding `quiet` waits
 *     for that section's grace period), so it takes paging.writer_lock per
 *     batch instead, and the audit holds that lock: no batch is half done
 *     while the audit looks.
 *   - a hard fault: the slot moves from the PTE to the new frame's
 *     OriginalPte before the read (read_begin, then the transition PTE), so
 *     during the read it is owned like any other; only the few instructions
 *     of that move, of a failed read putting the PTE back, of a write fault
 *     freeing the slot, and of a repurpose putting OriginalPte back into
 *     the PTE see two owners or none. All of these run inside a fault or an
 *     allocation by a user thread: a quiet engine (ntmm_audit's contract:
 *     no concurrent faults, frees or teardowns) has none.
 *   - trims, out-swaps and paging-file growth and shrink run in system
 *     thread passes that hold `quiet`, which ntmm_audit holds too.
 */
#include "virt/virt.h"
#include "engine.h"
#include "section/section.h"
#include "virt/frame.h"

#include <stdio.h>
#include <stdlib.h>

#define SHOWN 20u /* problem lines printed (leaks are capped by the io layer) */

enum { OWNER_PTE, OWNER_FRAME, OWNER_PROTO };

/* One owner of one slot. */
typedef struct ref {
	uint64_t key; /* ntmm__pfloc_key of the slot */
	uint64_t va;  /* OWNER_PTE: the page's address */
	uint32_t who; /* OWNER_PTE: process id; OWNER_FRAME: pfn */
	uint32_t kind;
} ref_t;

typedef struct census {
	ntmm_engine_t *e;
	ref_t *v;
	size_t n, cap;
	bool nomem;
	unsigned shown;
	ntmm__pfaudit_t r;
} census_t;

static ntmm__pfloc_t key_loc(uint64_t key)
{
	return ntmm__pfloc_make((unsigned)(key >> NTMM__PF_SLOT_BITS),
	                        key & (NTMM__PF_MAX_SLOTS - 1));
}

static void add(census_t *c, uint64_t pte, uint32_t kind, uint32_t who, uint64_t va)
{
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 1024;
		ref_t *nv = realloc(c->v, ncap * sizeof(*nv));
		if (!nv) {
			c->nomem = true;
			return;
		}
		c->v = nv;
		c->cap = ncap;
	}
	c->v[c->n++] = (ref_t){
	    .key = ntmm__pfloc_key(ntmm__pfloc_from_pte(pte)), .va = va, .who = who, .kind = kind};
}

static const char *loc_name(unsigned loc)
{
	static const char *const names[] = {"Zeroed",          "Free", "Standby", "Modified",
	                                    "ModifiedNoWrite", "Bad",  "Active",  "Transition",
	                                    "offline"};
	return loc < sizeof(names) / sizeof(names[0]) ? names[loc] : "?";
}

/* "the PTE of process 3 at 0x10000" / "the OriginalPte of frame 12 (Standby)" */
static void describe(census_t *c, const ref_t *r, char *buf, size_t len)
{
	if (r->kind == OWNER_PROTO) {
		snprintf(buf, len, "the prototype PTE of section page %llu",
		         (unsigned long long)r->va);
		return;
	}
	if (r->kind == OWNER_PTE) {
		snprintf(buf, len, "the PTE of process %u at %#llx", r->who,
		         (unsigned long long)r->va);
		return;
	}
	/* acquire: as the scan's load */
	uint64_t s = atomic_load_explicit(&ntmm__vpfn(c->e, r->who)->state, memory_order_acquire);
	snprintf(buf, len, "the OriginalPte of frame %u (%s)", r->who, loc_name(ntmm__pfn_loc(s)));
}

static void show(census_t *c, const char *fmt, const ref_t *a, const ref_t *b, const char *why)
{
	if (c->shown++ >= SHOWN)
		return;
	char da[96], db[96] = "";
	describe(c, a, da, sizeof(da));
	if (b)
		describe(c, b, db, sizeof(db));
	ntmm__pfloc_t loc = key_loc(a->key);
	fprintf(stderr, "ntmm audit: paging file %u slot %llu: ", ntmm__pfloc_file(loc),
	        (unsigned long long)ntmm__pfloc_slot(loc));
	fprintf(stderr, fmt, da, b ? db : why);
	fputc('\n', stderr);
}

/* ntmm__pt_walk visitor: every non-zero leaf PTE of a process. */
static void visit_pte(ntmm_process_t *p, uint64_t va, _Atomic uint64_t *pte, void *arg)
{
	/* relaxed: ws_lock exclusive is held; nothing changes the PTE */
	uint64_t v = atomic_load_explicit(pte, memory_order_relaxed);
	if (ntmm__pte_is_pagefile(v)) {
		census_t *c = arg;
		add(c, v, OWNER_PTE, p->id, va);
		c->r.pte_refs++;
	}
}

/* ntmm__section_each_proto visitor: prototype PTEs of paging-file
   sections own their slots as process PTEs do. */
static void visit_proto(uint64_t v, uint64_t idx, void *arg)
{
	if (ntmm__pte_is_pagefile(v)) {
		census_t *c = arg;
		add(c, v, OWNER_PROTO, 0, idx);
		c->r.pte_refs++;
	}
}

static void gather_ptes(census_t *c)
{
	ntmm__virt_t *v = &c->e->virt;
	pthread_mutex_lock(&v->lock);
	for (struct cds_list_head *it = v->processes.next; it != &v->processes; it = it->next) {
		ntmm_process_t *p = caa_container_of(it, ntmm_process_t, link);
		/* faults (shared) and trims, frees, teardowns (exclusive) all
		   change PTEs under ws_lock: exclusive keeps them all out */
		ntmm__ws_lock_exclusive(p);
		ntmm__pt_walk(p, 0, NTMM__VA_END, visit_pte, c);
		ntmm__ws_unlock_exclusive(p);
	}
	pthread_mutex_unlock(&v->lock);
	ntmm__section_each_proto(c->e, visit_proto, c);
}

static void gather_frames(census_t *c)
{
	ntmm__phys_t *ph = &c->e->phys;
	for (size_t pfn = 0; pfn < ph->nframes; pfn++) {
		if (!ntmm__pfn_populated(ph, (ntmm__pfn_t)pfn)) {
			pfn += NTMM__CHUNK_FRAMES - 1; /* a chunk never committed */
			continue;
		}
		ntmm__pfn_entry_t *pe = &ph->pfndb[pfn];
		/* acquire: pairs with the release of the frame's last state
		   change, which published its original_pte */
		uint64_t s = atomic_load_explicit(&pe->state, memory_order_acquire);
		uint64_t o = atomic_load_explicit(&pe->original_pte, memory_order_relaxed);
		if (!ntmm__pte_is_pagefile(o))
			continue;
		switch (ntmm__pfn_loc(s)) {
		case NTMM__LOC_ACTIVE:
		case NTMM__LOC_TRANSITION:
		case NTMM__LOC_STANDBY:
		case NTMM__LOC_MODIFIED:
		case NTMM__LOC_MODIFIED_NOWRITE:
			add(c, o, OWNER_FRAME, (uint32_t)pfn, 0);
			c->r.frame_refs++;
			break;
		default: {
			c->r.stray++;
			ntmm__pfloc_t loc = ntmm__pfloc_from_pte(o);
			if (c->shown++ < SHOWN)
				fprintf(stderr,
				        "ntmm audit: frame %zu is %s but its OriginalPte still "
				        "names paging file %u slot %llu\n",
				        pfn, loc_name(ntmm__pfn_loc(s)), ntmm__pfloc_file(loc),
				        (unsigned long long)ntmm__pfloc_slot(loc));
		}
		}
	}
}

static int ref_cmp(const void *pa, const void *pb)
{
	const ref_t *a = pa, *b = pb;
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	if (a->who != b->who)
		return a->who < b->who ? -1 : 1;
	return a->va < b->va ? -1 : a->va > b->va;
}

typedef struct badref_arg {
	census_t *c;
	const size_t *first; /* unique location i → its first owner in c->v */
} badref_arg_t;

static void on_badref(void *arg, size_t i, enum ntmm__pf_badref why)
{
	badref_arg_t *b = arg;
	const ref_t *r = &b->c->v[b->first[i]];
	if (why == NTMM__PF_REF_FREE)
		b->c->r.free_refs++;
	else
		b->c->r.bad_refs++;
	show(b->c, "named by %s, but %s", r, NULL,
	     why == NTMM__PF_REF_FREE      ? "the slot is free"
	     : why == NTMM__PF_REF_NO_FILE ? "there is no such paging file"
	                                   : "the slot is past the end of its file");
}

int ntmm__pfaudit(ntmm_engine_t *e, ntmm__pfaudit_t *out)
{
	census_t c = {.e = e};
	ntmm__paging_writer_batch_begin(e);
	gather_ptes(&c);
	gather_frames(&c);
	int err = 0;
	ntmm__pfloc_t *locs = NULL;
	size_t *first = NULL, nu = 0;
	if (c.nomem || (c.n && (!(locs = malloc(c.n * sizeof(*locs))) ||
	                        !(first = malloc(c.n * sizeof(*first)))))) {
		err = ntmm__error(NTMM_ENOMEM, "slot audit: %zu references", c.n);
		goto out;
	}
	if (c.n) /* c.v is NULL when nothing names a slot */
		qsort(c.v, c.n, sizeof(*c.v), ref_cmp);
	for (size_t i = 0; i < c.n; i++) {
		if (nu && ntmm__pfloc_key(locs[nu - 1]) == c.v[i].key) {
			c.r.shared++;
			show(&c, "named by %s and by %s", &c.v[first[nu - 1]], &c.v[i], NULL);
			continue;
		}
		locs[nu] = key_loc(c.v[i].key);
		first[nu++] = i;
	}
	badref_arg_t ba = {&c, first};
	ntmm__pagefile_check_refs(&e->io, locs, nu, on_badref, &ba, &c.r.leaks);
	c.r.bitmap = ntmm__pagefile_audit(&e->io);
	if (c.r.shared || c.r.free_refs || c.r.bad_refs || c.r.stray || c.r.leaks || c.r.bitmap) {
		fprintf(stderr,
		        "ntmm audit: paging-file slots: %llu PTE and %llu OriginalPte owners; "
		        "%llu double owners, %llu owners of free slots, %llu of no slot, "
		        "%llu frames off memory naming one, %llu slots leaked%s\n",
		        (unsigned long long)c.r.pte_refs, (unsigned long long)c.r.frame_refs,
		        (unsigned long long)c.r.shared, (unsigned long long)c.r.free_refs,
		        (unsigned long long)c.r.bad_refs, (unsigned long long)c.r.stray,
		        (unsigned long long)c.r.leaks,
		        c.r.bitmap ? "; bitmap and counters disagree" : "");
		err = ntmm__error(NTMM_EINVAL, "paging-file slot audit failed");
	}
out:
	ntmm__paging_writer_batch_end(e);
	if (out)
		*out = c.r;
	free(c.v);
	free(locs);
	free(first);
	return err;
}
