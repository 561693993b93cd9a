/*
 * The modified page writer and the mapped page writer (DESIGN.md §5,
 * NTMM-REFERENCE.md §6): their thread objects and the entry points the
 * rest of the engine, tests and benchmarks use. Bodies in
 * modified_writer.c and mapped_writer.c; started by systhreads.c.
 */
#ifndef NTMM_THREADS_WRITERS_H
#define NTMM_THREADS_WRITERS_H

#include <ntmm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "threads/thread.h"
#include "virt/paging.h"

/* pages the writer takes from the Modified list per batch */
#define NTMM__MPW_BATCH NTMM__WRITE_BATCH

/*
 * The modified page writer. `t` is its framework thread (wake event: the
 * allocator, the Modified list mark and faults short of frames signal it).
 * Counters are written by whoever runs a batch (relaxed; for tests/tools).
 */
typedef struct ntmm__mpw {
	ntmm__thread_t t;
	ntmm_engine_t *e;
	_Atomic uint64_t batches;       /* batches that wrote at least one page */
	_Atomic uint64_t pages;         /* pages written and moved on */
	_Atomic uint64_t failures;      /* batches that hit an error (no space, I/O) */
	_Atomic uint64_t trigger_wakes; /* wake-ups that found work */
	_Atomic uint64_t space_waits;   /* times it blocked until a slot was freed */
} ntmm__mpw_t;

/* One batch of the writer's path (ntmm__paging_write_batch, virt/paging.h),
   callable from any RCU-registered thread (the thread, tests, benchmarks),
   with the growth policy of the engine: with the segment dereference
   thread running, no fallocate here (growth is asked of that thread);
   without it the batch grows a file itself. Returns pages written; *err
   (may be NULL) gets 0, NTMM_ECOMMIT (paging files full) or NTMM_EIO (a
   write failed: those pages stay Modified). */
size_t ntmm__mpw_write_batch(ntmm_engine_t *e, size_t max, int *err);
/* Whether the thresholds ask for writing now (or `urgent`: woken by an
   allocator short of frames) — Modified non-empty and either at its mark
   or free frames low. */
bool ntmm__mpw_wanted(ntmm_engine_t *e, bool urgent);
void ntmm__modified_writer_thread(ntmm__thread_t *self, void *arg);

/* A work item for the mapped page writer (dirty pages of a mapped file). fn runs on the writer thread; it may block and fault. */
typedef struct ntmm__mapped_work {
	struct ntmm__mapped_work *next;
	void (*fn)(ntmm_engine_t *e, struct ntmm__mapped_work *w);
} ntmm__mapped_work_t;

/* The mapped page writer: its thread and a FIFO of work items (lock). */
typedef struct ntmm__mapped_writer {
	ntmm__thread_t t;
	ntmm_engine_t *e;
	pthread_mutex_t lock;
	ntmm__mapped_work_t *head, *tail; /* lock */
	_Atomic uint64_t done;            /* items run (relaxed) */
} ntmm__mapped_writer_t;

void ntmm__mapped_writer_init(ntmm__mapped_writer_t *w, ntmm_engine_t *e);
void ntmm__mapped_writer_fini(ntmm__mapped_writer_t *w);
/* Queues w and wakes the thread. */
void ntmm__mapped_writer_queue(ntmm__mapped_writer_t *mw, ntmm__mapped_work_t *w);
void ntmm__mapped_writer_thread(ntmm__thread_t *self, void *arg);

#endif
