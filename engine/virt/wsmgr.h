/*
 * The working set manager (wsmgr.c) and the process swap state: what the
 * balance set manager and the swapper (engine/threads/) call into the
 * virtual layer for. See wsmgr.c for the policy.
 */
#ifndef NTMM_VIRT_WSMGR_H
#define NTMM_VIRT_WSMGR_H

#include <ntmm.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ntmm__shootdown;

/*
 * Per-process state of the working set manager and the swapper, embedded
 * in struct ntmm_process (zeroed by its calloc, then ntmm__wsm_process_init).
 *   page_priority — standby priority 0..7 its trimmed pages get (relaxed:
 *                   set by ntmm_process_set_page_priority, read by trim)
 *   swapped_out   — 1 from out-swap until the next fault of the process
 *                   claims it by exchange (exactly one in-swap per out-swap)
 *   swap_outs/ins — counts (relaxed)
 *   active_ns     — monotonic time activity was last seen: a fault count
 *                   change or an Accessed bit found by aging (relaxed; the
 *                   balance set and swapper threads store it)
 *   seen_faults   — the fault count the swapper saw last; swapper only
 */
typedef struct ntmm__wsm_proc {
	_Atomic unsigned page_priority;
	_Atomic int swapped_out;
	_Atomic uint64_t swap_outs, swap_ins;
	_Atomic uint64_t active_ns;
	uint64_t seen_faults;
} ntmm__wsm_proc_t;

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

uint64_t ntmm__wsm_now_ns(void);
void ntmm__wsm_process_init(ntmm_process_t *p);
void ntmm__wsm_marks(ntmm_engine_t *e, ntmm__wsm_marks_t *out);
/* Zeroed + Free + Standby + uncommitted frames, and Modified (lock-free,
   approximate). */
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

/* Swapping. swap_out: marks p out-swapped and trims its whole (unpinned)
   working set; returns the pages trimmed (caller: no lock of p, outside any
   read-side section). swap_in: called by the fault path when swapped_out
   is set; the first caller clears it and counts the in-swap. */
size_t ntmm__wsm_swap_out(ntmm_process_t *p);
void ntmm__wsm_swap_in(ntmm_process_t *p);
/* Faults of p so far (Σ of the per-CPU counts). */
uint64_t ntmm__wsm_faults(ntmm_process_t *p);

#endif
