/*
 * Inline forms of the page API's address helpers for the virtual layer's
 * hot paths (a walk resolves three table frames, a fault several more).
 * They rely on what phys.h states about the pool: one host mapping with
 * frame pfn at host + pfn × 4 KiB, and the PFN database as one array. The
 * out-of-line ntmm__pfn_host/ntmm__pfn/ntmm__host_pfn stay the contract;
 * these are the same computation without the call. Include after engine.h.
 */
#ifndef NTMM_VIRT_FRAME_H
#define NTMM_VIRT_FRAME_H

#include "engine.h"

static inline void *ntmm__vframe(const ntmm_engine_t *e, ntmm__pfn_t pfn)
{
	ntmm__assert(pfn < e->phys.nframes);
	return ntmm__frame(&e->phys, pfn);
}

static inline ntmm__pfn_entry_t *ntmm__vpfn(ntmm_engine_t *e, ntmm__pfn_t pfn)
{
	ntmm__assert(pfn < e->phys.nframes);
	return &e->phys.pfndb[pfn];
}

/* PFN of the frame holding host address h (a PTE inside a table page) */
static inline ntmm__pfn_t ntmm__vframe_pfn(const ntmm_engine_t *e, const void *h)
{
	ntmm__pfn_t pfn = (ntmm__pfn_t)(((const uint8_t *)h - e->phys.host) >> NTMM__PAGE_SHIFT);
	ntmm__assert(pfn < e->phys.nframes);
	return pfn;
}

#endif
