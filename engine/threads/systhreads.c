/*
 * Starting and stopping the system threads with the priorities and CPU
 * pins of the engine's config. Each thread body lives in its own file
 * (zero_page.c, ...) and calls down into the layer it serves.
 */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>

static ntmm__thread_attr_t attr_of(ntmm_engine_t *e, const char *name, int which)
{
	ntmm__thread_attr_t a = {
	    .name = name,
	    .nt_priority = e->cfg.thread_priority[which],
	    .cpu = e->cfg.thread_cpu[which],
	    .topology = e->phys.topo.synthetic ? NULL : e->phys.topo.hw,
	};
	return a;
}

/* The modified and mapped page writers. */
static int writers_start(ntmm_engine_t *e)
{
	ntmm__systhreads_t *st = &e->systhreads;
	st->mpw.e = e;
	ntmm__thread_attr_t a = attr_of(e, "ntmm-mpw", NTMM_THREAD_MODIFIED_WRITER);
	int err = ntmm__thread_start(&st->mpw.t, &a, ntmm__modified_writer_thread, &st->mpw);
	if (err)
		return err;
	st->mpw_started = true;
	/* release: the event is initialized before anyone may signal it */
	atomic_store_explicit(&e->virt.paging.writer, &st->mpw.t.wake, memory_order_release);
	atomic_store_explicit(&e->phys.writer_wake, &st->mpw.t.wake, memory_order_release);
	ntmm__mapped_writer_init(&st->mapped, e);
	a = attr_of(e, "ntmm-mapped", NTMM_THREAD_MAPPED_WRITER);
	err = ntmm__thread_start(&st->mapped.t, &a, ntmm__mapped_writer_thread, &st->mapped);
	if (err) {
		ntmm__mapped_writer_fini(&st->mapped);
		return err;
	}
	st->mapped_started = true;
	return 0;
}

static void writers_stop(ntmm_engine_t *e)
{
	ntmm__systhreads_t *st = &e->systhreads;
	if (st->mpw_started) {
		/* relaxed: signallers that still loaded the pointer only signal
		   the event, which lives as long as the engine */
		atomic_store_explicit(&e->phys.writer_wake, NULL, memory_order_relaxed);
		atomic_store_explicit(&e->virt.paging.writer, NULL, memory_order_relaxed);
		ntmm__thread_stop(&st->mpw.t);
		st->mpw_started = false;
	}
	if (st->mapped_started) {
		ntmm__thread_stop(&st->mapped.t);
		ntmm__mapped_writer_fini(&st->mapped);
		st->mapped_started = false;
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
	int err = writers_start(e);
	if (err)
		ntmm__systhreads_stop(e);
	return err;
}

void ntmm__systhreads_stop(ntmm_engine_t *e)
{
	ntmm__systhreads_t *st = &e->systhreads;
	writers_stop(e);
	for (unsigned n = 0; n < st->nzero; n++) {
		ntmm__phys_set_zero_wake(e, n, NULL);
		ntmm__thread_stop(&st->zero[n].t);
	}
	free(st->zero);
	st->zero = NULL;
	st->nzero = 0;
}
