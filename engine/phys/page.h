/*
 * The physical layer's page API for the layers above (virt, io, section):
 * the PFN entry, its state word, and the page operations the fault handler,
 * the trimmer, the page writers and process teardown use. Implemented in
 * engine/phys/ (pfn.c, alloc.c, page.c); this header is the contract
 * between the physical and virtual layers.
 *
 * PFN entry (32 bytes, static-asserted): one 64-bit state word changed by
 * CAS (or by a plain release store from the one thread that holds the frame
 * exclusively: list lock, per-CPU cache, or an unreachable frame being
 * freed), the owning PTE's host address, the OriginalPte, and list links.
 *
 * State word (NTMM__PFN_*):
 *   bits  0..3   location: ZEROED FREE STANDBY MODIFIED MODIFIED_NOWRITE BAD
 *                ACTIVE TRANSITION (NTMM-REFERENCE.md §1)
 *   bits  4..19  reference count: locks, pins and I/O in flight (not PTEs)
 *   bits 20..35  share count: PTEs that map the frame (valid PTEs)
 *   bit  36 MODIFIED, 37 READ_IN_PROGRESS, 38 WRITE_IN_PROGRESS,
 *   bit  39 PROTOTYPE, 40 DELETED, 41 IN_PAGE_ERROR
 *   bits 42..44  standby priority 0..7
 *   bit  45 MAPPED: the frame caches a page of a mapped file; dirty, it goes
 *                to its node's mapped Modified list (the mapped page
 *                writer's), kept on Standby/Modified, cleared when freed
 *   bits 46..63  generation, bumped by every location change (ABA guard for
 *                list hints and for callers that re-validate after a race)
 *
 * Page life (the transitions the layers above drive):
 *   alloc            Zeroed/Free/Standby → ACTIVE, share 1, ref 0
 *   unmap            ACTIVE share-- ; at share 0 → TRANSITION holding one
 *                    "grace" reference ("awaiting shootdown"); the caller
 *                    batches such pages and, after one RCU grace period,
 *                    calls release_batch, which drops that reference:
 *   release_batch    ref-- ; at ref 0 and share 0: TRANSITION → Free
 *                    (DELETED) | Modified (MODIFIED) | Standby front (clean),
 *                    at the page's priority
 *   reclaim          Standby/Modified/TRANSITION → ACTIVE share 1 (soft fault)
 *                    if the page still belongs to the expected PTE (the grace
 *                    and I/O references it holds stay until dropped)
 *   ref/unref        pin and I/O references on an ACTIVE/TRANSITION page;
 *                    the last unref of a share-0 page moves it on as above
 *   repurpose        the allocator taking a Standby page for a new owner
 *                    calls e->phys.repurpose(old pte, OriginalPte) first.
 *                    It takes the front (head) of the lowest non-empty
 *                    priority: "front" is the end repurposed first, "tail"
 *                    the end repurposed last (NTMM-REFERENCE.md §1 wording).
 *   read_begin/done  hard fault: fresh frame → TRANSITION (READ_IN_PROGRESS,
 *                    one I/O reference) → ACTIVE share 1, or Free on error
 *   writer_take/done the modified page writer: Modified → TRANSITION
 *                    (WRITE_IN_PROGRESS, one I/O reference) → Standby tail,
 *                    or Modified again if re-dirtied or the write failed.
 *
 * Invariants of the state word (checked by ntmm__pfn_legal and the audit):
 *   list locations (ZEROED FREE STANDBY MODIFIED MODIFIED_NOWRITE BAD
 *   OFFLINE): share 0, ref 0; ACTIVE: share ≥ 1 or ref ≥ 1; TRANSITION:
 *   share 0, ref ≥ 1 (a grace, pin or I/O reference keeps it there). A frame
 *   whose location is a list location is on that list of its node (Free and
 *   Zeroed frames may instead sit in a per-CPU cache or the zero page
 *   thread's batch); its state word changes only under that list's lock (or
 *   by the cache/batch holder). ACTIVE and TRANSITION words change by CAS
 *   from any thread.
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
	/* addition: the frame's 2 MiB chunk is not backed by memory (never
	   committed, or released to the OS). Internal to phys: no frame in this
	   location is ever handed out. */
	NTMM__LOC_OFFLINE = 8,
};

#define NTMM__PFN_LOC_MASK          0xfull
#define NTMM__PFN_REF_SHIFT         4
#define NTMM__PFN_REF_ONE           (1ull << NTMM__PFN_REF_SHIFT)
#define NTMM__PFN_REF_MASK          (0xffffull << NTMM__PFN_REF_SHIFT)
#define NTMM__PFN_SHARE_SHIFT       20
#define NTMM__PFN_SHARE_ONE         (1ull << NTMM__PFN_SHARE_SHIFT)
#define NTMM__PFN_SHARE_MASK        (0xffffull << NTMM__PFN_SHARE_SHIFT)
#define NTMM__PFN_MODIFIED          (1ull << 36)
#define NTMM__PFN_READ_IN_PROGRESS  (1ull << 37)
#define NTMM__PFN_WRITE_IN_PROGRESS (1ull << 38)
#define NTMM__PFN_PROTOTYPE         (1ull << 39)
#define NTMM__PFN_DELETED           (1ull << 40)
#define NTMM__PFN_IN_PAGE_ERROR     (1ull << 41)
#define NTMM__PFN_PRIO_SHIFT        42
#define NTMM__PFN_PRIO_MASK         (7ull << NTMM__PFN_PRIO_SHIFT)
#define NTMM__PFN_MAPPED            (1ull << 45)
#define NTMM__PFN_GEN_SHIFT         46
#define NTMM__PFN_GEN_ONE           (1ull << NTMM__PFN_GEN_SHIFT)
#define NTMM__PFN_FLAGS_MASK        ((0x3full << 36) | NTMM__PFN_MAPPED)
#define NTMM__PFN_PRIO_DEFAULT      5u /* priority a freshly allocated frame gets */

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
#define NTMM__ALLOC_ZERO       0x1u /* contents must be zero */
#define NTMM__ALLOC_NO_STANDBY 0x2u /* do not repurpose Standby pages */
#define NTMM__ALLOC_NODE_ANY   (-1)
#define NTMM__COLOUR_ANY       UINT32_MAX /* colour_hint: no preference */

ntmm__pfn_entry_t *ntmm__pfn(ntmm_engine_t *e, ntmm__pfn_t pfn);
void *ntmm__pfn_host(ntmm_engine_t *e, ntmm__pfn_t pfn);
/* Host address anywhere inside a frame → its PFN (NTMM__PFN_NONE if not in
   the pool). */
ntmm__pfn_t ntmm__host_pfn(ntmm_engine_t *e, const void *host);

/* Allocates a frame: NT order (ZERO: Zeroed → Free zeroed inline →
   Standby repurposed and zeroed; else Free → Zeroed → Standby), local node
   (or `node`) first then by distance; Free and Zeroed frames of every node
   are tried (committing a new 2 MiB chunk where a node has uncommitted
   ones) before any Standby page is repurposed. colour_hint & colour mask is
   the preferred page colour (NTMM__COLOUR_ANY: none); the per-CPU cache is
   refilled colour-interleaved, so consecutive allocations spread over the
   colours even without a hint. Returns it ACTIVE with share 1, ref 0,
   MODIFIED clear, priority NTMM__PFN_PRIO_DEFAULT, pte/original_pte 0.
   Without ZERO the contents are whatever the frame last held (the caller
   overwrites every byte, e.g. a hard-fault read). Lock-free except for one
   uncontended per-CPU flag on the per-CPU path. Errors: NTMM_ENOMEM when no
   frame can be found (the caller may wake the writers and retry),
   NTMM_EINVAL for a node outside the topology. */
int ntmm__page_alloc(ntmm_engine_t *e, unsigned flags, int node, uint32_t colour_hint,
                     ntmm__pfn_t *out);
/* Frees an ACTIVE frame with share ≤ 1 straight to Free. The caller
   guarantees no reader can still reach it (after a grace period). If the
   frame still holds references (ref > 0), it is marked DELETED and goes to
   Free when the last one is dropped. */
void ntmm__page_free(ntmm_engine_t *e, ntmm__pfn_t pfn);

/* share-- on an ACTIVE frame; `dirty` sets MODIFIED, `deleted` sets DELETED
   (the owner is going away: the frame goes to Free, not Standby). Returns
   true if the share count reached 0: the frame is now TRANSITION holding a
   grace reference, and the caller must pass it to ntmm__page_release_batch
   after an RCU grace period (also when the frame is pinned: readers that
   translated through the old PTE may still be inside their sections). */
bool ntmm__page_unmap(ntmm_engine_t *e, ntmm__pfn_t pfn, bool dirty, bool deleted);
/* Drops the grace reference unmap took on each frame; a frame left with
   share 0 and ref 0 goes TRANSITION → Free (DELETED) / Modified (MODIFIED)
   / Standby front. A frame reclaimed meanwhile just loses the reference. */
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
   moves a share-0, ref-0 frame on as release_batch does (the grace period
   is covered: unmap's own grace reference is dropped by release_batch). */
void ntmm__page_ref(ntmm_engine_t *e, ntmm__pfn_t pfn);
void ntmm__page_unref(ntmm_engine_t *e, ntmm__pfn_t pfn);

/* Marks an ACTIVE frame modified (a write through a valid PTE). */
void ntmm__page_set_modified(ntmm_engine_t *e, ntmm__pfn_t pfn);
/* Marks an ACTIVE or TRANSITION frame as a mapped file's page (MAPPED):
   dirty, it goes to the mapped Modified list, which only the mapped page
   writer takes from (ntmm__page_mapped_take). */
void ntmm__page_set_mapped(ntmm_engine_t *e, ntmm__pfn_t pfn);
/* Standby priority (0..7) for the frame's next trip to Standby (ACTIVE or
   TRANSITION frames; a frame already on a list keeps its list). */
void ntmm__page_set_priority(ntmm_engine_t *e, ntmm__pfn_t pfn, unsigned prio);

/* ---- additions ---- */

/* Modified page writer. take: removes up to max frames from the front
   (oldest) of the Modified list of `node` (NTMM__ALLOC_NODE_ANY: every node
   in turn) and makes each TRANSITION with WRITE_IN_PROGRESS set, MODIFIED
   cleared and one I/O reference; returns how many. A soft fault may reclaim
   such a frame meanwhile (reads only: a write reclaim gets NTMM_EBUSY), and
   a re-dirty sets MODIFIED again. done: for each frame, if ok and
   new_original is not NULL, new_original[i] becomes its OriginalPte (the
   paging-file PTE); WRITE_IN_PROGRESS is cleared, a failed write sets
   MODIFIED again, and the I/O reference is dropped: a share-0 frame then
   goes to Modified if MODIFIED, to Free if DELETED (owner gone), else to
   the TAIL of its Standby priority list. */
size_t ntmm__page_writer_take(ntmm_engine_t *e, int node, ntmm__pfn_t *pfns, size_t max);
/* The same from the mapped Modified lists (MAPPED frames: pages of mapped
   files, which go to their file, never to a paging file); finished with
   ntmm__page_writer_done (new_original NULL: the file keeps the data). */
size_t ntmm__page_mapped_take(ntmm_engine_t *e, int node, ntmm__pfn_t *pfns, size_t max);
void ntmm__page_writer_done(ntmm_engine_t *e, const ntmm__pfn_t *pfns, const uint64_t *new_original,
                            size_t n, bool ok);

/* Hard faults (in-page reads). begin: a frame just allocated (ACTIVE,
   share 1, ref 0) becomes TRANSITION with READ_IN_PROGRESS and one I/O
   reference, owned by pte_addr, with original_pte as the PTE to restore if
   it leaves memory. The caller then publishes a transition PTE naming it;
   collided faults get NTMM_EBUSY from reclaim until the read is done.
   done: ok → the frame becomes ACTIVE with share 1 (the faulting thread's
   mapping), READ_IN_PROGRESS cleared and the I/O reference dropped: 0.
   !ok → IN_PAGE_ERROR, the frame is freed once unreferenced: NTMM_EIO (the
   caller restores the PTE to original_pte). If the owner deleted the frame
   during the read (delete_transition), it is freed: NTMM_ECONFLICT. */
void ntmm__page_read_begin(ntmm_engine_t *e, ntmm__pfn_t pfn, uint64_t pte_addr,
                           uint64_t original_pte);
int ntmm__page_read_done(ntmm_engine_t *e, ntmm__pfn_t pfn, bool ok);

/* ModifiedNoWrite: a frame on the Modified list that must not be written
   yet (a file system's log ordering) moves to ModifiedNoWrite, where the
   writer does not see it, and back when writing is allowed again. A soft
   fault reclaims it from either list. 0, or NTMM_EBUSY if the frame is not
   on the list it should leave. */
int ntmm__page_hold_write(ntmm_engine_t *e, ntmm__pfn_t pfn, bool hold);

/* Retires a Free or Zeroed frame to the Bad list (a memory error); it is
   never handed out again. NTMM_EBUSY if the frame is not Free/Zeroed on a
   node list right now (in use or in a per-CPU cache: retry later; or its
   chunk was never committed). */
int ntmm__page_mark_bad(ntmm_engine_t *e, ntmm__pfn_t pfn);

/* State-machine check for one state-word change (NTMM-REFERENCE.md §1 plus
   the count invariants above). */
bool ntmm__pfn_legal(uint64_t from, uint64_t to);
/* Checked transition that never aborts: if *expected → desired is legal,
   CAS the state word (the generation is bumped when the location changes).
   0 on success (*expected then holds the word written, so transitions
   chain); NTMM_EBUSY if the word was not *expected (*expected is
   reloaded); NTMM_EINVAL if the transition is illegal (nothing changes).
   Used by tests and tools; the engine's own paths assert instead. It does
   not move the frame between lists: only for frames the caller owns. */
int ntmm__pfn_transition(ntmm_engine_t *e, ntmm__pfn_t pfn, uint64_t *expected, uint64_t desired);

#endif
