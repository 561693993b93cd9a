/*
 * Demand paging glue of the virtual layer: who owns a paging-file slot,
 * the waits of collided faults on pages in I/O, the wake-ups between
 * faults, the allocator and the modified page writer, and the writer's
 * batch. Implemented in paging.c; the hard fault itself is in fault.c, the
 * commit limit in commit.c, the writer thread's loop in
 * threads/modified_writer.c, the inline reclaim in wsmgr.c.
 *
 * Ownership of a paging-file slot (exactly one owner, so no slot leaks):
 *   - a pagefile PTE (not resident) owns the slot it names; whoever
 *     overwrites such a PTE frees the slot (teardown, a failed repurpose);
 *   - a frame's OriginalPte owns the slot it names while the frame is in
 *     memory (clean page read back or written: kept while clean, so a
 *     re-trim needs no write). The slot goes back to the PTE when the frame
 *     is repurposed (the allocator restores OriginalPte), and is freed when
 *     the frame is freed (the phys layer's original_gone callback), when a
 *     hard fault for a write dirties the page at once, when a hard fault
 *     for a read finds the free slots short (ntmm__paging_slots_short: the
 *     slot goes back and the frame is marked modified, its only copy), or
 *     when the modified
 *     page writer takes a re-dirtied frame to write it again (the old copy
 *     is stale: the writer frees it and allocates a fresh run, so clusters
 *     stay contiguous).
 *   - while the modified page writer runs a batch, the slots it has just
 *     allocated (not yet in any OriginalPte) and the stale copies it is
 *     about to free (no longer in one) are held by the batch itself; the
 *     batch holds writer_lock, so the slot audit (pfaudit.c) never sees one
 *     half done.
 * The slot audit (ntmm__pfaudit, run by ntmm_audit) checks this: every
 * slot in use has exactly one owner and no owner names a free slot.
 *
 * In-page waits: a fault that finds its page READ_IN_PROGRESS (a hard fault
 * of another thread) or WRITE_IN_PROGRESS on a write (the writer) leaves
 * the working-set lock and sleeps on one of NTMM__INPAGE_BUCKETS event
 * counts chosen by PFN; the I/O completion signals that bucket. Waiters
 * re-check after prepare (no lost wake-up) and use a timeout only as a
 * safety net. Nothing spins.
 */
#ifndef NTMM_VIRT_PAGING_H
#define NTMM_VIRT_PAGING_H

#include <ntmm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "phys/page.h"
#include "sync/event.h"

#define NTMM__INPAGE_BUCKETS 64u
/* hard-fault read cluster: the faulting page and up to CLUSTER-1 following
   pages of the same VAD that sit in the following slots of the same file */
#define NTMM__HARD_CLUSTER 16u

/*
 * Per engine, inside ntmm__virt_t.
 *   inpage[]   collided-fault waits (see above); signal after the state
 *              word no longer shows the I/O (release in the signal)
 *   avail      signalled after a write batch that wrote pages and after a
 *              shootdown released trimmed frames (pagetable.c), for faults
 *              that found no frame and wait for one (bounded)
 *   writer     the modified page writer's wake event, or NULL (no system
 *              threads); set by systhreads start/stop (release/acquire)
 *   writer_lock held across each modified-writer batch (whoever runs it)
 *              and by the slot audit; nothing else takes it. Lock order:
 *              the systhreads' quiet mutex → writer_lock → e->virt.lock,
 *              process locks, phys locks, io->lock. A batch holding it
 *              never waits for a grace period or for `quiet`, so taking
 *              it is safe even inside a read-side section.
 */
typedef struct ntmm__paging {
	ntmm__event_t inpage[NTMM__INPAGE_BUCKETS];
	ntmm__event_t avail;
	_Atomic(ntmm__event_t *) writer;
	pthread_mutex_t writer_lock;
} ntmm__paging_t;

void ntmm__paging_init(ntmm_engine_t *e);
void ntmm__paging_fini(ntmm_engine_t *e);

/* Take and drop writer_lock: around each write batch
   (ntmm__paging_write_batch) and the slot audit (pfaudit.c). */
void ntmm__paging_writer_batch_begin(ntmm_engine_t *e);
void ntmm__paging_writer_batch_end(ntmm_engine_t *e);

/* pfaudit.c: the paging-file slot audit. What it found: */
typedef struct ntmm__pfaudit {
	uint64_t pte_refs;   /* pagefile PTEs in process page tables */
	uint64_t frame_refs; /* OriginalPtes of in-memory frames naming a slot */
	uint64_t shared;     /* references past the first to one slot (double owners) */
	uint64_t free_refs;  /* slots named by some owner but not in use */
	uint64_t bad_refs;   /* slots named in no paging file, or past its end */
	uint64_t stray;      /* frames not in memory (Free, Zeroed, Bad, offline)
	                        whose OriginalPte still names a slot */
	uint64_t leaks;      /* slots in use that nothing names */
	int bitmap;          /* ntmm__pagefile_audit: bitmap vs. counters */
} ntmm__pfaudit_t;
/* Walks every process's page tables and the PFN database for the owners
   of paging-file slots (the ownership rules above) and compares them with
   the slots each paging file has in use; every problem goes to stderr.
   `out` (may be NULL) gets the counts. Returns 0, NTMM_EINVAL if any count
   but the reference totals is non-zero, or NTMM_ENOMEM. Holds writer_lock
   throughout. Exact only on a quiet engine (ntmm_audit's contract): a fault,
   free, repurpose or process teardown in progress moves a slot between
   owners in several steps. Not inside an RCU read-side section (it takes
   io->lock, as ntmm__pagefile_audit does). */
int ntmm__pfaudit(ntmm_engine_t *e, ntmm__pfaudit_t *out);

/* True for a pagefile PTE that names a slot (not demand-zero, not 0). */
bool ntmm__pte_is_pagefile(uint64_t pte);
/* Frees the slot a pagefile PTE (or OriginalPte) names; no-op for any
   other value. Lock-free; callable from any context (phys list locks
   held included). */
void ntmm__pagefile_pte_release(ntmm_engine_t *e, uint64_t pte);

/* Collided faults: wait until pfn is no longer in I/O for pte_addr (or a
   safety timeout passes). */
void ntmm__inpage_wait(ntmm_engine_t *e, ntmm__pfn_t pfn, uint64_t pte_addr, bool write);
/* Wakes the waiters of n frames, one signal per bucket. sc_done: every frame's
   completion was a seq_cst change of its state word (ntmm__page_read_done
   makes one), so a bucket with no waiter counted is skipped. */
void ntmm__inpage_wake_many(ntmm_engine_t *e, const ntmm__pfn_t *pfns, size_t n, bool sc_done);

/* Modified pages one write batch takes (the modified page writer's batch,
   and the inline reclaim's). */
#define NTMM__WRITE_BATCH 256u

/* One batch of the modified page writer's work, on the calling thread (the
   writer thread, a fault reclaiming inline, tests, benchmarks; any
   RCU-registered thread holding no process lock): takes up to max
   (≤ NTMM__WRITE_BATCH) Modified pages, frees the stale paging-file copies
   of re-dirtied ones, allocates contiguous runs, writes them in one batch
   of vectored requests and finishes each page (Standby tail with
   OriginalPte = its pagefile PTE, or Modified again if its write failed or
   found no space). `grow`: when every file is full the batch grows one
   itself (the caller may block in fallocate); else it only uses free
   space, and *unplaced (may be NULL) gets the pages that found none, for
   the caller to ask for growth. Holds writer_lock throughout. Returns the
   pages written; *err (may be NULL) gets 0, NTMM_ECOMMIT (no space for
   some pages: they stay Modified) or NTMM_EIO (a write failed: those pages
   stay Modified). Signals `avail` when it wrote any. */
size_t ntmm__paging_write_batch(ntmm_engine_t *e, size_t max, bool grow, int *err,
                                size_t *unplaced);

/* Whether the paging files' free space is short: free slots plus what the
   files may still grow by below a mark (1/32 of their maximum, at most a
   write batch). Then a page read back for a read gives its slot back at
   once and is dirty (fault.c), so clean copies in memory do not hold the
   slots the writer needs for the dirty pages that fill the frames. */
bool ntmm__paging_slots_short(ntmm_engine_t *e);

/* Wakes the modified page writer (no-op without system threads). */
void ntmm__paging_wake_writer(ntmm_engine_t *e);
/* A fault that found no frame: wakes the writer and sleeps until frames
   come back (the writer wrote a batch, a trim released its batch after
   the grace period) or timeout_ns passes. true if woken, false on timeout. */
bool ntmm__paging_wait_avail(ntmm_engine_t *e, int64_t timeout_ns);

/* commit.c: the commit limit at maximum (every paging file grown to its
   maximum), in pages; the limit now is ntmm__commit_limit (virt.h). */
uint64_t ntmm__commit_limit_max(ntmm_engine_t *e);

/* The calling thread's last fault kind (ntmm_last_fault_kind). */
extern __thread unsigned ntmm__fault_kind;
/* Set by a thread whose faults are prefetches (the swapper's in-swap): a
   fault that finds no frame fails at once with NTMM_ENOMEM instead of
   waiting for the writer and the trimmer — a prefetcher has no reason to
   wait, and the swapper waits holding the system threads' `quiet`. */
extern __thread bool ntmm__fault_nowait;

#endif
