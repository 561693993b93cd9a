/*
 * The engine's system threads (DESIGN.md §5), started at engine creation
 * when cfg.start_threads is set and stopped at destruction. So far: one
 * zero page thread per NUMA node (zero_page.c). The balance set manager,
 * swapper, modified and mapped page writers and the segment dereference
 * thread join this struct in later issues.
 */
#ifndef NTMM_THREADS_SYSTHREADS_H
#define NTMM_THREADS_SYSTHREADS_H

#include <ntmm.h>

#include "threads/thread.h"
#include "threads/writers.h"

/* One zero page thread: the framework object and what its body works on. */
typedef struct ntmm__zero_thread {
	ntmm__thread_t t;
	ntmm_engine_t *e;
	unsigned node;
} ntmm__zero_thread_t;

/*
 * Owned by the engine; written only by ntmm__systhreads_start/stop (the
 * engine's creator/destroyer thread), read by tools afterwards.
 *   zero[0..nzero)  one per node, running while the engine lives
 */
typedef struct ntmm__systhreads {
	ntmm__zero_thread_t *zero;
	unsigned nzero;
	ntmm__mpw_t mpw;              /* modified page writer (modified_writer.c) */
	ntmm__mapped_writer_t mapped; /* mapped page writer (mapped_writer.c) */
	bool mpw_started, mapped_started;
} ntmm__systhreads_t;

/* Starts the system threads. Errors: those of ntmm__thread_start
   (NTMM_EINVAL for a CPU this process cannot use, NTMM_ENOMEM); on error
   nothing is left running. */
int ntmm__systhreads_start(ntmm_engine_t *e);
/* Stops and joins every started system thread (idempotent). */
void ntmm__systhreads_stop(ntmm_engine_t *e);

/* zero_page.c: the zero page thread body; arg is its ntmm__zero_thread_t. */
void ntmm__zero_page_thread(ntmm__thread_t *self, void *arg);

#endif
