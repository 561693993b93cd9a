/*
 * The virtual layer: processes (address space + working set), VADs, page
 * tables, the fault handler, working sets, commit charge and the access
 * API. This header holds the structs and the entry points shared by the
 * files of engine/virt/; the public API is in include/ntmm.h.
 *
 * Locks of a process, in acquisition order (never the reverse):
 *   trim_lock (mutex) → as_lock (pushlock) → ws_lock (cache-aware pushlock)
 * Who takes what:
 *   - translate of a valid PTE: nothing (RCU read side only; a hit in the
 *     per-thread software TLB, tlb.h, does not even walk the tables).
 *   - a fault: ws_lock SHARED (its CPU's slot only); PTEs change by CAS, so
 *     faults on several threads of one process run together. A guard-page
 *     fault drops ws_lock before it takes as_lock to clear the guard.
 *   - allocate/free/protect: as_lock EXCLUSIVE to publish a new VAD map,
 *     then ws_lock EXCLUSIVE to fix PTEs of the range.
 *   - trim/decommit/release/destroy: also trim_lock, held across the RCU
 *     grace period that ends the episode (see the TLB rule below). Long
 *     episodes drop and retake ws_lock every few thousand pages so faults
 *     elsewhere in the process are not held up; the batch stays open.
 * The TLB rule (DESIGN.md §2): a frame whose PTE was invalidated is handed
 * to the physical layer (release_batch / page_free) only after a grace
 * period, and nobody waits for a grace period while holding as_lock or
 * ws_lock — faulting threads are inside read-side sections and may be
 * blocked on those locks. trim_lock is never taken by a faulting thread, so
 * holding it across synchronize_rcu is safe, and it makes invalidate→grace
 * period→release episodes of one process strictly sequential (a frame that
 * was soft-faulted back and invalidated again is only ever in one pending
 * batch).
 */
#ifndef NTMM_VIRT_VIRT_H
#define NTMM_VIRT_VIRT_H

#include <ntmm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "phys/page.h"
#include "sync/cache_pushlock.h"
#include "sync/event.h"
#include "sync/pushlock.h"
#include "sync/rcu.h"
#include "virt/paging.h"
#include "virt/pte.h"
#include "virt/wsmgr.h"

typedef struct ntmm__virt_process ntmm__virt_process_t;

/* ------------------------------------------------------------------ VADs */

/* A run of pages of one VAD with the same commit state and protection.
   Runs are sorted, contiguous and maximal (two neighbours always differ).
   One word: a page index of the user address space needs 35 bits
   (NTMM__VA_END / 4 KiB), so `first` has room to spare and a VAD of
   a few runs stays a few cache lines however large its range. */
typedef struct ntmm__vad_run {
	uint64_t first : 47;    /* page index in the VAD where the run starts */
	uint64_t committed : 1; /* 1 = committed */
	uint64_t prot : 16;     /* NTMM_PAGE_* (| GUARD) when committed, else 0 */
} ntmm__vad_run_t;
_Static_assert(sizeof(ntmm__vad_run_t) == 8, "a VAD run is one word");
_Static_assert((NTMM__VA_END >> NTMM__PAGE_SHIFT) < (1ull << 47),
               "a run's first page index fits its bits");

/* A reservation (NtAllocateVirtualMemory MEM_RESERVE). Immutable once
   published in a VAD map: a change builds a new VAD (copy-on-update). */
typedef struct ntmm__vad {
	uint64_t start;      /* 64 KiB aligned */
	uint64_t end;        /* exclusive, page aligned; the rest of the last
				granule stays unusable */
	unsigned alloc_prot; /* protection given at reservation */
	/* NULL: private memory; else the mapped view this VAD is (section/
	   section.h): its pages are described by the section's prototype PTEs */
	struct ntmm__view *view;
	uint64_t npages;     /* (end - start) / 4 KiB: up to the whole user space */
	uint64_t ncommitted; /* committed pages (sum over runs) */
	uint32_t nruns;
	ntmm__vad_run_t runs[]; /* nruns, runs[0].first == 0 */
} ntmm__vad_t;

/*
 * The address space's VAD map: VADs sorted by start, non-overlapping.
 * Why a sorted array replaced copy-on-update rather than a tree: the fault
 * path looks up VADs with no lock (RCU), reservations change rarely compared
 * with faults, and a binary search over a dense array touches few cache
 * lines. Writers (as_lock exclusive) build a new map, publish it with
 * rcu_assign_pointer, and retire the old map together with the VADs it holds
 * that the new map no longer does (freed by call_rcu).
 */
typedef struct ntmm__vad_map {
	struct rcu_head rcu;
	ntmm__vad_t *retired; /* a VAD to free with this map (set when replaced) */
	size_t n;
	ntmm__vad_t *vads[]; /* n, sorted by start */
} ntmm__vad_map_t;

/* ---------------------------------------------------------- working sets */

#define NTMM__WSL_CHUNK    4096u
#define NTMM__WSL_CAPACITY (1u << NTMM__PTE_WSI_BITS) /* 1 Mi pages = 4 GiB */
#define NTMM__WSL_NCHUNKS  (NTMM__WSL_CAPACITY / NTMM__WSL_CHUNK)
/* entry: page-aligned VA | age (bits 0..2); 0 = hole */
#define NTMM__WSLE_AGE_MASK 7ull

/*
 * Working-set list: a dense array of entries [0, next); slot i is named by
 * the wsi field of the valid PTE it describes. Faults (ws_lock shared) take
 * slots from a per-CPU batch (ntmm__proc_cpu_t.wsl_cache), refilled by CAS
 * on `next` 64 slots at a time, so concurrent faults do not share a line; a
 * fault that loses its PTE race leaves a hole (entry 0), and so does an
 * unused batch when an exclusive holder empties the per-CPU batches.
 * Removal and compaction (moving the last entry into a hole and rewriting
 * that PTE's wsi by CAS) run under ws_lock exclusive.
 *   ws_pages = Σ cpu[c].ws_delta == non-hole entries in [0, next) (audited)
 *   ws_peak ≥ every value ws_pages had: sampled by each exclusive holder
 *   before it removes entries (ws_pages only falls under ws_lock exclusive)
 */
typedef struct ntmm__wsl {
	_Atomic(_Atomic uint64_t *) chunk[NTMM__WSL_NCHUNKS]; /* allocated on demand, CAS */
	_Atomic uint32_t next;       /* slots handed out; CAS under shared */
	_Atomic uint64_t ws_peak;    /* peak of ws_pages */
	size_t min_pages, max_pages; /* limits; as_lock (set exclusive, read shared) */
	uint32_t hand;               /* trim clock hand; ws_lock exclusive */
} ntmm__wsl_t;

/* ------------------------------------------------------------- processes */

#define NTMM__WSL_BATCH 64u

/* Per-CPU part of a process (its own cache line): what faults on that CPU
   write. A slot may be shared by threads after a migration: all atomic.
   There are ncpu + 1 slots: the counters are added with ntmm__percpu_add
   (sync/percpu.h), whose shared slot is the last one; other writers
   (ntmm__wsl_remove) use that shared slot too. */
typedef struct ntmm__proc_cpu {
	_Atomic uint64_t wsl_cache;   /* WSL batch: next slot (low 32) | end (high 32) */
	_Atomic uint64_t ws_delta;    /* this slot's share of ws_pages (mod 2^64) */
	_Atomic uint64_t page_faults; /* this slot's share of the fault count */
	_Atomic uint64_t hard_faults; /* ... and of the hard faults */
} NTMM__ALIGNED_CL ntmm__proc_cpu_t;

#define NTMM__PROCESS_MAGIC 0x6e746d6d50726f63ull /* "ntmmProc" */

/*
 * A process: address space, page tables, working set, commit charge.
 *   magic        — NTMM__PROCESS_MAGIC while alive (handle check)
 *   vads         — RCU-published VAD map; written under as_lock exclusive
 *   root         — PFN of the top-level table; fixed for the process's life
 *   ws_lock      — cache-aware pushlock: a fault takes only its CPU's slot
 *                  shared, so faults on several cores write no common line;
 *                  exclusive holders (trim, teardown) take every slot
 *   wsl          — see above (ws_lock)
 *   cpu[ncpu+1]  — per-CPU counters and WSL batches (see ntmm__proc_cpu_t)
 *   commit_pages — pages charged; changed under as_lock exclusive, read freely
 *   table_commit — page-table pages charged (commit.c: 1 for the root, plus
 *                  what ntmm__commit_table_delta gives for the VAD map);
 *                  same rules as commit_pages
 *   users        — references taken under e->virt.lock by engine-wide
 *                  passes (the working set manager: ntmm__wsm_for_each and
 *                  ntmm__wsm_run, wsmgr.c), or under e->virt.inswap.lock by
 *                  the swapper claiming an in-swap, that then work on the
 *                  process without that lock; destroy unlinks the process
 *                  and waits (on e->virt.users_done) until users is 0. The
 *                  pass's decrement is its last touch of the process: the
 *                  destroyer may free it at once, so the wake-up goes
 *                  through the engine's event, not one inside the process
 *   wsm          — working set manager / swapper state (virt/wsmgr.h)
 *   link         — in e->virt.processes, under e->virt.lock
 */
struct ntmm_process {
	uint64_t magic;
	ntmm_engine_t *e;
	uint32_t id;
	uint64_t bias_bottom_up, bias_top_down; /* ASLR placement starts (fixed at create) */

	pthread_mutex_t trim_lock;
	ntmm__pushlock_t as_lock;
	ntmm__cache_pushlock_t ws_lock;
	ntmm__proc_cpu_t *cpu;
	unsigned ncpu;

	_Atomic(ntmm__vad_map_t *) vads; /* acquire loads on the fault path; release stores */
	ntmm__pfn_t root;
	_Atomic uint64_t *root_host;

	ntmm__wsl_t wsl;
	_Atomic uint64_t commit_pages;
	_Atomic uint64_t table_commit;
	_Atomic uint32_t users;
	ntmm__wsm_proc_t wsm;
	/* clone segments whose prototypes this process's PTEs reference
	   (section/clone.c); changed under as_lock exclusive */
	struct ntmm__segment **clones;
	size_t nclones;

	struct cds_list_head link;
};

/* A pin (an MDL): frames referenced so they stay resident. */
struct ntmm_pin {
	ntmm_engine_t *e;
	size_t npages;
	ntmm__pfn_t pfns[];
};
/* Debug builds: pins of e still held are reported if unpinned later. */
void ntmm__pins_engine_gone(const ntmm_engine_t *e);

/* ------------------------------------------------------------- the layer */

/*
 * Engine-wide state of the virtual layer.
 *   lock         — guards processes, nprocesses, next_id
 *   commit_pages — system commit charge: Σ over processes of commit_pages
 *                  + table_commit, + shared_commit (paging-file-backed
 *                  sections); CAS so it never passes the limit
 *   commit_frames — the pool's frames minus the resident reserve (fixed at
 *                  init; commit.c says what the reserve holds)
 *   commit limit = commit_frames + the paging-file slots obtained, which
 *                  the io layer owns (io->size_pages_total; commit.c)
 *   reclaim      — serializes the inline reclaim of faults that found no
 *                  frame (wsmgr.c: ntmm__wsm_reclaim); taken with no other
 *                  lock held
 *   paging       — demand-paging glue (paging.h)
 *   users_done   — signalled when a process's users count drops to 0;
 *                  destroyers wait on it and re-check their own process
 *   inswap       — the swapper's in-swap queue (wsmgr.h; zeroed with the
 *                  engine)
 */
typedef struct ntmm__virt {
	pthread_mutex_t lock;
	struct cds_list_head processes;
	size_t nprocesses;
	uint32_t next_id;
	_Atomic uint64_t commit_pages;
	_Atomic uint64_t shared_commit; /* sections' part of commit_pages */
	uint64_t commit_frames;
	pthread_mutex_t reclaim;
	ntmm__paging_t paging;
	ntmm__event_t users_done;
	ntmm__wsm_inswap_t inswap;
} ntmm__virt_t;

int ntmm__virt_init(ntmm_engine_t *e);
void ntmm__virt_fini(ntmm_engine_t *e);
int ntmm__virt_audit(ntmm_engine_t *e);
void ntmm__virt_fill_gauges(ntmm_engine_t *e, ntmm_stats_t *out);
/* the repurpose callback registered with the physical layer */
void ntmm__virt_repurpose(ntmm_engine_t *e, ntmm__pfn_t pfn, uint64_t pte_addr,
                          uint64_t original_pte);

/* process.c */
int ntmm__process_check(const ntmm_process_t *p); /* 0 or NTMM_EINVAL */

/* vad.c — map and run operations (pure: they build new objects) */
/* index of the VAD containing va, or -1 */
long ntmm__vad_find(const ntmm__vad_map_t *m, uint64_t va);
/* index of the first VAD with end > va (m->n if none) */
size_t ntmm__vad_lower_bound(const ntmm__vad_map_t *m, uint64_t va);
/* the run holding page index pg of v */
const ntmm__vad_run_t *ntmm__vad_run_of(const ntmm__vad_t *v, uint64_t pg);
ntmm__vad_t *ntmm__vad_new(uint64_t start, uint64_t end, unsigned alloc_prot, bool commit,
                           unsigned prot);
enum ntmm__vad_op {
	NTMM__VAD_COMMIT,     /* every page → committed with prot (committed pages
				 take the new protection, as NtAllocateVirtualMemory
				 applies it) */
	NTMM__VAD_DECOMMIT,   /* → reserved */
	NTMM__VAD_PROTECT,    /* committed pages → prot */
	NTMM__VAD_CLEAR_GUARD /* committed pages lose GUARD */
};
/* A copy of v with op applied to pages [first, first + count). */
ntmm__vad_t *ntmm__vad_apply(const ntmm__vad_t *v, uint64_t first, uint64_t count,
                             enum ntmm__vad_op op, unsigned prot);
/* pages of [first, first+count) that are committed */
uint64_t ntmm__vad_count_committed(const ntmm__vad_t *v, uint64_t first, uint64_t count);
/* true if every page of [first, first+count) is committed */
bool ntmm__vad_all_committed(const ntmm__vad_t *v, uint64_t first, uint64_t count);
/* committed pages of [first, first+count) whose protection is not prot */
uint64_t ntmm__vad_count_reprotected(const ntmm__vad_t *v, uint64_t first, uint64_t count,
                                     unsigned prot);
/* New maps: insert v / replace index i by v (v NULL = remove). */
ntmm__vad_map_t *ntmm__vad_map_insert(const ntmm__vad_map_t *m, ntmm__vad_t *v);
ntmm__vad_map_t *ntmm__vad_map_replace(const ntmm__vad_map_t *m, size_t i, ntmm__vad_t *v);
/* Publishes `next` in place of p->vads (as_lock exclusive held); `gone` is
   the VAD of the old map that next no longer holds (or NULL); the old map
   and `gone` are freed after a grace period. */
void ntmm__vad_publish(ntmm_process_t *p, ntmm__vad_map_t *next, ntmm__vad_t *gone);
void ntmm__vad_map_free_now(ntmm__vad_map_t *m); /* map and all its VADs */
/* Engine-chosen placement: a 64 KiB-aligned base for `bytes` (page
   rounded) that overlaps no VAD, or 0. */
uint64_t ntmm__vad_place(const ntmm_process_t *p, const ntmm__vad_map_t *m, uint64_t bytes,
                         bool top_down);

/* commit.c: the commit charge against the commit limit (the definition is
   at the top of commit.c). init: commit_frames, the charge at 0, and the
   commit floor registered with io; fini: the floor cleared. */
void ntmm__commit_init(ntmm_engine_t *e);
void ntmm__commit_fini(ntmm_engine_t *e);
/* Frames of the pool the limit leaves out (the resident reserve). */
uint64_t ntmm__commit_reserve(const ntmm_engine_t *e);
/* Charges `pages` committed pages and `tables` page-table pages to p and
   the system (as_lock exclusive held, or p not yet published: asserted in
   debug builds); grows the paging files toward their maximum when the
   charge would not fit. NTMM_ECOMMIT (nothing charged) when it still does
   not. uncharge gives them back (the same lock rule). */
int ntmm__commit_charge(ntmm_process_t *p, uint64_t pages, uint64_t tables);
void ntmm__commit_uncharge(ntmm_process_t *p, uint64_t pages, uint64_t tables);
/* The charge of paging-file-backed sections (NTMM_SEC_COMMIT at create,
   SEC_RESERVE pages as they are committed in a view): system-wide, in
   e->virt.shared_commit, no process's. NTMM_ECOMMIT as commit_charge. */
int ntmm__commit_charge_shared(ntmm_engine_t *e, uint64_t pages);
void ntmm__commit_uncharge_shared(ntmm_engine_t *e, uint64_t pages);
/* The commit limit now, in pages. */
uint64_t ntmm__commit_limit(ntmm_engine_t *e);
/* The paging-file pages the commit charge needs now (charge beyond
   commit_frames): the floor shrink and remove keep (io.h: commit_floor). */
uint64_t ntmm__commit_pagefile_need(ntmm_engine_t *e);
/* Page-table pages (below the root) that change from one VAD to another:
   old and new_ are the same reservation before and after a change of the
   pages [start, end) (old NULL: a new reservation; new_ NULL: released),
   m the map that holds old (and the other reservations, which may share
   a table with it). Positive: pages to charge; negative: to give back. */
int64_t ntmm__commit_table_delta(const ntmm__vad_map_t *m, const ntmm__vad_t *old,
                                 const ntmm__vad_t *new_, uint64_t start, uint64_t end);
/* Page-table pages below the root that the committed pages of m need (the
   audit's check of table_commit). */
uint64_t ntmm__commit_tables_of(const ntmm__vad_map_t *m);

/* pagetable.c */
/* Pointer to the leaf PTE of va, or NULL if a table on the way is missing.
   Lock-free: call inside a read-side section. */
_Atomic uint64_t *ntmm__pt_lookup(ntmm_process_t *p, uint64_t va);
/* As lookup, creating missing tables (ws_lock shared or exclusive held).
   NTMM_ENOMEM if no frame for a table. */
int ntmm__pt_ensure(ntmm_process_t *p, uint64_t va, _Atomic uint64_t **out);
/* Used-entry count of the table page holding pte (a leaf PTE). */
void ntmm__pt_note_fill(ntmm_process_t *p, _Atomic uint64_t *pte);

/* A batch of frames awaiting the end of a grace period. */
typedef struct ntmm__shootdown {
	ntmm__pfn_t *release; /* TRANSITION frames → release_batch */
	size_t nrelease, caprelease;
	ntmm__pfn_t *tables; /* emptied page-table pages → page_free */
	size_t ntables, captables;
} ntmm__shootdown_t;
void ntmm__shootdown_add_release(ntmm__shootdown_t *s, ntmm__pfn_t pfn);
void ntmm__shootdown_add_table(ntmm__shootdown_t *s, ntmm__pfn_t pfn);
/* One grace period, then hand every frame of the batch back. The caller
   holds trim_lock and no as_lock/ws_lock, and is outside any read section. */
void ntmm__shootdown_finish(ntmm_engine_t *e, ntmm__shootdown_t *s);

/* Tears down the leaf PTEs of [start, end) (ws_lock exclusive): valid →
   unmapped as deleted (batch), transition → deleted, others → 0; tables
   left empty are unlinked and queued. Returns the pages that were resident. */
void ntmm__pt_teardown(ntmm_process_t *p, uint64_t start, uint64_t end, ntmm__shootdown_t *s);
/* The same for a range no fault can map any more (its VAD is gone from the
   published map; trim_lock and as_lock held): one leaf table (2 MiB) per
   exclusive hold of ws_lock, skipping absent tables, so faults elsewhere
   in the process wait briefly each time. */
void ntmm__pt_teardown_range(ntmm_process_t *p, uint64_t start, uint64_t end, ntmm__shootdown_t *s);
/* Sets the R/W bits of the valid PTEs of [start, end) for prot (ws_lock
   exclusive). Returns true if any permission was removed. */
bool ntmm__pt_reprotect(ntmm_process_t *p, uint64_t start, uint64_t end, unsigned prot);
/* Calls fn on every non-zero leaf PTE of [start, end) (quiescent or ws_lock
   held). */
typedef void (*ntmm__pte_visit_fn)(ntmm_process_t *p, uint64_t va, _Atomic uint64_t *pte,
                                   void *arg);
void ntmm__pt_walk(ntmm_process_t *p, uint64_t start, uint64_t end, ntmm__pte_visit_fn fn,
                   void *arg);
/* The first va in [va, end) whose leaf table exists, or end (holder of
   trim_lock: no table can vanish meanwhile). */
#define NTMM__PT_LEAF_SPAN (1ull << (NTMM__PAGE_SHIFT + 9))
uint64_t ntmm__pt_next_present(ntmm_process_t *p, uint64_t va, uint64_t end);
/* Frees the whole tree (destroy; after teardown of all user space). */
void ntmm__pt_free_all(ntmm_process_t *p, ntmm__shootdown_t *s);
/* audit: checks the tables; returns the number of problems, the valid leaf
   PTEs and the table pages (the root included) */
int ntmm__pt_audit(ntmm_process_t *p, uint64_t *valid_out, uint64_t *tables_out);

/* wsl.c */
/* ws_lock in shared mode (faults, pins): returns the slot handle. */
static inline unsigned ntmm__ws_lock_shared(ntmm_process_t *p)
{
	return ntmm__cache_pushlock_acquire_shared(&p->ws_lock);
}
static inline void ntmm__ws_unlock_shared(ntmm_process_t *p, unsigned slot)
{
	ntmm__cache_pushlock_release_shared(&p->ws_lock, slot);
}
/* ws_lock exclusive; also empties the per-CPU WSL batches and samples the
   peak, so the holder may remove and move entries. */
void ntmm__ws_lock_exclusive(ntmm_process_t *p);
void ntmm__ws_unlock_exclusive(ntmm_process_t *p);
/* Debug builds: the calling thread holds p's ws_lock exclusive. (Shared
   holds cannot be checked: sync/cache_pushlock.h.) */
#define ntmm__assert_ws_exclusive(p) ntmm__assert_cache_pushlock_exclusive(&(p)->ws_lock)
uint64_t ntmm__ws_pages(ntmm_process_t *p); /* Σ of the per-CPU deltas */
int ntmm__wsl_init(ntmm__wsl_t *w, size_t min_pages, size_t max_pages);
void ntmm__wsl_fini(ntmm__wsl_t *w);
/* A slot for a new entry (ws_lock shared), from the batch of the CPU the
   caller runs on; NTMM_ENOMEM when full. */
int ntmm__wsl_reserve(ntmm_process_t *p, uint32_t *slot);
void ntmm__wsl_fill(ntmm_process_t *p, uint32_t slot, uint64_t va); /* won */
void ntmm__wsl_hole(ntmm_process_t *p, uint32_t slot);              /* lost the PTE */
/* Removes the entry of a PTE being torn down (ws_lock exclusive). */
void ntmm__wsl_remove(ntmm_process_t *p, uint32_t slot);
/* Compacts holes away (ws_lock exclusive). */
void ntmm__wsl_compact(ntmm_process_t *p);
/* The trim primitive: takes trim_lock, ws_lock exclusive; invalidates up to
   `max_trim` unpinned resident pages aged ≥ min_age (valid → transition),
   then one grace period and release_batch. Returns pages trimmed. Must be
   called outside any read-side section. */
size_t ntmm__ws_trim(ntmm_process_t *p, size_t max_trim, unsigned min_age);
/* The same, with p->trim_lock held by the caller, adding the frames to the
   caller's batch s: the caller ends the episode (ntmm__shootdown_finish,
   then trim_lock released), so several trims share one grace period. */
size_t ntmm__ws_trim_into(ntmm_process_t *p, size_t max_trim, unsigned min_age,
                          ntmm__shootdown_t *s);
/* Ages the working set: accessed → age 0 (bit cleared), else age++ (≤ 7).
   Returns the entries found accessed; hist (may be NULL) gets the number
   of entries of each age 0..7 after aging. Called through wsmgr.c's
   ntmm__wsm_age, which also notes the activity for the swapper. */
size_t ntmm__ws_age_hist(ntmm_process_t *p, size_t hist[8]);
/* The age histogram as it is, without aging (the inline reclaim's view:
   it must not disturb the working set manager's aging cadence). */
void ntmm__ws_age_peek(ntmm_process_t *p, size_t hist[8]);
int ntmm__wsl_audit(ntmm_process_t *p);
static inline _Atomic uint64_t *ntmm__wsl_entry(ntmm__wsl_t *w, uint32_t slot)
{
	_Atomic uint64_t *c =
	    atomic_load_explicit(&w->chunk[slot / NTMM__WSL_CHUNK], memory_order_acquire);
	return &c[slot % NTMM__WSL_CHUNK];
}

/* fault.c */
/* Resolves a fault at va for access (READ/WRITE). Called inside a
   read-side section (which dispatch relies on for the VAD map), holding
   no lock. 0: the PTE is valid with the access; else an NTMM_E* code. */
int ntmm__fault(ntmm_process_t *p, uint64_t va, unsigned access);

#endif
