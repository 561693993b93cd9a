/*
 * The engine's system threads (DESIGN.md §5), started at engine creation
 * when cfg.start_threads is set and stopped at destruction: one zero page
 * thread per NUMA node (zero_page.c), the balance set manager
 * (balance_set.c), the process swapper (swapper.c), the segment
 * dereference thread (segment_deref.c), the modified page writer
 * (modified_writer.c) and the mapped page writer (mapped_writer.c; their
 * structs are in writers.h). Without them the engine still works: a fault
 * that finds no frame trims and writes inline (virt/wsmgr.c).
 */
#ifndef NTMM_THREADS_SYSTHREADS_H
#define NTMM_THREADS_SYSTHREADS_H

#include <ntmm.h>

#include "io/pfloc.h"
#include "threads/thread.h"
#include "threads/writers.h"

#include <urcu/wfcqueue.h>

#include "virt/wsmgr.h"

/* One zero page thread: the framework object and what its body works on. */
typedef struct ntmm__zero_thread {
	ntmm__thread_t t;
	ntmm_engine_t *e;
	unsigned node;
} ntmm__zero_thread_t;

/* The balance set manager (balance_set.c). Counters: written by the
   thread (relaxed), read by anyone. */
typedef struct ntmm__balance_thread {
	ntmm__thread_t t;
	ntmm_engine_t *e;
	_Atomic bool started;           /* release after start, acquire by wakers */
	_Atomic uint64_t ticks;         /* timer ticks */
	_Atomic uint64_t lowmem_wakes;  /* wake-ups by the low-memory event */
	_Atomic uint64_t wsm_runs;      /* working set manager passes */
	_Atomic uint64_t swapper_wakes; /* every 4th tick */
	_Atomic uint64_t trimmed;       /* pages the passes trimmed */
} ntmm__balance_thread_t;

/* The process swapper (swapper.c). Its wake event (t.wake) is signalled
   by the balance set manager (every 4th tick: an idle scan) and by faults
   that queue an in-swap (virt/wsmgr.h); t.wakeups counts the wake-ups.
   Counters: written by the thread (relaxed), read by anyone. */
typedef struct ntmm__swapper_thread {
	ntmm__thread_t t;
	ntmm_engine_t *e;
	_Atomic bool started;             /* release after start, acquire by wakers */
	_Atomic uint64_t passes;          /* idle scans done */
	_Atomic uint64_t swap_outs;       /* processes it out-swapped */
	_Atomic uint64_t inswaps;         /* in-swaps finished (counted after each ends) */
	_Atomic uint64_t inswap_pages;    /* pages they brought back */
	_Atomic uint64_t inswap_hard;     /* ... of which through a paging-file read */
	_Atomic uint64_t inswap_cut;      /* in-swaps that stopped early (any reason) */
	_Atomic uint64_t inswap_pressure; /* ... of which for low memory */
} ntmm__swapper_thread_t;

/* A deferred cleanup item: other layers embed one in what they post and
   get it back in fn on the segment dereference thread (or at engine
   destruction, when fn must also free it). */
typedef struct ntmm__deferred ntmm__deferred_t;
typedef void (*ntmm__deferred_fn)(ntmm_engine_t *e, ntmm__deferred_t *item);
struct ntmm__deferred {
	struct cds_wfcq_node node;
	ntmm__deferred_fn fn; /* set by the poster before posting */
	/* post's release store of fn, read with acquire by the runner: makes
	   everything the poster wrote into the item visible in plain C11
	   terms (liburcu's queue orders it with its own fences, which TSan
	   does not see) */
	_Atomic(ntmm__deferred_fn) fn_pub;
};

/* Passes between the segment dereference thread's retries of growth that a
   full disk refused (about 16 s at the default 1 s tick). */
#define NTMM__SEGDEREF_GROWTH_RETRY 16

/* The segment dereference thread (segment_deref.c).
   grow_req[i]: pages of growth asked for paging file i (fetch_add by
   requesters, exchanged to 0 by the thread). free_streak: passes in a row
   that found chunks worth releasing (thread only). */
typedef struct ntmm__segderef_thread {
	ntmm__thread_t t;
	ntmm_engine_t *e;
	_Atomic bool started; /* release after start, acquire by wakers */
	_Atomic uint64_t grow_req[NTMM__PF_MAX_FILES];
	unsigned free_streak;
	uint64_t last_grow_pass;
	uint64_t seen_grows; /* the io layer's growth count at the last pass (thread only) */
	_Atomic uint64_t passes, grows, shrunk_pages, chunks_released, deferred_run;
} ntmm__segderef_thread_t;

/*
 * Owned by the engine; written only by ntmm__systhreads_start/stop (the
 * engine's creator/destroyer thread), read by tools afterwards.
 *   zero[0..nzero)  one per node, running while the engine lives
 *   balance, swapper, segderef  the balance set manager, process swapper
 *                   and segment dereference thread (`started` says if)
 *   quiet           held by the balance set, swapper and segment
 *                   dereference threads around each pass, and by
 *                   ntmm_audit, so an audit never sees a pass half done
 *   dq_head/dq_tail the deferred-work queue (cds_wfcq: wait-free enqueue
 *                   from any context, one dequeuer — the segment
 *                   dereference thread, or the destroyer once it stopped)
 */
typedef struct ntmm__systhreads {
	ntmm__zero_thread_t *zero;
	unsigned nzero;
	ntmm__balance_thread_t balance;
	ntmm__swapper_thread_t swapper;
	ntmm__segderef_thread_t segderef;
	ntmm__mpw_t mpw;                          /* modified page writer (modified_writer.c) */
	ntmm__mapped_writer_t mapped;             /* mapped page writer (mapped_writer.c) */
	_Atomic bool mpw_started, mapped_started; /* as the others' `started` */
	pthread_mutex_t quiet;
	struct __cds_wfcq_head dq_head;
	struct cds_wfcq_tail dq_tail;
} ntmm__systhreads_t;

/* Sets up what exists whether or not threads run (the quiet lock, the
   deferred queue); called at engine creation before start. */
void ntmm__systhreads_init(ntmm_engine_t *e);
/* Runs what is left on the deferred queue and frees init's resources;
   after stop, at engine destruction. */
void ntmm__systhreads_fini(ntmm_engine_t *e);

/* Starts the system threads. Errors: those of ntmm__thread_start
   (NTMM_EINVAL for a CPU this process cannot use, NTMM_ENOMEM); on error
   nothing is left running. */
int ntmm__systhreads_start(ntmm_engine_t *e);
/* Stops and joins every started system thread (idempotent). */
void ntmm__systhreads_stop(ntmm_engine_t *e);

/* A running system thread, for tools: its role, its node (-1 if it serves
   every node) and its thread object (read-only: what it obtained). */
typedef struct ntmm__systhread_ref {
	const char *role;
	int node;
	const ntmm__thread_t *t;
} ntmm__systhread_ref_t;
/* Fills out[0..max) with the running system threads; returns how many run
   (which may exceed max). Call from the engine's owner, not concurrently
   with start/stop. */
size_t ntmm__systhreads_list(ntmm_engine_t *e, ntmm__systhread_ref_t *out, size_t max);

/* zero_page.c: the zero page thread body; arg is its ntmm__zero_thread_t. */
void ntmm__zero_page_thread(ntmm__thread_t *self, void *arg);

/* balance_set.c, swapper.c, segment_deref.c: the bodies; arg is the
   thread's own struct above. */
void ntmm__balance_set_thread(ntmm__thread_t *self, void *arg);
void ntmm__swapper_thread(ntmm__thread_t *self, void *arg);
void ntmm__segment_deref_thread(ntmm__thread_t *self, void *arg);

/* segment_deref.c: posts a deferred cleanup item (wait-free; any thread,
   any context, locks held or not) and wakes the thread. */
void ntmm__deferred_post(ntmm_engine_t *e, ntmm__deferred_t *item);
/* Runs every queued item now (the dequeuer only: the segment dereference
   thread, or anyone while it is not running). Returns how many ran. */
size_t ntmm__deferred_run(ntmm_engine_t *e);
/* Whether the segment dereference thread is running. */
bool ntmm__segderef_running(ntmm_engine_t *e);
/* Asks the segment dereference thread to grow paging file `index` by
   `pages` (for callers that must not block in fallocate); it wakes the
   modified page writer after a growth. */
void ntmm__segderef_request_grow(ntmm_engine_t *e, unsigned index, uint64_t pages);
/* One segment dereference pass (grow requests, shrink, cache reduction,
   deferred items); the thread body calls it, tests may too with the
   thread not running. */
void ntmm__segderef_pass(ntmm__segderef_thread_t *s, bool from_thread);

#endif
