/*
 * The physical layer's page API for the layers above (virt, io, section):
 * the PFN entry, its state word, and the page operations the fault handler,
 * the trimmer, the page writers and process teardown use. Implemented in
 * engine/phys/ (pfn.c, pagelist.c, alloc.c); this header is the contract
 * between the physical and virtual layers.
 *
 * PFN entry (32 bytes, static-asserted): one 64-bit state word changed only
 * by CAS, the owning PTE's host address, the OriginalPte, and list links.
 *
 * State word (NTMM__PFN_*):
 *   bits  0..3   location: ZEROED FREE STANDBY MODIFIED MODIFIED_NOWRITE BAD
 *                ACTIVE TRANSITION (NTMM-REFERENCE.md §1)
 *   bits  4..19  reference count: locks, pins and I/O in flight (not PTEs)
 *   bits 20..35  share count: PTEs that map the frame (valid PTEs)
 *   bit  36 MODIFIED, 37 READ_IN_PROGRESS, 38 WRITE_IN_PROGRESS,
 *   bit  39 PROTOTYPE, 40 DELETED, 41 IN_PAGE_ERROR
 *   bits 42..44  standby priority 0..7
 *   bits 45..63  generation, bumped by every location change (ABA guard for
 *                list hints and for callers that re-validate after a race)
 *
 * Page life (the transitions the layers above drive):
 *   alloc            Zeroed/Free/Standby → ACTIVE, share 1, ref 0
 *   unmap            ACTIVE share-- ; at share 0 and ref 0 → TRANSITION
 *                    ("awaiting shootdown"); the caller batches such pages and,
 *                    after one RCU grace period, calls release_batch:
 *   release_batch    TRANSITION → Free (DELETED) | Modified (MODIFIED) |
 *                    Standby front (clean), at the page's priority
 *   reclaim          Standby/Modified/TRANSITION → ACTIVE share 1 (soft fault)
 *                    if the page still belongs to the expected PTE
 *   ref/unref        pin and I/O references on an ACTIVE/TRANSITION page;
 *                    the last unref of a share-0 page moves it on as above
 *   repurpose        the allocator taking a Standby page for a new owner
 *                    calls e->phys.repurpose(old pte, OriginalPte) first.
 *
 * Frames handed to a new owner with NTMM__ALLOC_ZERO are all zero; frames
 * taken from Standby for a different owner are zeroed too when ZERO is asked
 * (the security guarantee: a process never sees another's bytes).
 */
#ifndef NTMM_PHYS_PAGE_H
#define NTMM_PHYS_PAGE_H

#include <ntmm.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef uint32_t ntmm__pfn_t; /* frame index; 2^32 frames = 16 TiB */
#define NTMM__PFN_NONE UINT32_MAX

enum ntmm__pfn_location {
	NTMM__LOC_ZEROED = 0,
	NTMM__LOC_FREE = 1,
	NTMM__LOC_STANDBY = 2,
	NTMM__LOC_MODIFIED = 3,
	NTMM__LOC_MODIFIED_NOWRITE = 4,
	NTMM__LOC_BAD = 5,
	NTMM__LOC_ACTIVE = 6,
	NTMM__LOC_TRANSITION = 7,
};

#define NTMM__PFN_LOC_MASK 0xfull
#define NTMM__PFN_REF_SHIFT 4
#define NTMM__PFN_REF_ONE (1ull << NTMM__PFN_REF_SHIFT)
#define NTMM__PFN_REF_MASK (0xffffull << NTMM__PFN_REF_SHIFT)
#define NTMM__PFN_SHARE_SHIFT 20
#define NTMM__PFN_SHARE_ONE (1ull << NTMM__PFN_SHARE_SHIFT)
#define NTMM__PFN_SHARE_MASK (0xffffull << NTMM__PFN_SHARE_SHIFT)
#define NTMM__PFN_MODIFIED (1ull << 36)
#define NTMM__PFN_READ_IN_PROGRESS (1ull << 37)
#define NTMM__PFN_WRITE_IN_PROGRESS (1ull << 38)
#define NTMM__PFN_PROTOTYPE (1ull << 39)
#define NTMM__PFN_DELETED (1ull << 40)
#define NTMM__PFN_IN_PAGE_ERROR (1ull << 41)
#define NTMM__PFN_PRIO_SHIFT 42
#define NTMM__PFN_PRIO_MASK (7ull << NTMM__PFN_PRIO_SHIFT)
#define NTMM__PFN_GEN_SHIFT 45
#define NTMM__PFN_GEN_ONE (1ull << NTMM__PFN_GEN_SHIFT)

static inline unsigned ntmm__pfn_loc(uint64_t s)
{
	return (unsigned)(s & NTMM__PFN_LOC_MASK);
}
static inline unsigned ntmm__pfn_refs(uint64_t s)
{
	return (unsigned)((s & NTMM__PFN_REF_MASK) >> NTMM__PFN_REF_SHIFT);
}
static inline unsigned ntmm__pfn_shares(uint64_t s)
{
	return (unsigned)((s & NTMM__PFN_SHARE_MASK) >> NTMM__PFN_SHARE_SHIFT);
}
static inline unsigned ntmm__pfn_prio(uint64_t s)
{
	return (unsigned)((s & NTMM__PFN_PRIO_MASK) >> NTMM__PFN_PRIO_SHIFT);
}

/*
 * One entry per 4 KiB frame.
 *   state        — the truth about the frame; CAS only (see above)
 *   pte          — host address of the PTE (or prototype PTE) mapping this
 *                  frame, 0 if none; written by the owner while the frame is
 *                  ACTIVE and it holds the PTE; read by repurpose and audit
 *   original_pte — PTE contents to restore when the frame leaves memory
 *                  (demand-zero, pagefile or file PTE); same owner rule
 *   next, prev   — list links (PFN indices), guarded by the lock of the list
 *                  the state word names
 */
typedef struct ntmm__pfn_entry {
	_Atomic uint64_t state;
	_Atomic uint64_t pte;
	_Atomic uint64_t original_pte;
	ntmm__pfn_t next, prev;
} ntmm__pfn_entry_t;

/* Called by the allocator after it has won a Standby (or Modified, never
   while WRITE_IN_PROGRESS) page for a new owner and before it hands the
   frame out: the old owner's PTE at host address pte_addr, which still
   holds a transition PTE naming pfn, must become original_pte. The callback
   must not allocate frames. Registered by the virtual layer at create. */
typedef void (*ntmm__repurpose_fn)(ntmm_engine_t *e, ntmm__pfn_t pfn, uint64_t pte_addr,
				   uint64_t original_pte);

/* alloc flags */
#define NTMM__ALLOC_ZERO 0x1u	  /* contents must be zero */
#define NTMM__ALLOC_NO_STANDBY 0x2u /* do not repurpose Standby pages */
#define NTMM__ALLOC_NODE_ANY (-1)

ntmm__pfn_entry_t *ntmm__pfn(ntmm_engine_t *e, ntmm__pfn_t pfn);
void *ntmm__pfn_host(ntmm_engine_t *e, ntmm__pfn_t pfn);
/* Host address anywhere inside a frame → its PFN (NTMM__PFN_NONE if not in
   the pool). */
ntmm__pfn_t ntmm__host_pfn(ntmm_engine_t *e, const void *host);

/* Allocates a frame: NT order (ZERO: Zeroed → Free zeroed inline →
   Standby repurposed and zeroed; else Free → Zeroed → Standby), local node
   (or `node`) first then by distance, colour from colour_hint. Returns it
   ACTIVE with share 1, ref 0, MODIFIED clear, pte/original_pte 0. Lock-free
   on the per-CPU path. NTMM_ENOMEM when no frame can be found (the caller
   may wake the writers and retry). */
int ntmm__page_alloc(ntmm_engine_t *e, unsigned flags, int node, uint32_t colour_hint,
		     ntmm__pfn_t *out);
/* A frame for the engine's own use (page-table page): as page_alloc with
   ZERO; freed with ntmm__page_free. */
/* Frees an ACTIVE frame with share ≤ 1 and ref 0 straight to Free. The
   caller guarantees no reader can still reach it (after a grace period). */
void ntmm__page_free(ntmm_engine_t *e, ntmm__pfn_t pfn);

/* share-- on an ACTIVE frame; `dirty` sets MODIFIED, `deleted` sets DELETED
   (the owner is going away: the frame goes to Free, not Standby). Returns
   true if the frame went to TRANSITION (share and ref 0): the caller must
   pass it to ntmm__page_release_batch after an RCU grace period. */
bool ntmm__page_unmap(ntmm_engine_t *e, ntmm__pfn_t pfn, bool dirty, bool deleted);
/* TRANSITION frames (share 0, ref 0) → Free / Modified / Standby front. */
void ntmm__page_release_batch(ntmm_engine_t *e, const ntmm__pfn_t *pfns, size_t n);

/* Soft fault: if pfn is on Standby/Modified or in TRANSITION and its pte
   field equals pte_addr, make it ACTIVE with share 1 (unlinking it, O(1))
   and return 0; NTMM_EBUSY if it is in I/O (READ_IN_PROGRESS, or
   WRITE_IN_PROGRESS when `write`), NTMM_ECONFLICT if it no longer belongs
   to pte_addr (repurposed: re-read the PTE). */
int ntmm__page_reclaim(ntmm_engine_t *e, ntmm__pfn_t pfn, uint64_t pte_addr, bool write);

/* Owner teardown of a frame that is not ACTIVE (its PTE is a transition
   PTE): if it still belongs to pte_addr, unlink it and free it (or mark it
   DELETED if it is in I/O, so the I/O completion frees it). Returns true if
   the frame was the caller's. */
bool ntmm__page_delete_transition(ntmm_engine_t *e, ntmm__pfn_t pfn, uint64_t pte_addr);

/* References (pins, I/O): ref++ on an ACTIVE or TRANSITION frame; unref
   moves a share-0, ref-0 frame on as release_batch does (no grace period is
   needed: a pinned frame was never reachable through an invalid PTE). */
void ntmm__page_ref(ntmm_engine_t *e, ntmm__pfn_t pfn);
void ntmm__page_unref(ntmm_engine_t *e, ntmm__pfn_t pfn);

/* Marks an ACTIVE frame modified (a write through a valid PTE). */
void ntmm__page_set_modified(ntmm_engine_t *e, ntmm__pfn_t pfn);
/* Standby priority (0..7) for the frame's next trip to Standby. */
void ntmm__page_set_priority(ntmm_engine_t *e, ntmm__pfn_t pfn, unsigned prio);

#endif
