/*
 * The working set manager (wsmgr.c) and the process swap state: what the
 * balance set manager and the swapper (engine/threads/) call into the
 * virtual layer for. See wsmgr.c for the policy, and for the in-swap: an
 * out-swap records the working set's pages, the process's next fault
 * queues it (ntmm__wsm_swap_in, cheap), and the swapper thread brings the
 * recorded pages back (claim / step / end below).
 */
#ifndef NTMM_VIRT_WSMGR_H
#define NTMM_VIRT_WSMGR_H

#include <ntmm.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sync/event.h"
#include "sync/pushlock.h"

struct ntmm__shootdown;

/* Most pages one out-swap records for the in-swap (see ntmm__wsm_rec_t). */
#define NTMM__WSM_INSWAP_MAX 65536u

/*
 * What an out-swap recorded: the page addresses of the working set just
 * before the trim, sorted ascending (so the in-swap's hard faults meet
 * their neighbours in paging-file order and the fault path's read
 * clustering brings them in together). At most min(ws maximum,
 * NTMM__WSM_INSWAP_MAX) pages, the youngest (lowest age) first when the
 * set was larger: anything above the maximum the working set manager
 * would trim again at its next pass, and the fixed cap bounds the host
 * memory (512 KiB) and the swapper's work for one process.
 * Owned by whoever holds the pointer: it moves only by atomic exchange
 * (out-swap publishes it in ntmm__wsm_proc_t.rec, the in-swapper or a
 * dropped in-swap takes it out, process teardown frees what is left), so
 * there is never a second owner.
 */
typedef struct ntmm__wsm_rec {
	size_t n;      /* pages recorded */
	uint64_t va[]; /* n page addresses, ascending */
} ntmm__wsm_rec_t;

/*
 * Per-process state of the working set manager and the swapper, embedded
 * in struct ntmm_process (zeroed by its calloc, then ntmm__wsm_process_init).
 *   page_priority — standby priority 0..7 its trimmed pages get (relaxed:
 *                   set by ntmm_process_set_page_priority, read by trim)
 *   swapped_out   — 1 from out-swap until the next fault of the process
 *                   claims it by exchange (exactly one in-swap per out-swap)
 *   swap_outs/ins — counts (relaxed)
 *   active_ns     — ntmm__now_ns (sync/clock.h) when activity was last seen: a fault count
 *                   change or an Accessed bit found by aging (relaxed; the
 *                   balance set and swapper threads store it)
 *   seen_faults   — the fault count the swapper saw last; swapper only
 *   rec           — the out-swap's record (ntmm__wsm_rec_t) or NULL; moved
 *                   only by exchange (acq_rel: the exchanger that takes it
 *                   sees what the publisher wrote into it)
 *   swap_in_pages — pages the in-swaps brought back (relaxed)
 *   dying         — set once destroy has begun: no in-swap is queued any
 *                   more and a running one stops (e->virt.inswap.lock;
 *                   read relaxed outside it as a hint to stop early)
 *   queued, qprev, qnext — membership of e->virt.inswap's queue
 *                   (e->virt.inswap.lock)
 */
typedef struct ntmm__wsm_proc {
	_Atomic unsigned page_priority;
	_Atomic int swapped_out;
	_Atomic uint64_t swap_outs, swap_ins;
	_Atomic uint64_t active_ns;
	uint64_t seen_faults;
	_Atomic(ntmm__wsm_rec_t *) rec;
	_Atomic uint64_t swap_in_pages;
	_Atomic int dying;
	bool queued;
	ntmm_process_t *qprev, *qnext;
} ntmm__wsm_proc_t;

/*
 * The engine's in-swap queue (e->virt.inswap): processes whose next fault
 * after an out-swap asked for their working set back, oldest first, for
 * the swapper thread. Zeroed with the engine (calloc): empty, detached,
 * unlocked.
 *   lock       — a pushlock (short holds only: list links and `wake`)
 *   head, tail — the queue, linked through ntmm__wsm_proc_t.qprev/qnext
 *   wake       — the swapper thread's wake event while it runs
 *                (ntmm__wsm_inswap_attach/detach), else NULL: then nothing
 *                is queued and pages come back fault by fault. Stored
 *                under the lock; read relaxed outside it only as a hint
 *                (whether an out-swap should record)
 * A queued process holds no reference: destroy takes it off the queue
 * (ntmm__wsm_process_destroying) before it waits for `users`, so a queued
 * in-swap never delays a destroy. The swapper takes a `users` reference
 * (virt.h) when it claims a process, under the lock, so a destroy either
 * dequeued it first or waits for the claimed in-swap, which stops at its
 * next page once it sees `dying`.
 */
typedef struct ntmm__wsm_inswap {
	ntmm__pushlock_t lock;
	ntmm_process_t *head, *tail;
	_Atomic(ntmm__event_t *) wake;
} ntmm__wsm_inswap_t;

/* Why an in-swap ended (ntmm__wsm_inswap_job_t.end). */
enum ntmm__inswap_end {
	NTMM__INSWAP_DONE = 0,   /* every recorded page looked at */
	NTMM__INSWAP_PRESSURE,   /* available fell below the minimum mark */
	NTMM__INSWAP_STOPPING,   /* the swapper thread is stopping */
	NTMM__INSWAP_DYING,      /* the process is being destroyed */
	NTMM__INSWAP_OUTSWAPPED, /* out-swapped again meanwhile */
	NTMM__INSWAP_ERROR,      /* a fault failed (in-page error, no frame) */
};

/* One in-swap being worked by the swapper thread (ntmm__wsm_inswap_*). */
typedef struct ntmm__wsm_inswap_job {
	ntmm_process_t *p;    /* holds a `users` reference until _end */
	ntmm__wsm_rec_t *rec; /* owned by the job; NULL: nothing recorded */
	size_t next;          /* next index into rec->va */
	size_t pages;         /* pages this job brought back */
	size_t hard;          /* of which by a paging-file read */
	int end;              /* enum ntmm__inswap_end, once over */
} ntmm__wsm_inswap_job_t;

/* Thresholds in frames, scaled to the pool (wsmgr.c says how). */
typedef struct ntmm__wsm_marks {
	size_t minimum; /* available below this: trim above the minimums; the
			   allocator signals the low-memory event */
	size_t plenty;  /* available + modified at or above this: no aging and
			   no trimming except sets above their maximum */
} ntmm__wsm_marks_t;

/* What one working set manager pass did (for the thread's counters and
   for tests). */
typedef struct ntmm__wsm_result {
	size_t available, modified; /* gauges at the start of the pass */
	size_t processes_aged;
	size_t trimmed_max;      /* pages trimmed from sets above their maximum */
	size_t trimmed_pressure; /* pages trimmed toward minimums under pressure */
} ntmm__wsm_result_t;

void ntmm__wsm_process_init(ntmm_process_t *p);
void ntmm__wsm_marks(ntmm_engine_t *e, ntmm__wsm_marks_t *out);
/* Available frames (ntmm__phys_available: the allocator's definition, the
   one the low-memory event is tested against) and the Modified list
   (lock-free, approximate). */
void ntmm__wsm_gauges(ntmm_engine_t *e, size_t *available, size_t *modified);

/* Calls fn(p, arg) for every process live when the call starts, without
   holding e->virt.lock during the calls (fn may wait for grace periods):
   each process holds a `users` reference meanwhile, so
   ntmm_process_destroy waits before it tears it down (virt.h). */
void ntmm__wsm_for_each(ntmm_engine_t *e, void (*fn)(ntmm_process_t *p, void *arg), void *arg);

/* One pass over every process (ntmm__wsm_for_each; each process's
   trim_lock and ws_lock; grace periods inside). Call outside any read-side
   section, holding no process lock. */
void ntmm__wsm_run(ntmm_engine_t *e, ntmm__wsm_result_t *out);
/* Ages p's working set and notes activity; returns the pages found
   accessed; hist (may be NULL) gets the count of entries per age 0..7. */
size_t ntmm__wsm_age(ntmm_process_t *p, size_t hist[8]);
/* Trims up to `pages` unpinned pages of p, oldest first, never taking a
   page younger than min_age; hist is the age histogram of the aging just
   done. Returns the pages trimmed. s NULL: each trim is its own episode
   (trim_lock and a grace period inside); else the caller holds p's
   trim_lock and the frames join s, which the caller finishes. */
size_t ntmm__wsm_trim_oldest(ntmm_process_t *p, const size_t hist[8], size_t pages,
                             unsigned min_age, struct ntmm__shootdown *s);

/* Inline reclaim, for a fault that found no frame (fault.c) — the engine
   works without its system threads, and with them no fault waits on their
   timing: the same mechanisms the writer and the working set manager use,
   on the faulting thread. Under e->virt.reclaim (one reclaimer at a time):
   flushes the per-CPU caches (a caller still in its read-side section,
   !can_trim, does not wait for another reclaimer: it waits up to 10 ms
   for frames instead, as the holder may be in a grace period that waits
   for that section); if frames are available by then (another
   reclaim, a trim or a free made some), returns at once; else writes
   Modified pages (no grace period needed: written pages go to Standby),
   and when that is not enough and can_trim (the caller is outside every
   read-side section) trims the working sets, oldest pages first, by one
   batch and one grace period, and writes what the trim found dirty.
   Returns the pages made available or on their way (written, trimmed), or
   the frames available; 0 when nothing could be done (every frame pinned,
   in a page table, dirty with no slot left, or only reachable through a
   grace period the caller blocks). Holds no process lock on entry. */
size_t ntmm__wsm_reclaim(ntmm_engine_t *e, bool can_trim);

/* Swapping. swap_out: records p's working set (when a swapper thread runs
   to bring it back), marks p out-swapped and trims its whole (unpinned)
   working set; returns the pages trimmed (caller: no lock of p, outside any
   read-side section). swap_in: called by the fault path when swapped_out
   is set; the first caller clears it, counts the in-swap and queues p for
   the swapper (one short pushlock hold and an event signal: no I/O, no
   wait), or drops the record when no swapper runs. */
size_t ntmm__wsm_swap_out(ntmm_process_t *p);
void ntmm__wsm_swap_in(ntmm_process_t *p);

/* The swapper thread's side of the in-swap queue. attach: it runs and
   `wake` wakes it; detach (before it stops): nothing more is queued and
   the queued in-swaps are dropped (their records freed). */
void ntmm__wsm_inswap_attach(ntmm_engine_t *e, ntmm__event_t *wake);
void ntmm__wsm_inswap_detach(ntmm_engine_t *e);
/* Takes the oldest queued process with a `users` reference and its
   record into *job; false when the queue is empty. Swapper thread only
   (one claimer). */
bool ntmm__wsm_inswap_claim(ntmm_engine_t *e, ntmm__wsm_inswap_job_t *job);
/* Brings back up to max_pages more recorded pages of the job, with at
   most one paging-file read (so a caller holding a lock across a step
   holds it across one I/O at most). Recorded pages that are resident,
   decommitted, guard or no-access, or were never more than demand-zero,
   are skipped. Returns true while pages remain; false once the job is
   over, with job->end saying why: it stops at the first page that finds
   available memory below the working set manager's minimum mark, p dying
   or out-swapped again, or a fault failing. Call outside any read-side
   section, holding no lock of p. */
bool ntmm__wsm_inswap_step(ntmm__wsm_inswap_job_t *job, size_t max_pages);
/* Ends the job: counts its pages (p and the engine's swap_in_pages),
   frees the record (what was not reached is dropped; if p was out-swapped
   again and holds no newer record, it goes back to p instead) and drops
   the users reference — the job's last touch of p. */
void ntmm__wsm_inswap_end(ntmm_engine_t *e, ntmm__wsm_inswap_job_t *job);

/* Destroy hooks (process.c). destroying: before destroy waits for users —
   p leaves the in-swap queue and none is queued again. fini: at teardown
   — frees the record still held. */
void ntmm__wsm_process_destroying(ntmm_process_t *p);
void ntmm__wsm_process_fini(ntmm_process_t *p);

/* Faults of p so far (Σ of the per-CPU counts). */
uint64_t ntmm__wsm_faults(ntmm_process_t *p);

#endif
