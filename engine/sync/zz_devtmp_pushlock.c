/* TEMPORARY in h-virt (removed when h-sync is merged): a plain spin/yield reader-writer lock behind the pushlock API, so the virtual layer builds and tests before the real pushlock lands. */
#include "sync/pushlock.h"
#include "sync/backoff.h"
#define W 1u
#define R 16u
void ntmm__pushlock_acquire_exclusive(ntmm__pushlock_t *pl)
{
	ntmm__backoff_t b = NTMM__BACKOFF_INIT;
	for (;;) {
		uintptr_t v = 0;
		if (atomic_compare_exchange_weak_explicit(&pl->value, &v, W, memory_order_acquire,
		                                          memory_order_relaxed))
			return;
		ntmm__backoff(&b);
	}
}
void ntmm__pushlock_acquire_shared(ntmm__pushlock_t *pl)
{
	ntmm__backoff_t b = NTMM__BACKOFF_INIT;
	for (;;) {
		uintptr_t v = atomic_load_explicit(&pl->value, memory_order_relaxed);
		if (!(v & W) && atomic_compare_exchange_weak_explicit(&pl->value, &v, v + R,
		                                                      memory_order_acquire,
		                                                      memory_order_relaxed))
			return;
		ntmm__backoff(&b);
	}
}
bool ntmm__pushlock_try_acquire_exclusive(ntmm__pushlock_t *pl)
{
	uintptr_t v = 0;
	return atomic_compare_exchange_strong_explicit(&pl->value, &v, W, memory_order_acquire,
	                                               memory_order_relaxed);
}
bool ntmm__pushlock_try_acquire_shared(ntmm__pushlock_t *pl)
{
	uintptr_t v = atomic_load_explicit(&pl->value, memory_order_relaxed);
	return !(v & W) && atomic_compare_exchange_strong_explicit(
	                       &pl->value, &v, v + R, memory_order_acquire, memory_order_relaxed);
}
void ntmm__pushlock_release_exclusive(ntmm__pushlock_t *pl)
{
	atomic_store_explicit(&pl->value, 0, memory_order_release);
}
void ntmm__pushlock_release_shared(ntmm__pushlock_t *pl)
{
	atomic_fetch_sub_explicit(&pl->value, R, memory_order_release);
}
void ntmm__pushlock_downgrade(ntmm__pushlock_t *pl)
{
	atomic_store_explicit(&pl->value, R, memory_order_release);
}
bool ntmm__pushlock_try_convert_to_exclusive(ntmm__pushlock_t *pl)
{
	uintptr_t v = R;
	return atomic_compare_exchange_strong_explicit(&pl->value, &v, W, memory_order_acquire,
	                                               memory_order_relaxed);
}
