/*
 * Counter storage and summation (see stats.h), and the public
 * ntmm_stats_get, which adds the gauges each layer reports.
 */
#include "stats/stats.h"
#include "engine.h"

#include <stdlib.h>
#include <string.h>

int ntmm__stats_init(ntmm__stats_t *s, unsigned ncpus)
{
	s->ncpus = ncpus ? ncpus : 1;
	s->cpu = aligned_alloc(NTMM__CACHELINE, sizeof(*s->cpu) * (s->ncpus + 1));
	if (!s->cpu)
		return NTMM_ENOMEM;
	memset(s->cpu, 0, sizeof(*s->cpu) * (s->ncpus + 1));
	return 0;
}

void ntmm__stats_fini(ntmm__stats_t *s)
{
	free(s->cpu);
	s->cpu = NULL;
}

void ntmm__stats_sum(const ntmm__stats_t *s, ntmm_stats_t *out)
{
	uint64_t sum[NTMM__STAT_COUNT] = {0};
	for (unsigned c = 0; c <= s->ncpus; c++) /* with the shared slot */
		for (unsigned i = 0; i < NTMM__STAT_COUNT; i++)
			sum[i] += atomic_load_explicit(&s->cpu[c].v[i], memory_order_relaxed);
#define NTMM__STAT_COPY(name, desc) out->name = sum[NTMM__STAT_##name];
	NTMM_STATS_COUNTERS(NTMM__STAT_COPY)
#undef NTMM__STAT_COPY
}

int ntmm_stats_get(ntmm_engine_t *e, ntmm_stats_t *out)
{
	if (!e || !out)
		return ntmm__error(NTMM_EINVAL, "ntmm_stats_get: %s is NULL", e ? "out" : "engine");
	memset(out, 0, sizeof(*out));
	out->version = NTMM_STATS_VERSION;
	ntmm__stats_sum(&e->stats, out);
	ntmm__engine_fill_gauges(e, out);
	return 0;
}
