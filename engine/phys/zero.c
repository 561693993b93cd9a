/*
 * Zeroing: the routine that clears a 4 KiB frame with non-temporal stores
 * (the zeroed frame is not about to be read, so it should not evict the
 * cache), and the zeroing pass the zero page thread of each node runs:
 * Free → Zeroed in batches, taking free_lock only to pick frames and to
 * list them again — the zeroing itself runs unlocked on frames parked in
 * the node's zbatch.
 */
#include "engine.h"

#include <string.h>
#if defined(__x86_64__)
#include <emmintrin.h>
#endif

void ntmm__zero_page_nt(void *page)
{
#if defined(__x86_64__)
	__m128i z = _mm_setzero_si128();
	__m128i *p = page;
	for (unsigned i = 0; i < 4096 / sizeof(__m128i); i += 8) {
		_mm_stream_si128(p + i, z);
		_mm_stream_si128(p + i + 1, z);
		_mm_stream_si128(p + i + 2, z);
		_mm_stream_si128(p + i + 3, z);
		_mm_stream_si128(p + i + 4, z);
		_mm_stream_si128(p + i + 5, z);
		_mm_stream_si128(p + i + 6, z);
		_mm_stream_si128(p + i + 7, z);
	}
#else
	memset(page, 0, 4096);
#endif
}

void ntmm__zero_fence(void)
{
#if defined(__x86_64__)
	_mm_sfence(); /* non-temporal stores are weakly ordered: complete them
			 before the frames are published as Zeroed */
#endif
}

size_t ntmm__phys_zero_pass(ntmm_engine_t *e, unsigned node, size_t max_pages, bool *more)
{
	ntmm__phys_t *ph = &e->phys;
	ntmm__node_t *n = &ph->nodes[node];
	size_t done = 0;
	bool again = false;
	while (done < max_pages) {
		pthread_mutex_lock(&n->free_lock);
		again = n->free_count > 0 && n->zeroed_count < n->zero_high;
		if (!again) {
			pthread_mutex_unlock(&n->free_lock);
			break;
		}
		unsigned k = 0;
		while (k < NTMM__ZERO_BATCH && done + k < max_pages) {
			ntmm__pfn_t pfn = ntmm__freelist_take_cold(ph, n);
			if (pfn == NTMM__PFN_NONE)
				break;
			n->zbatch[k++] = pfn;
		}
		n->zbatch_n = k;
		ntmm__node_pub_free(n);
		pthread_mutex_unlock(&n->free_lock);

		for (unsigned i = 0; i < k; i++)
			ntmm__zero_page_nt(ntmm__frame(ph, n->zbatch[i]));
		ntmm__zero_fence();

		pthread_mutex_lock(&n->free_lock);
		for (unsigned i = 0; i < k; i++) {
			ntmm__pfn_t pfn = n->zbatch[i];
			ntmm__pfn_entry_t *p = ntmm__pfe(ph, pfn);
			uint64_t s = atomic_load_explicit(&p->state, memory_order_relaxed);
			ntmm__pfn_store(p, s, ntmm__pfn_listed(s, NTMM__LOC_ZEROED));
			ntmm__freelist_put(ph, n, true, pfn);
		}
		n->zbatch_n = 0;
		again = n->free_count > 0 && n->zeroed_count < n->zero_high;
		ntmm__node_pub_free(n);
		pthread_mutex_unlock(&n->free_lock);
		done += k;
		if (!again)
			break;
	}
	if (done)
		NTMM__STAT_ADD(&e->stats, frames_zeroed, done);
	if (more)
		*more = again;
	return done;
}

bool ntmm__phys_zero_wanted(ntmm_engine_t *e, unsigned node)
{
	ntmm__node_t *n = &e->phys.nodes[node];
	/* relaxed: a hint; the pass re-checks under free_lock */
	return atomic_load_explicit(&n->free_pub, memory_order_relaxed) > 0 &&
	       atomic_load_explicit(&n->zeroed_pub, memory_order_relaxed) < n->zero_high;
}

void ntmm__phys_set_zero_wake(ntmm_engine_t *e, unsigned node, ntmm__event_t *ev)
{
	/* release: pairs with the acquire in ntmm__zero_wake */
	atomic_store_explicit(&e->phys.nodes[node].zero_wake, ev, memory_order_release);
}
