/*
 * The current CPU, for per-CPU caches and counters. glibc ≥ 2.35 registers
 * an rseq area for every thread, in which the kernel keeps the thread's
 * CPU number; reading it inline costs a load (sched_getcpu() reads the
 * same field, through a call). The answer can be stale the moment it
 * returns (migration), so per-CPU structures indexed by it are still
 * protected by atomics or a per-slot lock: the index only spreads
 * contention, it does not grant ownership.
 */
#ifndef NTMM_SYNC_CPU_H
#define NTMM_SYNC_CPU_H

#include <sched.h>

#if defined(__has_include)
#if __has_include(<sys/rseq.h>)
#include <sys/rseq.h>
#define NTMM__HAVE_RSEQ 1
#endif
#endif

/* The CPU number as the kernel reports it, or -1 if unknown. */
static inline int ntmm__cpu_raw(void)
{
	int c = -1;
#ifdef NTMM__HAVE_RSEQ
	if (__rseq_size > 0) { /* registered (not disabled by a tunable) */
		const struct rseq *rs =
		    (const struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
		/* written by the kernel on every migration; a relaxed atomic
		   load so the compiler reads it afresh each time */
		c = (int)__atomic_load_n(&rs->cpu_id, __ATOMIC_RELAXED);
	}
#endif
	if (c < 0)
		c = sched_getcpu();
	return c;
}

/* The current CPU folded below ncpus (the modulo only when it is needed). */
static inline unsigned ntmm__cpu_current(unsigned ncpus)
{
	int c = ntmm__cpu_raw();
	if (c < 0)
		return 0u;
	return (unsigned)c < ncpus ? (unsigned)c : (unsigned)c % ncpus;
}

#endif
