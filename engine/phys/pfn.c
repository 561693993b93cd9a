/*
 * The PFN database's state machine: which state-word changes are legal
 * (NTMM-REFERENCE.md §1 plus the count invariants documented in page.h),
 * the engine's own asserted CAS/store helpers, the non-aborting checked
 * transition for tests and tools, and PFN ↔ host-address translation.
 */
#include "engine.h"

_Static_assert(sizeof(ntmm__pfn_entry_t) <= 32,
               "PFN entry must stay within 32 bytes (DESIGN.md §3)");

#define L(x) (1u << NTMM__LOC_##x)

/* Locations each location may move to (a change of location bumps the
   generation). ACTIVE → ACTIVE and TRANSITION → TRANSITION are count and
   flag changes; list locations change only by moving. */
static const uint16_t next_loc[9] = {
    [NTMM__LOC_ZEROED] = L(ACTIVE) | L(BAD) | L(OFFLINE),
    [NTMM__LOC_FREE] = L(ZEROED) | L(ACTIVE) | L(BAD) | L(OFFLINE),
    [NTMM__LOC_STANDBY] = L(ACTIVE) | L(FREE),
    [NTMM__LOC_MODIFIED] = L(ACTIVE) | L(TRANSITION) | L(FREE) | L(MODIFIED_NOWRITE),
    [NTMM__LOC_MODIFIED_NOWRITE] = L(ACTIVE) | L(MODIFIED) | L(FREE),
    [NTMM__LOC_BAD] = 0,
    [NTMM__LOC_ACTIVE] = L(ACTIVE) | L(TRANSITION) | L(FREE),
    [NTMM__LOC_TRANSITION] =
        L(TRANSITION) | L(ACTIVE) | L(FREE) | L(STANDBY) | L(MODIFIED) | L(MODIFIED_NOWRITE),
    [NTMM__LOC_OFFLINE] = L(ZEROED),
};

bool ntmm__pfn_word_ok(uint64_t s)
{
	unsigned loc = ntmm__pfn_loc(s);
	unsigned refs = ntmm__pfn_refs(s), shares = ntmm__pfn_shares(s);
	switch (loc) {
	case NTMM__LOC_ACTIVE:
		return shares + refs > 0;
	case NTMM__LOC_TRANSITION:
		return shares == 0 && refs > 0;
	case NTMM__LOC_ZEROED:
	case NTMM__LOC_FREE:
	case NTMM__LOC_BAD:
	case NTMM__LOC_OFFLINE:
		return shares == 0 && refs == 0 && !(s & NTMM__PFN_FLAGS_MASK);
	case NTMM__LOC_STANDBY:
		return shares == 0 && refs == 0 &&
		       !(s & (NTMM__PFN_MODIFIED | NTMM__PFN_READ_IN_PROGRESS |
		              NTMM__PFN_WRITE_IN_PROGRESS | NTMM__PFN_DELETED));
	case NTMM__LOC_MODIFIED:
	case NTMM__LOC_MODIFIED_NOWRITE:
		return shares == 0 && refs == 0 &&
		       !(s & (NTMM__PFN_READ_IN_PROGRESS | NTMM__PFN_WRITE_IN_PROGRESS |
		              NTMM__PFN_DELETED));
	default:
		return false;
	}
}

bool ntmm__pfn_legal(uint64_t from, uint64_t to)
{
	unsigned a = ntmm__pfn_loc(from), b = ntmm__pfn_loc(to);
	if (a > NTMM__LOC_OFFLINE || b > NTMM__LOC_OFFLINE)
		return false;
	if (!(next_loc[a] & (1u << b)))
		return false;
	uint64_t ga = from >> NTMM__PFN_GEN_SHIFT, gb = to >> NTMM__PFN_GEN_SHIFT;
	uint64_t gen_mask = (1ull << (64 - NTMM__PFN_GEN_SHIFT)) - 1;
	if (a != b ? gb != ((ga + 1) & gen_mask) : gb != ga)
		return false;
	return ntmm__pfn_word_ok(to);
}

/* |a - b| <= 1 for two 16-bit counts */
static bool count_step(unsigned a, unsigned b)
{
	return a == b || a + 1 == b || b + 1 == a;
}

bool ntmm__pfn_step_ok(const ntmm__pfn_entry_t *p, uint64_t from, uint64_t to)
{
	if (!ntmm__pfn_word_ok(from) || !ntmm__pfn_word_ok(to))
		return false;
	if (!count_step(ntmm__pfn_refs(from), ntmm__pfn_refs(to)) ||
	    !count_step(ntmm__pfn_shares(from), ntmm__pfn_shares(to)))
		return false;
	unsigned loc = ntmm__pfn_loc(to);
	bool io_frame = loc == NTMM__LOC_ACTIVE || loc == NTMM__LOC_TRANSITION;
	if (to & NTMM__PFN_READ_IN_PROGRESS) {
		/* relaxed: read_begin wrote pte before publishing the word */
		if (loc != NTMM__LOC_TRANSITION || ntmm__pfn_refs(to) == 0 ||
		    (to & NTMM__PFN_WRITE_IN_PROGRESS) ||
		    atomic_load_explicit(&p->pte, memory_order_relaxed) == 0)
			return false;
	}
	if ((to & NTMM__PFN_WRITE_IN_PROGRESS) && (!io_frame || ntmm__pfn_refs(to) == 0))
		return false;
	if ((to & NTMM__PFN_IN_PAGE_ERROR) &&
	    (loc != NTMM__LOC_TRANSITION || !(to & NTMM__PFN_DELETED)))
		return false;
	return true;
}

int ntmm__pfn_transition(ntmm_engine_t *e, ntmm__pfn_t pfn, uint64_t *expected, uint64_t desired)
{
	if (!e || pfn >= e->phys.nframes || !expected)
		return ntmm__error(NTMM_EINVAL, "pfn transition: bad argument");
	uint64_t gen_bits = *expected & ~((1ull << NTMM__PFN_GEN_SHIFT) - 1);
	if (ntmm__pfn_loc(desired) != ntmm__pfn_loc(*expected))
		gen_bits += NTMM__PFN_GEN_ONE;
	desired = (desired & ((1ull << NTMM__PFN_GEN_SHIFT) - 1)) | gen_bits;
	if (!ntmm__pfn_legal(*expected, desired))
		return NTMM_EINVAL;
	if (ntmm__unlikely(!ntmm__pfn_populated(&e->phys, pfn)))
		return ntmm__error(NTMM_EINVAL,
		                   "pfn transition: pfn %u is in a chunk never committed", pfn);
	/* acq_rel / acquire: as ntmm__pfn_cas */
	if (atomic_compare_exchange_strong_explicit(&e->phys.pfndb[pfn].state, expected, desired,
	                                            memory_order_acq_rel, memory_order_acquire)) {
		*expected = desired;
		return 0;
	}
	return NTMM_EBUSY;
}

ntmm__pfn_entry_t *ntmm__pfn(ntmm_engine_t *e, ntmm__pfn_t pfn)
{
	ntmm__assert(pfn < e->phys.nframes);
	ntmm__assert(ntmm__pfn_populated(&e->phys, pfn));
	return &e->phys.pfndb[pfn];
}

void *ntmm__pfn_host(ntmm_engine_t *e, ntmm__pfn_t pfn)
{
	ntmm__assert(pfn < e->phys.nframes);
	return ntmm__frame(&e->phys, pfn);
}

ntmm__pfn_t ntmm__host_pfn(ntmm_engine_t *e, const void *host)
{
	uintptr_t h = (uintptr_t)host, b = (uintptr_t)e->phys.host;
	if (h < b || h - b >= e->phys.bytes)
		return NTMM__PFN_NONE;
	return (ntmm__pfn_t)((h - b) >> NTMM__PAGE_SHIFT);
}
