/*
 * Starting and stopping the system threads with the priorities and CPU
 * pins of the engine's config. Each thread body lives in its own file
 * (zero_page.c, ...) and calls down into the layer it serves.
 */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>

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
	return 0;
}

void ntmm__systhreads_stop(ntmm_engine_t *e)
{
	ntmm__systhreads_t *st = &e->systhreads;
	for (unsigned n = 0; n < st->nzero; n++) {
		ntmm__phys_set_zero_wake(e, n, NULL);
		ntmm__thread_stop(&st->zero[n].t);
	}
	free(st->zero);
	st->zero = NULL;
	st->nzero = 0;
}
