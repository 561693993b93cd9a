/*
 * Per-CPU event counters (rule 10 of STYLE.md): each CPU slot is its own
 * cache line; a hot path adds to the slot of the CPU it runs on with a
 * restartable sequence (sync/percpu.h: no locked instruction), or to the
 * shared slot after the last one with a relaxed atomic add.
 * ntmm_stats_get sums the slots.
 */
#ifndef NTMM_STATS_STATS_H
#define NTMM_STATS_STATS_H

#include <ntmm/stats.h>
#include <stdatomic.h>

#include "debug.h"
#include "sync/cpu.h"
#include "sync/percpu.h"

enum ntmm__stat_index {
#define NTMM__STAT_ENUM(name, desc) NTMM__STAT_##name,
	NTMM_STATS_COUNTERS(NTMM__STAT_ENUM)
#undef NTMM__STAT_ENUM
	    NTMM__STAT_COUNT
};

typedef struct ntmm__cpu_stats {
	_Atomic uint64_t v[NTMM__STAT_COUNT];
} NTMM__ALIGNED_CL ntmm__cpu_stats_t;

typedef struct ntmm__stats {
	ntmm__cpu_stats_t *cpu; /* [ncpus + 1] (the last is shared), cache-line
	                           aligned; owned by the engine */
	unsigned ncpus;
} ntmm__stats_t;

int ntmm__stats_init(ntmm__stats_t *s, unsigned ncpus);
void ntmm__stats_fini(ntmm__stats_t *s);
/* Sums every CPU slot into the counter fields of out. */
void ntmm__stats_sum(const ntmm__stats_t *s, ntmm_stats_t *out);

static inline void ntmm__stat_add_idx(ntmm__stats_t *s, unsigned idx, uint64_t n)
{
	ntmm__percpu_add(&s->cpu[0].v[idx], sizeof(ntmm__cpu_stats_t), s->ncpus, n);
}
/* NTMM__STAT_ADD(&e->stats, soft_faults, 1) */
#define NTMM__STAT_ADD(s, name, n) ntmm__stat_add_idx((s), NTMM__STAT_##name, (n))

#endif
