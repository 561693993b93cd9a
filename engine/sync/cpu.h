/*
 * The current CPU, for per-CPU caches and counters. glibc ≥ 2.35 answers
 * sched_getcpu() from the rseq area without a syscall. The answer can be
 * stale the moment it returns (migration), so per-CPU structures indexed by
 * it are still protected by atomics or a per-slot lock: the index only
 * spreads contention, it does not grant ownership.
 */
#ifndef NTMM_SYNC_CPU_H
#define NTMM_SYNC_CPU_H

#include <sched.h>

static inline unsigned ntmm__cpu_current(unsigned ncpus)
{
	int c = sched_getcpu();
	return c < 0 ? 0u : (unsigned)c % ncpus;
}

#endif
