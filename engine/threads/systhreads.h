/* PLACEHOLDER — the system threads arrive with issues 3 and 5. */
#ifndef NTMM_THREADS_SYSTHREADS_H
#define NTMM_THREADS_SYSTHREADS_H
#include <ntmm.h>
#include "threads/thread.h"
typedef struct ntmm__systhreads {
	int placeholder;
} ntmm__systhreads_t;
int ntmm__systhreads_start(ntmm_engine_t *e);
void ntmm__systhreads_stop(ntmm_engine_t *e);
#endif
