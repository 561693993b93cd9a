/*
 * Cache-aware pushlock: creation and the writer side (see cache_pushlock.h;
 * the reader side is inline there). A writer walks every slot in index
 * order; the order is what makes two writers and a reader deadlock-free.
 */
#include "sync/cache_pushlock.h"
#include "engine.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SLOTS 4096u

int ntmm__cache_pushlock_init(ntmm__cache_pushlock_t *cpl, unsigned nslots)
{
	cpl->slots = NULL;
	cpl->nslots = 0;
	if (nslots == 0) {
		long n = sysconf(_SC_NPROCESSORS_CONF);
		nslots = n > 0 ? (unsigned)(n < (long)MAX_SLOTS ? n : (long)MAX_SLOTS) : 1u;
	}
	if (nslots > MAX_SLOTS)
		return ntmm__error(NTMM_EINVAL, "cache pushlock: %u slots (at most %u)", nslots,
		                   MAX_SLOTS);
	ntmm__cache_pushlock_slot_t *s =
	    aligned_alloc(NTMM__CACHE_PUSHLOCK_STRIDE, sizeof(*s) * nslots);
	if (s == NULL)
		return ntmm__error(NTMM_ENOMEM, "cache pushlock: %u slots", nslots);
	memset(s, 0, sizeof(*s) * nslots);
	for (unsigned i = 0; i < nslots; i++)
		ntmm__pushlock_init(&s[i].lock);
	cpl->slots = s;
	cpl->nslots = nslots;
	return 0;
}

void ntmm__cache_pushlock_destroy(ntmm__cache_pushlock_t *cpl)
{
	for (unsigned i = 0; i < cpl->nslots; i++)
		ntmm__assert(!ntmm__pushlock_is_locked(&cpl->slots[i].lock) &&
		             "cache pushlock destroyed while held");
	free(cpl->slots);
	cpl->slots = NULL;
	cpl->nslots = 0;
}

void ntmm__cache_pushlock_acquire_exclusive(ntmm__cache_pushlock_t *cpl)
{
	for (unsigned i = 0; i < cpl->nslots; i++)
		ntmm__pushlock_acquire_exclusive(&cpl->slots[i].lock);
}

bool ntmm__cache_pushlock_try_acquire_exclusive(ntmm__cache_pushlock_t *cpl)
{
	for (unsigned i = 0; i < cpl->nslots; i++) {
		if (!ntmm__pushlock_try_acquire_exclusive(&cpl->slots[i].lock)) {
			while (i-- > 0)
				ntmm__pushlock_release_exclusive(&cpl->slots[i].lock);
			return false;
		}
	}
	return true;
}

void ntmm__cache_pushlock_release_exclusive(ntmm__cache_pushlock_t *cpl)
{
	/* Reverse order: the slot a waiting writer sleeps on (the lowest one
	   it could not take) is freed last, after the others it needs. */
	for (unsigned i = cpl->nslots; i-- > 0;)
		ntmm__pushlock_release_exclusive(&cpl->slots[i].lock);
}
