/*
 * Bounded backoff for CAS retry loops and short waits: exponential `pause`
 * spinning up to a cap, after which the caller is told to stop spinning
 * (and sleep on a futex) or the helper yields. Never an unbounded spin.
 */
#ifndef NTMM_SYNC_BACKOFF_H
#define NTMM_SYNC_BACKOFF_H

#include <sched.h>
#include <stdbool.h>

typedef struct ntmm__backoff {
	unsigned spins; /* pauses in the next round, doubling */
	unsigned total; /* pauses so far */
} ntmm__backoff_t;

#define NTMM__BACKOFF_INIT \
	{                  \
		1, 0       \
	}
/* about the 1024 spins NTMM-REFERENCE.md §5 gives for a multiprocessor */
#define NTMM__BACKOFF_SPIN_LIMIT 1024u

static inline void ntmm__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/* One round of spinning. Returns false once the spin budget is spent: the
   caller should then sleep. */
static inline bool ntmm__backoff_spin_bounded(ntmm__backoff_t *b)
{
	if (b->total >= NTMM__BACKOFF_SPIN_LIMIT)
		return false;
	for (unsigned i = 0; i < b->spins; i++)
		ntmm__cpu_relax();
	b->total += b->spins;
	if (b->spins < 64)
		b->spins <<= 1;
	return true;
}

/* For retry loops that cannot sleep on a word: spin, then yield the CPU. */
static inline void ntmm__backoff(ntmm__backoff_t *b)
{
	if (!ntmm__backoff_spin_bounded(b))
		sched_yield();
}

#endif
