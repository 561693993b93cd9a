/*
 * The io layer's engine sub-struct: the paging-file list, the driver
 * registry and the I/O ring pool, plus init/fini and the gauges. See
 * pagefile.h (paging files and space), driver.h (backing-store drivers),
 * ioring.h (batched I/O) and pfloc.h (paging-file locations).
 */
#ifndef NTMM_IO_IO_H
#define NTMM_IO_IO_H

#include <ntmm.h>
#include <ntmm/stats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "io/driver.h"
#include "io/ioring.h"
#include "io/pagefile.h"
#include "io/pfloc.h"
#include "stats/stats.h"
#include "sync/event.h"

/*
 * Per engine.
 *   lock    — serializes writers of files[] and drivers (add, remove,
 *             register, unregister); never taken on the I/O or alloc path
 *   files   — RCU-protected: published with release stores under lock,
 *             read with acquire loads; a removed file is freed only after a
 *             grace period
 *   drivers — RCU-protected list (driver.h)
 *   rotor   — relaxed index of the file allocations try first; moves on
 *             when that file has no room (so clusters stay sequential)
 *   *_total — sums kept by add/remove/grow/shrink, ordered so that size
 *             <= max at every instant (ntmm__pagefile_totals reads a
 *             consistent pair); read with no lock, from any context.
 *             size_pages_total is the paging files' share of the commit
 *             limit (virt/commit.c reads it; nothing mirrors it): it only
 *             falls by a seq_cst RMW that is followed by a seq_cst read of
 *             commit_floor, against the charger's seq_cst charge followed
 *             by a seq_cst read of the total (Dekker: either the charge
 *             sees the lower limit or the shrink sees the charge)
 *   commit_floor — set by the layer above (virt) at its init, NULL before
 *             and after: commit_floor(commit_floor_arg) is how many slots
 *             the commit charge needs now; shrink and remove never take
 *             size_pages_total below it. Written with no file and no
 *             allocator live (init/fini), read under io->lock
 *   space_wanted, space_wake — the modified page writer's wait for space:
 *             it sets space_wanted (seq_cst) and re-checks the free slots
 *             (seq_cst loads) before it sleeps on space_wake; a free, a
 *             growth or a new file makes slots free (a seq_cst RMW of
 *             pf->used, or a store and a seq_cst fence), then reads
 *             space_wanted (seq_cst) and, if set, clears it and
 *             signals space_wake (Dekker: no lost wake-up). space_wake is
 *             installed by the threads layer (release), NULL without it
 */
struct ntmm__io {
	pthread_mutex_t lock;
	_Atomic(ntmm__pagefile_t *) files[NTMM__PF_MAX_FILES];
	_Atomic(ntmm__bsdriver_t *) drivers;
	_Atomic unsigned rotor;
	_Atomic uint64_t size_pages_total; /* sum over files of size_pages - 1 */
	_Atomic uint64_t max_pages_total;  /* sum over files of max_pages - 1 */
	ntmm__ioring_pool_t rings;
	ntmm__bsdriver_t file_driver; /* "file", always registered */
	bool filedrv_named;           /* tests: the file driver creates a named file and
					 unlinks it, as where there is no O_TMPFILE */
	ntmm__stats_t *stats;         /* the engine's counters */
	uint64_t (*commit_floor)(void *arg);
	void *commit_floor_arg;
	_Atomic uint64_t grows_total; /* successful growths of any file (relaxed) */
	_Atomic bool space_wanted;
	_Atomic(ntmm__event_t *) space_wake;
};

/* Sets up an io with no paging files. backend: enum ntmm__io_backend;
   nrings 0 = one per CPU. Errors: NTMM_ENOMEM, NTMM_ENOTSUP (io_uring forced
   but unavailable), NTMM_EINVAL. */
int ntmm__io_setup(ntmm__io_t *io, ntmm__stats_t *stats, int backend, unsigned nrings);
/* Removes every paging file (whatever is in use) and frees everything. */
void ntmm__io_teardown(ntmm__io_t *io);

/* Engine glue: setup from e->cfg, and the first paging file when
   cfg.pagefile_path is set (NTMM_EIO etc. as ntmm__pagefile_add). */
int ntmm__io_init(ntmm_engine_t *e);
void ntmm__io_fini(ntmm_engine_t *e);
void ntmm__io_fill_gauges(ntmm_engine_t *e, ntmm_stats_t *out);

/* "io_uring" or "preadv/pwritev", and why. */
static inline const char *ntmm__io_backend(const ntmm__io_t *io)
{
	return ntmm__io_backend_name(io->rings.backend);
}

#endif
