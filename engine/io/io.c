/*
 * The io layer's life cycle and its driver registry: setup and teardown of
 * the ring pool, the driver list and the paging files, the engine glue
 * (first paging file from the config, the public add/remove) and the
 * paging-file gauges.
 */
#include "io/io.h"

#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "sync/rcu.h"

/* ---------------------------------------------------------------- drivers */

ntmm__bsdriver_t *ntmm__io_driver_find(ntmm__io_t *io, const char *name)
{
	/* acquire: pairs with the release store that linked each driver */
	for (ntmm__bsdriver_t *d = atomic_load_explicit(&io->drivers, memory_order_acquire); d;
	     d = atomic_load_explicit(&d->next, memory_order_acquire))
		if (!strcmp(d->name, name))
			return d;
	return NULL;
}

int ntmm__io_driver_register(ntmm__io_t *io, ntmm__bsdriver_t *d)
{
	if (!io || !d || !d->name || !d->ops)
		return ntmm__error(NTMM_EINVAL, "driver without name or ops");
	pthread_mutex_lock(&io->lock);
	int err = 0;
	if (ntmm__io_driver_find(io, d->name)) {
		err = ntmm__error(NTMM_EBUSY, "a driver named %s is registered", d->name);
	} else {
		atomic_store_explicit(&d->users, 0, memory_order_relaxed);
		atomic_store_explicit(&d->next,
		                      atomic_load_explicit(&io->drivers, memory_order_relaxed),
		                      memory_order_relaxed);
		/* release: d's fields are visible to readers who find it */
		atomic_store_explicit(&io->drivers, d, memory_order_release);
	}
	pthread_mutex_unlock(&io->lock);
	return err;
}

int ntmm__io_driver_unregister(ntmm__io_t *io, ntmm__bsdriver_t *d)
{
	if (!io || !d)
		return ntmm__error(NTMM_EINVAL, "driver is NULL");
	pthread_mutex_lock(&io->lock);
	int err = ntmm__error(NTMM_EINVAL, "driver %s is not registered", d->name);
	_Atomic(ntmm__bsdriver_t *) *link = &io->drivers;
	for (ntmm__bsdriver_t *c; (c = atomic_load_explicit(link, memory_order_relaxed));
	     link = &c->next) {
		if (c != d)
			continue;
		if (atomic_load_explicit(&d->users, memory_order_relaxed)) {
			err = ntmm__error(NTMM_EBUSY, "driver %s has open stores", d->name);
			break;
		}
		/* relaxed: readers that still see d finish within the grace period */
		atomic_store_explicit(link, atomic_load_explicit(&d->next, memory_order_relaxed),
		                      memory_order_relaxed);
		ntmm__rcu_synchronize();
		err = 0;
		break;
	}
	pthread_mutex_unlock(&io->lock);
	return err;
}

/* -------------------------------------------------------------- life cycle */

int ntmm__io_setup(ntmm__io_t *io, ntmm__stats_t *stats, int backend, unsigned nrings)
{
	memset(io, 0, sizeof(*io));
	int err = ntmm__ioring_pool_init(&io->rings, backend, nrings);
	if (err == NTMM_ENOTSUP)
		return ntmm__error(err, "io_uring was asked for but is unavailable: %s",
		                   io->rings.why);
	if (err)
		return ntmm__error(err, "io ring pool (backend %d)", backend);
	pthread_mutex_init(&io->lock, NULL);
	io->stats = stats;
	io->file_driver.name = "file";
	io->file_driver.ops = &ntmm__filedrv_ops;
	io->file_driver.arg = io;
	return ntmm__io_driver_register(io, &io->file_driver);
}

void ntmm__io_teardown(ntmm__io_t *io)
{
	ntmm__pagefile_remove_all(io);
	ntmm__ioring_pool_fini(&io->rings);
	pthread_mutex_destroy(&io->lock);
}

int ntmm__io_init(ntmm_engine_t *e)
{
	int err = ntmm__io_setup(&e->io, &e->stats, e->cfg.io_backend, 0);
	if (err)
		return err;
	if (e->cfg.pagefile_path) {
		err = ntmm__pagefile_add(&e->io, e->cfg.pagefile_path, e->cfg.pagefile_initial,
		                         e->cfg.pagefile_maximum, NULL, NULL);
		if (err) {
			char detail[256];
			snprintf(detail, sizeof(detail), "%s", ntmm_error_detail());
			ntmm__io_teardown(&e->io);
			return ntmm__error(err, "%s", detail);
		}
	}
	return 0;
}

void ntmm__io_fini(ntmm_engine_t *e)
{
	ntmm__io_teardown(&e->io);
}

void ntmm__io_fill_gauges(ntmm_engine_t *e, ntmm_stats_t *out)
{
	out->pagefile_pages = ntmm__pagefile_used_pages(&e->io);
	out->pagefile_size_pages = ntmm__pagefile_total_pages(&e->io);
}

/* ------------------------------------------------------------- public API */

/* include/ntmm.h promises users this many paging files */
_Static_assert(NTMM__PF_MAX_FILES == 16, "ntmm_pagefile_add documents up to 16 paging files");

int ntmm_pagefile_add(ntmm_engine_t *e, const char *path, size_t initial, size_t maximum)
{
	if (!e)
		return ntmm__error(NTMM_EINVAL, "engine is NULL");
	/* the commit limit reads the space obtained from the io layer itself
	   (virt/commit.c): nothing to tell anyone */
	return ntmm__pagefile_add(&e->io, path, initial, maximum, NULL, NULL);
}

int ntmm_pagefile_remove(ntmm_engine_t *e, const char *path)
{
	if (!e || !path)
		return ntmm__error(NTMM_EINVAL, "engine or path is NULL");
	/* refused (NTMM_EBUSY) while pages are stored in it or the commit
	   charge needs its space (the commit floor, checked inside) */
	return ntmm__pagefile_remove(&e->io, path, 0);
}
