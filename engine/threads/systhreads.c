/*
 * Starting and stopping the system threads with the priorities and CPU
 * pins of the engine's config. Each thread body lives in its own file
 * (zero_page.c, ...) and calls down into the layer it serves.
 */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>

void ntmm__systhreads_init(ntmm_engine_t *e)
{
	ntmm__systhreads_t *st = &e->systhreads;
	pthread_mutex_init(&st->quiet, NULL);
	__cds_wfcq_init(&st->dq_head, &st->dq_tail);
	st->balance.e = st->swapper.e = st->segderef.e = e;
}

void ntmm__systhreads_fini(ntmm_engine_t *e)
{
	ntmm__deferred_run(e); /* nothing posted is lost or leaked */
	pthread_mutex_destroy(&e->systhreads.quiet);
}

/* Starts one of the single-instance threads with its configured priority
   and pin. */
static int start_one(ntmm_engine_t *e, ntmm__thread_t *t, _Atomic bool *started, const char *name,
                     enum ntmm_system_thread which, ntmm__thread_fn fn, void *arg)
{
	ntmm__thread_attr_t a = {
	    .name = name,
	    .nt_priority = e->cfg.thread_priority[which],
	    .cpu = e->cfg.thread_cpu[which],
	    .topology = e->phys.topo.synthetic ? NULL : e->phys.topo.hw,
	};
	int err = ntmm__thread_start(t, &a, fn, arg);
	if (!err) /* release: pairs with the acquire of those who wake it */
		atomic_store_explicit(started, true, memory_order_release);
	return err;
}

/* The modified and mapped page writers. */
static int writers_start(ntmm_engine_t *e)
{
	ntmm__systhreads_t *st = &e->systhreads;
	st->mpw.e = e;
	int err = start_one(e, &st->mpw.t, &st->mpw_started, "ntmm-mpw",
	                    NTMM_THREAD_MODIFIED_WRITER, ntmm__modified_writer_thread, &st->mpw);
	if (err)
		return err;
	/* release: the event is initialized before anyone may signal it */
	atomic_store_explicit(&e->virt.paging.writer, &st->mpw.t.wake, memory_order_release);
	atomic_store_explicit(&e->phys.writer_wake, &st->mpw.t.wake, memory_order_release);
	ntmm__mapped_writer_init(&st->mapped, e);
	err = start_one(e, &st->mapped.t, &st->mapped_started, "ntmm-mapped",
	                NTMM_THREAD_MAPPED_WRITER, ntmm__mapped_writer_thread, &st->mapped);
	if (err)
		ntmm__mapped_writer_fini(&st->mapped);
	else
		atomic_store_explicit(&e->phys.mapped_wake, &st->mapped.t.wake,
		                      memory_order_release);
	return err;
}

static void writers_stop(ntmm_engine_t *e)
{
	ntmm__systhreads_t *st = &e->systhreads;
	/* relaxed exchanges: only this (the destroying) thread writes them now */
	if (atomic_exchange_explicit(&st->mpw_started, false, memory_order_relaxed)) {
		/* relaxed: signallers that still loaded the pointer only signal
		   the event, which lives as long as the engine */
		atomic_store_explicit(&e->phys.writer_wake, NULL, memory_order_relaxed);
		atomic_store_explicit(&e->virt.paging.writer, NULL, memory_order_relaxed);
		ntmm__thread_stop(&st->mpw.t);
	}
	if (atomic_exchange_explicit(&st->mapped_started, false, memory_order_relaxed)) {
		atomic_store_explicit(&e->phys.mapped_wake, NULL, memory_order_relaxed);
		ntmm__thread_stop(&st->mapped.t);
		ntmm__mapped_writer_fini(&st->mapped);
	}
}

int ntmm__systhreads_start(ntmm_engine_t *e)
{
	ntmm__systhreads_t *st = &e->systhreads;
	unsigned nodes = e->phys.nnodes;
	st->zero = calloc(nodes, sizeof(*st->zero));
	if (!st->zero)
		return ntmm__error(NTMM_ENOMEM, "system thread table");
	for (unsigned n = 0; n < nodes; n++) {
		ntmm__zero_thread_t *z = &st->zero[n];
		char name[16];
		snprintf(name, sizeof(name), "ntmm-zero/%u", n % NTMM__MAX_NODES);
		z->e = e;
		z->node = n;
		ntmm__thread_attr_t a = {
		    .name = name,
		    .nt_priority = e->cfg.thread_priority[NTMM_THREAD_ZERO_PAGE],
		    .cpu = e->cfg.thread_cpu[NTMM_THREAD_ZERO_PAGE],
		    .topology = e->phys.topo.synthetic ? NULL : e->phys.topo.hw,
		};
		int err = ntmm__thread_start(&z->t, &a, ntmm__zero_page_thread, z);
		if (err) {
			ntmm__systhreads_stop(e);
			return err;
		}
		st->nzero = n + 1;
		/* from now on frees wake it (it starts with a pass of its own) */
		ntmm__phys_set_zero_wake(e, n, &z->t.wake);
	}
	/* the writers before the threads that trim (their pages need writing);
	   the swapper before the balance set manager, which wakes it */
	int err = writers_start(e);
	if (!err)
		err = start_one(e, &st->swapper.t, &st->swapper.started, "ntmm-swapper",
		                NTMM_THREAD_SWAPPER, ntmm__swapper_thread, &st->swapper);
	if (!err) /* from now on in-swaps are queued for it */
		ntmm__wsm_inswap_attach(e, &st->swapper.t.wake);
	if (!err)
		err =
		    start_one(e, &st->segderef.t, &st->segderef.started, "ntmm-segderef",
		              NTMM_THREAD_SEGMENT_DEREF, ntmm__segment_deref_thread, &st->segderef);
	if (!err)
		err = start_one(e, &st->balance.t, &st->balance.started, "ntmm-balance",
		                NTMM_THREAD_BALANCE_SET, ntmm__balance_set_thread, &st->balance);
	if (err) {
		ntmm__systhreads_stop(e);
		return err;
	}
	ntmm__wsm_marks_t m;
	ntmm__wsm_marks(e, &m);
	ntmm__phys_set_lowmem_wake(e, &st->balance.t.wake, m.minimum);
	return 0;
}

void ntmm__systhreads_stop(ntmm_engine_t *e)
{
	ntmm__systhreads_t *st = &e->systhreads;
	ntmm__phys_set_lowmem_wake(e, NULL, 0);
	/* relaxed exchanges: only this (the destroying) thread writes them
	   now; the balance set thread stops first, as it wakes the swapper */
	if (atomic_exchange_explicit(&st->balance.started, false, memory_order_relaxed))
		ntmm__thread_stop(&st->balance.t);
	if (atomic_exchange_explicit(&st->swapper.started, false, memory_order_relaxed)) {
		ntmm__wsm_inswap_detach(e); /* nothing more queued; queued ones dropped */
		ntmm__thread_stop(&st->swapper.t);
	}
	if (atomic_exchange_explicit(&st->segderef.started, false, memory_order_relaxed))
		ntmm__thread_stop(&st->segderef.t);
	writers_stop(e); /* after the trimmers; a batch in flight completes */
	for (unsigned n = 0; n < st->nzero; n++) {
		ntmm__phys_set_zero_wake(e, n, NULL);
		ntmm__thread_stop(&st->zero[n].t);
	}
	free(st->zero);
	st->zero = NULL;
	st->nzero = 0;
}

size_t ntmm__systhreads_list(ntmm_engine_t *e, ntmm__systhread_ref_t *out, size_t max)
{
	ntmm__systhreads_t *st = &e->systhreads;
	size_t n = 0;
#define NTMM__LIST_ONE(role_, node_, thr_)                                  \
	do {                                                                \
		if (n < max)                                                \
			out[n] = (ntmm__systhread_ref_t){                   \
			    .role = (role_), .node = (node_), .t = (thr_)}; \
		n++;                                                        \
	} while (0)
	/* acquire: pairs with start_one's release of `started` */
	if (atomic_load_explicit(&st->balance.started, memory_order_acquire))
		NTMM__LIST_ONE("balance set manager", -1, &st->balance.t);
	if (atomic_load_explicit(&st->swapper.started, memory_order_acquire))
		NTMM__LIST_ONE("process swapper", -1, &st->swapper.t);
	if (atomic_load_explicit(&st->segderef.started, memory_order_acquire))
		NTMM__LIST_ONE("segment dereference", -1, &st->segderef.t);
	if (atomic_load_explicit(&st->mpw_started, memory_order_acquire))
		NTMM__LIST_ONE("modified page writer", -1, &st->mpw.t);
	if (atomic_load_explicit(&st->mapped_started, memory_order_acquire))
		NTMM__LIST_ONE("mapped page writer", -1, &st->mapped.t);
	for (unsigned i = 0; i < st->nzero; i++)
		NTMM__LIST_ONE("zero page", (int)st->zero[i].node, &st->zero[i].t);
#undef NTMM__LIST_ONE
	return n;
}
