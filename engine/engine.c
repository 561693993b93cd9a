/*
 * Engine creation and destruction, thread registration and the access
 * section. Creation validates the whole config before it allocates
 * anything, and unwinds every layer it has built if a later one fails, so
 * a failed ntmm_engine_create leaks nothing.
 */
#include "engine.h"
#include "sync/rcu.h"
#include "virt/tlb.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int ntmm_engine_create(const ntmm_config_t *cfg, ntmm_engine_t **out)
{
	if (!out)
		return ntmm__error(NTMM_EINVAL, "out is NULL");
	*out = NULL;
	int err = ntmm__config_validate(cfg);
	if (err)
		return err;

	ntmm_engine_t *e = calloc(1, sizeof(*e));
	if (!e)
		return ntmm__error(NTMM_ENOMEM, "engine allocation");
	e->cfg = *cfg;
	if (cfg->topology && !(e->topology_str = strdup(cfg->topology)))
		goto nomem;
	if (cfg->pagefile_path && !(e->pagefile_path = strdup(cfg->pagefile_path)))
		goto nomem;
	e->cfg.topology = e->topology_str;
	e->cfg.pagefile_path = e->pagefile_path;
	long n = sysconf(_SC_NPROCESSORS_CONF);
	e->ncpus = n > 0 ? (unsigned)n : 1;

	if ((err = ntmm__stats_init(&e->stats, e->ncpus)))
		goto fail;
	if ((err = ntmm__phys_init(e)))
		goto fail_stats;
	if ((err = ntmm__io_init(e)))
		goto fail_phys;
	if ((err = ntmm__virt_init(e)))
		goto fail_io;
	ntmm__systhreads_init(e);
	if (e->cfg.start_threads && (err = ntmm__systhreads_start(e))) {
		ntmm__systhreads_fini(e);
		goto fail_virt;
	}
	*out = e;
	return 0;

fail_virt:
	ntmm__virt_fini(e);
fail_io:
	ntmm__io_fini(e);
fail_phys:
	ntmm__phys_fini(e);
fail_stats:
	ntmm__stats_fini(&e->stats);
	goto fail;
nomem:
	err = ntmm__error(NTMM_ENOMEM, "engine allocation");
fail:
	free(e->topology_str);
	free(e->pagefile_path);
	free(e);
	return err;
}

void ntmm_engine_destroy(ntmm_engine_t *e)
{
	if (!e)
		return;
	/* every layer's teardown waits for grace periods, which this thread's
	   own section would block forever */
	if (urcu_memb_read_ongoing() || ntmm__tlb.depth)
		NTMM__MISUSE("ntmm_engine_destroy(%p) called inside an access section "
		             "(between ntmm_access_begin and ntmm_access_end on this thread): "
		             "it would wait forever for a grace period this thread blocks",
		             (void *)e);
	ntmm__pins_engine_gone(e);
	ntmm__systhreads_stop(e);
	ntmm__systhreads_fini(e);
	ntmm__virt_fini(e);
	ntmm__io_fini(e);
	ntmm__phys_fini(e);
	ntmm__stats_fini(&e->stats);
	free(e->topology_str);
	free(e->pagefile_path);
	free(e);
}

int ntmm_thread_register(ntmm_engine_t *e)
{
	if (!e)
		return ntmm__error(NTMM_EINVAL, "engine is NULL");
	int err = ntmm__access_thread_hook(); /* unregisters at thread exit */
	if (err)
		return err;
	ntmm__rcu_thread_online();
	return 0;
}

void ntmm_thread_unregister(ntmm_engine_t *e)
{
	if (!e)
		return;
	ntmm__rcu_thread_offline();
	ntmm__tlb_thread_release();
}

void ntmm_access_begin(ntmm_engine_t *e)
{
	ntmm__access_thread_ensure(); /* adopts a thread nobody registered */
	ntmm__rcu_read_lock();
	ntmm__tlb_section_begin();
}

void ntmm_access_end(ntmm_engine_t *e)
{
	ntmm__tlb_section_end();
	ntmm__rcu_read_unlock();
}

int ntmm_audit(ntmm_engine_t *e)
{
	if (!e)
		return ntmm__error(NTMM_EINVAL, "engine is NULL");
	/* no system-thread pass midway; not inside an access section, where a
	   pass waiting for a grace period while holding `quiet` would wait
	   for us */
	bool quiet = !urcu_memb_read_ongoing();
	if (quiet)
		pthread_mutex_lock(&e->systhreads.quiet);
	int virt = ntmm__virt_audit(e);
	int phys = ntmm__phys_audit(e);
	/* paging-file slots: every slot in use has exactly one owner (a
	   pagefile PTE or a frame's OriginalPte) and none names a free slot;
	   it also pauses the modified page writer between batches. Skipped
	   inside an access section: it takes io->lock, which a paging-file
	   removal holds across a grace period. Exact, like the two above,
	   only on a quiet engine. */
	int slots = quiet ? ntmm__pfaudit(e, NULL) : 0;
	if (quiet)
		pthread_mutex_unlock(&e->systhreads.quiet);
	return virt ? virt : phys ? phys : slots;
}

void ntmm__engine_fill_gauges(ntmm_engine_t *e, ntmm_stats_t *out)
{
	ntmm__phys_fill_gauges(e, out);
	ntmm__io_fill_gauges(e, out);
	ntmm__virt_fill_gauges(e, out);
}
